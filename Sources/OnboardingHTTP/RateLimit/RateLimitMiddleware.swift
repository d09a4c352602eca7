import HTTPTypes
import Hummingbird
import OnboardingCore

/// Refuses requests from a client address whose refused credentials used up its bucket, before
/// the credentials are checked again (it runs outside ``BearerAuthenticator``), and charges that
/// bucket for every refused credential.
struct FailedAuthLimitMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let limiter: RateLimiter

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // Resolved once here (X-Forwarded-For parsed at most once); RateLimitMiddleware reuses it.
        var context = context
        let address = clientAddress(request, context, limiter.policy)
        context.clientAddress = address
        let key = RateLimiter.Keys.failedAuth + address
        let limit = limiter.policy.failedAuthPerAddress
        if request.headers[.authorization] != nil {
            let decision = limiter.peek(key, limit: limit)
            guard decision.allowed else {
                throw Problem.rateLimited(decision, detail: "Too many refused credentials from this address")
            }
        }
        do {
            return try await next(request, context)
        } catch let problem as Problem where problem.status == .unauthorized && request.headers[.authorization] != nil {
            _ = limiter.take(key, limit: limit)
            throw problem
        }
    }
}

/// Per-principal limits (per client address for anonymous callers), and the sign-up limit per
/// address on `POST /onboard`. Runs after authentication; answers `429` with `Retry-After` and
/// sets `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` on every response.
struct RateLimitMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let limiter: RateLimiter

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
        if request.method == .post, context.identity != .admin, Self.isOnboard(request.uri.path) {
            let onboard = limiter.take(RateLimiter.Keys.onboard + address, limit: policy.onboardPerAddress)
            guard onboard.allowed else {
                throw Problem.rateLimited(onboard, detail: "Too many sign-ups from this address; retry after \(onboard.retryAfterSeconds) s")
            }
            if onboard.remaining < decision.remaining { decision = onboard }
        }
        var response = try await next(request, context)
        response.headers.append(contentsOf: decision.headers)
        return response
    }

    static func isOnboard(_ path: String) -> Bool { path == "/onboard" || path == "/onboard/" }
}

func clientAddress(_ request: Request, _ context: AppRequestContext, _ policy: RateLimitPolicy) -> String {
    ClientAddress.resolve(
        peer: context.peerAddress, forwardedFor: request.headers[values: .xForwardedFor], trustedProxies: policy.trustedProxies
    )
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
