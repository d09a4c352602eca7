import Foundation
import InMemoryLogging
import Logging
import OnboardingCore
import OnboardingEvents
import OnboardingSQLite
import ServiceLifecycle
import Testing

@Suite("Event dispatcher: the outbox delivered at least once, in order per tenant")
struct DispatcherTests {
    /// Quick retries and sweeps, for tests on the system clock.
    static let quick = EventDispatcher.Configuration(
        sweepInterval: .milliseconds(100), backoffBase: .milliseconds(5), backoffCap: .milliseconds(40),
        // One sweepAll() (or the last sweep at shutdown) must finish what the tests give it even
        // on a loaded CI machine (the defaults, 10 s, ended passes early there).
        boundedPassTimeout: .seconds(300), shutdownSweepTimeout: .seconds(300)
    )

    /// Every test's configuration: one sweepAll() is a whole pass even on a loaded machine.
    static func configuration(failAfter: Duration = .seconds(24 * 3600), backoffBase: Duration = .seconds(1), backoffCap: Duration = .seconds(300)) -> EventDispatcher.Configuration {
        EventDispatcher.Configuration(
            failAfter: failAfter, backoffBase: backoffBase, backoffCap: backoffCap, boundedPassTimeout: .seconds(300), shutdownSweepTimeout: .seconds(300)
        )
    }

    /// Retries are expected here; their log lines would drown the test output.
    static let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    func outboxIsEmpty(_ outbox: EventOutbox) async throws -> Bool {
        try await outbox.pending(limit: 100, cursor: nil).entries.isEmpty
    }

    @Test("every event reaches every sink, in order per tenant, through failures and concurrent deliveries")
    func deliveredInOrderThroughRetries() async throws {
        let fixture = try EventStoreFixture()
        defer { fixture.remove() }
        let tenants = makeTenants(24)
        // Fails each event's first two attempts, and one tenant's every third attempt on top.
        let flaky = ScriptedSink(id: "flaky", maxBatch: 4, delay: .milliseconds(2)) { event, attempt in
            if attempt <= 2 { return .retry("HTTP 500 (attempt \(attempt))") }
            return event.tenantId == tenants[0] && attempt % 3 == 0 ? .retry("HTTP 503") : .delivered
        }
        let steady = ScriptedSink(id: "steady", maxBatch: 10)
        let dispatcher = EventDispatcher(store: fixture.store, sinks: [flaky, steady], configuration: Self.quick, logger: Self.quiet)
        let running = Task { try await dispatcher.run() }
        defer { running.cancel() }

        // Recorded concurrently, as requests would, each one notified after its commit.
        var recorded: [TenantEvent] = []
        try await withThrowingTaskGroup(of: [TenantEvent].self) { group in
            for tenant in tenants {
                group.addTask {
                    var events: [TenantEvent] = []
                    for _ in 0..<8 {
                        let event = try await fixture.record(tenant)
                        dispatcher.notify([event])
                        events.append(event)
                    }
                    return events
                }
            }
            for try await events in group { recorded += events }
        }

        let allThere = try await eventually {
            try await outboxIsEmpty(dispatcher.outbox) && Set(flaky.delivered.map(\.id)).count == recorded.count
        }
        #expect(allThere, "the outbox drained")
        let expected = Set(recorded.map(\.id))
        #expect(Set(flaky.delivered.map(\.id)) == expected)
        #expect(Set(steady.delivered.map(\.id)) == expected)
        #expect(orderViolations(flaky.attempted) == [])
        #expect(orderViolations(steady.attempted) == [])
        #expect(flaky.violations == [] && steady.violations == [])
        #expect(flaky.maxCallsInFlight > 1, "deliveries ran concurrently")
        #expect(try await dispatcher.outbox.failed(limit: 10, cursor: nil).entries.isEmpty)
        // The envelope went out byte for byte as recorded.
        let byId = Dictionary(recorded.map { ($0.id, $0.envelopeJSON) }, uniquingKeysWith: { first, _ in first })
        #expect(steady.delivered.allSatisfy { byId[$0.id] == $0.envelopeJSON })
    }

