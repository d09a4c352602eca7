import Foundation
import HTTPTypes
import InMemoryLogging
import Logging
import OnboardTestSupport
import OnboardingApp
import OnboardingCore
import OnboardingHTTP
import Synchronization
import Testing

/// A real store that counts the reads the caches make (the health probe, the admin-token record),
/// and can hold them back until released or fail the admin-token read.
final class CacheReadStore: TenantStore {
    enum Read: Sendable {
        case health
        case adminToken
    }

    private struct State {
        var reads: [Read: Int] = [:]
        var holding: Set<Read> = []
        var held: [CheckedContinuation<Void, Never>] = []
        var failAdminToken = false
    }

    let base: any TenantStore
    private let state = Mutex(State())

    init(base: any TenantStore) {
        self.base = base
    }

    func reads(_ read: Read) -> Int { state.withLock { $0.reads[read, default: 0] } }

    /// Holds every `read` from now on until ``release()``.
    func hold(_ read: Read) { _ = state.withLock { $0.holding.insert(read) } }

    /// Lets every held read go on, and stops holding.
    func release() {
        let held = state.withLock { state in
            state.holding = []
            defer { state.held = [] }
            return state.held
        }
        for continuation in held { continuation.resume() }
    }

    /// Makes the admin-token read fail (`StoreError(.unavailable)`) or work again.
    func failAdminTokenReads(_ fail: Bool) { state.withLock { $0.failAdminToken = fail } }

    /// Counts the read, waits while it is held; a read whose task was cancelled meanwhile throws,
    /// as a store client's would.
    private func pass(_ read: Read) async throws {
        await withCheckedContinuation { continuation in
            let goOn = state.withLock { state -> Bool in
                state.reads[read, default: 0] += 1
                guard state.holding.contains(read) else { return true }
                state.held.append(continuation)
                return false
            }
            if goOn { continuation.resume() }
        }
        try Task.checkCancellation()
        if read == .adminToken, state.withLock({ $0.failAdminToken }) {
            throw StoreError(.unavailable, "injected failure of the admin-token read")
        }
    }

    func get(_ key: ItemKey) async throws -> Item? {
        if key == AdminTokenRecord.key { try await pass(.adminToken) }
        return try await base.get(key)
    }

    func put(_ item: Item, condition: WriteCondition?) async throws { try await base.put(item, condition: condition) }
    func delete(_ key: ItemKey, condition: WriteCondition?) async throws { try await base.delete(key, condition: condition) }
    func update(_ key: ItemKey, set: [String: AttributeValue], condition: WriteCondition?) async throws {
        try await base.update(key, set: set, condition: condition)
    }
    func transact(_ writes: [TransactionWrite]) async throws { try await base.transact(writes) }
    func query(_ query: ItemQuery) async throws -> ItemPage { try await base.query(query) }
    func queryListIndex(_ query: ListIndexQuery) async throws -> [Item] { try await base.queryListIndex(query) }

    func checkHealth() async throws {
        try await pass(.health)
        try await base.checkHealth()
    }
}

/// Waits (polling, up to a generous bound) until `condition` holds; whether it did is for the caller to check.
private func waitUntil(_ bound: Duration = .seconds(120), _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + bound
    while !condition(), ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(10))
    }
}

/// The application `serve` runs when no admin token is configured (a generated one, its hash in
/// the store, read again every `refreshInterval`), on the suite's store behind a ``CacheReadStore``.
private func runWithStoredAdminToken<Value: Sendable>(
    refreshInterval: Duration,
    jwtVerifier: JWTVerifier? = nil,
    _ body: @Sendable (_ api: APIClient, _ store: CacheReadStore, _ adminToken: String) async throws -> Value
) async throws -> Value {
    let directory = try TemporaryDirectory()
    defer { directory.remove() }
    let (base, _, _) = try await TestStore.make(in: directory)
    let store = CacheReadStore(base: base)
    var configuration = ServeConfiguration()
    configuration.host = "127.0.0.1"
    configuration.port = 0
    configuration.adminToken = nil
    configuration.rateLimits = nil
    configuration.requestDeadline = .seconds(120)  // as TestServer: the run's load, not the code, would end a request early
    let logs = InMemoryLogHandler()
    let app = try await buildApplication(configuration, overrides: AppOverrides(
        store: store, logger: Logger(label: "onboard-test", factory: { _ in logs }), jwtVerifier: jwtVerifier,
        eventDispatcher: TestServer.dispatcherConfiguration, adminTokenRefreshInterval: refreshInterval
    ))
    let token = try #require(app.generatedAdminToken)
    return try await PatientLiveServer.run(app) { transport, _ in
        try await body(APIClient(transport: transport), store, token)
    }
}

