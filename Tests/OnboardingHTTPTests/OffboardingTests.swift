import Foundation
import HTTPTypes
import OnboardTestSupport
import OnboardingCore
import OnboardingHTTP
import Synchronization
import Testing

/// `DELETE /tenants/{tenantId}` through the application `serve` runs: 202 at once, the
/// background worker finishes, the admin sees the tombstone, the tenant's credentials stop working.
@Suite("Offboarding over HTTP", .testStoreAvailable)
struct OffboardingTests {
    @Test("DELETE answers 202 OFFBOARDING; the worker empties the partition; the admin sees the tombstone, the tenant's key gets 401, others 404")
    func offboardOverHTTP() async throws {
        try await TestServer.run { api, fixture in
            let (id, key) = try await api.newTenant("Leaving Ltd")
            let (_, otherKey) = try await api.newTenant("Staying Ltd")
            for index in 0..<30 {
                #expect(try await api.call(.put, "/tenants/\(id)/resources/doc/d\(index)", token: key, json: #"{"n": \#(index)}"#).status == 201)
            }
            let second = try await api.call(.post, "/tenants/\(id)/api-keys", token: key)
            let secondKeyId = try #require(second["keyId"])

            // Only the admin may offboard.
            #expect(try await api.call(.delete, "/tenants/\(id)", token: key).status == 403)

            let accepted = try await api.call(.delete, "/tenants/\(id)", token: TestServer.adminToken)
            #expect(accepted.status == 202)
            #expect(accepted["status"] == "OFFBOARDING" && accepted["offboardingStartedAt"] != nil)
            #expect(accepted.headers[.location] == "/tenants/\(id)")
            #expect(accepted.headers[.eTag] == "\"\(try #require(accepted.json["version"]?.intValue))\"")
            // At once, the tenant's own credentials stop working.
            #expect(try await api.call(.get, "/tenants/\(id)", token: key).status == 401)

            let tombstone = try await Self.waitUntilOffboarded(id, api: api)
            #expect(tombstone["clientName"] == nil && tombstone["clientPhone"] == nil)
            #expect(tombstone["offboardedAt"] != nil && tombstone["offboardingStartedAt"] == accepted["offboardingStartedAt"])

            // Only the tombstone and the events (the audit record) are left of the partition; the
            // keys' look-up items are gone.
            let left = try await fixture.store.query(ItemQuery(tenantId: id, prefix: "", limit: 100))
            #expect(left.items.map(\.key.resourceKey).filter { !$0.hasPrefix(EventOutboxLayout.prefix) } == ["TENANT#\(id)"])
            #expect(left.items.filter { $0.key.resourceKey.hasPrefix(EventOutboxLayout.prefix) }.count == 4, "onboarded, key created, offboarding, offboarded")
            #expect(try await fixture.store.get(ItemKey(tenantId: "_apikey#\(secondKeyId)", resourceKey: "APIKEY")) == nil)

            // Tenants: its key 401, another tenant 404; the admin: the tombstone, and no second offboarding.
            #expect(try await api.call(.get, "/tenants/\(id)", token: key).status == 401)
            #expect(try await api.call(.get, "/tenants/\(id)", token: otherKey).status == 404)
            let again = try await api.call(.delete, "/tenants/\(id)", token: TestServer.adminToken)
            #expect(again.status == 409 && again["code"] == "invalid-transition")
            #expect(again["detail"]?.contains("OFFBOARDED") == true)
        }
    }

