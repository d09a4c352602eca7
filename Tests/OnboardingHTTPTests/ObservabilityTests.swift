import GRDB
import HTTPTypes
import Logging
import OnboardingCore
import OnboardingHTTP
import OnboardingSQLite
import Synchronization
import Testing

@Suite("Request ids, logs, health, the OpenAPI contract", .testStoreAvailable)
struct ObservabilityTests {
    @Test("X-Request-Id is accepted when sane, generated otherwise, and in problems")
    func requestIDs() async throws {
        try await TestServer.run { api, _ in
            let given = try await api.send(.get, "/health", headers: [.xRequestID: "trace-123:abc/def_4.5"])
            #expect(given.headers[.xRequestID] == "trace-123:abc/def_4.5")

            let generated = try await api.send(.get, "/health")
            let id = try #require(generated.headers[.xRequestID])
            #expect(id.count >= 17 && id.allSatisfy(\.isHexDigit))
            let another = try await api.send(.get, "/health")
            #expect(another.headers[.xRequestID] != id, "each request gets its own id")

            for insane in ["has spaces", String(repeating: "x", count: 129), "quote\"s", "<script>"] {
                let response = try await api.send(.get, "/health", headers: [.xRequestID: insane])
                let replaced = try #require(response.headers[.xRequestID])
                #expect(replaced != insane)
                #expect(replaced.count >= 17 && replaced.allSatisfy(\.isHexDigit))
            }

            let problem = try await api.send(.get, "/nope", headers: [.xRequestID: "req-42"])
            #expect(problem["requestId"] == "req-42")
            #expect(problem.headers[.xRequestID] == "req-42")
        }
    }

    @Test("one log line per request with method, route, status, duration and request id; phones masked, no secrets")
    func logLines() async throws {
        try await TestServer.run { api, fixture in
            let created = try await api.send(
                .post, "/onboard", headers: [.contentType: "application/json", .xRequestID: "log-test-1"],
                body: #"{"clientName": "Acme Corp", "clientPhone": "+1 415 555 0123"}"#
            )
            let id = try #require(created["tenantId"])
            _ = try await api.send(.get, "/tenants/\(id)", headers: [.authorization: "Bearer \(TestServer.adminToken)", .xRequestID: "log-test-2"])
            _ = try await api.send(.get, "/tenants/\(id)", headers: [.authorization: "Bearer guessed-token-guessed-token", .xRequestID: "log-test-3"])

            let requestLines = fixture.logs.entries.filter { $0.message == "request" }
            #expect(requestLines.count == 3)
            let first = try #require(requestLines.first { $0.metadata["hb.request.id"] == "log-test-1" })
            #expect(first.metadata["method"] == "POST")
            #expect(first.metadata["route"] == "/onboard")
            #expect(first.metadata["status"] == "201")
            let duration = try #require(first.metadata["duration_ms"]?.description)
            #expect(Double(duration) != nil)
            let second = try #require(requestLines.first { $0.metadata["hb.request.id"] == "log-test-2" })
            #expect(second.metadata["route"] == "/tenants/{tenantId}", "the route template, not the id")
            #expect(second.metadata["status"] == "200")
            let third = try #require(requestLines.first { $0.metadata["hb.request.id"] == "log-test-3" })
            #expect(third.metadata["status"] == "401")

            let onboarded = try #require(fixture.logs.entries.first { $0.message == "tenant onboarded" })
            #expect(onboarded.metadata["clientPhone"] == "+14*******23")
            #expect(onboarded.metadata["tenantId"]?.description == id)

            let everything = fixture.logText
            #expect(!everything.contains("+14155550123") && !everything.contains("415 555 0123"), "no phone number in clear")
            #expect(!everything.contains(TestServer.adminToken), "no admin token")
            #expect(!everything.contains("guessed-token"), "no presented token")
            #expect(!everything.contains("Acme Corp"), "no request body")
        }
    }

    @Test("GET /health reports the store")
    func health() async throws {
        try await TestServer.run { api, _ in
            let response = try await api.send(.get, "/health")
            #expect(response.status == 200)
            #expect(response["status"] == "ok")
            #expect(response.json["checks"] == .map(["store": .string("ok")]))
        }
    }