@Suite("Caches: single-flight refreshes, failures that fail only their own credential, revocation", .testStoreAvailable)
struct CacheStampedeTests {
    @Test("health probes arriving together after the cached answer expired make one store read")
    func healthProbesShareOneRead() async throws {
        let holder = Mutex<CacheReadStore?>(nil)
        try await TestServer.run(wrapStore: { base in
            let store = CacheReadStore(base: base)
            holder.withLock { $0 = store }
            return store
        }) { api, fixture in
            let store = try #require(holder.withLock { $0 })
            #expect(try await api.send(.get, "/health").status == 200)
            let before = store.reads(.health)
            // The answer is kept a second; wait until it expired, then hold the next read back.
            try await Task.sleep(for: .milliseconds(1200))
            store.hold(.health)
            let probes = 16
            async let answers = api.sendConcurrently(Array(repeating: ConcurrentRequest(method: .get, path: "/health"), count: probes), port: fixture.port)
            try await waitUntil { store.reads(.health) > before }
            // Give every probe time to arrive while the first read is held (without the single
            // flight each makes its own read, and the wait ends as soon as they all have).
            try await waitUntil(.seconds(3)) { store.reads(.health) >= before + probes }
            store.release()
            let statuses = try await answers.map(\.status)
            #expect(statuses == Array(repeating: 200, count: probes))
            #expect(store.reads(.health) == before + 1, "\(store.reads(.health) - before) reads for \(probes) probes")
        }
    }

    @Test("concurrent checks of an admin token share one read of its hash; cancelling the caller that started it fails no other")
    func adminTokenChecksShareOneRead() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (base, _, _) = try await TestStore.make(in: directory)
        let store = CacheReadStore(base: base)
        let token = try await AdminTokenRecord.rotate(store: base)
        #expect(token.hasPrefix(StoredAdminTokenVerifier.generatedTokenPrefix), "every stored admin token is a generated one")
        // Nothing read yet (as on Lambda): the first checks must read the hash.
        let verifier = StoredAdminTokenVerifier(store: store, credential: nil, refreshInterval: .seconds(3600))
        store.hold(.adminToken)
        let first = Task { try await verifier.principal(for: token) }
        try await waitUntil { store.reads(.adminToken) == 1 }
        let callers = 15
        let others = Task {
            try await withThrowingTaskGroup(of: Principal?.self) { group in
                for _ in 0..<callers { group.addTask { try await verifier.principal(for: token) } }
                return try await group.reduce(into: [Principal?]()) { $0.append($1) }
            }
        }
        try await waitUntil(.seconds(3)) { store.reads(.adminToken) >= 1 + callers }
        first.cancel()
        store.release()
        let principals = try await others.value
        #expect(principals == Array(repeating: .admin, count: callers))
        #expect(store.reads(.adminToken) == 1, "\(store.reads(.adminToken)) reads for \(callers + 1) checks")
        _ = try? await first.value
        #expect(try await verifier.principal(for: "onb_0123456789abcdef_not-an-admin-token") == nil)
        #expect(store.reads(.adminToken) == 1, "a token that cannot be the admin token reads nothing")
    }

    @Test("when the admin token's hash cannot be read, API keys and JWTs still work and only admin tokens get 503")
    func failedRefreshFailsOnlyAdminTokens() async throws {
        try await LocalIssuer.run { issuer, jwksURL in
            let verifier = JWTVerifier(configuration: issuer.configuration(
                jwksURL: jwksURL, maximumKeyAge: JWTVerifier.Configuration.defaultMaximumKeyAge,
                keyGracePeriod: JWTVerifier.Configuration.defaultKeyGracePeriod
            ))
            // Interval zero: every admin-token check reads the hash again.
            try await runWithStoredAdminToken(refreshInterval: .zero, jwtVerifier: verifier) { api, store, adminToken in
                let (tenant, apiKey) = try await api.newTenant("Blip Corp")
                let jwt = try await issuer.token(kid: "k1", tenant: tenant)
                #expect(try await api.tenant(tenant, token: adminToken).status == 200)
                #expect(try await api.tenant(tenant, token: jwt).status == 200)

                store.failAdminTokenReads(true)
                let readsBefore = store.reads(.adminToken)
                #expect(try await api.tenant(tenant, token: apiKey).status == 200, "the API key does not depend on the admin token's hash")
                #expect(try await api.tenant(tenant, token: jwt).status == 200, "nor does a JWT")
                #expect(store.reads(.adminToken) == readsBefore, "neither waits for the admin token's hash")
                let admin = try await api.tenant(tenant, token: adminToken)
                #expect(admin.status == 503, "the admin token cannot be checked: \(admin.text)")
                #expect(admin.headers[.contentType] == "application/problem+json")

                store.failAdminTokenReads(false)
                #expect(try await api.tenant(tenant, token: adminToken).status == 200, "the next request reads again")
            }
        }
    }

    @Test("deleting the admin-token record revokes the admin token; a rotation replaces it")
    func deletedRecordRevokes() async throws {
        let interval = Duration.milliseconds(100)
        try await runWithStoredAdminToken(refreshInterval: interval) { api, store, adminToken in
            let (tenant, _) = try await api.newTenant("Revoked Corp")
            #expect(try await api.tenant(tenant, token: adminToken).status == 200)

            try await store.base.delete(AdminTokenRecord.key, condition: nil)
            try await Task.sleep(for: interval * 3)
            let refused = try await api.tenant(tenant, token: adminToken)
            #expect(refused.status == 401, "the deleted record's token is refused: \(refused.status)")

            let rotated = try await AdminTokenRecord.rotate(store: store.base)
            try await Task.sleep(for: interval * 3)
            #expect(try await api.tenant(tenant, token: rotated).status == 200)
            #expect(try await api.tenant(tenant, token: adminToken).status == 401)
        }
    }
}
