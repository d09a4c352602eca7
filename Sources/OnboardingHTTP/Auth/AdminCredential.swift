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

    /// Configured admin tokens must carry at least this many bits by ``estimatedEntropyBits(_:)``.
    public static let minimumEntropyBits = 128

    /// A rough, generous estimate of a token's entropy in bits, to refuse tokens that are easy
    /// to guess (it cannot prove a token random):
    ///
    /// - each character is worth log2 of the size of the character classes the token uses:
    ///   lowercase letters 26, uppercase letters 26, digits 10, other printable ASCII 32;
    /// - a character continuing a run of three or more that repeat or step by one (`aaa`,
    ///   `abc`, `321`) is worth 1 bit;
    /// - a token that repeats a pattern (`xq7xq7xq7…`) is worth its pattern once.
    ///
    /// `openssl rand -hex 16` (128 random bits) is estimated at about 165 bits, `openssl rand
    /// -base64 32` at about 288, the generated `onb_admin_…` token at about 340.
    public static func estimatedEntropyBits(_ token: String) -> Double {
        let scalars = Array(token.unicodeScalars.map(\.value))
        guard !scalars.isEmpty else { return 0 }
        // The shortest period: the token is its first `period` characters repeated.
        var period = scalars.count
        for candidate in 1...max(1, scalars.count / 2) where scalars.count >= 2 * candidate {
            if (candidate..<scalars.count).allSatisfy({ scalars[$0] == scalars[$0 - candidate] }) {
                period = candidate
                break
            }
        }
        let unit = scalars.prefix(period)
        var pool = 0
        if unit.contains(where: { (0x61...0x7A).contains($0) }) { pool += 26 }
        if unit.contains(where: { (0x41...0x5A).contains($0) }) { pool += 26 }
        if unit.contains(where: { (0x30...0x39).contains($0) }) { pool += 10 }
        if unit.contains(where: { !(0x61...0x7A).contains($0) && !(0x41...0x5A).contains($0) && !(0x30...0x39).contains($0) }) { pool += 32 }
        let perCharacter = log2(Double(max(pool, 2)))
        var bits = 0.0
        for index in unit.indices {
            let step = index >= 2 ? Int64(unit[index]) - Int64(unit[index - 1]) : 2
            let previousStep = index >= 2 ? Int64(unit[index - 1]) - Int64(unit[index - 2]) : 3
            bits += (abs(step) <= 1 && step == previousStep) ? 1 : perCharacter
        }
        return bits
    }

    /// Why a configured admin token is refused, or `nil` when it is acceptable: at least
    /// ``minimumTokenLength`` printable ASCII characters without spaces, estimated at
    /// ``minimumEntropyBits`` or more (``estimatedEntropyBits(_:)``). Never quotes the token.
    public static func weakness(of token: String) -> String? {
        guard token.count >= minimumTokenLength else {
            return "the admin token must have at least \(minimumTokenLength) characters"
        }
        guard token.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
            return "the admin token may hold only printable ASCII characters without spaces"
        }
        if Set(token.unicodeScalars).count == 1 {
            return "the admin token is one character repeated"
        }
        let bits = estimatedEntropyBits(token)
        guard bits >= Double(minimumEntropyBits) else {
            return "the admin token is too easy to guess: about \(Int(bits)) bits of entropy, at least \(minimumEntropyBits) needed "
                + "(estimated as its length times log2 of the character classes it uses: lowercase 26, uppercase 26, digits 10, "
                + "other printable 32; a character continuing a run like aaa or abc counts 1 bit, a repeated pattern once). "
                + "Use e.g. `openssl rand -base64 32`, or leave it unset to have one generated"
        }
        return nil
    }

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
