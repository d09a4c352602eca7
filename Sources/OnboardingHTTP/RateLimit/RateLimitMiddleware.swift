import HTTPTypes
import Hummingbird
import Logging
import OnboardingCore
import Synchronization

/// Limits refused credentials: each one a verifier refuses (`401` from anywhere below) is
/// charged to the bucket of the client's address and the credential it claims
/// (``ClaimedCredential``) and to the address's own bucket; once either is empty, a refused
/// credential is answered `429` instead of `401`. A credential is always verified first, so one
/// that verifies is never refused: bad tokens from a shared address (a NAT, a proxy missing from
/// `--trusted-proxies`) lock out no valid user behind it.
///
/// It also resolves the client's address for the limits (``RateLimitMiddleware`` reuses it) and
/// warns once when `X-Forwarded-For` arrives from a peer that is not a trusted proxy.
struct FailedAuthLimitMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let limiter: RateLimiter

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // Resolved once here (X-Forwarded-For parsed at most once); RateLimitMiddleware reuses it.
        var context = context
        let address = clientAddress(request, context, limiter.policy)
        context.clientAddress = address
        warnIfForwardedForIgnored(request, context)
        do {
            return try await next(request, context)
        } catch let problem as Problem where problem.status == .unauthorized {
            guard let authorization = request.headers[.authorization] else { throw problem }
            let policy = limiter.policy
            let addressKey = RateLimiter.Keys.failedAuthAddress + address
            // An address out of refusals gets no new bucket per made-up key id.
            let perAddress = limiter.peek(addressKey, limit: policy.failedAuthPerAddress)
            guard perAddress.allowed else {
                throw Problem.rateLimited(perAddress, detail: "Too many refused credentials from this address")
            }
            let claimed = ClaimedCredential.id(authorization: authorization)
            let perCredential = limiter.take(RateLimiter.Keys.failedAuth + address + " " + claimed, limit: policy.failedAuthPerCredential)
            guard perCredential.allowed else {
                throw Problem.rateLimited(perCredential, detail: "Too many refused credentials for this key from this address")
            }
            let charged = limiter.take(addressKey, limit: policy.failedAuthPerAddress)
            // The 401 says how many refusals are left before they are answered 429.
            RateLimitHeaderSlot.current?.set(perCredential.remaining <= charged.remaining ? perCredential : charged)
            throw problem
        }
    }

    /// One warning per process (per limiter): `X-Forwarded-For` from a peer that is not a trusted
    /// proxy is ignored, which is right for a client that forged it and wrong for a reverse proxy
    /// someone forgot to list (all its clients then share the proxy's buckets). Inside Lambda the
    /// peer is API Gateway's `sourceIp`, already the client, and the header always there: no warning.
    private func warnIfForwardedForIgnored(_ request: Request, _ context: Context) {
        guard context.peerIsConnection, request.headers[.xForwardedFor] != nil,
            !ClientAddress.isTrusted(context.peerAddress, limiter.policy.trustedProxies),
            limiter.firstUntrustedForwardedFor()
        else { return }
        context.logger.warning(
            "X-Forwarded-For ignored: the peer is not a trusted proxy, so the rate limits count its address, not the client's. If it is a reverse proxy of yours, list it with --trusted-proxies (ONBOARD_TRUSTED_PROXIES). Logged once.",
            metadata: ["peer": .string(context.peerAddress ?? "unknown")]
        )
    }
}

