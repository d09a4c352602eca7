import Foundation

/// Gives the credentials to sign the next request with.
///
/// ``AWSClient`` asks before every request, so an implementation answers fast from what it holds
/// (a cache, fixed keys) and fetches only when it must. When AWS rejects the credentials as
/// expired (`ExpiredToken*`), the client calls ``invalidate(_:)`` with the rejected ones and asks
/// again.
public protocol AWSCredentialProvider: Sendable {
    /// The credentials to sign with now.
    /// - Throws: ``AWSCredentialsError`` when none can be had.
    func credentials() async throws -> AWSCredentials

    /// Forgets `rejected` if they are still the ones held, so the next ``credentials()`` fetches
    /// new ones. Credentials already replaced are left alone: many requests failing with the same
    /// expired credentials cause one refresh, not one each.
    func invalidate(_ rejected: AWSCredentials)
}

/// One place credentials may come from (the environment, the shared files, a container endpoint,
/// the instance metadata service, STS): fetched on demand, cached by the caller.
public protocol AWSCredentialSource: Sendable {
    /// Where this source looked, for the message when no source found credentials
    /// ("no container endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or …_FULL_URI)").
    var lookedAt: String { get }

    /// Fetches credentials.
    /// - Returns: `nil` when this source is not set up here (its variables are not set), so the
    ///   next source in a chain is asked.
    /// - Throws: ``AWSCredentialsError`` when the source is set up but gives no credentials: a
    ///   chain stops there, as the SDKs do, instead of silently using another identity.
    func fetch() async throws -> ExpiringCredentials?

    /// Whether a failure only means "nothing here" (the instance metadata service off EC2), so
    /// that a chain notes it and goes on. Default `false`.
    var failureMeansAbsent: Bool { get }
}

extension AWSCredentialSource {
    public var failureMeansAbsent: Bool { false }
}

/// Credentials and the instant they stop working (`nil`: they do not expire, as long-term keys).
public struct ExpiringCredentials: Sendable, Hashable, CustomStringConvertible {
    public let credentials: AWSCredentials
    public let expiration: Date?

    public init(_ credentials: AWSCredentials, expiration: Date? = nil) {
        self.credentials = credentials
        self.expiration = expiration
    }

    /// Whether these credentials are past their expiry at `date`.
    public func isExpired(at date: Date) -> Bool {
        guard let expiration else { return false }
        return date >= expiration
    }

    public var description: String {
        "\(credentials)\(expiration.map { " expiring \(ISO8601DateFormatter().string(from: $0))" } ?? "")"
    }
}

/// The same credentials every time (keys given in code, or read once).
public struct StaticCredentialProvider: AWSCredentialProvider {
    public let fixed: AWSCredentials

    public init(_ credentials: AWSCredentials) {
        self.fixed = credentials
    }

    public func credentials() async throws -> AWSCredentials { fixed }

    /// Nothing to forget: fixed credentials cannot be refreshed.
    public func invalidate(_ rejected: AWSCredentials) {}
}

/// No credentials could be had: none configured anywhere, or a configured source failed. The
/// message says where credentials were looked for, in one line, without any secret.
public struct AWSCredentialsError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// Reads the timestamps credential endpoints send (`2026-12-02T01:54:41Z`, with or without
/// fractional seconds of any length, `Z` or an offset), as ISO 8601 says.
public enum CredentialTimestamp {
    /// The instant, or `nil` when `text` is not such a timestamp.
    public static func parse(_ text: String) -> Date? {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        // Drop the fraction (ISO8601DateFormatter accepts exactly three digits or none), keep it aside.
        var whole = trimmed
        var fraction = 0.0
        if let dot = trimmed.firstIndex(of: "."), dot > trimmed.index(trimmed.startIndex, offsetBy: min(10, trimmed.count)) {
            let digits = trimmed[trimmed.index(after: dot)...].prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty else { return nil }
            fraction = Double("0." + digits) ?? 0
            whole = String(trimmed[..<dot]) + String(trimmed[digits.endIndex...])
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        guard let date = formatter.date(from: whole) else { return nil }
        return date.addingTimeInterval(fraction)
    }
}