    @Test("a sink failing one tenant for failAfter gives its head event up (_outbox-failed, listed); redelivery sends it, then the rest, in order")
    func failAfterAndRedeliver() async throws {
        let clock = SteppingClock()
        let fixture = try EventStoreFixture(clock: clock)
        defer { fixture.remove() }
        let tenants = makeTenants(2)
        let (broken, fine) = (tenants[0], tenants[1])
        let sink = ScriptedSink(id: "webhook:test") { event, _ in event.tenantId == broken ? .retry("HTTP 500") : .delivered }
        let logs = InMemoryLogHandler()
        let dispatcher = EventDispatcher(
            store: fixture.store, sinks: [sink], clock: clock,
            configuration: Self.configuration(failAfter: .seconds(3600), backoffBase: .seconds(1), backoffCap: .seconds(60)),
            logger: Logger(label: "test", factory: { _ in logs })
        )
        let first = try await fixture.record(broken, .tenantOnboarded)
        let second = try await fixture.record(broken, .tenantSuspended)
        let other = try await fixture.record(fine, .tenantOnboarded)

        await dispatcher.sweepAll()
        #expect(sink.delivered.map(\.id) == [other.id])
        #expect(sink.attempted.filter { $0.tenantId == broken }.map(\.id) == [first.id], "only the tenant's head of line was tried")
        let pending = try await dispatcher.outbox.pending(limit: 10, cursor: nil).entries
        #expect(pending.map(\.eventId) == [first.id, second.id])
        let state = try #require(pending.first?.delivery["webhook:test"])
        #expect(state.state == nil && state.attempts == 1 && state.lastError == "HTTP 500")
        #expect(state.firstFailedAt == EventOutbox.epochMilliseconds(clock.now()))
        #expect(pending.last?.delivery.isEmpty == true, "the second event was not tried")

        // An hour later the head is given up on; the next event becomes the head and is tried.
        clock.advance(seconds: 3601)
        await dispatcher.sweepAll()
        let failed = try await dispatcher.outbox.failed(limit: 10, cursor: nil)
        #expect(failed.entries.map(\.eventId) == [first.id])
        #expect(failed.entries.first?.delivery["webhook:test"]?.state == .failed)
        #expect(failed.entries.first?.envelopeJSON == first.envelopeJSON)
        #expect(try await dispatcher.outbox.pending(limit: 10, cursor: nil).entries.map(\.eventId) == [second.id])
        #expect(sink.attempted.filter { $0.tenantId == broken }.map(\.id) == [first.id, first.id, second.id])
        #expect(logs.entries.contains { $0.level == .error && $0.metadata["eventId"] == .string(first.id) })

        // Not failed: 404-style error; failed: queued again ahead of the tenant's later event.
        let notFailed = await #expect(throws: OnboardingError.self) { try await dispatcher.outbox.redeliver(eventId: second.id) }
        #expect(notFailed?.code == .eventNotFound)
        sink.answer { _, _ in .delivered }
        try await dispatcher.outbox.redeliver(eventId: first.id)
        #expect(try await dispatcher.outbox.failed(limit: 10, cursor: nil).entries.isEmpty)
        clock.advance(seconds: 120)  // the second event's backoff
        await dispatcher.sweepAll()
        #expect(sink.delivered.filter { $0.tenantId == broken }.map(\.id) == [first.id, second.id])
        #expect(try await outboxIsEmpty(dispatcher.outbox))
    }

    @Test("a sink that answers .disable is disabled (one error line) and its events are failed for it; the other sink gets them all")
    func disabledSink() async throws {
        let fixture = try EventStoreFixture()
        defer { fixture.remove() }
        let gone = ScriptedSink(id: "webhook:gone", maxBatch: 10) { _, _ in .disable("HTTP 410 Gone") }
        let steady = ScriptedSink(id: "steady")
        let logs = InMemoryLogHandler()
        let dispatcher = EventDispatcher(
            store: fixture.store, sinks: [gone, steady], configuration: Self.quick, logger: Logger(label: "test", factory: { _ in logs })
        )
        let tenants = makeTenants(2)
        var recorded: [TenantEvent] = []
        for tenant in tenants { for _ in 0..<3 { recorded.append(try await fixture.record(tenant)) } }

        await dispatcher.sweepAll()
        #expect(dispatcher.isDisabled(sinkId: "webhook:gone"))
        #expect(gone.calls == 1, "one call (both tenants' heads) answered 410; nothing after")
        #expect(Set(steady.delivered.map(\.id)) == Set(recorded.map(\.id)))
        #expect(try await outboxIsEmpty(dispatcher.outbox))
        let failed = try await dispatcher.outbox.failed(limit: 100, cursor: nil).entries
        #expect(failed.map(\.eventId) == recorded.map(\.id).sorted())
        #expect(failed.allSatisfy { $0.delivery["webhook:gone"]?.state == .failed && $0.delivery["steady"]?.state == .delivered })
        let disabledLines = logs.entries.filter { "\($0.message)".contains("asked for no more events") }
        #expect(disabledLines.count == 1 && disabledLines.first?.level == .error)

        // Redelivery clears only the failed sink; a new dispatcher (a restart) with a working
        // endpoint delivers there and not again to the sink that had them.
        #expect(try await dispatcher.outbox.redeliverAllFailed() == recorded.count)
        let back = ScriptedSink(id: "webhook:gone")
        let restarted = EventDispatcher(store: fixture.store, sinks: [back, steady], configuration: Self.quick, logger: Self.quiet)
        await restarted.sweepAll()
        #expect(Set(back.delivered.map(\.id)) == Set(recorded.map(\.id)))
        #expect(orderViolations(back.attempted) == [])
        #expect(steady.delivered.count == recorded.count, "the sink that had them got none again")
        #expect(try await outboxIsEmpty(dispatcher.outbox))
    }

