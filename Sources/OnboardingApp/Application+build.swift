import Hummingbird
import Logging
import NIOCore
import OnboardingCore
import OnboardingEvents
import OnboardingHTTP
import ServiceLifecycle
import SigV4

/// Where the application runs; only start-up differs.
public enum AppRuntime: Sendable {
    /// `onboard serve` (and the HTTP tests): checks that the DynamoDB table exists and prepares
    /// the admin token (on the very first start, generates one and stores its hash) before serving.
    case server
    /// The Lambda function: no network call at start-up. The table is not checked, and the stored
    /// admin token's hash is read on the first request that presents a token.
    case lambda
}

/// What ``buildApplication(_:runtime:overrides:)`` may be handed besides the settings: the seams
/// the tests use. `serve` and the Lambda entry pass none. Each replaces one part; the rest is
/// built exactly as for users. The admin token, rate limits and who may onboard are settings
/// (``ServeConfiguration``), not overrides.
public struct AppOverrides: Sendable {
    /// A store already open (the tests' SQLite file or table on moto), used instead of opening
    /// the configured one; the application does not close it.
    public var store: (any TenantStore)?
    /// Wraps the store every part of the application uses (fault injection).
    public var wrapStore: @Sendable (any TenantStore) -> any TenantStore
    /// The logger of the server, the requests and the background services (its handler is where
    /// the logs go); `nil`: `Logger(label: "onboard")` through the process's `LoggingSystem`.
    public var logger: Logger?
    /// The wall clock (timestamps, `lastUsedAt`, UUIDv7 ids).
    public var clock: (any WallClock)?
    /// The tenant id generator.
    public var ids: (any TenantIDGenerator)?
    /// A JWT verifier used instead of the one the OIDC settings configure (a test clock, moto's
    /// pool); its claim mapping applies to API Gateway authorizer claims too.
    public var jwtVerifier: JWTVerifier?
    /// How often the key-usage recorder writes (tests: a short interval).
    public var keyUsage: KeyUsageRecorder.Configuration?
    /// Sinks events are delivered to besides the configured ones (a test's recording sink).
    public var extraEventSinks: [any EventSink]
    /// The event dispatcher's pacing, used instead of the default one with the configured
    /// `failAfter` (tests: a short sweep interval and backoff).
    public var eventDispatcher: EventDispatcher.Configuration?
    /// Where the SNS and EventBridge sinks find credentials, region and endpoints; `nil`: the
    /// process environment.
    public var awsEnvironment: AWSEnvironment?
    /// How often the stored admin token's hash is read again (``StoredAdminTokenVerifier``;
    /// `nil`: its default, 5 s; tests: short, to see a rotation or a deletion at once).
    public var adminTokenRefreshInterval: Duration?
    /// The offboarding worker's pacing; `nil`: its default (tests: no rescan of the markers during
    /// a test that drives an offboarding itself).
    public var offboardingWorker: OffboardingWorker.Configuration?

    /// Every seam left `nil` (or `{ $0 }`) is what `serve` uses.
    public init(
        store: (any TenantStore)? = nil,
        wrapStore: @escaping @Sendable (any TenantStore) -> any TenantStore = { $0 },
        logger: Logger? = nil,
        clock: (any WallClock)? = nil,
        ids: (any TenantIDGenerator)? = nil,
        jwtVerifier: JWTVerifier? = nil,
        keyUsage: KeyUsageRecorder.Configuration? = nil,
        extraEventSinks: [any EventSink] = [],
        eventDispatcher: EventDispatcher.Configuration? = nil,
        awsEnvironment: AWSEnvironment? = nil,
        adminTokenRefreshInterval: Duration? = nil,
        offboardingWorker: OffboardingWorker.Configuration? = nil
    ) {
        self.store = store
        self.wrapStore = wrapStore
        self.logger = logger
        self.clock = clock
        self.ids = ids
        self.jwtVerifier = jwtVerifier
        self.keyUsage = keyUsage
        self.extraEventSinks = extraEventSinks
        self.eventDispatcher = eventDispatcher
        self.awsEnvironment = awsEnvironment
        self.adminTokenRefreshInterval = adminTokenRefreshInterval
        self.offboardingWorker = offboardingWorker
    }
}

