import Foundation
import OnboardTestSupport
import OnboardingCore
import OnboardingDynamoDB
import OnboardingSQLite
import Synchronization
import Testing

/// Offboarding on each store: everything of the partition goes but the tombstone and the
/// tenant's events (its audit record; purged on request), a crash or a store error anywhere leaves
/// a state the next start resumes, and nothing written concurrently survives.
///
/// The big tenant runs on a moto of its own (``OffboardingStore/dynamoDB``), so its 200
/// transactions do not queue behind the other suites' calls on the shared one.
@Suite("Offboarding on every store")
struct OffboardingConformanceTests {
    // MARK: - Everything goes

    @Test("a tenant with 10,000 resources and 3 API keys offboards completely: only the tombstone and the events are left, no key look-up", .heavyLoad, arguments: OffboardingStore.all)
    func bigTenantOffboardsCompletely(_ subject: OffboardingStore) async throws {
        try await subject.withStore { store in
            let seeded = try await Seed.tenant(in: store, resources: 10_000, extraKeys: 2)
            let offboarding = Offboarding(store: store)

            let started = try await offboarding.start(seeded.id)
            #expect(started.status == .offboarding && started.offboardingStartedAt != nil && started.version == 2)
            #expect(try await offboarding.pending().contains(seeded.id))
            // Idempotent: starting again returns the same state and changes nothing.
            #expect(try await offboarding.start(seeded.id) == started)

            let seen = Mutex<[Int]>([])
            let run = try await offboarding.finish(seeded.id) { deleted in seen.withLock { $0.append(deleted) } }
            guard case .finished(let tombstone) = run.outcome else {
                Issue.record("not finished: \(run)")
                return
            }
            // 10,000 resources, 3 keys and a usage counter: every one counted once.
            #expect(run.itemsDeleted == seeded.items)
            #expect(run.batches == seen.withLock { $0.count })
            #expect(seen.withLock { $0 } == seen.withLock { $0 }.sorted() && seen.withLock { $0.last } == seeded.items)

            let partition = try await Seed.partition(seeded.id, in: store)
            let left = Seed.withoutEvents(partition)
            #expect(left.map(\.key) == [Tenant.key(seeded.id)])
            // The events stay: the tenant's audit record, with the offboarding's two.
            #expect(try Seed.eventTypes(partition) == Seed.names(.tenantOnboarded, .tenantOffboarding, .tenantOffboarded))
            let stored = try Tenant(item: try #require(left.first))
            #expect(stored == tombstone)
            #expect(stored.status == .offboarded && stored.offboardedAt != nil && stored.offboardingStartedAt == started.offboardingStartedAt)
            #expect(stored.clientName == nil && stored.clientPhone == nil && stored.version == 3)
            #expect(left.first?["clientName"] == nil && left.first?["clientPhone"] == nil)
            for keyId in seeded.keyIds {
                #expect(try await store.get(ItemKey(tenantId: "_apikey#\(keyId)", resourceKey: "APIKEY")) == nil, "look-up of \(keyId) left")
            }
            #expect(try await store.get(OffboardingMarker.key(seeded.id)) == nil)
            #expect(try await offboarding.pending().contains(seeded.id) == false)
            // The tombstone cannot be offboarded again.
            await #expect(throws: OnboardingError.self) { try await offboarding.start(seeded.id) }
        }
    }

    // MARK: - Interrupted, resumed, repeated

    @Test("interrupted after its first batch, a tenant stays OFFBOARDING with its marker; a fresh resumer completes it", arguments: OffboardingStore.all)
    func interruptedAfterFirstBatch(_ subject: OffboardingStore) async throws {
        try await subject.withStore { base in
            let seeded = try await Seed.tenant(in: base, resources: 250, extraKeys: 1)
            _ = try await Offboarding(store: base).start(seeded.id)

            // The finish's writes: batch 1, batch 2, … The second one fails, as if the process died.
            let failing = FailingStore(base: base, failAt: 2, counting: .writesOnly)
            await #expect(throws: StoreError.self) { _ = try await Offboarding(store: failing).finish(seeded.id) }
            #expect(failing.failuresInjected == 1)

            let profile = try Tenant(item: try #require(try await base.get(Tenant.key(seeded.id))))
            #expect(profile.status == .offboarding && profile.clientName != nil)
            // The first batch: 99 deletes (the 100th write counts them on the marker); each key
            // takes two (its look-up item goes with it), and all of them sort first (APIKEY#).
            let firstBatch = 99 - seeded.keyIds.count
            let marker = try #require(try await base.get(OffboardingMarker.key(seeded.id)))
            #expect(marker["itemsDeleted"] == .int(firstBatch))
            #expect(Seed.withoutEvents(try await Seed.partition(seeded.id, in: base)).count == 1 + seeded.items - firstBatch)
            #expect(try await Offboarding(store: base).progress(seeded.id) == firstBatch)

            // A new start of the service: it reads the markers and finishes what it finds.
            let results = try await Offboarding(store: base).resumeAll()
            let resumed = try #require(results.first { $0.0 == seeded.id }?.1)
            let run = try resumed.get()
            guard case .finished = run.outcome else {
                Issue.record("not finished: \(run)")
                return
            }
            #expect(run.itemsDeleted == seeded.items)
            try await Seed.expectOffboarded(seeded, in: base)
        }
    }

    @Test("finishing twice, one after the other or at the same time, is harmless", arguments: OffboardingStore.all)
    func finishTwice(_ subject: OffboardingStore) async throws {
        try await subject.withStore { store in
            let offboarding = Offboarding(store: store, batchWrites: 10)
            let first = try await Seed.tenant(in: store, resources: 40, extraKeys: 1)
            _ = try await offboarding.start(first.id)
            let once = try await offboarding.finish(first.id)
            let twice = try await offboarding.finish(first.id)
            guard case .finished(let tombstone) = once.outcome else {
                Issue.record("not finished: \(once)")
                return
            }
            #expect(twice.outcome == .finished(tombstone) && twice.batches == 0)
            try await Seed.expectOffboarded(first, in: store)

            let second = try await Seed.tenant(in: store, resources: 40, extraKeys: 1)
            _ = try await offboarding.start(second.id)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<2 {
                    group.addTask {
                        do {
                            _ = try await offboarding.finish(second.id)
                        } catch let error as StoreError where error.code == .unavailable || error.code == .transactionCanceled {
                            // DynamoDB cancels a transaction that meets another on the same item;
                            // the other finisher, or the next resume, completes it.
                        }
                    }
                }
                try await group.waitForAll()
            }
            _ = try await Offboarding(store: store).resumeAll()
            try await Seed.expectOffboarded(second, in: store)
        }
    }

    @Test("a marker without an OFFBOARDING tenant is just removed", arguments: OffboardingStore.all)
    func staleMarker(_ subject: OffboardingStore) async throws {
        try await subject.withStore { store in
            let seeded = try await Seed.tenant(in: store, resources: 3, extraKeys: 0)
            let absent = try #require(TenantID(UUID().uuidString.lowercased()))
            for id in [seeded.id, absent] {
                try await store.put(Item(key: OffboardingMarker.key(id), attributes: ["itemsDeleted": .int(0)]))
            }
            let results = try await Offboarding(store: store).resumeAll()
            for id in [seeded.id, absent] {
                #expect(try results.first { $0.0 == id }?.1.get().outcome == .notOffboarding)
                #expect(try await store.get(OffboardingMarker.key(id)) == nil)
            }
            // The ACTIVE tenant keeps everything.
            #expect(try await Seed.state(of: seeded, in: store) == .whole)
        }
    }

    // MARK: - Every failure point

    @Test(
        "whichever store call of an offboarding fails (before or after it reached the store), the tenant is ACTIVE and whole, or OFFBOARDING with its marker, or OFFBOARDED without one; a resume completes it",
        arguments: OffboardingStore.all, [FailingStore.Mode.beforeForwarding, .afterForwarding]
    )
    func everyFailurePoint(_ subject: OffboardingStore, mode: FailingStore.Mode) async throws {
        try await subject.withStore { base in
            let failing = FailingStore(base: base, failAt: nil, mode: mode)
            // Small batches: 8 writes each, so 25 resources, 2 keys and a usage counter make 5 batches.
            func offboard(_ id: TenantID) async throws {
                let offboarding = Offboarding(store: failing, batchWrites: 8)
                _ = try await offboarding.start(id)
                _ = try await offboarding.finish(id)
            }
            let clean = try await Seed.tenant(in: base, resources: 25, extraKeys: 1)
            try await offboard(clean.id)
            let operations = failing.operations
            #expect(operations > 10)
            try await Seed.expectOffboarded(clean, in: base)

            for failAt in 1...(operations + 1) {
                let seeded = try await Seed.tenant(in: base, resources: 25, extraKeys: 1)
                failing.setFailure(at: failAt)
                do {
                    try await offboard(seeded.id)
                    #expect(failAt == operations + 1 || mode == .afterForwarding, "call \(failAt) of \(operations) did not fail")
                } catch let error as StoreError where error.code == .unavailable {}
                let state = try await Seed.state(of: seeded, in: base)
                switch state {
                case .whole, .offboardingWithMarker, .offboarded: break
                case .broken(let description): Issue.record("failing call \(failAt) (\(mode)) left \(description)")
                }
                // What the admin and a restart do: offboard again (idempotent), then resume.
                if state == .whole { _ = try await Offboarding(store: base).start(seeded.id) }
                _ = try await Offboarding(store: base).resumeAll()
                try await Seed.expectOffboarded(seeded, in: base)
            }
        }
    }

    // MARK: - The events

    @Test("with purgeEvents the events go too, in batches, and only tenant.offboarded is left; without, all stay", arguments: OffboardingStore.all)
    func purgeEvents(_ subject: OffboardingStore) async throws {
        try await subject.withStore { store in
            for purge in [true, false] {
                let seeded = try await Seed.tenant(in: store, resources: 20, extraKeys: 1)
                // 30 more events of the tenant, as its changes record them.
                let lifecycle = TenantLifecycle(store: store)
                for index in 0..<30 {
                    _ = try await lifecycle.update(seeded.id, clientName: .string("Name \(index)"), clientPhone: nil)
                }
                let offboarding = Offboarding(store: store, batchWrites: 10)
                _ = try await offboarding.start(seeded.id, purgeEvents: purge)
                #expect(try await store.get(OffboardingMarker.key(seeded.id))?["purgeEvents"] == (purge ? .bool(true) : nil))
                let run = try await offboarding.finish(seeded.id)
                guard case .finished(let tombstone) = run.outcome else {
                    Issue.record("not finished: \(run)")
                    return
                }
                let partition = try await Seed.partition(seeded.id, in: store)
                #expect(Seed.withoutEvents(partition).map(\.key) == [Tenant.key(seeded.id)])
                let events = try partition.filter { $0.key.resourceKey.hasPrefix(EventOutboxLayout.prefix) }.map { item in
                    try TenantEvent(envelopeJSON: try #require(item[EventOutboxLayout.Attribute.envelope]?.stringValue))
                }
                if purge {
                    // Deleted in the batches and counted; the last event, written with the tombstone, stays.
                    #expect(events.map(\.type) == [.tenantOffboarded])
                    #expect(run.itemsDeleted == seeded.items + 1 + 30 + 1, "the items, the onboarding's, the updates' and the offboarding's events")
                } else {
                    #expect(events.count == 1 + 30 + 2)
                    #expect(run.itemsDeleted == seeded.items)
                }
                #expect(events.last?.data["tenant"] == .map(APIRepresentation.tenant(tombstone)))
                #expect(events.last?.actor == "system" && events.last?.requestID == nil, "background work unless bound")
            }
        }
    }

    @Test("a purge asked again while OFFBOARDING is kept on the marker; the change context names the actor", arguments: OffboardingStore.all)
    func purgeAskedAgain(_ subject: OffboardingStore) async throws {
        try await subject.withStore { store in
            let seeded = try await Seed.tenant(in: store, resources: 5, extraKeys: 0)
            let offboarding = Offboarding(store: store)
            try await ChangeContext.$current.withValue(ChangeContext(actor: "operator", requestID: "req-1")) {
                _ = try await offboarding.start(seeded.id)
                _ = try await offboarding.start(seeded.id, purgeEvents: true)
            }
            #expect(try await store.get(OffboardingMarker.key(seeded.id))?["purgeEvents"] == .bool(true))
            _ = try await offboarding.finish(seeded.id)
            let partition = try await Seed.partition(seeded.id, in: store)
            let events = try partition.filter { $0.key.resourceKey.hasPrefix(EventOutboxLayout.prefix) }.map { item in
                try TenantEvent(envelopeJSON: try #require(item[EventOutboxLayout.Attribute.envelope]?.stringValue))
            }
            #expect(events.map(\.type) == [.tenantOffboarded])
            #expect(Seed.withoutEvents(partition).count == 1)
            // The purged events were delivered from the outbox all the same (no dispatcher runs
            // here: they are still in it): one tenant.offboarding (the second start made none),
            // by the actor and request bound around the start.
            let outbox = try await store.query(ItemQuery(tenantId: EventOutboxLayout.shard(of: seeded.id), prefix: EventOutboxLayout.prefix, limit: 1000))
            let outboxEvents = try outbox.items.filter { $0[EventOutboxLayout.Attribute.eventTenantId] == .string(seeded.id.rawValue) }.map { item in
                try TenantEvent(envelopeJSON: try #require(item[EventOutboxLayout.Attribute.envelope]?.stringValue))
            }
            let started = outboxEvents.filter { $0.type == .tenantOffboarding }
            #expect(started.count == 1)
            #expect(started.first?.actor == "operator" && started.first?.requestID == "req-1")
            #expect(started.first?.data["purgeEvents"] == .bool(false), "as first asked")
            #expect(outboxEvents.filter { $0.type == .tenantOffboarded }.count == 1)
        }
    }

    // MARK: - Concurrent writes

    @Test("resources written while the tenant is offboarded never survive it", arguments: OffboardingStore.all)
    func concurrentWritesDoNotSurvive(_ subject: OffboardingStore) async throws {
        try await subject.withStore { store in
            let seeded = try await Seed.tenant(in: store, resources: 150, extraKeys: 0)
            let resources = TenantResources(store: store)
            // Each writer writes new resources until one is refused (the tenant no longer takes any).
            let refused = try await withThrowingTaskGroup(of: Int.self) { group in
                for writer in 0..<4 {
                    group.addTask {
                        var index = 0
                        while true {
                            index += 1
                            do {
                                let ref = try ResourceRef(type: "late", resourceId: "w\(writer)-\(index)")
                                _ = try await resources.put(ref, of: seeded.id, document: .map(["n": .int(index)]))
                            } catch let error as OnboardingError where error.code == .tenantNotFound {
                                return 1
                            }
                        }
                    }
                }
                group.addTask {
                    try await Task.sleep(for: .milliseconds(50))
                    let offboarding = Offboarding(store: store, batchWrites: 20)
                    _ = try await offboarding.start(seeded.id)
                    _ = try await offboarding.finish(seeded.id)
                    return 0
                }
                return try await group.reduce(0, +)
            }
            #expect(refused == 4)
            try await Seed.expectOffboarded(seeded, in: store)
        }
    }
}

/// A store for the offboarding tests: SQLite on a fresh file, or a fresh table on a moto of the
/// test's own.
struct OffboardingStore: Sendable, CustomTestStringConvertible {
    let name: String
    let withStore: @Sendable (@Sendable (any TenantStore) async throws -> Void) async throws -> Void

    var testDescription: String { name }

    static let sqlite = OffboardingStore(name: "SQLite") { body in
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("onboard-offboarding-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try await body(try SQLiteTenantStore(path: directory.appendingPathComponent("store.sqlite").path))
    }

    static let dynamoDB = OffboardingStore(name: "DynamoDB (own moto)") { body in
        let moto = try await MotoServer.start()
        defer { moto.stop() }
        let table = "offboarding-\(UUID().uuidString.prefix(8).lowercased())"
        try await DynamoDBTable.create(moto.dynamoDB(), name: table)
        try await body(DynamoDBTenantStore(dynamoDB: moto.dynamoDB(), table: table))
    }

    /// Like ``StoreUnderTest/all``: DynamoDB where moto can run (always under `CI=true`);
    /// ``TenantStoreConformanceTests/dynamoDBCases()`` shows the skip otherwise.
    static var all: [OffboardingStore] { Requirements.moto ? [.sqlite, .dynamoDB] : [.sqlite] }
}

/// Tenants to offboard, written straight through the store, and what is left of them.
enum Seed {
    struct Seeded: Sendable {
        let id: TenantID
        let keyIds: [String]
        /// Items of the partition besides the profile and the events (what offboarding deletes).
        let items: Int
    }

    /// A tenant onboarded as `POST /onboard` does (profile, first key, its look-up, its
    /// `tenant.onboarded` event), with more keys, a usage counter and `resources` documents,
    /// written straight in transactions of 100.
    static func tenant(in store: any TenantStore, resources: Int, extraKeys: Int) async throws -> Seeded {
        let hasher = FixedHasher()
        let onboarded = try await OnboardingService(store: store, hasher: hasher).onboard(
            OnboardingRequest(clientName: .string("Offboarded Ltd"), clientPhone: .string("+14155550123"))
        )
        let id = onboarded.tenant.id
        var keyIds = [onboarded.apiKey.key.keyId]
        let apiKeys = ApiKeys(store: store, hasher: hasher)
        var writes: [TransactionWrite] = [
            .put(Item(tenantId: id.rawValue, resourceKey: "USAGE#2026-12", attributes: ["requests": .int(7)]), condition: nil)
        ]
        for _ in 0..<extraKeys {
            let (issued, keyWrites) = apiKeys.newKey(for: id, at: onboarded.tenant.createdAt)
            keyIds.append(issued.key.keyId)
            writes += keyWrites
        }
        for index in 0..<resources {
            writes.append(.put(Item(tenantId: id.rawValue, resourceKey: "doc#\(index)", attributes: [
                "resourceType": .string("doc"), "resourceId": .string("\(index)"), "data": .map(["n": .int(index)]),
                "etag": .string("e\(index)"), "createdAt": .string("2026-12-02T00:00:00Z"), "updatedAt": .string("2026-12-02T00:00:00Z"),
            ]), condition: nil))
        }
        var start = 0
        while start < writes.count {
            let end = min(start + TransactionLimits.maxWrites, writes.count)
            try await store.transact(Array(writes[start..<end]))
            start = end
        }
        return Seeded(id: id, keyIds: keyIds, items: keyIds.count + 1 + resources)
    }

    /// Every item of the tenant's partition, the profile included.
    static func partition(_ id: TenantID, in store: any TenantStore) async throws -> [Item] {
        var items: [Item] = []
        var start: ItemKey?
        repeat {
            let page = try await store.query(ItemQuery(tenantId: id.rawValue, prefix: "", limit: ItemQuery.maxLimit, exclusiveStartKey: start))
            items += page.items
            start = page.lastEvaluatedKey
        } while start != nil
        return items
    }

    /// The items of a partition that are not events.
    static func withoutEvents(_ items: [Item]) -> [Item] {
        items.filter { !$0.key.resourceKey.hasPrefix(EventOutboxLayout.prefix) }
    }

    /// The types of the partition's events, sorted by name (as a multiset: the services of a
    /// test make their event ids with generators of their own, so within one millisecond their
    /// order is not defined).
    static func eventTypes(_ items: [Item]) throws -> [String] {
        try items.filter { $0.key.resourceKey.hasPrefix(EventOutboxLayout.prefix) }.map { item in
            try TenantEvent(envelopeJSON: try #require(item[EventOutboxLayout.Attribute.envelope]?.stringValue)).type.rawValue
        }.sorted()
    }

    /// `types` as ``eventTypes(_:)`` gives them.
    static func names(_ types: TenantEventType...) -> [String] { types.map(\.rawValue).sorted() }

    enum State: Equatable {
        /// ACTIVE, no marker, every item and look-up there, only the onboarding's event: nothing happened.
        case whole
        /// OFFBOARDING with its marker: a resume finishes it.
        case offboardingWithMarker
        /// OFFBOARDED, no marker, only the tombstone and the events (one `tenant.offboarding`, one
        /// `tenant.offboarded`), no look-up.
        case offboarded
        case broken(String)
    }

    static func state(of seeded: Seeded, in store: any TenantStore) async throws -> State {
        let all = try await partition(seeded.id, in: store)
        let events = try eventTypes(all)
        let items = withoutEvents(all)
        let marker = try await store.get(OffboardingMarker.key(seeded.id))
        guard let profileItem = items.first(where: { $0.key == Tenant.key(seeded.id) }) else { return .broken("no profile") }
        let profile = try Tenant(item: profileItem)
        var lookups = 0
        for keyId in seeded.keyIds where try await store.get(ItemKey(tenantId: "_apikey#\(keyId)", resourceKey: "APIKEY")) != nil {
            lookups += 1
        }
        let keyItems = Set(items.map(\.key.resourceKey).filter { $0.hasPrefix("APIKEY#") }.map { String($0.dropFirst(7)) })
        switch profile.status {
        case .active where marker == nil && items.count == 1 + seeded.items && lookups == seeded.keyIds.count && events == names(.tenantOnboarded):
            return .whole
        case .offboarding where marker != nil && events == names(.tenantOnboarded, .tenantOffboarding):
            // Each key still listed has its look-up (they go in the same batch).
            let lookupsOfListed = seeded.keyIds.filter { keyItems.contains($0) }.count
            return lookups == lookupsOfListed ? .offboardingWithMarker : .broken("\(lookups) look-ups for \(keyItems.count) keys")
        case .offboarded where marker == nil && items.count == 1 && lookups == 0 && profile.clientName == nil
            && events == names(.tenantOnboarded, .tenantOffboarding, .tenantOffboarded):
            return .offboarded
        default:
            return .broken("\(profile.status.rawValue), marker: \(marker != nil), \(items.count) items, \(lookups) look-ups, events \(events)")
        }
    }

    static func expectOffboarded(_ seeded: Seeded, in store: any TenantStore, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        #expect(try await state(of: seeded, in: store) == .offboarded, sourceLocation: sourceLocation)
    }
}

/// Onboarding needs a hasher for the keys; these tests never present one.
private struct FixedHasher: SecretHasher {
    func sha256Hex(_ secret: String) -> String { String(repeating: "0", count: 64) }
}