    @Test("health follows the store within a second, and asks it at most once a second")
    func healthFollowsTheStore() async throws {
        let switchable = Mutex<SwitchableStore?>(nil)
        try await TestServer.run(wrapStore: { base in
            let store = SwitchableStore(base: base, down: false)
            switchable.withLock { $0 = store }
            return store
        }) { api, _ in
            let store = try #require(switchable.withLock { $0 })
            let start = ContinuousClock.now
            for _ in 0..<20 {
                #expect(try await api.send(.get, "/health").status == 200)
            }
            let seconds = (ContinuousClock.now - start).components.seconds
            #expect(store.healthChecks.load(ordering: .relaxed) <= Int(seconds) + 1, "20 probes, at most one store query per second")
            store.down.store(true, ordering: .relaxed)
            var sawOutage = false
            let deadline = ContinuousClock.now + .seconds(3)
            while !sawOutage && ContinuousClock.now < deadline {
                sawOutage = try await api.send(.get, "/health").status == 503
                if !sawOutage { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(sawOutage, "the outage shows within the cache's second")
            store.down.store(false, ordering: .relaxed)
            var recovered = false
            while !recovered && ContinuousClock.now < deadline + .seconds(3) {
                recovered = try await api.send(.get, "/health").status == 200
                if !recovered { try await Task.sleep(for: .milliseconds(50)) }
            }
            #expect(recovered)
        }
    }

    @Test("when the store is unreachable: health is 503, onboarding a 503 problem with Retry-After")
    func storeDown() async throws {
        try await TestServer.run(wrapStore: { SwitchableStore(base: $0, down: true) }) { api, fixture in
            let health = try await api.send(.get, "/health")
            #expect(health.status == 503)
            #expect(health["status"] == "unavailable")
            let onboard = try await api.onboard(#"{"clientName": "Acme Corp", "clientPhone": "+1234567890"}"#)
            #expect(onboard.status == 503)
            #expect(onboard["code"] == "store-unavailable")
            #expect(onboard.headers[.retryAfter] == "1")
            #expect(try await fixture.itemCount() == 0)
            #expect(fixture.logs.entries.contains { $0.level == .error && $0.message == "store unavailable" })
        }
    }

    @Test(
        "a store failing at any one write of the onboarding transaction leaves nothing of the tenant",
        .enabled(if: !TestStore.isDynamoDB, "the fault is a trigger in the SQLite file")
    )
    func failureMidTransaction() async throws {
        let body = #"{"clientName": "Acme Corp", "clientPhone": "+1234567890"}"#
        // How many rows one onboarding inserts, counted by the same trigger without a failure.
        let writes = try await TestServer.run { api, fixture in
            let path = try #require(fixture.sqlitePath)
            try FailingWriteTrigger.install(in: path, failingAt: nil)
            #expect(try await api.onboard(body).status == 201)
            let counted = try FailingWriteTrigger.writes(in: path)
            let stored = try await fixture.itemCount()
            // The event's outbox item is written too; the item count leaves it out (the dispatcher
            // deletes it once delivered).
            #expect(counted == stored + 1, "the trigger sees every item the onboarding stores")
            return counted
        }
        #expect(writes >= 5, "onboarding writes the profile, the API key, its look-up item and the event's two items in one transaction")
        for failing in 1...max(writes, 1) {
            try await TestServer.run { api, fixture in
                let path = try #require(fixture.sqlitePath)
                try FailingWriteTrigger.install(in: path, failingAt: failing)
                let onboard = try await api.onboard(body)
                #expect(onboard.status == 503, "write \(failing) of \(writes) failed")
                #expect(onboard["code"] == "store-unavailable")
                #expect(
                    fixture.logText.contains("injected failure at write \(failing)"),
                    "the failure happened in the store, at write \(failing), after \(failing - 1) writes of the same transaction"
                )
                #expect(try await fixture.itemCount() == 0, "nothing of the tenant is stored after write \(failing) of \(writes) failed")
                let names = try await DatabaseQueue(path: path).read { db in
                    try Int.fetchOne(db, sql: "SELECT count(*) FROM items WHERE clientName = 'Acme Corp'") ?? -1
                }
                #expect(names == 0)
            }
        }
    }

    @Test("GET /openapi.yaml serves the document, and it describes exactly the route table")
    func openAPIDocument() async throws {
        try await TestServer.run { api, fixture in
            let response = try await api.send(.get, "/openapi.yaml")
            #expect(response.status == 200)
            #expect(response.headers[.contentType] == "application/yaml")
            #expect(response.text.hasPrefix("openapi: 3.1.0"))
            let routes = routeTable(AppDependencies(store: fixture.store, verifiers: []))
            let served = Set(routes.map { "\($0.method.rawValue) \($0.path)" })
            #expect(served == OpenAPIValidator.shared.operations)
        }
    }

    @Test("the contract check itself catches a nonconforming response")
    func validatorCatchesViolations() {
        let validator = OpenAPIValidator.shared
        let headers: HTTPFields = [.contentType: "application/json", .xRequestID: "abc"]
        let good = Array(#"{"status":"ok","checks":{"store":"ok"},"version":"1"}"#.utf8)
        #expect(validator.violations(method: .get, path: "/health", status: 200, headers: headers, body: good).isEmpty)
        let extraField = Array(#"{"status":"ok","checks":{"store":"ok"},"version":"1","x":1}"#.utf8)
        #expect(!validator.violations(method: .get, path: "/health", status: 200, headers: headers, body: extraField).isEmpty)
        #expect(!validator.violations(method: .get, path: "/health", status: 418, headers: headers, body: good).isEmpty)
        #expect(!validator.violations(method: .get, path: "/health", status: 200, headers: [.contentType: "application/json"], body: good).isEmpty)
        let badTenant = Array(#"{"tenantId":"x","clientName":"A","clientPhone":"123","status":"ACTIVE","createdAt":"now","updatedAt":"now","version":0}"#.utf8)
        #expect(validator.violations(method: .get, path: "/tenants/x", status: 200, headers: headers, body: badTenant).count >= 4)
    }
}

/// A trigger in a real SQLite file that counts the rows inserted into the items table (but the
/// event dispatcher's lease items, which it writes on a schedule of its own) and makes
/// the `failingAt`-th insert fail (`RAISE(ABORT)`), inside whatever transaction it belongs to:
/// the writes before it in that transaction have been applied when it fails.
enum FailingWriteTrigger {
    static func install(in path: String, failingAt failing: Int?) throws {
        let failure = failing.map { "SELECT RAISE(ABORT, 'injected failure at write \($0)') WHERE (SELECT n FROM test_write_counter) = \($0);" } ?? ""
        try DatabaseQueue(path: path).write { db in
            try db.execute(sql: """
                CREATE TABLE test_write_counter (n INTEGER NOT NULL);
                INSERT INTO test_write_counter VALUES (0);
                CREATE TRIGGER test_failing_write BEFORE INSERT ON items
                WHEN NEW.resourceKey <> '\(EventOutboxLayout.leaseKey)'
                BEGIN
                    UPDATE test_write_counter SET n = n + 1;
                    \(failure)
                END;
                """)
        }
    }

    /// The rows inserted (and committed) since ``install(in:failingAt:)``.
    static func writes(in path: String) throws -> Int {
        try DatabaseQueue(path: path).read { db in try Int.fetchOne(db, sql: "SELECT n FROM test_write_counter") ?? -1 }
    }
}

/// The real SQLite store behind a switch that makes every call fail as an unreachable store would.
final class SwitchableStore: TenantStore {
    let base: any TenantStore
    let down: Atomic<Bool>
    let healthChecks = Atomic(0)

    init(base: any TenantStore, down: Bool) {
        self.base = base
        self.down = Atomic(down)
    }

    private func available() throws {
        if down.load(ordering: .relaxed) { throw StoreError(.unavailable, "injected outage") }
    }

    func get(_ key: ItemKey) async throws -> Item? { try available(); return try await base.get(key) }
    func put(_ item: Item, condition: WriteCondition?) async throws { try available(); try await base.put(item, condition: condition) }
    func delete(_ key: ItemKey, condition: WriteCondition?) async throws { try available(); try await base.delete(key, condition: condition) }
    func update(_ key: ItemKey, set: [String: AttributeValue], condition: WriteCondition?) async throws {
        try available()
        try await base.update(key, set: set, condition: condition)
    }
    func transact(_ writes: [TransactionWrite]) async throws { try available(); try await base.transact(writes) }
    func query(_ query: ItemQuery) async throws -> ItemPage { try available(); return try await base.query(query) }
    func queryListIndex(_ query: ListIndexQuery) async throws -> [Item] { try available(); return try await base.queryListIndex(query) }
    func checkHealth() async throws {
        healthChecks.add(1, ordering: .relaxed)
        try available()
        try await base.checkHealth()
    }
}

extension HTTPField.Name {
    static let xRequestID = Self("X-Request-Id")!
}
