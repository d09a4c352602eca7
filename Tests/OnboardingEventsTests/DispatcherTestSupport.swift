import Foundation
import OnboardingCore
import OnboardingEvents
import OnboardingSQLite
import Synchronization
import Testing

/// A wall clock the test moves by hand (failAfter, backoffs and leases follow it).
final class SteppingClock: WallClock, Sendable {
    private let time: Mutex<Date>

    init(_ start: Date = Date(timeIntervalSince1970: 1_800_000_000)) { time = Mutex(start) }

    func now() -> Date { time.withLock { $0 } }

    func advance(seconds: TimeInterval) { time.withLock { $0 += seconds } }
}

/// An in-process sink that answers as the test says and remembers every call.
final class ScriptedSink: EventSink, Sendable {
    let id: String
    let maxBatch: Int
    /// What to answer for an event on its `attempt`-th call (1-based).
    typealias Answer = @Sendable (_ event: OutboxEvent, _ attempt: Int) -> DeliveryResult

    private struct State {
        var answer: Answer
        /// Every event handed over, in the order of the calls (a batch in its order).
        var attempted: [OutboxEvent] = []
        /// Every event answered `.delivered`, in the order answered.
        var delivered: [OutboxEvent] = []
        var attempts: [String: Int] = [:]
        var calls = 0
        /// Tenants of the calls in flight now; a tenant twice is an order violation.
        var inFlight: [String: Int] = [:]
        var maxCallsInFlight = 0
        var callsInFlight = 0
        var violations: [String] = []
    }

    private let state: Mutex<State>
    /// How long each call takes.
    private let delay: Duration?
    /// Calls block until cancelled (a delivery in flight when the process stops).
    private let blocks: Bool

    init(id: String, maxBatch: Int = 10, delay: Duration? = nil, blocks: Bool = false, answer: @escaping Answer = { _, _ in .delivered }) {
        self.id = id
        self.maxBatch = maxBatch
        self.delay = delay
        self.blocks = blocks
        self.state = Mutex(State(answer: answer))
    }

    /// Answers from now on.
    func answer(_ answer: @escaping Answer) { state.withLock { $0.answer = answer } }

    var attempted: [OutboxEvent] { state.withLock { $0.attempted } }
    var delivered: [OutboxEvent] { state.withLock { $0.delivered } }
    var calls: Int { state.withLock { $0.calls } }
    var maxCallsInFlight: Int { state.withLock { $0.maxCallsInFlight } }
    var violations: [String] { state.withLock { $0.violations } }
    func attempts(of id: String) -> Int { state.withLock { $0.attempts[id] ?? 0 } }

    func deliver(_ events: [OutboxEvent]) async -> [DeliveryResult] {
        var answers = state.withLock { state -> [DeliveryResult] in
            state.calls += 1
            state.callsInFlight += 1
            state.maxCallsInFlight = max(state.maxCallsInFlight, state.callsInFlight)
            if events.count > maxBatch { state.violations.append("a call of \(events.count) events, maxBatch \(maxBatch)") }
            for event in events {
                state.inFlight[event.tenantId.rawValue, default: 0] += 1
                if state.inFlight[event.tenantId.rawValue]! > 1 {
                    state.violations.append("two events of tenant \(event.tenantId) in flight at once (\(event.id))")
                }
                state.attempted.append(event)
                state.attempts[event.id, default: 0] += 1
            }
            return events.map { state.answer($0, state.attempts[$0.id]!) }
        }
        if blocks {
            try? await Task.sleep(for: .seconds(3600))
            // Stopped: the call failed, as a cancelled HTTP request does.
            answers = events.map { _ in .retry("cancelled") }
        }
        if let delay { try? await Task.sleep(for: delay) }
        state.withLock { state in
            state.callsInFlight -= 1
            for (event, answer) in zip(events, answers) {
                state.inFlight[event.tenantId.rawValue, default: 1] -= 1
                if answer == .delivered { state.delivered.append(event) }
            }
        }
        return answers
    }
}

/// A SQLite file with events recorded into it as the domain services record them.
struct EventStoreFixture {
    let directory: URL
    let path: String
    let store: SQLiteTenantStore
    let recorder: EventRecorder

    init(clock: any WallClock = SystemWallClock()) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("onboard-events-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        path = directory.appendingPathComponent("onboarding.sqlite").path
        store = try SQLiteTenantStore(path: path)
        recorder = EventRecorder(source: "urn:onboard:test", clock: clock)
    }

    /// Another store on the same file (another process's view).
    func reopen() throws -> SQLiteTenantStore { try SQLiteTenantStore(path: path) }

    /// Records one event of the tenant in its own transaction, as a change would.
    @discardableResult
    func record(_ tenant: TenantID, _ type: TenantEventType = .tenantUpdated) async throws -> TenantEvent {
        let event = recorder.event(type, tenantId: tenant, data: ["changed": .list([.string("clientName")])])
        try await store.transact(recorder.writes(for: event))
        return event
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }
}

