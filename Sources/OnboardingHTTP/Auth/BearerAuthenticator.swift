import Foundation
import Hummingbird
import Synchronization
import HummingbirdAuth
import OnboardingCore

/// Turns a bearer token into a ``Principal``. The authenticator asks each verifier in turn;
/// tenant API keys and OIDC tokens are further verifiers.
public protocol CredentialVerifier: Sendable {
    /// The principal this token proves, or `nil` when the token is not one of this verifier's.
    func principal(for token: String) async throws -> Principal?

    /// The principal and the actor this token proves (the actor names the credential in the
    /// events of the changes it makes), or `nil` when the token is not one of this verifier's.
    /// By default ``principal(for:)`` with the principal's own actor
    /// (``VerifiedCredential/init(principal:)``); verifiers that know more (the API key's id, the
    /// token's subject) say so.
    func credential(for token: String) async throws -> VerifiedCredential?
}

extension CredentialVerifier {
    public func credential(for token: String) async throws -> VerifiedCredential? {
        try await principal(for: token).map { VerifiedCredential(principal: $0) }
    }
}

/// A credential a verifier accepted: who it proves (authorisation) and how the events of the
/// changes made with it name the one who acted (``ChangeContext/actor``; never a secret).
public struct VerifiedCredential: Sendable, Hashable {
    public var principal: Principal
    /// `admin`, `apikey:<keyId>`, `jwt:<sub>` or `tenant:<tenantId>`.
    public var actor: String

    public init(principal: Principal, actor: String) {
        self.principal = principal
        self.actor = actor
    }

    /// The principal's own actor: `admin`, or `tenant:<tenantId>`.
    public init(principal: Principal) {
        switch principal {
        case .admin: self.init(principal: principal, actor: "admin")
        case .tenant(let id): self.init(principal: principal, actor: "tenant:" + id.rawValue)
        }
    }

    /// `jwt:<subject>` (when the token has a usable subject), else the principal's own actor.
    public init(principal: Principal, subject: String?) {
        guard let subject, Self.isUsableSubject(subject) else {
            self.init(principal: principal)
            return
        }
        self.init(principal: principal, actor: "jwt:" + subject)
    }

    /// 1-256 printable ASCII characters without spaces (Cognito's `sub` is a UUID): anything
    /// else is not put into an event's `actor`.
    static func isUsableSubject(_ subject: String) -> Bool {
        (1...256).contains(subject.utf8.count) && subject.utf8.allSatisfy { (0x21...0x7E).contains($0) }
    }
}

/// Accepts the admin token.
public struct AdminTokenVerifier: CredentialVerifier {
    public let credential: AdminCredential

    public init(credential: AdminCredential) {
        self.credential = credential
    }

    public func principal(for token: String) async throws -> Principal? {
        credential.matches(token) ? .admin : nil
    }
}

/// Authentication: reads `Authorization: Bearer <token>` and sets `context.identity`.
///
/// No header: the request goes on anonymous (routes decide whether that is enough). A header
/// that is not a bearer token, or a token no verifier accepts, is answered `401` at once, even
/// on public routes, so a client with broken credentials learns it immediately.
public struct BearerAuthenticator: AuthenticatorMiddleware {
    public typealias Context = AppRequestContext
    public typealias Identity = Principal

    private let verifiers: [any CredentialVerifier]
    private let claimMapping: ClaimMapping

    /// - Parameter claimMapping: how claims verified by an API Gateway authorizer make a
    ///   principal (the same mapping as the ``JWTVerifier``'s).
    public init(verifiers: [any CredentialVerifier], claimMapping: ClaimMapping = ClaimMapping()) {
        self.verifiers = verifiers
        self.claimMapping = claimMapping
    }

    public func authenticate(request: Request, context: Context) async throws -> Principal? {
        try await credential(request: request, context: context)?.principal
    }

