import Crypto
import Foundation
import OnboardingCore

/// The admin token, known to the server only as its SHA-256 hash.
///
/// The token itself is shown once (on first start, or by `onboard admin-token rotate`) and never
/// stored or logged; a presented token is hashed and compared in constant time.
public struct AdminCredential: Sendable, Hashable {
    /// `sha256:<64 hex digits>`, the form stored in the `_system` partition.
    public let storedHash: String
    private let digest: [UInt8]

    /// The credential for a token in plain text (as configured with `--admin-token`).
    public init(token: String) {
        self.digest = Array(SHA256.hash(data: Array(token.utf8)))
        self.storedHash = "sha256:" + ByteEncoding.hex(digest)
    }

    /// The credential from its stored hash; `nil` when the text is not a `sha256:` hash.
    public init?(storedHash: String) {
        guard storedHash.hasPrefix("sha256:") else { return nil }
        let hex = Array(storedHash.utf8.dropFirst(7))
        guard hex.count == 64 else { return nil }
        var digest: [UInt8] = []
        for index in stride(from: 0, to: 64, by: 2) {
            guard let byte = UInt8(String(decoding: hex[index...index + 1], as: UTF8.self), radix: 16) else { return nil }
            digest.append(byte)
        }
        self.digest = digest
        self.storedHash = storedHash.lowercased()
    }

    /// Whether `token` is the admin token. Constant time in the token's content.
    public func matches(_ token: String) -> Bool {
        ConstantTime.equals(Array(SHA256.hash(data: Array(token.utf8))), digest)
    }

    /// Configured admin tokens must be at least this long.
    public static let minimumTokenLength = 24

    /// A new token: `onb_admin_` and 256 random bits from the system CSPRNG, base64url.
    public static func generateToken() -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        return "onb_admin_" + ByteEncoding.base64URL(bytes)
    }
}

/// Where the generated admin token's hash lives: an item in the reserved `_system` partition,
/// which can never be a tenant id (not a UUID), so no tenant route can reach it.
public enum AdminTokenRecord {
    public static let key = ItemKey(tenantId: "_system", resourceKey: "ADMIN_TOKEN#current")

    /// The admin credential to use, and the token when one was just generated (to print once).
    ///
    /// A configured token wins and nothing is stored. Otherwise the stored hash is used; on the
    /// very first start a token is generated and its hash stored (a conditional put, so two
    /// servers starting together agree on one token).
    public static func prepare(store: any TenantStore, configuredToken: String?, clock: any WallClock = SystemWallClock())
        async throws -> (credential: AdminCredential, generatedToken: String?)
    {
        if let configuredToken {
            return (AdminCredential(token: configuredToken), nil)
        }
        if let credential = try await load(store) {
            return (credential, nil)
        }
        let token = AdminCredential.generateToken()
        let credential = AdminCredential(token: token)
        do {
            try await store.put(item(credential, clock: clock), condition: .itemNotExists)
            return (credential, token)
        } catch let error as StoreError where error.code == .conditionFailed {
            guard let stored = try await load(store) else { throw error }
            return (stored, nil)
        }
    }

    /// Replaces the stored admin token with a new one and returns it (to print once).
    public static func rotate(store: any TenantStore, clock: any WallClock = SystemWallClock()) async throws -> String {
        let token = AdminCredential.generateToken()
        try await store.put(item(AdminCredential(token: token), clock: clock))
        return token
    }

    static func load(_ store: any TenantStore) async throws -> AdminCredential? {
        guard let item = try await store.get(key) else { return nil }
        guard let hash = item["tokenHash"]?.stringValue, let credential = AdminCredential(storedHash: hash) else {
            throw OnboardingError.corruptItem(key, attribute: "tokenHash")
        }
        return credential
    }

    private static func item(_ credential: AdminCredential, clock: any WallClock) -> Item {
        Item(key: key, attributes: [
            "tokenHash": .string(credential.storedHash),
            "createdAt": .string(Timestamp.format(clock.now())),
        ])
    }
}
