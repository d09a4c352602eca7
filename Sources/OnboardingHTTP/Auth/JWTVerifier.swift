import AsyncHTTPClient
import Crypto
import Foundation
import JWTKit
import Logging
import OnboardingCore
import Synchronization

/// Accepts JSON Web Tokens from one OIDC issuer (a Cognito user pool): signature checked with
/// jwt-kit against the issuer's JWKS, then issuer, audience, lifetime and `token_use`, then the
/// claims are mapped to a ``Principal`` by a ``ClaimMapping``.
///
/// A bearer token that is not shaped like a JWT (three base64url parts) is not this verifier's:
/// ``principal(for:)`` returns `nil` and the next verifier (API keys) gets it. A JWT that fails
/// any check is answered `401` with a detail saying which check failed (never the token).
///
/// Checks, in order (nothing about the payload is trusted before the signature is checked):
/// 1. the header's `alg` is in the allow-list (RS256, ES256; never `none` or HMAC), before any key
///    is looked at; the header names a `kid`;
/// 2. the `kid` is a key of the JWKS (fetched on first use, refetched for an unknown `kid` at most
///    once per ``Configuration/minimumRefetchInterval``, refreshed in the background once older
///    than ``Configuration/maximumKeyAge``, no longer trusted after ``Configuration/keyGracePeriod``
///    more without a successful fetch), of the type `alg` needs;
/// 3. the signature (jwt-kit);
/// 4. `iss` is exactly the issuer; `token_use` is allowed; the ID token's `aud` or the access
///    token's `client_id` is a configured client id; `exp` (required), `nbf` and `iat` hold with
///    ``Configuration/clockSkew`` of leeway;
/// 5. the claims name a principal (the admin group, or a tenant id).
///
/// A token that passed every check is remembered (by its SHA-256, never its text) until its
/// `exp` (plus the leeway), at most ``Configuration/verifiedTokenMaxAge``: its next uses skip the
/// signature and claim checks but not its lifetime, which is checked on every use. What the
/// token names is still subject to the tenant's status on every request (``TenantStatusGate``).
///
/// When the JWKS cannot be fetched and no trusted key for the token is cached, the request is answered
/// `401` too (fail closed; the outage is logged at `error`): every route documents `401` for a
/// credential that cannot be accepted, and the client's remedy (retry later) is in the detail.
public final class JWTVerifier: CredentialVerifier {
    /// Which tokens are accepted and how they map to principals.
    public struct Configuration: Sendable {
        /// The `iss` every token must carry, exactly (`https://cognito-idp.<region>.amazonaws.com/<poolId>`).
        public var issuer: String
        /// Where the issuer's signing keys are served (default: the issuer + `/.well-known/jwks.json`).
        public var jwksURL: String
        /// The app clients tokens may be issued to: the ID token's `aud`, the access token's `client_id`.
        public var clientIDs: Set<String>
        /// The accepted `token_use` values; `nil` skips the check (issuers other than Cognito).
        public var tokenUses: Set<TokenUse>?
        /// How claims make a principal.
        public var claims: ClaimMapping
        /// Leeway for `exp`, `nbf` and `iat` against this machine's clock.
        public var clockSkew: Duration
        /// The signing algorithms accepted (a subset of RS256 and ES256).
        public var algorithms: Set<String>
        /// The JWKS is fetched again for an unknown `kid` at most this often (a flood of made-up
        /// `kid`s must not turn into a flood of requests to the issuer).
        public var minimumRefetchInterval: Duration
        /// After a failed fetch, the next attempt waits this long.
        public var failedFetchRetryInterval: Duration
        /// A JWKS fetch that has no complete answer after this long fails (and is retried after
        /// ``failedFetchRetryInterval``).
        public var fetchTimeout: Duration
        /// Keys older than this are refetched (at the same rate limit) so removed keys stop being
        /// trusted; meanwhile the known keys are still used (a slow issuer stalls no request).
        public var maximumKeyAge: Duration
        /// How long past ``maximumKeyAge`` the known keys are still trusted while refetches fail;
        /// after that JWTs are refused (`401`, "try again later") until a fetch succeeds.
        public var keyGracePeriod: Duration
        /// How long a verified token is remembered at most (see the type's documentation);
        /// `.zero` verifies every use.
        public var verifiedTokenMaxAge: Duration

        /// The algorithms this verifier can accept at all.
        public static let supportedAlgorithms: Set<String> = ["RS256", "ES256"]

