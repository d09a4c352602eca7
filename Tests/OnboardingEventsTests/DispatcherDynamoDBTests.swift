import Foundation
import Logging
import OnboardTestSupport
import OnboardingCore
import OnboardingDynamoDB
import OnboardingEvents
import Testing

@Suite("Event dispatcher on DynamoDB (moto): the same conditional writes", .requires(.moto))
struct DispatcherDynamoDBTests {
    @Test("retries recorded under the revision condition, give-ups moved to _outbox-failed, redelivery, leases")
    func outboxOnDynamoDB() async throws {
        let moto = try await MotoServer.shared()
        let table = "events-\(UUID().uuidString.prefix(8).lowercased())"
        try await DynamoDBTable.create(moto.dynamoDB(), name: table)
        let store = DynamoDBTenantStore(dynamoDB: moto.dynamoDB(), table: table)
        let recorder = EventRecorder(source: "urn:onboard:test")
        let tenants = makeTenants(3)
        var recorded: [TenantEvent] = []
        for tenant in tenants {
            for _ in 0..<2 {
                let event = recorder.event(.tenantUpdated, tenantId: tenant, data: [:])
                try await store.transact(recorder.writes(for: event))
                recorded.append(event)
            }
        }
        // Fails every event's first attempt, then delivers; the other sink never does.
        let flaky = ScriptedSink(id: "flaky") { _, attempt in attempt == 1 ? .retry("HTTP 500") : .delivered }
        let down = ScriptedSink(id: "down") { _, _ in .retry("HTTP 503") }
        let clock = SteppingClock()
        let dispatcher = EventDispatcher(
            store: store, sinks: [flaky, down], clock: clock,
            configuration: EventDispatcher.Configuration(
                failAfter: .seconds(60), backoffBase: .seconds(1), backoffCap: .seconds(2), boundedPassTimeout: .seconds(300)
            ),
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        await dispatcher.sweepAll()
        let pending = try await dispatcher.outbox.pending(limit: 100, cursor: nil).entries
        #expect(pending.count == recorded.count)
        #expect(pending.filter { $0.delivery["flaky"]?.attempts == 1 }.count == tenants.count, "each tenant's head tried once")
        // Past the backoffs (and, for "down", past failAfter): everything leaves the outbox.
        for _ in 0..<4 {
            clock.advance(seconds: 61)
            await dispatcher.sweepAll()
        }
        #expect(try await dispatcher.outbox.pending(limit: 100, cursor: nil).entries.isEmpty)
        #expect(Set(flaky.delivered.map(\.id)) == Set(recorded.map(\.id)))
        #expect(orderViolations(flaky.attempted) == [] && orderViolations(down.attempted) == [])
        let failed = try await dispatcher.outbox.failed(limit: 100, cursor: nil).entries
        #expect(failed.map(\.eventId) == recorded.map(\.id).sorted())
        #expect(failed.allSatisfy { $0.delivery["flaky"]?.state == .delivered && $0.delivery["down"]?.state == .failed })

        let back = try await dispatcher.outbox.redeliver(eventId: recorded[0].id)
        #expect(back.delivery.keys.sorted() == ["flaky"])
        #expect(try await dispatcher.outbox.pending(limit: 10, cursor: nil).entries.map(\.eventId) == [recorded[0].id])
        let again = await #expect(throws: OnboardingError.self) { try await dispatcher.outbox.redeliver(eventId: recorded[0].id) }
        #expect(again?.code == .eventNotFound)
        #expect(try await dispatcher.outbox.redeliverAllFailed() == recorded.count - 1)

        let outbox = EventOutbox(store: store, clock: clock)
        let shard = EventOutboxLayout.shards[7]
        #expect(try await outbox.acquireLease(shard: shard, owner: "a", duration: .seconds(30)))
        #expect(try await !outbox.acquireLease(shard: shard, owner: "b", duration: .seconds(30)))
        clock.advance(seconds: 31)
        #expect(try await outbox.acquireLease(shard: shard, owner: "b", duration: .seconds(30)))
        try await outbox.releaseLease(shard: shard, owner: "a")
        #expect(try await !outbox.acquireLease(shard: shard, owner: "a", duration: .seconds(30)))
        try await outbox.releaseLease(shard: shard, owner: "b")
        #expect(try await outbox.acquireLease(shard: shard, owner: "a", duration: .seconds(30)))
    }

    @Test("recordProgress and finish with a stale revision are refused and change nothing, also after a redelivery (DynamoDB)")
    func staleWritesRefused() async throws {
        let moto = try await MotoServer.shared()
        let table = "events-\(UUID().uuidString.prefix(8).lowercased())"
        try await DynamoDBTable.create(moto.dynamoDB(), name: table)
        let store = DynamoDBTenantStore(dynamoDB: moto.dynamoDB(), table: table)
        let recorder = EventRecorder(source: "urn:onboard:test")
        try await checkStaleWritesAreRefused(store: store) { tenant in
            let event = recorder.event(.tenantUpdated, tenantId: tenant, data: [:])
            try await store.transact(recorder.writes(for: event))
            return event.id
        }
    }
}