    @Test("DELETE twice while OFFBOARDING answers the same 202; an unknown or malformed id is 404")
    func repeatedAndUnknown() async throws {
        // A store that refuses every batch keeps the tenant OFFBOARDING for the second DELETE.
        let holdBatches = HoldBatches()
        try await TestServer.run(wrapStore: { holdBatches.wrap($0) }) { api, _ in
            let (id, _) = try await api.newTenant()
            _ = try await api.call(.put, "/tenants/\(id)/resources/doc/one", token: TestServer.adminToken, json: "{}")
            let first = try await api.call(.delete, "/tenants/\(id)", token: TestServer.adminToken)
            let second = try await api.call(.delete, "/tenants/\(id)", token: TestServer.adminToken)
            #expect(first.status == 202 && second.status == 202)
            #expect(first.json == second.json)
            for unknown in [UUID().uuidString.lowercased(), "not-a-tenant"] {
                let response = try await api.call(.delete, "/tenants/\(unknown)", token: TestServer.adminToken)
                #expect(response.status == 404 && response["code"] == "tenant-not-found")
            }
            holdBatches.release()
            _ = try await Self.waitUntilOffboarded(id, api: api)
        }
    }

    @Test("a fresh worker's start finishes an offboarding nobody enqueued (a crash after the 202)")
    func serviceStartResumes() async throws {
        try await TestServer.run { api, fixture in
            let (id, key) = try await api.newTenant()
            for index in 0..<5 {
                _ = try await api.call(.put, "/tenants/\(id)/resources/doc/d\(index)", token: key, json: "{}")
            }
            // Started as DELETE starts it, but the process "died" before its worker ran.
            let tenantId = try #require(TenantID(id))
            _ = try await Offboarding(store: fixture.store).start(tenantId)
            #expect(try await Offboarding(store: fixture.store).pending().contains(tenantId))

            let worker = OffboardingWorker(store: fixture.store, configuration: .init(pollInterval: .milliseconds(20)))
            let running = Task { try await worker.run() }
            defer { running.cancel() }
            _ = try await Self.waitUntilOffboarded(id, api: api)
            #expect(try await Offboarding(store: fixture.store).pending().contains(tenantId) == false)
        }
    }

    @Test("Lambda's bounded step does at most its batches per call, and the calls that follow finish the work")
    func boundedStep() async throws {
        try await TestServer.run { api, fixture in
            let (id, _) = try await api.newTenant()
            let tenantId = try #require(TenantID(id))
            // 300 resources: 4 batches of up to 99 deletes.
            var writes: [TransactionWrite] = []
            for index in 0..<300 {
                writes.append(.put(Item(tenantId: id, resourceKey: "doc#\(index)", attributes: ["n": .int(index)]), condition: nil))
            }
            for start in stride(from: 0, to: writes.count, by: 100) { try await fixture.store.transact(Array(writes[start..<start + 100])) }
            _ = try await Offboarding(store: fixture.store).start(tenantId)

            let worker = OffboardingWorker(store: fixture.store, configuration: .init(batchesPerStep: 1))
            await worker.runPending()
            // 99 deletes: the first key with its look-up item (2), then 97 documents.
            #expect(try await Offboarding(store: fixture.store).progress(tenantId) == 98)
            #expect(try await api.tenant(id)["status"] == "OFFBOARDING")
            for _ in 0..<4 { await worker.runPending() }
            #expect(try await api.tenant(id)["status"] == "OFFBOARDED")
            // The tombstone and the events: onboarded, offboarding, offboarded.
            #expect(try await fixture.store.query(ItemQuery(tenantId: id, prefix: "", limit: 10)).items.count == 4)
        }
    }