        /// - Parameters:
        ///   - jwksURL: `nil`: ``defaultJWKSURL(issuer:)``.
        ///   - tokenUses: `nil` accepts any `token_use` (then `aud` or `client_id` may name the client).
        ///   - algorithms: intersected with ``supportedAlgorithms``.
        public init(
            issuer: String,
            jwksURL: String? = nil,
            clientIDs: Set<String>,
            tokenUses: Set<TokenUse>? = [.id, .access],
            claims: ClaimMapping = ClaimMapping(),
            clockSkew: Duration = .seconds(60),
            algorithms: Set<String> = Configuration.supportedAlgorithms,
            minimumRefetchInterval: Duration = .seconds(30),
            failedFetchRetryInterval: Duration = .seconds(5),
            fetchTimeout: Duration = .seconds(5),
            maximumKeyAge: Duration = Configuration.defaultMaximumKeyAge,
            keyGracePeriod: Duration = Configuration.defaultKeyGracePeriod,
            verifiedTokenMaxAge: Duration = .seconds(60)
        ) {
            self.issuer = issuer
            self.jwksURL = jwksURL ?? Self.defaultJWKSURL(issuer: issuer)
            self.clientIDs = clientIDs
            self.tokenUses = tokenUses
            self.claims = claims
            self.clockSkew = clockSkew
            self.algorithms = algorithms.intersection(Self.supportedAlgorithms)
            self.minimumRefetchInterval = minimumRefetchInterval
            self.failedFetchRetryInterval = failedFetchRetryInterval
            self.fetchTimeout = fetchTimeout
            self.maximumKeyAge = maximumKeyAge
            self.keyGracePeriod = keyGracePeriod
            self.verifiedTokenMaxAge = verifiedTokenMaxAge
        }

        /// One hour.
        public static let defaultMaximumKeyAge: Duration = .seconds(3600)
        /// One hour: without a successful fetch, keys are trusted for two hours at most.
        public static let defaultKeyGracePeriod: Duration = .seconds(3600)

        /// The issuer's JWKS by the OIDC convention: `<issuer>/.well-known/jwks.json`.
        public static func defaultJWKSURL(issuer: String) -> String {
            (issuer.hasSuffix("/") ? String(issuer.dropLast()) : issuer) + "/.well-known/jwks.json"
        }
    }

    /// Cognito's `token_use` claim.
    public enum TokenUse: String, Sendable, Hashable, CaseIterable {
        /// ID tokens: `aud` is the client id; they carry custom attributes (the tenant id).
        case id
        /// Access tokens: `client_id` is the client id; no custom attributes.
        case access
    }

    /// What this verifier accepts.
    public let configuration: Configuration
    private let keys: JWKSCache
    private let now: @Sendable () -> Date
    private let logger: Logger
    private let verified = Mutex(VerifiedTokens())

    /// Tokens that passed every check, by the SHA-256 of their text.
    private struct VerifiedTokens {
        struct Entry {
            var credential: VerifiedCredential
            /// The token's own window, leeway included (seconds since 1970).
            var validFrom: Double
            var validUntil: Double
            /// When it was verified; used until ``Configuration/verifiedTokenMaxAge`` after.
            var verifiedAt: Double
        }

        var entries: [SHA256Digest: Entry] = [:]
        /// At most this many are kept; a flood of distinct tokens empties the table.
        static let maxEntries = 10_000
    }

    /// - Parameters:
    ///   - httpClient: fetches the JWKS (default: the shared client).
    ///   - now: the clock for token lifetimes and the refetch rate limit (tests move it).
    public init(
        configuration: Configuration,
        httpClient: HTTPClient = .shared,
        logger: Logger = Logger(label: "onboard.jwt"),
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.configuration = configuration
        self.now = now
        self.logger = logger
        let url = configuration.jwksURL
        self.keys = JWKSCache(
            minimumRefetchInterval: configuration.minimumRefetchInterval,
            failedFetchRetryInterval: configuration.failedFetchRetryInterval,
            maximumKeyAge: configuration.maximumKeyAge,
            gracePeriod: configuration.keyGracePeriod,
            logger: logger,
            fetch: { [timeout = configuration.fetchTimeout] in try await JWKSCache.download(url, httpClient: httpClient, timeout: timeout) }
        )
    }

    /// How many times the JWKS has been requested from the issuer (for tests and diagnostics).
    public var jwksFetchCount: Int {
        get async { await keys.fetchCount }
    }