/// The one wiring of the application: `onboard serve`, the Lambda entry and the HTTP tests all
/// build it here (the shape of Hummingbird's examples' `buildApplication`).
///
/// Opens the configured store (or takes ``AppOverrides/store``), prepares the admin credential,
/// builds the verifiers, limits and the router (``buildRouter(_:)``), and lists the background
/// services. The result runs as one swift-service-lifecycle service group (`runService()`:
/// the background services, then the HTTP server; on graceful shutdown the server stops first),
/// or inside Lambda through ``OnboardApplication/lambdaLoop(client:)``.
///
/// - Throws: ``ConfigurationError`` when the store cannot be opened; the store's error when the
///   admin token cannot be prepared (the store is closed again).
public func buildApplication(
    _ configuration: ServeConfiguration, runtime: AppRuntime = .server, overrides: AppOverrides = AppOverrides()
) async throws -> OnboardApplication {
    let logger = overrides.logger ?? Logger(label: "onboard")
    let opened =
        if let store = overrides.store {
            OpenedStore(existing: store, logger: logger)
        } else {
            try await OpenedStore.open(configuration.store, logger: logger, checkTable: runtime == .server)
        }
    let store = overrides.wrapStore(opened.store)
    let clock = overrides.clock ?? SystemWallClock()

    // Events: recorded with every change whatever is configured; the sinks choose where they go.
    let eventSinks: EventSinks
    do {
        eventSinks = try await configuration.events.makeSinks(
            region: configuration.store.region, environment: overrides.awsEnvironment ?? AWSEnvironment(), logger: logger
        )
    } catch {
        await opened.close()
        throw error
    }
    var dispatcherConfiguration = EventDispatcher.Configuration()
    dispatcherConfiguration.failAfter = configuration.events.failAfter
    let dispatcher = EventDispatcher(
        store: store, sinks: eventSinks.sinks + overrides.extraEventSinks, clock: clock,
        configuration: overrides.eventDispatcher ?? dispatcherConfiguration, logger: logger
    )
    // Every change's events, recorded in its transaction; once durable they wake the dispatcher
    // and, when they change what a credential may do, empty the credential cache.
    let credentials = CredentialCache(configuration: configuration.credentialCache)
    let events = EventRecorder(source: configuration.events.resolvedSource, clock: clock, onRecorded: { dispatcher.notify($0) })
        .observed(by: credentials.invalidate(after:))

    // The admin: a configured token; otherwise the stored hash, re-read every few seconds so a
    // rotation reaches running servers (on a server prepared now, on Lambda on first use).
    let adminVerifier: any CredentialVerifier
    var generatedAdminToken: String?
    if let token = configuration.adminToken {
        adminVerifier = AdminTokenVerifier(credential: AdminCredential(token: token))
    } else if runtime == .server {
        do {
            let admin = try await AdminTokenRecord.prepare(store: store, configuredToken: nil, clock: clock)
            adminVerifier = StoredAdminTokenVerifier(
                store: store, credential: admin.credential, refreshInterval: overrides.adminTokenRefreshInterval ?? .seconds(5)
            )
            generatedAdminToken = admin.generatedToken
        } catch {
            await eventSinks.shutdown()
            await opened.close()
            throw error
        }
    } else {
        adminVerifier = StoredAdminTokenVerifier(
            store: store, credential: nil, refreshInterval: overrides.adminTokenRefreshInterval ?? .seconds(5)
        )
    }
    let jwtVerifiers: [any CredentialVerifier] = overrides.jwtVerifier.map { [$0] } ?? configuration.oidc.verifiers(logger: logger)

    // API keys' lastUsedAt: noted by requests, written by this service.
    let keyUsage = KeyUsageRecorder(store: store, clock: clock, configuration: overrides.keyUsage ?? .init(), logger: logger)

    let dependencies = AppDependencies(
        store: store,
        verifiers: [adminVerifier] + jwtVerifiers,
        ids: overrides.ids ?? UUIDv7Generator(clock: clock),
        clock: clock,
        onboardingAccess: configuration.onboarding,
        rateLimiter: configuration.rateLimits.map { RateLimiter(policy: $0) },
        claimMapping: overrides.jwtVerifier?.configuration.claims ?? configuration.oidc.claims,
        keyUsage: keyUsage,
        requestDeadline: configuration.requestDeadline,
        offboarding: overrides.offboardingWorker.map { OffboardingWorker(store: store, clock: clock, configuration: $0, events: events) },
        events: events,
        credentials: credentials
    )

    // Every background service, in start order (they stop in reverse, after the HTTP server).
    // A new one is one line here; it conforms to BackgroundService so Lambda runs its pending step.
    // The event dispatcher starts first, so it stops last: its final sweep delivers what the
    // others recorded while they stopped (offboarding's tenant.offboarded).
    let backgroundServices: [any BackgroundService] = [
        dispatcher,
        keyUsage,
        dependencies.offboarding,
        IdempotencySweeper(store: store, clock: clock, logger: logger),
    ]

    return OnboardApplication(
        router: buildRouter(dependencies),
        dependencies: dependencies,
        configuration: ApplicationConfiguration(
            address: .hostname(configuration.host, port: configuration.port), serverName: "onboard",
            availableConnectionsDelegate: ConnectionCap(configuration.connectionLimits.maxConnections, logger: logger)
        ),
        connectionLimits: configuration.connectionLimits,
        logger: logger,
        backgroundServices: backgroundServices,
        storeSummary: opened.summary,
        generatedAdminToken: generatedAdminToken,
        eventDispatcher: dispatcher,
        eventSinksSummary: eventSinks.summary,
        closeStore: {
            await eventSinks.shutdown()
            await opened.close()
        }
    )
}

