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
    /// How claims an API Gateway authorizer verified make a principal (the JWT verifier's mapping).
    public var claimMapping: ClaimMapping

    public init(
        store: any TenantStore,
        verifiers: [any CredentialVerifier],
        ids: any TenantIDGenerator = UUIDv7Generator(),
        clock: any WallClock = SystemWallClock(),
        hasher: any SecretHasher = CryptoSecretHasher(),
        version: String = OnboardVersion.current,
        claimMapping: ClaimMapping = ClaimMapping()
    ) {
        self.store = store
        self.verifiers = verifiers
        self.ids = ids
        self.clock = clock
        self.hasher = hasher
        self.version = version
        self.claimMapping = claimMapping
    }

    var apiKeys: ApiKeys { ApiKeys(store: store, hasher: hasher, clock: clock) }
}

/// The version of this build.
public enum OnboardVersion {
    public static let current = "0.1.0"
}

/// The route table: every operation the API serves, with who may call it.
public func routeTable(_ dependencies: AppDependencies) -> [Route] {
    let tenants = TenantController(
        onboarding: OnboardingService(store: dependencies.store, hasher: dependencies.hasher, ids: dependencies.ids, clock: dependencies.clock),
        tenants: TenantService(store: dependencies.store)
    )
    let keys = ApiKeyController(apiKeys: dependencies.apiKeys)
    let system = SystemController(store: dependencies.store, version: dependencies.version)
    return tenants.routes + keys.routes + system.routes
}

/// The one router: the HTTP server and the tests (and later the Lambda function) serve it.
///
/// Middleware, outermost first: request id → request log → problem+json → authentication; then
/// each route checks its ``Access`` before its handler runs.
public func buildRouter(_ dependencies: AppDependencies) -> Router<AppRequestContext> {
    let router = Router(context: AppRequestContext.self, options: [.autoGenerateHeadEndpoints])
    router.add(middleware: RequestIDMiddleware())
    router.add(middleware: RequestLogMiddleware())
    let routes = routeTable(dependencies)
    router.add(middleware: ProblemMiddleware(knownPaths: KnownPaths(routes)))
    router.add(middleware: BearerAuthenticator(
        verifiers: dependencies.verifiers + [ApiKeyVerifier(apiKeys: dependencies.apiKeys)],
        claimMapping: dependencies.claimMapping
    ))
    for route in routes {
        router.on(RouterPath(route.routerPath), method: route.method) { request, context in
            try route.access.authorize(context.identity, parameters: context.parameters)
            return try await route.handler(request, context)
        }
    }
    return router
}