    /// The principal a valid JWT names; `nil` when `token` is not shaped like a JWT.
    /// - Throws: a `401` problem (`invalid_token`) when it is a JWT that fails a check.
    public func principal(for token: String) async throws -> Principal? {
        try await credential(for: token)?.principal
    }

    /// The principal a valid JWT names, acting as `jwt:<sub>` (the principal's own actor when
    /// the token has no `sub`); `nil` when `token` is not shaped like a JWT.
    /// - Throws: a `401` problem (`invalid_token`) when it is a JWT that fails a check.
    public func credential(for token: String) async throws -> VerifiedCredential? {
        guard Self.looksLikeJWT(token) else { return nil }
        let remember = configuration.verifiedTokenMaxAge > .zero
        let digest = remember ? SHA256.hash(data: Array(token.utf8)) : nil
        let now = now().timeIntervalSince1970
        if let digest {
            let maxAge = Double(configuration.verifiedTokenMaxAge.components.seconds)
                + Double(configuration.verifiedTokenMaxAge.components.attoseconds) / 1e18
            let kept = verified.withLock { tokens -> VerifiedTokens.Entry? in
                guard let entry = tokens.entries[digest] else { return nil }
                guard now - entry.verifiedAt < maxAge, now >= entry.validFrom, now <= entry.validUntil else {
                    tokens.entries[digest] = nil
                    return nil
                }
                return entry
            }
            if let kept { return kept.credential }
        }
        do {
            let (credential, validFrom, validUntil) = try await verify(token)
            if let digest {
                verified.withLock { tokens in
                    if tokens.entries.count >= VerifiedTokens.maxEntries { tokens.entries.removeAll(keepingCapacity: true) }
                    tokens.entries[digest] = .init(credential: credential, validFrom: validFrom, validUntil: validUntil, verifiedAt: now)
                }
            }
            return credential
        } catch {
            logger.debug("bearer JWT rejected", metadata: ["reason": "\(error.detail)"])
            throw Problem.unauthorized(error.detail, invalidToken: true)
        }
    }

    /// Three dot-separated base64url parts, the first two non-empty (the signature may be empty:
    /// an `alg: none` token is still a JWT, and is refused as one).
    static func looksLikeJWT(_ token: String) -> Bool {
        var dots = 0
        var partLength = 0
        for byte in token.utf8 {
            if byte == UInt8(ascii: ".") {
                guard partLength > 0, dots < 2 else { return false }
                dots += 1
                partLength = 0
                continue
            }
            guard Self.isBase64URL(byte) else { return false }
            partLength += 1
        }
        return dots == 2
    }