/// The application ``buildApplication(_:runtime:overrides:)`` returns: the router's responder, the
/// HTTP server's settings and the background services, run together as one service group by
/// `runService()` (Hummingbird's `ApplicationProtocol`).
public struct OnboardApplication: ApplicationProtocol {
    public typealias Responder = RouterResponder<AppRequestContext>

    /// The router's responder: what the HTTP server and the Lambda adapter answer with.
    public let responder: Responder
    /// What the router was built from (the tests compare route tables).
    public let dependencies: AppDependencies
    /// Address and server name of the HTTP server, and its cap on connections.
    public let configuration: ApplicationConfiguration
    /// The HTTP server's timeouts for slow and idle clients and its cap on connections (``server``).
    public let connectionLimits: ConnectionLimits
    /// The logger of the server, the requests and the background services.
    public let logger: Logger
    /// The background services, in start order.
    public let backgroundServices: [any BackgroundService]
    /// One line about the store (`database: <path>`, `store: DynamoDB table …`).
    public let storeSummary: String
    /// The admin token generated on this first start (to print once); `nil` otherwise.
    public let generatedAdminToken: String?
    /// Delivers the recorded events to the sinks (also in ``backgroundServices``); the Lambda
    /// entry's scheduled sweep calls its `sweepAll()`.
    public let dispatcher: EventDispatcher
    /// One line about where events go (`webhook …; log (source …)`), never a secret.
    public let eventSinksSummary: String
    /// Called once the HTTP server listens (`serve` prints the address).
    public var whenServerRunning: @Sendable (any Channel) async -> Void = { _ in }
    private let closeStore: @Sendable () async -> Void

    init(
        router: Router<AppRequestContext>, dependencies: AppDependencies, configuration: ApplicationConfiguration,
        connectionLimits: ConnectionLimits,
        logger: Logger,
        backgroundServices: [any BackgroundService], storeSummary: String, generatedAdminToken: String?,
        eventDispatcher: EventDispatcher, eventSinksSummary: String, closeStore: @escaping @Sendable () async -> Void
    ) {
        self.responder = router.buildResponder()
        self.dependencies = dependencies
        self.configuration = configuration
        self.connectionLimits = connectionLimits
        self.logger = logger
        self.backgroundServices = backgroundServices
        self.storeSummary = storeSummary
        self.generatedAdminToken = generatedAdminToken
        self.dispatcher = eventDispatcher
        self.eventSinksSummary = eventSinksSummary
        self.closeStore = closeStore
    }

    /// The route table the application serves.
    public var routes: [Route] { routeTable(dependencies) }

    /// Run beside the HTTP server in its service group.
    public var services: [any Service] { backgroundServices }

    /// Calls ``whenServerRunning`` once the HTTP server listens.
    public func onServerRunning(_ channel: any Channel) async { await whenServerRunning(channel) }

    /// Each background service's pending step, in order (Lambda, between invocations); the event
    /// dispatcher's last, so the events the others recorded in this step go out in it too.
    public func runPending() async {
        for service in backgroundServices where !(service is EventDispatcher) { await service.runPending() }
        await dispatcher.runPending()
    }

    /// Closes the event sinks' clients and the store the application opened (a store passed in
    /// ``AppOverrides/store`` stays open). Call it after the service group has finished.
    public func close() async { await closeStore() }
}