/// `count` new tenant ids, at least two of them in one outbox shard.
func makeTenants(_ count: Int) -> [TenantID] {
    let generator = UUIDv7Generator()
    var tenants = (0..<count).map { _ in generator.newTenantID() }
    if count >= 2 {
        // Make two share a shard: draw until one lands in the first one's shard.
        let shard = EventOutboxLayout.shard(of: tenants[0])
        while EventOutboxLayout.shard(of: tenants[1]) != shard { tenants[1] = generator.newTenantID() }
    }
    return tenants
}

/// Problems with per-tenant order in what a sink was handed: a tenant's events must go out in
/// id order; a repeat of the event just sent is allowed (at least once), going back is not.
func orderViolations(_ events: [OutboxEvent]) -> [String] {
    var last: [String: String] = [:]
    var problems: [String] = []
    for event in events {
        if let previous = last[event.tenantId.rawValue], event.id.utf8.lexicographicallyPrecedes(previous.utf8) {
            problems.append("tenant \(event.tenantId): \(event.id) after \(previous)")
        }
        last[event.tenantId.rawValue] = event.id
    }
    return problems
}

/// Waits (polling) until `condition` holds or `timeout` passes; generous, never a timing assertion.
func eventually(timeout: Duration = .seconds(300), _ condition: () async throws -> Bool) async rethrows -> Bool {
    let end = ContinuousClock.now + timeout
    while ContinuousClock.now < end {
        if try await condition() { return true }
        try? await Task.sleep(for: .milliseconds(20))
    }
    return try await condition()
}

/// A store that runs `beforeQuery` before each query it forwards (a fault injected between the
/// reads of a pass, such as a scan that outlasts the lease).
final class HookedStore: TenantStore, Sendable {
    let base: any TenantStore
    let beforeQuery: @Sendable (ItemQuery) async throws -> Void

    init(_ base: any TenantStore, beforeQuery: @escaping @Sendable (ItemQuery) async throws -> Void) {
        self.base = base
        self.beforeQuery = beforeQuery
    }

    func get(_ key: ItemKey) async throws -> Item? { try await base.get(key) }
    func put(_ item: Item, condition: WriteCondition?) async throws { try await base.put(item, condition: condition) }
    func delete(_ key: ItemKey, condition: WriteCondition?) async throws { try await base.delete(key, condition: condition) }
    func update(_ key: ItemKey, set: [String: AttributeValue], condition: WriteCondition?) async throws {
        try await base.update(key, set: set, condition: condition)
    }
    func transact(_ writes: [TransactionWrite]) async throws { try await base.transact(writes) }
    func query(_ query: ItemQuery) async throws -> ItemPage {
        try await beforeQuery(query)
        return try await base.query(query)
    }
    func queryListIndex(_ query: ListIndexQuery) async throws -> [Item] { try await base.queryListIndex(query) }
    func checkHealth() async throws { try await base.checkHealth() }
}

/// Writes with a stale revision must be refused and change nothing, also after the event was
/// given up on and redelivered (a redelivery never reuses a revision). Shared by the SQLite and
/// DynamoDB suites. `record` records one event of the tenant and returns its id.
func checkStaleWritesAreRefused(store: any TenantStore, record: (TenantID) async throws -> String) async throws {
    let tenant = makeTenants(1)[0]
    let eventId = try await record(tenant)
    let outbox = EventOutbox(store: store)
    let shard = EventOutboxLayout.shard(of: tenant)
    func current() async throws -> OutboxEntry? { try await outbox.pendingPage(shard: shard).entries.first { $0.eventId == eventId } }
    func delivered(_ entry: OutboxEntry) -> OutboxEntry {
        var entry = entry
        entry.delivery["a"] = SinkDelivery(state: .delivered)
        return entry
    }

    let read = try #require(try await current())
    #expect(read.revision == 0)
    var retried = read
    retried.delivery["a"] = SinkDelivery(attempts: 1, nextAttemptAt: 5, firstFailedAt: 1, lastError: "HTTP 500")
    let written = try await outbox.recordProgress(retried)
    // The copy read before that write is stale: refused, nothing changes.
    await #expect(throws: StoreError.self) { try await outbox.recordProgress(delivered(read)) }
    await #expect(throws: StoreError.self) { try await outbox.finish(delivered(read), failed: false) }
    #expect(try await current() == written)

    // Given up on, then redelivered: every copy from before is still stale.
    var gaveUp = written
    gaveUp.delivery["a"] = SinkDelivery(state: .failed, attempts: 2, firstFailedAt: 1, lastError: "HTTP 500")
    try await outbox.finish(gaveUp, failed: true)
    let back = try await outbox.redeliver(eventId: eventId)
    #expect(back.delivery.isEmpty)
    #expect(try await current() == back)
    for stale in [read, written] {
        await #expect(throws: StoreError.self, "revision \(stale.revision)") { try await outbox.recordProgress(delivered(stale)) }
        await #expect(throws: StoreError.self, "revision \(stale.revision)") { try await outbox.finish(delivered(stale), failed: false) }
        await #expect(throws: StoreError.self, "revision \(stale.revision)") { try await outbox.finish(delivered(stale), failed: true) }
    }
    #expect(try await current() == back, "the redelivery stands")
    #expect(try await outbox.failed(limit: 10, cursor: nil).entries.isEmpty)
    // The redelivered copy itself writes.
    try await outbox.finish(delivered(back), failed: false)
    #expect(try await current() == nil)
}