    private static func isBase64URL(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "_"):
            true
        default: false
        }
    }

    /// The credential, and the window (leeway included, seconds since 1970) in which the token is valid.
    private func verify(_ token: String) async throws(Rejection) -> (VerifiedCredential, validFrom: Double, validUntil: Double) {
        guard token.utf8.count <= 16 * 1024 else { throw .malformed }
        let segments = token.split(separator: ".", omittingEmptySubsequences: false)
        guard let headerBytes = ByteEncoding.base64URLDecoded(segments[0]).map({ Data($0) }),
            let header = try? JSONSerialization.jsonObject(with: headerBytes) as? [String: Any]
        else { throw .malformed }

        // The algorithm is decided by us, before any key is touched.
        guard let algorithm = header["alg"] as? String, configuration.algorithms.contains(algorithm) else {
            throw .algorithm(configuration.algorithms.sorted().joined(separator: " or "))
        }
        guard header["crit"] == nil else { throw .unsupportedHeader }
        guard let kid = header["kid"] as? String, !kid.isEmpty, kid.utf8.count <= 256 else { throw .noKeyID }

        let key: JWKSCache.Key
        do {
            key = try await keys.key(for: kid, now: now())
        } catch JWKSCache.LookupError.unknownKey {
            throw .unknownKey
        } catch {
            throw .keysUnavailable
        }
        guard key.accepts(algorithm: algorithm) else { throw .unknownKey }

        let claims: VerifiedClaims
        do {
            claims = try await key.collection.verify(token, as: VerifiedClaims.self)
        } catch let error as JWTError where error.errorType == .signatureVerificationFailed {
            throw .signature
        } catch {
            throw .malformed
        }
        return try check(claims)
    }

    /// The claim checks, on a payload whose signature has been verified.
    private func check(_ claims: VerifiedClaims) throws(Rejection) -> (VerifiedCredential, validFrom: Double, validUntil: Double) {
        guard claims.string("iss") == configuration.issuer else { throw .issuer }

        let tokenUse = claims.string("token_use").flatMap(TokenUse.init(rawValue:))
        if let allowed = configuration.tokenUses {
            guard let tokenUse, allowed.contains(tokenUse) else {
                throw .tokenUse(allowed.map(\.rawValue).sorted().joined(separator: " or "))
            }
        }
        let audiences: [String] =
            switch tokenUse {
            case .id: claims.strings("aud")
            case .access: claims.string("client_id").map { [$0] } ?? []
            case nil: claims.strings("aud") + (claims.string("client_id").map { [$0] } ?? [])
            }
        guard audiences.contains(where: configuration.clientIDs.contains) else { throw .audience }

        let now = now().timeIntervalSince1970
        let skew = Double(configuration.clockSkew.components.seconds)
        guard let expiry = claims.number("exp") else { throw .expired }
        guard now <= expiry + skew else { throw .expired }
        if let notBefore = claims.number("nbf"), now + skew < notBefore { throw .notYetValid }
        if let issuedAt = claims.number("iat"), now + skew < issuedAt { throw .notYetValid }

        let mapping = configuration.claims
        let outcome = mapping.outcome(groups: claims.strings(mapping.groupsClaim), tenant: claims.string(mapping.tenantClaim))
        guard case .principal(let principal) = outcome else { throw .noPrincipal(mapping.refusal(outcome)) }
        let validFrom = max(claims.number("nbf") ?? -.infinity, claims.number("iat") ?? -.infinity) - skew
        return (VerifiedCredential(principal: principal, subject: claims.string("sub")), validFrom, expiry + skew)
    }

    /// Why a JWT was refused; each has the one-line detail the client sees.
    enum Rejection: Error {
        case malformed
        case algorithm(String)
        case unsupportedHeader
        case noKeyID
        case unknownKey
        case keysUnavailable
        case signature
        case issuer
        case tokenUse(String)
        case audience
        case expired
        case notYetValid
        case noPrincipal(String)

        var detail: String {
            switch self {
            case .malformed: "The bearer token is not a well-formed JWT"
            case .algorithm(let accepted): "The token's signing algorithm is not accepted (only \(accepted))"
            case .unsupportedHeader: "The token has critical header extensions this service does not support"
            case .noKeyID: "The token's header names no signing key (kid)"
            case .unknownKey: "The token was not signed with a key of the configured issuer"
            case .keysUnavailable: "The issuer's signing keys could not be fetched to verify the token; try again later"
            case .signature: "The token's signature is not valid"
            case .issuer: "The token was not issued by the configured issuer"
            case .tokenUse(let accepted): "The token's token_use is not accepted (only \(accepted))"
            case .audience: "The token was not issued to a configured client"
            case .expired: "The token has expired"
            case .notYetValid: "The token is not valid yet"
            case .noPrincipal(let detail): detail
            }
        }
    }
}

/// Any JSON value of a claim.
enum ClaimValue: Codable, Sendable {
    case string(String)
    case number(Double)
    case bool(Bool)
    case array([ClaimValue])
    case object([String: ClaimValue])
    case null

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([ClaimValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: ClaimValue].self))
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .string(let value): try container.encode(value)
        case .number(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        case .null: try container.encodeNil()
        }
    }
}

/// A payload whose signature jwt-kit has verified; the claim checks are ``JWTVerifier``'s (with
/// its clock and leeway), so `verify(using:)` adds none.
struct VerifiedClaims: JWTPayload {
    let values: [String: ClaimValue]

    init(from decoder: any Decoder) throws {
        values = try decoder.singleValueContainer().decode([String: ClaimValue].self)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(values)
    }

    func verify(using algorithm: some JWTAlgorithm) async throws {}

    func string(_ name: String) -> String? {
        if case .string(let value)? = values[name] { return value }
        return nil
    }

    func number(_ name: String) -> Double? {
        if case .number(let value)? = values[name] { return value }
        return nil
    }

    /// A claim that is one string or an array of strings (`aud`, `cognito:groups`).
    func strings(_ name: String) -> [String] {
        switch values[name] {
        case .string(let value)?: [value]
        case .array(let values)?: values.compactMap { if case .string(let value) = $0 { value } else { nil } }
        default: []
        }
    }
}