    /// Sets `context.identity` and `context.actor` (the events' name for the caller) together.
    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let credential = try await credential(request: request, context: context) else { return try await next(request, context) }
        var context = context
        context.identity = credential.principal
        context.actor = credential.actor
        return try await next(request, context)
    }

    /// The credential the request proves; `nil` for an anonymous request.
    func credential(request: Request, context: Context) async throws -> VerifiedCredential? {
        // Behind API Gateway with a Cognito authorizer, the token was verified there and only its
        // claims arrive (they cannot come from a client: the HTTP server never sets them). They
        // are mapped as the JWT verifier maps a token's; claims naming no principal leave the
        // request anonymous (the authorizer let it through; routes needing a principal answer
        // 401), a tenant claim that is not a tenant id is refused.
        if !context.authorizerClaims.isEmpty {
            // Groups the authorizer flattened into an ambiguous string never make the admin from
            // the claims (ClaimMapping); the bearer token, when this service verifies it too
            // (ONBOARD_OIDC_*), carries them as an array and decides.
            if claimMapping.adminGroupIsAmbiguous(in: context.authorizerClaims), let header = request.headers[.authorization],
                let token = Self.bearerToken(header)
            {
                for verifier in verifiers {
                    if let credential = try? await verifier.credential(for: token), credential.principal == .admin { return credential }
                }
            }
            switch claimMapping.outcome(authorizerClaims: context.authorizerClaims) {
            case .principal(let principal): return VerifiedCredential(principal: principal, subject: context.authorizerClaims["sub"])
            case .none: return nil
            case .invalidTenant: throw Problem.unauthorized(claimMapping.refusal(.invalidTenant), invalidToken: true)
            }
        }
        guard let header = request.headers[.authorization] else { return nil }
        guard let token = Self.bearerToken(header) else {
            throw Problem.unauthorized("The Authorization header must be 'Bearer <token>'", invalidToken: true)
        }
        for verifier in verifiers {
            if let credential = try await verifier.credential(for: token) { return credential }
        }
        throw Problem.unauthorized("The bearer token is not valid", invalidToken: true)
    }

    /// The token of a `Bearer` credential (scheme case-insensitive, RFC 9110 §11.1).
    /// Read byte by byte (it runs on every authenticated request): the scheme is the first word,
    /// the token the rest with spaces and tabs trimmed.
    static func bearerToken(_ header: String) -> String? {
        let bytes = header.utf8
        let isBlank = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        guard let schemeStart = bytes.firstIndex(where: { $0 != UInt8(ascii: " ") }),
            let schemeEnd = bytes[schemeStart...].firstIndex(of: UInt8(ascii: " ")),
            bytes[schemeStart..<schemeEnd].elementsEqual("bearer".utf8, by: { $0 | 0x20 == $1 }),
            let tokenStart = bytes[schemeEnd...].firstIndex(where: { !isBlank($0) }),
            let tokenLast = bytes[tokenStart...].lastIndex(where: { !isBlank($0) })
        else { return nil }
        return String(Substring(bytes[tokenStart...tokenLast]))
    }
}

/// Accepts the admin token whose hash is stored in the store, re-reading the hash at most every
/// `refreshInterval`, so `onboard admin-token rotate` takes effect on running servers and deleting
/// the record revokes the token.
///
/// Stored admin tokens are always generated (``AdminCredential/generateToken()``, by the first
/// start or `onboard admin-token rotate`), so they start with ``generatedTokenPrefix``: any other
/// token (an API key, a JWT) is not this verifier's and never waits for the store or fails with
/// it. The re-read is single-flight (concurrent requests share one store read). When it fails,
/// the admin-looking token is answered with the store's error (`503`): the last known hash is not
/// trusted past its `refreshInterval`, so a rotation or revocation is never outlived by a store
/// outage, and the next request reads again.
public final class StoredAdminTokenVerifier: CredentialVerifier {
    /// How every generated admin token starts.
    public static let generatedTokenPrefix = "onb_admin_"

    private let store: any TenantStore
    private let cache: SingleFlightCache<AdminCredential?>

    /// - Parameters:
    ///   - credential: the hash already read at start-up; `nil` reads it on first use (Lambda: no
    ///     store call before the first request needs one).
    ///   - refreshInterval: how long a read hash (or its absence) is used before it is read again.
    public init(store: any TenantStore, credential: AdminCredential?, refreshInterval: Duration = .seconds(5)) {
        self.store = store
        self.cache = SingleFlightCache(maxAge: refreshInterval, initial: credential.map { .some($0) })
    }

    /// How many times the stored hash has been read (for tests and diagnostics).
    public var storeReads: Int { cache.reads }

    public func principal(for token: String) async throws -> Principal? {
        guard token.hasPrefix(Self.generatedTokenPrefix) else { return nil }
        let store = store
        // No record (deleted): no admin token is accepted until one is stored again.
        let credential = try await cache.value { try await AdminTokenRecord.load(store) }
        return credential?.matches(token) == true ? .admin : nil
    }
}