    @Test("GET of an OFFBOARDING tenant shows the items deleted so far; the tombstone shows none")
    func progressShows() async throws {
        try await TestServer.run { api, fixture in
            let (id, _) = try await api.newTenant()
            let tenantId = try #require(TenantID(id))
            // 150 resources: more than one batch.
            var writes: [TransactionWrite] = []
            for index in 0..<150 {
                writes.append(.put(Item(tenantId: id, resourceKey: "doc#\(index)", attributes: ["n": .int(index)]), condition: nil))
            }
            for start in stride(from: 0, to: writes.count, by: 50) { try await fixture.store.transact(Array(writes[start..<start + 50])) }
            // Started as DELETE starts it, not enqueued: the server's worker leaves it alone (it
            // read the markers at start, and TestServer sets its next reading an hour away).
            let offboarding = Offboarding(store: fixture.store)
            _ = try await offboarding.start(tenantId)

            let started = try await api.tenant(id)
            #expect(started["status"] == "OFFBOARDING")
            #expect(started.json["offboardingProgress"]?.mapValue?["itemsDeleted"]?.intValue == 0)

            // Stopped after its first batch (a crash, or Lambda's bounded step).
            let run = try await offboarding.finish(tenantId, maxBatches: 1)
            #expect(run.outcome == .unfinished && run.itemsDeleted > 0)
            let midway = try await api.tenant(id)
            #expect(midway["status"] == "OFFBOARDING")
            #expect(midway.json["offboardingProgress"]?.mapValue?["itemsDeleted"]?.intValue == run.itemsDeleted)
            #expect(midway.headers[.eTag] == started.headers[.eTag])

            let done = try await offboarding.finish(tenantId)
            #expect(done.itemsDeleted == 151)  // the 150 documents and the first API key
            let tombstone = try await api.tenant(id)
            #expect(tombstone["status"] == "OFFBOARDED")
            #expect(tombstone.json["offboardingProgress"] == nil)
        }
    }

    /// Reads the tenant as the admin until it is `OFFBOARDED` (the worker polls every 250 ms).
    static func waitUntilOffboarded(_ id: String, api: APIClient, sourceLocation: SourceLocation = #_sourceLocation) async throws -> APIResponse {
        for _ in 0..<400 {
            let response = try await api.tenant(id)
            #expect(response.status == 200, sourceLocation: sourceLocation)
            if response["status"] == "OFFBOARDED" { return response }
            #expect(response["status"] == "OFFBOARDING", sourceLocation: sourceLocation)
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("the tenant \(id) was not offboarded within 20 s", sourceLocation: sourceLocation)
        return try await api.tenant(id)
    }
}

/// Makes every offboarding batch fail until released (a store outage that only hits the worker).
final class HoldBatches: Sendable {
    private let held = Mutex(true)

    func release() { held.withLock { $0 = false } }

    func wrap(_ base: any TenantStore) -> any TenantStore { HoldingStore(base: base, holder: self) }

    fileprivate var isHeld: Bool { held.withLock { $0 } }
}

private struct HoldingStore: TenantStore {
    let base: any TenantStore
    let holder: HoldBatches

    func get(_ key: ItemKey) async throws -> Item? { try await base.get(key) }
    func put(_ item: Item, condition: WriteCondition?) async throws { try await base.put(item, condition: condition) }
    func delete(_ key: ItemKey, condition: WriteCondition?) async throws { try await base.delete(key, condition: condition) }
    func update(_ key: ItemKey, set: [String: AttributeValue], condition: WriteCondition?) async throws {
        try await base.update(key, set: set, condition: condition)
    }
    func transact(_ writes: [TransactionWrite]) async throws {
        // A batch deletes and counts on the marker; nothing else writes the marker partition that way.
        let isBatch = writes.contains { $0.key.tenantId == OffboardingMarker.partition } && writes.contains {
            if case .delete = $0 { true } else { false }
        }
        if isBatch && holder.isHeld { throw StoreError(.unavailable, "held") }
        try await base.transact(writes)
    }
    func query(_ query: ItemQuery) async throws -> ItemPage { try await base.query(query) }
    func queryListIndex(_ query: ListIndexQuery) async throws -> [Item] { try await base.queryListIndex(query) }
    func checkHealth() async throws { try await base.checkHealth() }
}

/// Sweeps as the store it wraps does (the application's idempotency sweeper sweeps SQLite only),
/// so the wrapper changes nothing but the batches.
extension HoldingStore: IdempotencyRecordSweeping {
    func deleteExpiredIdempotencyRecords(now: Date, limit: Int) async throws -> Int {
        guard let sweeping = base as? any IdempotencyRecordSweeping else { return 0 }
        return try await sweeping.deleteExpiredIdempotencyRecords(now: now, limit: limit)
    }
}
