import Foundation
import HTTPTypes
import OnboardTestSupport
import OnboardingCore
import OnboardingHTTP
import Synchronization
import Testing

/// Every change of a tenant records its event in the change's own transaction: each route's
/// change leaves exactly its event in the tenant's partition (type, subject, data, actor, request
/// id); a change whose transaction fails leaves neither; offboarding keeps the events (or, purged,
/// only `tenant.offboarded`); the audit trail lists them newest first. On the suite's store
/// (SQLite, or DynamoDB on moto in CI).
@Suite("Events recorded with their changes", .testStoreAvailable)
struct EventRecordingTests {
    static let admin = TestServer.adminToken

    // MARK: Helpers

    /// The tenant's audit events as stored in its partition, oldest first.
    static func stored(_ store: any TenantStore, _ id: String) async throws -> [TenantEvent] {
        var events: [TenantEvent] = []
        var start: ItemKey?
        repeat {
            let page = try await store.query(ItemQuery(tenantId: id, prefix: EventOutboxLayout.prefix, limit: 1000, exclusiveStartKey: start))
            for item in page.items {
                events.append(try TenantEvent(envelopeJSON: try #require(item[EventOutboxLayout.Attribute.envelope]?.stringValue)))
            }
            start = page.lastEvaluatedKey
        } while start != nil
        return events
    }

    /// Runs `change` and returns the one event it added to the tenant's partition (failing the
    /// test unless it added exactly one).
    static func only(
        _ store: any TenantStore, _ id: String, sourceLocation: SourceLocation = #_sourceLocation, _ change: () async throws -> Void
    ) async throws -> TenantEvent {
        let before = try await stored(store, id)
        try await change()
        let after = try await stored(store, id)
        #expect(after.count == before.count + 1, "exactly one event per change", sourceLocation: sourceLocation)
        #expect(Array(after.prefix(before.count)) == before, "earlier events stay as they were", sourceLocation: sourceLocation)
        return try #require(after.last, sourceLocation: sourceLocation)
    }

    /// Headers with the admin's token, an `X-Request-Id` and a JSON content type.
    static func headers(_ requestID: String, token: String = admin, contentType: String? = "application/json") -> HTTPFields {
        var headers: HTTPFields = [.authorization: "Bearer \(token)", .xRequestIDForEvents: requestID]
        if let contentType { headers[.contentType] = contentType }
        return headers
    }

    /// The `keyId` of an API key's text (`onb_<keyId>_<secret>`).
    static func keyId(_ key: String) -> String { String(key.split(separator: "_", maxSplits: 2)[1]) }

    /// Waits (without a time limit of its own) until the worker left the tombstone.
    static func waitUntilOffboarded(_ id: String, api: APIClient) async throws -> APIResponse {
        while true {
            let response = try await api.tenant(id)
            if response["status"] == "OFFBOARDED" { return response }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Writes `count` audit events straight into the tenant's partition (types by `type(index)`),
    /// 100 to a transaction.
    static func seedEvents(
        _ store: any TenantStore, _ id: String, count: Int, type: (Int) -> TenantEventType = { _ in .tenantUpdated }
    ) async throws -> [TenantEvent] {
        let tenantId = try #require(TenantID(id))
        let recorder = EventRecorder(source: "urn:onboard:test")
        var events: [TenantEvent] = []
        var writes: [TransactionWrite] = []
        for index in 0..<count {
            let event = recorder.event(type(index), tenantId: tenantId, data: ["n": .int(index)])
            events.append(event)
            // The audit item only: these tests read the tenant's partition.
            writes.append(recorder.writes(for: event)[0])
            if writes.count == TransactionLimits.maxWrites {
                try await store.transact(writes)
                writes = []
            }
        }
        if !writes.isEmpty { try await store.transact(writes) }
        return events
    }

    // MARK: Each route's event

    @Test("each change through the API records exactly its event: type, subject, data, actor and request id; no change, no event")
    func eachRoute() async throws {
        try await TestServer.run { api, fixture in
            let store = fixture.store
            // POST /onboard (open: no credentials).
            var onboardedResponse: APIResponse?
            let onboardedEvent = try await Self.onlyOnboarding(store) {
                let response = try await api.send(
                    .post, "/onboard", headers: [.contentType: "application/json", .xRequestIDForEvents: "req-onboard"],
                    body: #"{"clientName": "Evented Ltd", "clientPhone": "+14155550100"}"#
                )
                #expect(response.status == 201)
                onboardedResponse = response
                return try #require(response["tenantId"])
            }
            let onboarded = try #require(onboardedResponse)
            let id = try #require(onboarded["tenantId"])
            let firstKey = try #require(onboarded["apiKey"])
            #expect(onboardedEvent.type == .tenantOnboarded)
            #expect(onboardedEvent.tenantId.rawValue == id && onboardedEvent.envelope["subject"] == .string(id))
            #expect(onboardedEvent.requestID == "req-onboard")
            #expect(onboardedEvent.actor == "anonymous")
            #expect(onboardedEvent.data["tenant"] == onboarded.json["tenant"], "the tenant as the API shows it")
            let firstKeyData = try #require(onboardedEvent.data["apiKey"]?.mapValue)
            #expect(firstKeyData["keyId"] == .string(Self.keyId(firstKey)))
            #expect(firstKeyData["prefix"]?.stringValue.map { firstKey.hasPrefix($0.dropLast()) } == true)
            #expect(Set(firstKeyData.keys) == ["keyId", "prefix", "createdAt"])
            #expect(!onboardedEvent.envelopeJSON.contains(firstKey), "never the key's secret")

            // PATCH /tenants/{id} as the admin.
            let updatedEvent = try await Self.only(store, id) {
                let response = try await api.send(
                    .patch, "/tenants/\(id)", headers: Self.headers("req-patch", contentType: "application/merge-patch+json"),
                    body: #"{"clientName": "Renamed Ltd"}"#
                )
                #expect(response.status == 200)
                #expect(Self.tenantData(of: try await Self.lastEvent(store, id)) == response.json)
            }
            #expect(updatedEvent.type == .tenantUpdated && updatedEvent.actor == "admin" && updatedEvent.requestID == "req-patch")
            #expect(updatedEvent.data["changed"] == .list([.string("clientName")]))
            #expect(updatedEvent.data["tenant"]?.mapValue?["clientName"] == .string("Renamed Ltd"))
            #expect(updatedEvent.data["tenant"]?.mapValue?["version"] == .int(2))

            // An empty patch changes nothing and records nothing; neither does a refused change.
            let quiet = try await Self.stored(store, id)
            #expect(try await api.send(
                .patch, "/tenants/\(id)", headers: Self.headers("req-empty", contentType: "application/merge-patch+json"), body: "{}"
            ).status == 200)
            #expect(try await api.send(.post, "/tenants/\(id)/reactivate", headers: Self.headers("req-refused", contentType: nil)).status == 409)
            #expect(try await api.send(
                .patch, "/tenants/\(id)", headers: Self.headers("req-invalid", contentType: "application/merge-patch+json"),
                body: #"{"clientPhone": "not a phone"}"#
            ).status == 422)
            #expect(try await Self.stored(store, id) == quiet)

            // POST /tenants/{id}/suspend.
            let suspendedEvent = try await Self.only(store, id) {
                let response = try await api.send(
                    .post, "/tenants/\(id)/suspend", headers: Self.headers("req-suspend"), body: #"{"reason": "  unpaid invoice  "}"#
                )
                #expect(response.status == 200)
                #expect(Self.tenantData(of: try await Self.lastEvent(store, id)) == response.json)
            }
            #expect(suspendedEvent.type == .tenantSuspended && suspendedEvent.actor == "admin" && suspendedEvent.requestID == "req-suspend")
            #expect(suspendedEvent.data["reason"] == .string("unpaid invoice"), "as stored: trimmed")
            #expect(suspendedEvent.data["changed"] == .list(["status", "suspendedAt", "suspensionReason"].map { .string($0) }))

            // POST /tenants/{id}/reactivate.
            let reactivatedEvent = try await Self.only(store, id) {
                let response = try await api.send(.post, "/tenants/\(id)/reactivate", headers: Self.headers("req-reactivate", contentType: nil))
                #expect(response.status == 200)
                #expect(Self.tenantData(of: try await Self.lastEvent(store, id)) == response.json)
            }
            #expect(reactivatedEvent.type == .tenantReactivated && reactivatedEvent.requestID == "req-reactivate")
            #expect(reactivatedEvent.data["changed"] == .list(["status", "suspendedAt", "suspensionReason"].map { .string($0) }))
            #expect(reactivatedEvent.data["tenant"]?.mapValue?["status"] == .string("ACTIVE"))

            // POST /tenants/{id}/api-keys with the tenant's own key.
            var issued: APIResponse?
            let createdEvent = try await Self.only(store, id) {
                let response = try await api.send(.post, "/tenants/\(id)/api-keys", headers: Self.headers("req-key", token: firstKey, contentType: nil))
                #expect(response.status == 201)
                issued = response
            }
            let newKey = try #require(issued)
            let newKeyId = try #require(newKey["keyId"])
            #expect(createdEvent.type == .apiKeyCreated && createdEvent.requestID == "req-key")
            #expect(createdEvent.actor == "apikey:\(Self.keyId(firstKey))")
            #expect(createdEvent.data["tenantId"] == .string(id))
            #expect(createdEvent.data["apiKey"] == .map([
                "keyId": .string(newKeyId), "prefix": try #require(newKey.json["prefix"]), "createdAt": try #require(newKey.json["createdAt"]),
            ]))
            #expect(!createdEvent.envelopeJSON.contains(try #require(newKey["apiKey"])), "never the key's secret")

            // DELETE /tenants/{id}/api-keys/{keyId} as the admin.
            let revokedEvent = try await Self.only(store, id) {
                let response = try await api.send(.delete, "/tenants/\(id)/api-keys/\(newKeyId)", headers: Self.headers("req-revoke", contentType: nil))
                #expect(response.status == 204)
            }
            #expect(revokedEvent.type == .apiKeyRevoked && revokedEvent.actor == "admin" && revokedEvent.requestID == "req-revoke")
            #expect(revokedEvent.data["apiKey"] == createdEvent.data["apiKey"])
            // Revoking it again: 404, no event.
            let beforeSecondRevoke = try await Self.stored(store, id)
            #expect(try await api.send(.delete, "/tenants/\(id)/api-keys/\(newKeyId)", headers: Self.headers("req-revoke-2", contentType: nil)).status == 404)
            #expect(try await Self.stored(store, id) == beforeSecondRevoke)

            // DELETE /tenants/{id}: tenant.offboarding by the admin, then tenant.offboarded by the
            // background worker (`system`, outside any request).
            let beforeOffboarding = try await Self.stored(store, id)
            let accepted = try await api.send(.delete, "/tenants/\(id)", headers: Self.headers("req-offboard", contentType: nil))
            #expect(accepted.status == 202)
            let tombstone = try await Self.waitUntilOffboarded(id, api: api)
            let all = try await Self.stored(store, id)
            #expect(Array(all.prefix(beforeOffboarding.count)) == beforeOffboarding, "offboarding keeps the events")
            let last = all.dropFirst(beforeOffboarding.count)
            #expect(last.map(\.type) == [.tenantOffboarding, .tenantOffboarded])
            let offboarding = try #require(last.first)
            #expect(offboarding.actor == "admin" && offboarding.requestID == "req-offboard")
            #expect(offboarding.data["tenant"]?.mapValue?["status"] == .string("OFFBOARDING"))
            let offboarded = try #require(last.last)
            #expect(offboarded.actor == "system" && offboarded.requestID == nil)
            #expect(offboarded.data["tenant"] == .map(tombstone.json))

            // Every event of the tenant, in recording order, ids increasing: one per change.
            #expect(all.map(\.type) == [
                .tenantOnboarded, .tenantUpdated, .tenantSuspended, .tenantReactivated, .apiKeyCreated, .apiKeyRevoked, .tenantOffboarding,
                .tenantOffboarded,
            ])
            #expect(all.map(\.id) == all.map(\.id).sorted())
            #expect(Set(all.map(\.id)).count == all.count)
        }
    }

    /// Runs an onboarding and returns its event: the only event of the new tenant's partition.
    static func onlyOnboarding(_ store: any TenantStore, _ onboard: () async throws -> String) async throws -> TenantEvent {
        let id = try await onboard()
        let events = try await stored(store, id)
        #expect(events.count == 1, "one event per onboarding (the first key has none of its own)")
        return try #require(events.first)
    }

    /// The tenant's newest event.
    static func lastEvent(_ store: any TenantStore, _ id: String) async throws -> TenantEvent {
        try #require(try await stored(store, id).last)
    }

    /// The `tenant` of an event's data.
    static func tenantData(of event: TenantEvent) -> [String: AttributeValue]? { event.data["tenant"]?.mapValue }

    // MARK: Faults

    @Test("a change whose transaction fails leaves neither the change nor its event")
    func failedTransaction() async throws {
        let faults = FailEventTransactions()
        try await TestServer.run(wrapStore: { faults.wrap($0) }) { api, fixture in
            let store = fixture.store
            let (id, key) = try await api.newTenant("Faulty Ltd")
            let keyId = try #require(try await api.call(.post, "/tenants/\(id)/api-keys", token: key)["keyId"])
            let tenantBefore = try await api.tenant(id).json
            let eventsBefore = try await Self.stored(store, id)
            let countBefore = try await fixture.itemCount()

            let attempts: [(String, () async throws -> APIResponse)] = [
                ("onboard", { try await api.onboard(#"{"clientName": "Never Ltd", "clientPhone": "+14155550101"}"#) }),
                ("update", {
                    try await api.send(
                        .patch, "/tenants/\(id)", headers: Self.headers("r1", contentType: "application/merge-patch+json"), body: #"{"clientName": "Never"}"#
                    )
                }),
                ("suspend", { try await api.send(.post, "/tenants/\(id)/suspend", headers: Self.headers("r2"), body: #"{"reason": "never"}"#) }),
                ("issue a key", { try await api.call(.post, "/tenants/\(id)/api-keys", token: key) }),
                ("revoke a key", { try await api.call(.delete, "/tenants/\(id)/api-keys/\(keyId)", token: Self.admin) }),
                ("offboard", { try await api.call(.delete, "/tenants/\(id)", token: Self.admin) }),
            ]
            for (name, attempt) in attempts {
                faults.arm()
                let response = try await attempt()
                #expect(faults.failed == 1, "\(name): its transaction was the one failed")
                #expect(response.status == 503, "\(name): \(response.status)")
                #expect(try await api.tenant(id).json == tenantBefore, "\(name): the tenant is unchanged")
                #expect(try await Self.stored(store, id) == eventsBefore, "\(name): no event")
                #expect(try await fixture.itemCount() == countBefore, "\(name): nothing else was stored (no tenant, no key)")
            }
            // The key whose revocation failed still works; the tenant is still ACTIVE.
            #expect(try await api.call(.get, "/tenants/\(id)", token: key).status == 200)
        }
    }

    @Test("a failed tombstone transaction leaves no tenant.offboarded; the next finish records it once")
    func failedTombstone() async throws {
        try await TestServer.run { api, fixture in
            let (id, _) = try await api.newTenant()
            let tenantId = try #require(TenantID(id))
            _ = try await Offboarding(store: fixture.store).start(tenantId)
            let faults = FailEventTransactions()
            faults.arm()
            await #expect(throws: StoreError.self) { _ = try await Offboarding(store: faults.wrap(fixture.store)).finish(tenantId) }
            #expect(faults.failed == 1)
            #expect(try await api.tenant(id)["status"] == "OFFBOARDING")
            // (The server's events and this test's come from two id generators: compared as sets.)
            #expect(Set(try await Self.stored(fixture.store, id).map(\.type)) == [.tenantOnboarded, .tenantOffboarding])

            let run = try await Offboarding(store: fixture.store).finish(tenantId)
            guard case .finished = run.outcome else { Issue.record("not finished: \(run)"); return }
            let types = try await Self.stored(fixture.store, id).map(\.type)
            #expect(types.count == 3 && Set(types) == [.tenantOnboarded, .tenantOffboarding, .tenantOffboarded])
        }
    }

    // MARK: Offboarding and the events

    @Test("offboarding keeps the tenant's events; ?purgeEvents=true leaves only tenant.offboarded")
    func offboardingKeepsOrPurges() async throws {
        try await TestServer.run { api, fixture in
            let store = fixture.store
            var kept: (id: String, before: [TenantEvent])?
            for purge in [false, true] {
                let (id, key) = try await api.newTenant(purge ? "Purged Ltd" : "Kept Ltd")
                for index in 0..<5 {
                    #expect(try await api.call(.put, "/tenants/\(id)/resources/doc/d\(index)", token: key, json: "{}").status == 201)
                }
                _ = try await api.call(.post, "/tenants/\(id)/api-keys", token: key)
                #expect(try await api.call(.post, "/tenants/\(id)/suspend", token: Self.admin, json: #"{"reason": "closing"}"#).status == 200)
                let before = try await Self.stored(store, id)
                #expect(before.map(\.type) == [.tenantOnboarded, .apiKeyCreated, .tenantSuspended])

                let path = purge ? "/tenants/\(id)?purgeEvents=true" : "/tenants/\(id)"
                #expect(try await api.call(.delete, path, token: Self.admin).status == 202)
                let tombstone = try await Self.waitUntilOffboarded(id, api: api)

                let left = try await store.query(ItemQuery(tenantId: id, prefix: "", limit: 100)).items.map(\.key.resourceKey)
                let events = try await Self.stored(store, id)
                #expect(left.filter { !$0.hasPrefix(EventOutboxLayout.prefix) } == ["TENANT#\(id)"], "the tombstone and the events only")
                if purge {
                    #expect(events.map(\.type) == [.tenantOffboarded])
                } else {
                    #expect(Array(events.prefix(before.count)) == before)
                    #expect(events.dropFirst(before.count).map(\.type) == [.tenantOffboarding, .tenantOffboarded])
                    kept = (id, before)
                }
                #expect(events.last?.data["tenant"] == .map(tombstone.json))
            }
            // The trail of an offboarded tenant stays readable.
            let (keptId, before) = try #require(kept)
            let page = try await TenantEventLog(store: store).list(try #require(TenantID(keptId)), limit: 100, cursor: nil)
            #expect(page.events.map(\.type) == [.tenantOffboarded, .tenantOffboarding] + before.reversed().map(\.type))
        }
    }

    @Test("a partition with thousands of events is offboarded in batches that step over the events instead of reading them", .heavyLoad)
    func thousandsOfEvents() async throws {
        try await TestServer.run { api, fixture in
            let (id, _) = try await api.newTenant()
            let tenantId = try #require(TenantID(id))
            let seeded = try await Self.seedEvents(fixture.store, id, count: 2_000)
            // The tenant's own resources (lower-case types: after `TENANT#`, past the events).
            var writes: [TransactionWrite] = []
            for index in 0..<40 {
                writes.append(.put(Item(tenantId: id, resourceKey: "doc#\(index)", attributes: [:]), condition: nil))
            }
            try await fixture.store.transact(writes)
            let reads = CountingReads(base: fixture.store)
            let offboarding = Offboarding(store: reads, batchWrites: 10)
            _ = try await offboarding.start(tenantId)
            let run = try await offboarding.finish(tenantId)
            guard case .finished = run.outcome else { Issue.record("not finished: \(run)"); return }
            #expect(run.itemsDeleted == 41, "the first key and the 40 documents")
            // Every batch reads at most two pages of 10 (before and after the events), not the
            // 2,000 events.
            #expect(reads.itemsRead < seeded.count / 4, "items read: \(reads.itemsRead)")
            // (Seeded by another id generator than the server's and the offboarding's: within one
            // millisecond their order is not defined, so the events are compared as a set.)
            let events = try await Self.stored(fixture.store, id)
            #expect(events.count == 1 + seeded.count + 2)
            #expect(Set(events).isSuperset(of: seeded))
            #expect(events.filter { $0.type != .tenantUpdated }.map(\.type.rawValue).sorted() == ["tenant.offboarded", "tenant.offboarding", "tenant.onboarded"])
            var left: [String] = []
            var start: ItemKey?
            repeat {
                let page = try await fixture.store.query(ItemQuery(tenantId: id, prefix: "", limit: 1000, exclusiveStartKey: start))
                left += page.items.map(\.key.resourceKey)
                start = page.lastEvaluatedKey
            } while start != nil
            #expect(left.filter { !$0.hasPrefix(EventOutboxLayout.prefix) } == ["TENANT#\(id)"])
            #expect(left.count == 1 + events.count)
        }
    }

    // MARK: The audit trail

    @Test("the audit trail: newest first, in pages that follow the cursor, filtered by type across many store pages")
    func auditTrail() async throws {
        try await TestServer.run { api, fixture in
            let (id, _) = try await api.newTenant()
            let tenantId = try #require(TenantID(id))
            let log = TenantEventLog(store: fixture.store)
            for _ in 0..<3 {
                #expect(try await api.call(.post, "/tenants/\(id)/suspend", token: Self.admin, json: #"{"reason": "r"}"#).status == 200)
                #expect(try await api.call(.post, "/tenants/\(id)/reactivate", token: Self.admin).status == 200)
            }
            let recorded = try await Self.stored(fixture.store, id)
            #expect(recorded.count == 7)

            // Unfiltered, 3 a page: 3 + 3 + 1, newest first, every event once.
            var pages: [[TenantEvent]] = []
            var cursor: String?
            repeat {
                let page = try await log.list(tenantId, limit: 3, cursor: cursor)
                pages.append(page.events)
                cursor = page.nextCursor
            } while cursor != nil && pages.count < 10
            #expect(pages.map(\.count) == [3, 3, 1])
            #expect(pages.flatMap { $0 } == recorded.reversed())

            // Filtered: only the suspensions, 2 a page.
            let first = try await log.list(tenantId, limit: 2, cursor: nil, type: .tenantSuspended)
            #expect(first.events.map(\.type) == [.tenantSuspended, .tenantSuspended])
            let next: String = try #require(first.nextCursor)
            let second = try await log.list(tenantId, limit: 2, cursor: next, type: .tenantSuspended)
            #expect(second.events.map(\.type) == [.tenantSuspended] && second.nextCursor == nil)
            #expect((first.events + second.events) == recorded.filter { $0.type == .tenantSuspended }.reversed())
            let onboarded = try await log.list(tenantId, limit: 100, cursor: nil, type: .tenantOnboarded)
            #expect(onboarded.events.map(\.type) == [.tenantOnboarded] && onboarded.nextCursor == nil)
            #expect(try await log.list(tenantId, limit: 5, cursor: nil, type: .apiKeyRevoked) == TenantEventPage(events: [], nextCursor: nil))

            // 250 more, one suspension in fifty: a filtered page is read across several store
            // pages and is full unless it is the last.
            let seeded = try await Self.seedEvents(fixture.store, id, count: 250) { $0 % 50 == 7 ? .tenantSuspended : .tenantUpdated }
            var suspensions: [TenantEvent] = []
            var sizes: [Int] = []
            cursor = nil
            repeat {
                let page = try await log.list(tenantId, limit: 2, cursor: cursor, type: .tenantSuspended)
                suspensions += page.events
                sizes.append(page.events.count)
                cursor = page.nextCursor
            } while cursor != nil && sizes.count < 20
            // Newest first is id order (the test's events come from another id generator than the server's).
            let expected = (recorded + seeded).filter { $0.type == .tenantSuspended }.sorted { $0.id > $1.id }
            #expect(suspensions == expected)
            #expect(sizes == [2, 2, 2, 2])

            // A page size outside 1...100 is clamped; the cursor is opaque and checked.
            #expect(try await log.list(tenantId, limit: 1_000, cursor: nil).events.count == 100)
            await #expect(throws: OnboardingError.self) { _ = try await log.list(tenantId, limit: 5, cursor: "not a cursor!") }
            // A cursor before every event (`A`: the empty key) gives an empty page.
            #expect(try await log.list(tenantId, limit: 5, cursor: "A").events.isEmpty)
            // An unknown tenant has no trail.
            await #expect {
                _ = try await log.list(TenantID(UUID().uuidString.lowercased())!, limit: 5, cursor: nil)
            } throws: { error in
                (error as? OnboardingError)?.code == .tenantNotFound
            }
        }
    }
}

extension HTTPField.Name {
    /// `X-Request-Id`.
    static let xRequestIDForEvents = Self("X-Request-Id")!
}

/// A store that, once armed, fails the next transaction that records an event (one that puts
/// an `EVENT#` item in a tenant's partition) before it reaches the real store: the change and
/// its event are one transaction, so neither may be left. Everything else goes through.
final class FailEventTransactions: Sendable {
    private let state = Mutex((armed: false, failed: 0))

    /// Fails the next event-recording transaction.
    func arm() { state.withLock { $0 = (true, 0) } }

    /// How many transactions were failed since the last ``arm()``.
    var failed: Int { state.withLock { $0.failed } }

    func wrap(_ base: any TenantStore) -> any TenantStore { Store(base: base, owner: self) }

    /// A transaction records an event when it puts the audit item (`EVENT#<id>` in a tenant's
    /// partition) AND, in the same writes, its outbox item (`EVENT#<id>` in the tenant's
    /// `_outbox#<h>` shard). An audit put whose outbox item is missing (say, written by a separate,
    /// later call) does not count: nothing is failed, and the tests' `failed == 1` fails.
    fileprivate func shouldFail(_ writes: [TransactionWrite]) -> Bool {
        let puts: [ItemKey] = writes.compactMap { write in
            guard case .put(let item, _) = write, item.key.resourceKey.hasPrefix(EventOutboxLayout.prefix) else { return nil }
            return item.key
        }
        let audits = puts.filter { !$0.tenantId.hasPrefix("_") }
        let records = !audits.isEmpty && audits.allSatisfy { audit in
            guard let tenantId = TenantID(audit.tenantId) else { return false }
            return puts.contains(ItemKey(tenantId: EventOutboxLayout.shard(of: tenantId), resourceKey: audit.resourceKey))
        }
        guard records else { return false }
        return state.withLock { state in
            guard state.armed else { return false }
            state = (false, state.failed + 1)
            return true
        }
    }

    private struct Store: TenantStore {
        let base: any TenantStore
        let owner: FailEventTransactions

        func get(_ key: ItemKey) async throws -> Item? { try await base.get(key) }
        func put(_ item: Item, condition: WriteCondition?) async throws { try await base.put(item, condition: condition) }
        func delete(_ key: ItemKey, condition: WriteCondition?) async throws { try await base.delete(key, condition: condition) }
        func update(_ key: ItemKey, set: [String: AttributeValue], condition: WriteCondition?) async throws {
            try await base.update(key, set: set, condition: condition)
        }
        func transact(_ writes: [TransactionWrite]) async throws {
            if owner.shouldFail(writes) { throw StoreError(.unavailable, "injected failure of an event's transaction") }
            try await base.transact(writes)
        }
        func query(_ query: ItemQuery) async throws -> ItemPage { try await base.query(query) }
        func queryListIndex(_ query: ListIndexQuery) async throws -> [Item] { try await base.queryListIndex(query) }
        func checkHealth() async throws { try await base.checkHealth() }
    }
}

/// A store that counts the items its queries returned.
final class CountingReads: TenantStore {
    let base: any TenantStore
    private let count = Atomic(0)

    init(base: any TenantStore) { self.base = base }

    var itemsRead: Int { count.load(ordering: .relaxed) }

    func get(_ key: ItemKey) async throws -> Item? { try await base.get(key) }
    func put(_ item: Item, condition: WriteCondition?) async throws { try await base.put(item, condition: condition) }
    func delete(_ key: ItemKey, condition: WriteCondition?) async throws { try await base.delete(key, condition: condition) }
    func update(_ key: ItemKey, set: [String: AttributeValue], condition: WriteCondition?) async throws {
        try await base.update(key, set: set, condition: condition)
    }
    func transact(_ writes: [TransactionWrite]) async throws { try await base.transact(writes) }
    func query(_ query: ItemQuery) async throws -> ItemPage {
        let page = try await base.query(query)
        count.add(page.items.count, ordering: .relaxed)
        return page
    }
    func queryListIndex(_ query: ListIndexQuery) async throws -> [Item] { try await base.queryListIndex(query) }
    func checkHealth() async throws { try await base.checkHealth() }
}