    @Test("two dispatchers over one file never hand a tenant's events out of order (shard leases)")
    func twoDispatchers() async throws {
        let fixture = try EventStoreFixture()
        defer { fixture.remove() }
        let sink = ScriptedSink(id: "shared", maxBatch: 3, delay: .milliseconds(3)) { _, attempt in
            attempt == 1 && Bool.random() ? .retry("HTTP 502") : .delivered
        }
        let one = EventDispatcher(store: fixture.store, sinks: [sink], configuration: Self.quick, logger: Self.quiet)
        let two = EventDispatcher(store: try fixture.reopen(), sinks: [sink], configuration: Self.quick, logger: Self.quiet)
        let runs = [Task { try await one.run() }, Task { try await two.run() }]
        defer { for run in runs { run.cancel() } }

        let tenants = makeTenants(8)
        var recorded: [TenantEvent] = []
        try await withThrowingTaskGroup(of: [TenantEvent].self) { group in
            for tenant in tenants {
                group.addTask {
                    var events: [TenantEvent] = []
                    for round in 0..<20 {
                        let event = try await fixture.record(tenant)
                        events.append(event)
                        // Both are told, so both race for the shard.
                        (round % 2 == 0 ? one : two).notify([event])
                        (round % 2 == 0 ? two : one).notify([event])
                    }
                    return events
                }
            }
            for try await events in group { recorded += events }
        }
        let drained = try await eventually {
            try await outboxIsEmpty(one.outbox) && Set(sink.delivered.map(\.id)).count == recorded.count
        }
        #expect(drained)
        #expect(Set(sink.delivered.map(\.id)) == Set(recorded.map(\.id)))
        #expect(orderViolations(sink.attempted) == [])
        #expect(sink.violations == [])
    }

    @Test("a shard lease is taken when free, expired or one's own, and given back only by its owner")
    func leases() async throws {
        let clock = SteppingClock()
        let fixture = try EventStoreFixture(clock: clock)
        defer { fixture.remove() }
        let outbox = EventOutbox(store: fixture.store, clock: clock)
        let shard = EventOutboxLayout.shards[3]
        #expect(try await outbox.acquireLease(shard: shard, owner: "a", duration: .seconds(30)))
        #expect(try await !outbox.acquireLease(shard: shard, owner: "b", duration: .seconds(30)))
        #expect(try await outbox.acquireLease(shard: shard, owner: "a", duration: .seconds(30)), "renewed by its owner")
        try await outbox.releaseLease(shard: shard, owner: "b")
        #expect(try await !outbox.acquireLease(shard: shard, owner: "b", duration: .seconds(30)), "b cannot give a's lease back")
        clock.advance(seconds: 31)
        #expect(try await outbox.acquireLease(shard: shard, owner: "b", duration: .seconds(30)), "expired: b takes it")
        #expect(try await !outbox.acquireLease(shard: shard, owner: "a", duration: .seconds(30)))
        try await outbox.releaseLease(shard: shard, owner: "b")
        #expect(try await outbox.acquireLease(shard: shard, owner: "a", duration: .seconds(30)), "released: free")
        // The lease item is not an event.
        #expect(try await outbox.pending(limit: 10, cursor: nil).entries.isEmpty)
    }