/// Per-principal limits (per client address for anonymous callers), and the sign-up limit per
/// address on the `POST /onboard` route (the route the router matched, however the path was
/// spelled: `//onboard` is that route too). Runs after authentication; answers `429` with
/// `Retry-After`, and the response, whatever its status, carries `RateLimit-Limit`,
/// `RateLimit-Remaining` and `RateLimit-Reset` (through ``RateLimitHeadersMiddleware``).
struct RateLimitMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let limiter: RateLimiter

    /// The sign-up route as the router names the route it matched (`context.endpointPath`).
    static let onboardEndpoint = RouterPath("/onboard").description

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let policy = limiter.policy
        let address = context.clientAddress ?? clientAddress(request, context, policy)
        var decision: RateLimitDecision
        switch context.identity {
        case .admin?: decision = limiter.take(RateLimiter.Keys.principal + "admin", limit: policy.perPrincipal)
        case .tenant(let id)?: decision = limiter.take(RateLimiter.Keys.principal + "tenant:" + id.rawValue, limit: policy.perPrincipal)
        case nil: decision = limiter.take(RateLimiter.Keys.anonymous + address, limit: policy.anonymousPerAddress)
        }
        guard decision.allowed else { throw Problem.rateLimited(decision, detail: "Too many requests; retry after \(decision.retryAfterSeconds) s") }
        // Sign-up is limited per address for everyone but the admin (who may onboard in bulk).
        if request.method == .post, context.identity != .admin, Self.isOnboard(context) {
            let onboard = limiter.take(RateLimiter.Keys.onboard + address, limit: policy.onboardPerAddress)
            guard onboard.allowed else {
                throw Problem.rateLimited(onboard, detail: "Too many sign-ups from this address; retry after \(onboard.retryAfterSeconds) s")
            }
            if onboard.remaining < decision.remaining { decision = onboard }
        }
        RateLimitHeaderSlot.current?.set(decision)
        return try await next(request, context)
    }

    /// Whether the router matched the sign-up route. Hummingbird resolves the route before the
    /// middleware runs (each route has its own middleware chain) and splits the path on `/`
    /// ignoring empty segments, so `//onboard` and `/onboard/` match it; `/./onboard` and
    /// `/%6Fnboard` match no route (404).
    static func isOnboard(_ context: Context) -> Bool { context.endpointPath == onboardEndpoint }
}

/// Puts the `RateLimit-*` headers of the limit that applied to a request on its response,
/// whatever its status: an error thrown below (a `404`, `401`, `422` problem) becomes a response
/// only in ``ProblemMiddleware``, so this runs outside it and the limits leave their headers in
/// ``RateLimitHeaderSlot`` (a task-local) on the way in. Headers a response already has (a
/// `429`'s own) are kept.
struct RateLimitHeadersMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let slot = RateLimitHeaderSlot()
        var response = try await RateLimitHeaderSlot.$current.withValue(slot) { try await next(request, context) }
        if let headers = slot.headers {
            for field in headers where response.headers[field.name] == nil { response.headers.append(field) }
        }
        return response
    }
}

/// The `RateLimit-*` headers one request's response is to carry.
final class RateLimitHeaderSlot: Sendable {
    @TaskLocal static var current: RateLimitHeaderSlot?

    private let fields = Mutex<HTTPFields?>(nil)

    func set(_ decision: RateLimitDecision) { fields.withLock { $0 = decision.headers } }

    var headers: HTTPFields? { fields.withLock { $0 } }
}

/// The client's bucket address: resolved (``ClientAddress/resolve(peer:forwardedFor:trustedProxies:)``),
/// then an IPv6 address widened to its network (``ClientAddress/bucket(_:ipv6Prefix:)``).
func clientAddress(_ request: Request, _ context: AppRequestContext, _ policy: RateLimitPolicy) -> String {
    let address = ClientAddress.resolve(
        peer: context.peerAddress, forwardedFor: request.headers[values: .xForwardedFor], trustedProxies: policy.trustedProxies
    )
    return ClientAddress.bucket(address, ipv6Prefix: policy.ipv6Prefix)
}

extension RateLimitDecision {
    /// `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (draft-ietf-httpapi-ratelimit-headers).
    var headers: HTTPFields {
        [
            .rateLimitLimit: String(limit.burst),
            .rateLimitRemaining: String(remaining),
            .rateLimitReset: String(resetSeconds),
        ]
    }
}

extension Problem {
    static func rateLimited(_ decision: RateLimitDecision, detail: String) -> Problem {
        var problem = Problem(.tooManyRequests, code: "rate-limited", title: "Too many requests", detail: detail)
        problem.headers = decision.headers
        problem.headers[.retryAfter] = String(decision.retryAfterSeconds)
        return problem
    }
}

extension HTTPField.Name {
    static let rateLimitLimit = Self("RateLimit-Limit")!
    static let rateLimitRemaining = Self("RateLimit-Remaining")!
    static let rateLimitReset = Self("RateLimit-Reset")!
    static let xForwardedFor = Self("X-Forwarded-For")!
}
