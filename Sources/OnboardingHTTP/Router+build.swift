import Hummingbird
import OnboardingCore

/// What the router needs; the server, the tests (and later the Lambda entry) build it the same way.
public struct AppDependencies: Sendable {
    public var store: any TenantStore
    /// Checked in order against bearer tokens, before tenant API keys (which are always accepted):
    /// the admin token's verifier, a JWT verifier.
    public var verifiers: [any CredentialVerifier]
    public var ids: any TenantIDGenerator
    public var clock: any WallClock
    public var hasher: any SecretHasher
    /// Reported by `GET /health`.
    public var version: String
    /// Who may call `POST /onboard`.
    public var onboardingAccess: OnboardingAccess
    /// Request limits; `nil` switches them off (benchmarks, load tests).
    public var rateLimiter: RateLimiter?
    /// How claims an API Gateway authorizer verified make a principal (the JWT verifier's mapping).
    public var claimMapping: ClaimMapping
    /// Where API-key uses are noted for `lastUsedAt`; run it as a service (`nil`: not recorded).
    public var keyUsage: KeyUsageRecorder?
    /// How long one request's store calls may take, retries included, before it is answered
    /// `503` (``RequestBudgetMiddleware``). Inside Lambda the invocation's deadline wins.
    public var requestDeadline: Duration
    /// Finishes the offboardings `DELETE /tenants/{tenantId}` starts; `buildApplication` runs it
    /// as a background service (by default one over ``store``).
    public var offboarding: OffboardingWorker
    /// Makes and records the events of every change the routes make (by default one on ``clock``
    /// that wakes no dispatcher; `buildApplication` passes the dispatcher's).
    public var events: EventRecorder
    /// API keys' look-up items and tenants' statuses read lately (see ``CredentialCache`` for
    /// the bounds); emptied by ``events`` whenever a change here alters what a credential may do.
    public var credentials: CredentialCache

    public init(
        store: any TenantStore,
        verifiers: [any CredentialVerifier],
        ids: any TenantIDGenerator = UUIDv7Generator(),
        clock: any WallClock = SystemWallClock(),
        hasher: any SecretHasher = CryptoSecretHasher(),
        version: String = OnboardVersion.current,
        onboardingAccess: OnboardingAccess = .open,
        rateLimiter: RateLimiter? = RateLimiter(policy: RateLimitPolicy()),
        claimMapping: ClaimMapping = ClaimMapping(),
        keyUsage: KeyUsageRecorder? = nil,
        requestDeadline: Duration = .seconds(10),
        offboarding: OffboardingWorker? = nil,
        events: EventRecorder? = nil,
        credentials: CredentialCache? = nil
    ) {
        // Every change recorded through these dependencies empties the cache when it alters a
        // credential. A caller that builds other recorders (buildApplication's offboarding
        // worker) wires them to the same cache; a change seen twice only empties it twice.
        let credentials = credentials ?? CredentialCache()
        let events = (events ?? EventRecorder(clock: clock)).observed(by: credentials.invalidate(after:))
        self.store = store
        self.verifiers = verifiers
        self.ids = ids
        self.clock = clock
        self.hasher = hasher
        self.version = version
        self.onboardingAccess = onboardingAccess
        self.rateLimiter = rateLimiter
        self.claimMapping = claimMapping
        self.keyUsage = keyUsage
        self.requestDeadline = requestDeadline
        self.offboarding = offboarding ?? OffboardingWorker(store: store, clock: clock, events: events)
        self.events = events
        self.credentials = credentials
    }

    var apiKeys: ApiKeys { ApiKeys(store: store, hasher: hasher, clock: clock, events: events) }
}

/// Who may onboard a client: anyone (public sign-up, the brief's default) or only the admin.
public enum OnboardingAccess: String, Sendable, CaseIterable {
    case open
    case admin

    var access: Access { self == .open ? .anyone : .admin }
}

/// The version of this build.
public enum OnboardVersion {
    public static let current = "0.1.0"
}

/// The route table: every operation the API serves, with who may call it.
public func routeTable(_ dependencies: AppDependencies) -> [Route] {
    let tenants = TenantController(
        onboardingAccess: dependencies.onboardingAccess.access,
        onboarding: OnboardingService(
            store: dependencies.store, hasher: dependencies.hasher, ids: dependencies.ids, clock: dependencies.clock, events: dependencies.events
        ),
        tenants: TenantService(store: dependencies.store),
        lifecycle: TenantLifecycle(store: dependencies.store, clock: dependencies.clock, events: dependencies.events),
        idempotency: Idempotency(store: dependencies.store, clock: dependencies.clock),
        offboarding: dependencies.offboarding.offboarding
    )
    let keys = ApiKeyController(apiKeys: dependencies.apiKeys, idempotency: Idempotency(store: dependencies.store, clock: dependencies.clock))
    let resources = ResourceController(resources: TenantResources(store: dependencies.store, clock: dependencies.clock))
    let system = SystemController(store: dependencies.store, version: dependencies.version)
    let offboarding = OffboardingController(worker: dependencies.offboarding)
    let events = EventController(
        log: TenantEventLog(store: dependencies.store), outbox: EventOutbox(store: dependencies.store, clock: dependencies.clock),
        recorder: dependencies.events
    )
    return tenants.routes + offboarding.routes + keys.routes + resources.routes + events.routes + system.routes
}

/// The one router: the HTTP server and the tests (and later the Lambda function) serve it.
///
/// Middleware, outermost first: request id → request log → rate-limit headers → problem+json →
/// request budget → failed-credential limit → authentication → change context (the events'
/// actor and request id) → rate limits → tenant status gate (suspended: 403); then each route
/// checks its ``Access`` before its handler runs.
public func buildRouter(_ dependencies: AppDependencies) -> Router<AppRequestContext> {
    let router = Router(context: AppRequestContext.self, options: [.autoGenerateHeadEndpoints])
    router.add(middleware: RequestIDMiddleware())
    router.add(middleware: RequestLogMiddleware())
    let routes = routeTable(dependencies)
    // Outside the problems, so that errors leave with the limits' RateLimit-* headers too.
    if dependencies.rateLimiter != nil { router.add(middleware: RateLimitHeadersMiddleware()) }
    router.add(middleware: ProblemMiddleware(knownPaths: KnownPaths(routes)))
    router.add(middleware: RequestBudgetMiddleware(deadline: dependencies.requestDeadline))
    if let limiter = dependencies.rateLimiter { router.add(middleware: FailedAuthLimitMiddleware(limiter: limiter)) }
    router.add(middleware: BearerAuthenticator(
        verifiers: dependencies.verifiers + [
            ApiKeyVerifier(apiKeys: dependencies.apiKeys, usage: dependencies.keyUsage, cache: dependencies.credentials)
        ],
        claimMapping: dependencies.claimMapping
    ))
    router.add(middleware: ChangeContextMiddleware())
    if let limiter = dependencies.rateLimiter { router.add(middleware: RateLimitMiddleware(limiter: limiter)) }
    router.add(middleware: TenantStatusGate(store: dependencies.store, cache: dependencies.credentials))
    for route in routes {
        router.on(RouterPath(route.routerPath), method: route.method) { request, context in
            try route.access.authorize(context.identity, parameters: context.parameters)
            return try await route.handler(request, context)
        }
    }
    return router
}
