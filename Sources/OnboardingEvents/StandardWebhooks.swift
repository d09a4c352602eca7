import Crypto
import Foundation
import WireFormat

/// A webhook signing secret in the Standard Webhooks format, `whsec_<base64>`: the base64 text
/// is the HMAC key (the spec asks for 24 to 64 random bytes).
///
/// The secret never shows: its description, its debug description and its mirror are redacted,
/// and errors about a malformed secret never repeat the text.
public struct WebhookSecret: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// The prefix every secret text starts with.
    public static let prefix = "whsec_"
    /// The fewest key bytes accepted (the spec's lower bound).
    public static let minimumKeyBytes = 24
    /// The most key bytes accepted (the spec's upper bound).
    public static let maximumKeyBytes = 64

    let key: SymmetricKey

    /// Reads `whsec_<base64>`.
    /// - Throws: ``WebhookSecretError`` when the text does not start with `whsec_`, is not
    ///   base64 after it, or its key is not 24 to 64 bytes.
    public init(_ text: String) throws(WebhookSecretError) {
        guard text.hasPrefix(Self.prefix) else {
            throw WebhookSecretError(description: "a webhook secret must have the form whsec_<base64> (Standard Webhooks)")
        }
        guard let bytes = Base64.decode(text.dropFirst(Self.prefix.count), alphabet: .standard) else {
            throw WebhookSecretError(description: "a webhook secret must be whsec_ followed by base64 (the text after whsec_ is not base64)")
        }
        guard (Self.minimumKeyBytes...Self.maximumKeyBytes).contains(bytes.count) else {
            throw WebhookSecretError(
                description:
                    "a webhook secret whsec_<base64> must hold \(Self.minimumKeyBytes) to \(Self.maximumKeyBytes) bytes of key (this one holds \(bytes.count))"
            )
        }
        self.key = SymmetricKey(data: bytes)
    }

    /// A new random secret of 32 bytes (for `onboard` to suggest, and for tests).
    public static func generate() -> (secret: WebhookSecret, text: String) {
        let key = SymmetricKey(size: .bits256)
        let text = prefix + key.withUnsafeBytes { Base64.encode($0) }
        // A generated key is always 32 bytes of base64: well-formed.
        return (try! WebhookSecret(text), text)
    }

    public var description: String { "whsec_<redacted>" }
    public var debugDescription: String { description }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }
}

/// A webhook secret that is not `whsec_<base64>` of 24 to 64 bytes. Its text never holds the secret.
public struct WebhookSecretError: Error, Sendable, CustomStringConvertible {
    public let description: String
}

/// The Standard Webhooks signing scheme (https://www.standardwebhooks.com): the receiver checks
/// `webhook-signature` against the HMAC-SHA256, keyed with the secret, of
/// `<webhook-id>.<webhook-timestamp>.<body>`.
public enum StandardWebhooks {
    /// `v1,<base64 of HMAC-SHA256(key, "<id>.<timestamp>.<body>")>`: the `webhook-signature` value.
    /// - Parameters:
    ///   - id: the `webhook-id` header (the event id).
    ///   - timestamp: the `webhook-timestamp` header, in seconds since 1970.
    ///   - body: the request body, byte for byte.
    public static func signature(id: String, timestamp: Int, body: some Collection<UInt8>, secret: WebhookSecret) -> String {
        var mac = HMAC<SHA256>(key: secret.key)
        mac.update(data: Array("\(id).\(timestamp).".utf8))
        mac.update(data: Array(body))
        return "v1," + Base64.encode(Array(mac.finalize()))
    }

    /// ``signature(id:timestamp:body:secret:)`` of a text body (its UTF-8 bytes).
    public static func signature(id: String, timestamp: Int, body: String, secret: WebhookSecret) -> String {
        signature(id: id, timestamp: timestamp, body: Array(body.utf8), secret: secret)
    }

    /// Whether a `webhook-signature` header (space-separated `v1,<base64>` signatures) holds the
    /// signature of this message: what a receiver checks (in constant time), besides the
    /// timestamp's age.
    public static func verify(signatureHeader: String, id: String, timestamp: Int, body: some Collection<UInt8>, secret: WebhookSecret) -> Bool {
        let signed = Array("\(id).\(timestamp).".utf8) + Array(body)
        return signatureHeader.split(separator: " ").contains { candidate in
            guard candidate.hasPrefix("v1,"), let given = Base64.decode(candidate.dropFirst(3), alphabet: .standard) else { return false }
            return HMAC<SHA256>.isValidAuthenticationCode(given, authenticating: signed, using: secret.key)
        }
    }
}