    @Test("one tenant's backlog behind a failing event holds up neither the other tenants of its shard nor the other sinks")
    func backlogDoesNotBlockOthers() async throws {
        let fixture = try EventStoreFixture()
        defer { fixture.remove() }
        let tenants = makeTenants(2)  // one shard
        let (stuck, other) = (tenants[0], tenants[1])
        let failing = ScriptedSink(id: "failing") { event, _ in event.tenantId == stuck ? .retry("HTTP 500") : .delivered }
        let steady = ScriptedSink(id: "steady")
        var configuration = Self.quick
        configuration.maxEventsPerPass = 6
        configuration.maxEventsPerTenantPerPass = 2
        let dispatcher = EventDispatcher(store: fixture.store, sinks: [failing, steady], configuration: configuration, logger: Self.quiet)
        var backlog: [TenantEvent] = []
        for _ in 0..<10 { backlog.append(try await fixture.record(stuck)) }
        var later: [TenantEvent] = []
        for _ in 0..<3 { later.append(try await fixture.record(other)) }

        await dispatcher.sweepAll()
        // 10 + 3 events, 6 per pass and 2 per tenant and sink: the other tenant's first two
        // (recorded after the whole backlog) are among them.
        #expect(failing.delivered.map(\.id) == later.prefix(2).map(\.id), "the other tenant's events, recorded after the backlog, went out")
        for _ in 0..<10 { await dispatcher.sweepAll() }
        #expect(failing.delivered.map(\.id) == later.map(\.id))
        #expect(steady.delivered.filter { $0.tenantId == stuck }.map(\.id) == backlog.map(\.id), "the other sink got the whole backlog")
        #expect(Set(failing.attempted.filter { $0.tenantId == stuck }.map(\.id)) == [backlog[0].id], "only the head was tried")
        #expect(orderViolations(steady.attempted) == [] && orderViolations(failing.attempted) == [])
    }

    @Test("a dispatcher stopped in the middle of a delivery leaves the events; a new one over the file delivers them all")
    func resumesWhatAStoppedOneLeft() async throws {
        let fixture = try EventStoreFixture()
        defer { fixture.remove() }
        let tenants = makeTenants(5)
        var recorded: [TenantEvent] = []
        for tenant in tenants { for _ in 0..<3 { recorded.append(try await fixture.record(tenant)) } }

        let stuck = ScriptedSink(id: "webhook:a", blocks: true)
        let old = EventDispatcher(store: fixture.store, sinks: [stuck], configuration: Self.quick, logger: Self.quiet)
        let running = Task { try await old.run() }
        #expect(await eventually { stuck.calls > 0 }, "a delivery is in flight")
        running.cancel()
        _ = try? await running.value
        #expect(try await dispatcherPendingCount(old) == recorded.count, "nothing was marked delivered")

        let sink = ScriptedSink(id: "webhook:a")
        let new = EventDispatcher(store: try fixture.reopen(), sinks: [sink], configuration: Self.quick, logger: Self.quiet)
        let resumed = Task { try await new.run() }
        defer { resumed.cancel() }
        #expect(try await eventually { try await outboxIsEmpty(new.outbox) })
        #expect(Set(sink.delivered.map(\.id)) == Set(recorded.map(\.id)))
        #expect(orderViolations(sink.attempted) == [])
    }

    func dispatcherPendingCount(_ dispatcher: EventDispatcher) async throws -> Int {
        try await dispatcher.outbox.pending(limit: 1000, cursor: nil).entries.count
    }

    @Test("notify wakes a sleeping dispatcher long before its sweep interval")
    func notifyWakes() async throws {
        let fixture = try EventStoreFixture()
        defer { fixture.remove() }
        let sink = ScriptedSink(id: "log")
        var configuration = Self.quick
        configuration.sweepInterval = .seconds(3600)
        let dispatcher = EventDispatcher(store: fixture.store, sinks: [sink], configuration: configuration, logger: Self.quiet)
        let tenant = makeTenants(1)[0]
        let before = try await fixture.record(tenant)
        let running = Task { try await dispatcher.run() }
        defer { running.cancel() }
        #expect(await eventually { sink.delivered.map(\.id) == [before.id] }, "the start-up sweep")
        // Only once that sweep has passed every shard can a new event be left to the next one.
        #expect(await eventually { dispatcher.sweepsCompleted >= 1 }, "the start-up sweep ends")

        var elsewhere = makeTenants(1)[0]
        while EventOutboxLayout.shard(of: elsewhere) == EventOutboxLayout.shard(of: tenant) { elsewhere = makeTenants(1)[0] }
        let unnotified = try await fixture.record(elsewhere)
        let notified = try await fixture.record(tenant)
        dispatcher.notify([notified])
        #expect(await eventually { sink.delivered.map(\.id).contains(notified.id) }, "delivered without waiting an hour")
        #expect(!sink.attempted.map(\.id).contains(unnotified.id), "a shard nobody notified waits for the sweep")
    }

