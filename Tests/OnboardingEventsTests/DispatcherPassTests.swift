import Foundation
import Logging
import OnboardingCore
import OnboardingEvents
import Synchronization
import Testing

@Suite("Event dispatcher passes: order, leases and reading a shard with a backlog")
struct DispatcherPassTests {
    static let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    @Test("a sink far behind another for a tenant, once it recovers, still gets that tenant's events in order")
    func slowSinkCatchesUpInOrder() async throws {
        let clock = SteppingClock()
        let fixture = try EventStoreFixture(clock: clock)
        defer { fixture.remove() }
        let tenant = makeTenants(1)[0]
        var recorded: [String] = []
        for _ in 0..<10 { recorded.append(try await fixture.record(tenant).id) }
        let slow = ScriptedSink(id: "slow") { _, _ in .retry("HTTP 503") }
        let fast = ScriptedSink(id: "fast")
        var configuration = EventDispatcher.Configuration(backoffBase: .seconds(1), backoffCap: .seconds(2))
        configuration.boundedPassTimeout = .seconds(300)  // a whole pass per sweepAll(), even on a loaded machine
        configuration.maxEventsPerTenantPerPass = 3
        let dispatcher = EventDispatcher(store: fixture.store, sinks: [slow, fast], clock: clock, configuration: configuration, logger: Self.quiet)
        // Two passes while "slow" fails: "fast" gets 6 events ahead (3 per pass).
        await dispatcher.sweepAll()
        await dispatcher.sweepAll()
        #expect(fast.delivered.map(\.id) == Array(recorded.prefix(6)))
        #expect(slow.delivered.isEmpty)
        // "slow" recovers: it must get E1…E10 in order (E4–E6 are not read for it in the pass
        // that reads E7–E9 for "fast").
        slow.answer { _, _ in .delivered }
        for _ in 0..<10 {
            clock.advance(seconds: 10)
            await dispatcher.sweepAll()
        }
        #expect(orderViolations(slow.attempted) == [])
        #expect(slow.delivered.map(\.id) == recorded)
        #expect(fast.delivered.map(\.id) == recorded)
        #expect(try await dispatcher.outbox.pending(limit: 100, cursor: nil).entries.isEmpty)
    }

    @Test("the lease is renewed after the scan, before the first round: nothing is sent under a lease that ran out while reading")
    func leaseRenewedBeforeFirstRound() async throws {
        let clock = SteppingClock()
        let fixture = try EventStoreFixture(clock: clock)
        defer { fixture.remove() }
        let tenant = makeTenants(1)[0]
        let shard = EventOutboxLayout.shard(of: tenant)
        try await fixture.record(tenant)
        let outbox = EventOutbox(store: fixture.store, clock: clock)
        let tookOver = Mutex(false)
        let store = HookedStore(fixture.store) { query in
            // The scan (the peek reads one item): it outlasts the lease, another dispatcher takes the shard.
            guard query.tenantId == shard, query.limit > 1 else { return }
            clock.advance(seconds: 31)
            if try await outbox.acquireLease(shard: shard, owner: "other", duration: .seconds(30)) { tookOver.withLock { $0 = true } }
        }
        let sink = ScriptedSink(id: "a")
        var configuration = EventDispatcher.Configuration()
        configuration.boundedPassTimeout = .seconds(300)  // a whole pass per sweepAll(), even on a loaded machine
        let dispatcher = EventDispatcher(store: store, sinks: [sink], clock: clock, configuration: configuration, logger: Self.quiet)
        await dispatcher.sweepAll()
        #expect(tookOver.withLock { $0 })
        #expect(sink.attempted.isEmpty, "nothing is handed to a sink while another dispatcher holds the shard")
        #expect(try await outbox.pending(limit: 10, cursor: nil).entries.count == 1)
    }

    @Test("a tenant's backlog larger than maxItemsScannedPerPass does not keep its shard's other tenants unread")
    func largeBacklogDoesNotStarveOthers() async throws {
        let fixture = try EventStoreFixture()
        defer { fixture.remove() }
        let tenants = makeTenants(2)  // one shard
        let (stuck, other) = (tenants[0], tenants[1])
        for _ in 0..<150 { try await fixture.record(stuck) }
        let later = try await fixture.record(other)
        let sink = ScriptedSink(id: "a") { event, _ in event.tenantId == stuck ? .retry("HTTP 500") : .delivered }
        var configuration = EventDispatcher.Configuration()
        configuration.boundedPassTimeout = .seconds(300)  // a whole pass per sweepAll(), even on a loaded machine
        configuration.maxItemsScannedPerPass = 100
        let dispatcher = EventDispatcher(store: fixture.store, sinks: [sink], configuration: configuration, logger: Self.quiet)
        await dispatcher.sweepAll()
        await dispatcher.sweepAll()
        #expect(sink.delivered.map(\.id) == [later.id], "the other tenant's event, recorded after 150 of the stuck one's, went out")
    }

    @Test("the read past a backlog is bounded by maxItemsReadPerPass: a tenant recorded after more set-aside events than that waits")
    func readPastBacklogIsBounded() async throws {
        let fixture = try EventStoreFixture()
        defer { fixture.remove() }
        let tenants = makeTenants(2)  // one shard
        let (stuck, other) = (tenants[0], tenants[1])
        for _ in 0..<150 { try await fixture.record(stuck) }
        try await fixture.record(other)
        let sink = ScriptedSink(id: "a") { event, _ in event.tenantId == stuck ? .retry("HTTP 500") : .delivered }
        var configuration = EventDispatcher.Configuration()
        configuration.boundedPassTimeout = .seconds(300)  // a whole pass per sweepAll(), even on a loaded machine
        configuration.maxItemsScannedPerPass = 100
        configuration.maxItemsReadPerPass = 100
        let dispatcher = EventDispatcher(store: fixture.store, sinks: [sink], configuration: configuration, logger: Self.quiet)
        await dispatcher.sweepAll()
        await dispatcher.sweepAll()
        #expect(sink.delivered.isEmpty, "one page of the backlog read, then the bound")
        #expect(Set(sink.attempted.map(\.tenantId)) == [stuck])
    }

    @Test("recordProgress and finish with a stale revision are refused and change nothing, also after a redelivery (SQLite)")
    func staleWritesRefused() async throws {
        let fixture = try EventStoreFixture()
        defer { fixture.remove() }
        try await checkStaleWritesAreRefused(store: fixture.store) { tenant in try await fixture.record(tenant).id }
    }
}