    @Test("graceful shutdown makes one last sweep: an event recorded without a notification is delivered before run returns")
    func lastSweepOnShutdown() async throws {
        let fixture = try EventStoreFixture()
        defer { fixture.remove() }
        let sink = ScriptedSink(id: "log")
        var configuration = Self.quick
        configuration.sweepInterval = .seconds(3600)
        let dispatcher = EventDispatcher(store: fixture.store, sinks: [sink], configuration: configuration, logger: Self.quiet)
        let group = ServiceGroup(services: [dispatcher], logger: Logger(label: "test"))
        let running = Task { try await group.run() }
        let tenant = makeTenants(1)[0]
        let first = try await fixture.record(tenant)
        dispatcher.notify([first])
        #expect(await eventually { sink.delivered.count == 1 })
        let late = try await fixture.record(tenant)  // its notification lost
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(sink.delivered.map(\.id) == [first.id, late.id])
        #expect(try await outboxIsEmpty(dispatcher.outbox))
    }

    @Test("runPending delivers only the shards it was told of; sweepAll every shard")
    func runPendingAndSweepAll() async throws {
        let fixture = try EventStoreFixture()
        defer { fixture.remove() }
        let sink = ScriptedSink(id: "log")
        let dispatcher = EventDispatcher(store: fixture.store, sinks: [sink], configuration: Self.configuration())
        var tenants = makeTenants(2)
        while EventOutboxLayout.shard(of: tenants[1]) == EventOutboxLayout.shard(of: tenants[0]) { tenants[1] = makeTenants(1)[0] }
        let told = try await fixture.record(tenants[0])
        let untold = try await fixture.record(tenants[1])
        dispatcher.notify([told])
        await dispatcher.runPending()
        #expect(sink.delivered.map(\.id) == [told.id])
        await dispatcher.runPending()
        #expect(sink.delivered.map(\.id) == [told.id], "nothing notified since")
        await dispatcher.sweepAll()
        #expect(sink.delivered.map(\.id) == [told.id, untold.id])
    }

    @Test("LogSink: one info line per event with its type, id and tenant; never the data (a phone number)")
    func logSink() async throws {
        let logs = InMemoryLogHandler()
        let sink = LogSink(logger: Logger(label: "events", factory: { _ in logs }))
        let tenant = makeTenants(1)[0]
        let event = TenantEvent(
            id: EventIDGenerator().next(), type: .tenantOnboarded, tenantId: tenant, time: "2026-12-02T08:00:00.000Z", source: "urn:test",
            actor: "admin", requestID: nil, data: ["tenant": .map(["clientPhone": .string("+14155550123")])]
        )
        let outboxEvent = OutboxEvent(id: event.id, tenantId: tenant, type: event.type, time: event.time, envelopeJSON: event.envelopeJSON)
        #expect(await sink.deliver([outboxEvent, outboxEvent]) == [.delivered, .delivered])
        #expect(sink.id == "log")
        #expect(logs.entries.count == 2)
        let line = try #require(logs.entries.first)
        #expect(line.level == .info)
        #expect(line.metadata["type"] == "tenant.onboarded" && line.metadata["eventId"] == .string(event.id))
        #expect(line.metadata["subject"] == .string(tenant.rawValue))
        #expect(!"\(line.message) \(line.metadata)".contains("+14155550123"))
    }

    @Test("the pending listing merges the shards oldest first, page by page; the failed one pages too")
    func listings() async throws {
        let fixture = try EventStoreFixture()
        defer { fixture.remove() }
        let outbox = EventOutbox(store: fixture.store)
        var recorded: [TenantEvent] = []
        for tenant in makeTenants(12) { for _ in 0..<2 { recorded.append(try await fixture.record(tenant)) } }
        var seen: [String] = []
        var cursor: String?
        repeat {
            let page = try await outbox.pending(limit: 5, cursor: cursor)
            #expect(page.entries.count <= 5)
            seen += page.entries.map(\.eventId)
            cursor = page.nextCursor
        } while cursor != nil
        #expect(seen == recorded.map(\.id).sorted())
        let invalid = await #expect(throws: OnboardingError.self) { try await outbox.pending(limit: 5, cursor: "not a cursor!") }
        #expect(invalid?.code == .invalidCursor)

        // Every sink gives up at once: all of them move to _outbox-failed.
        let dispatcher = EventDispatcher(
            store: fixture.store, sinks: [ScriptedSink(id: "s") { _, _ in .retry("down") }],
            configuration: Self.configuration(failAfter: .zero), logger: Self.quiet
        )
        for _ in 0..<2 { await dispatcher.sweepAll() }
        var failed: [String] = []
        cursor = nil
        repeat {
            let page = try await outbox.failed(limit: 7, cursor: cursor)
            failed += page.entries.map(\.eventId)
            cursor = page.nextCursor
        } while cursor != nil
        #expect(failed == recorded.map(\.id).sorted())
        #expect(try await outbox.pending(limit: 100, cursor: nil).entries.isEmpty)
    }
}
