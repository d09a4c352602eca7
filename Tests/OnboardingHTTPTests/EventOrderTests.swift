import Foundation
import HTTPTypes
import OnboardTestSupport
import OnboardingCore
import Synchronization
import Testing

/// A tenant's events are delivered in id order, so ids must follow commit order: every
/// transaction that records an event requires the profile's `lastEventId` to be what it read and
/// sets its own id, made above that one. Truly concurrent key creations, revocations, suspensions
/// and reactivations of one tenant (each on a connection of its own), then: the chain of
/// `lastEventId` values the committed transactions required and set is exactly the stored events
/// in id order, and the lifecycle events' versions increase along it. On the suite's store.
@Suite("Event ids follow commit order", .testStoreAvailable)
struct EventOrderTests {
    static let admin = TestServer.adminToken

    @Test("concurrent key creations, revocations, suspensions and reactivations: id order is commit order")
    func concurrentChanges() async throws {
        let chain = LastEventIdChain()
        try await TestServer.run(logLevel: .warning, wrapStore: { chain.wrap($0) }) { api, fixture in
            let (id, _) = try await api.newTenant("Ordered Ltd")
            var keyIds: [String] = []
            for _ in 0..<8 {
                keyIds.append(try #require(try await api.call(.post, "/tenants/\(id)/api-keys", token: Self.admin)["keyId"]))
            }
            var requests: [ConcurrentRequest] = []
            for index in 0..<8 {
                requests.append(.call(.post, "/tenants/\(id)/api-keys", token: Self.admin))
                requests.append(.call(.delete, "/tenants/\(id)/api-keys/\(keyIds[index])", token: Self.admin))
                if index < 6 {
                    requests.append(.call(.post, "/tenants/\(id)/suspend", token: Self.admin, json: #"{"reason": "race \#(index)"}"#))
                    requests.append(.call(.post, "/tenants/\(id)/reactivate", token: Self.admin))
                }
            }
            let answers = try await api.sendConcurrently(requests, port: fixture.port)
            for (request, answer) in zip(requests, answers) {
                let expected = request.method == .delete ? 204 : request.path.hasSuffix("api-keys") ? 201 : 200
                // A suspension of a suspended tenant (and so on) is refused; a change that kept
                // losing races may give up with 409 conflict.
                let code: String = answer["code"] ?? ""
                let refused: Bool = answer.status == 409 && (code == "invalid-transition" || code == "conflict")
                let accepted: Bool = answer.status == expected || refused
                #expect(accepted, "\(request.method) \(request.path): \(answer.status) \(code)")
            }
            let statuses: [Int] = answers.map(\.status)
            #expect(statuses.contains(201))
            #expect(statuses.contains(204))

            // A process whose clock is a day behind changes the tenant next: its id is still the greatest.
            struct LaggingClock: WallClock { func now() -> Date { Date() - 86_400 } }
            let lagging = TenantLifecycle(store: chain.wrap(fixture.store), clock: LaggingClock(), events: EventRecorder(clock: LaggingClock()))
            _ = try await lagging.update(try #require(TenantID(id)), clientName: .string("Late Clock Ltd"), clientPhone: nil)

            let events = try await EventRecordingTests.stored(fixture.store, id)  // id order
            let ids = events.map(\.id)
            let applied: Int = statuses.filter { $0 / 100 == 2 }.count
            #expect(ids.count == applied + 10, "one event per change (onboarding, 8 keys, the applied requests, the late one)")
            #expect(events.last?.type == .tenantUpdated, "the lagging clock's event is the last in id order")

            // Commit order: start from the transaction that required no latest id (the
            // onboarding) and follow each committed transaction's `lastEventId` to the next.
            let links = chain.links(of: id)
            #expect(links.count == ids.count, "each event's transaction conditioned on the tenant's latest id")
            var next: [String?: String] = [:]
            for link in links {
                #expect(next[link.required] == nil, "two commits required the same latest id \(link.required ?? "(none)")")
                next[link.required] = link.set
            }
            var commitOrder: [String] = []
            var current: String?
            while let following = next[current], commitOrder.count <= links.count {
                commitOrder.append(following)
                current = following
            }
            #expect(commitOrder == ids, "listing by id gives the commit order")

            // Independently of the chain: versions grow along id order, and a key's revocation
            // follows its creation.
            let versions = events.compactMap { $0.data["tenant"]?.mapValue?["version"]?.intValue }
            let increasing: Bool = zip(versions, versions.dropFirst()).allSatisfy { $0 < $1 }
            #expect(increasing, "\(versions)")
            for event in events where event.type == .apiKeyRevoked {
                let keyId: AttributeValue? = event.data["apiKey"]?.mapValue?["keyId"]
                let created: Int? = events.firstIndex { other in
                    let creates: Bool = other.type == .apiKeyCreated || other.type == .tenantOnboarded
                    return creates && other.data["apiKey"]?.mapValue?["keyId"] == keyId
                }
                let revoked: Int? = events.firstIndex(of: event)
                #expect(created != nil && revoked != nil && created! < revoked!)
            }
            let profile = try #require(try await fixture.store.get(ItemKey(tenantId: id, resourceKey: "TENANT#\(id)")))
            let latest: String = try #require(ids.last)
            let stored: AttributeValue? = profile[Tenant.Attribute.lastEventId]
            #expect(stored == .string(latest), "the profile holds the latest id")
            let shown = try await api.tenant(id)
            #expect(shown.json[Tenant.Attribute.lastEventId] == nil, "not shown in the API")
        }
    }
}

/// Records, for each committed transaction that sets a profile's `lastEventId`, the value it
/// required (`nil`: absent, or a new profile) and the value it set.
final class LastEventIdChain: Sendable {
    struct Link: Sendable {
        var required: String?
        var set: String
    }

    private let committed = Mutex<[String: [Link]]>([:])

    func wrap(_ base: any TenantStore) -> any TenantStore { Store(base: base, owner: self) }

    func links(of tenantId: String) -> [Link] { committed.withLock { $0[tenantId] ?? [] } }

    fileprivate func record(_ writes: [TransactionWrite]) {
        for write in writes {
            let key: ItemKey, set: AttributeValue?, condition: WriteCondition?
            switch write {
            case .put(let item, let itemCondition): (key, set, condition) = (item.key, item[Tenant.Attribute.lastEventId], itemCondition)
            case .update(let updated, let attributes, _, let updateCondition):
                (key, set, condition) = (updated, attributes[Tenant.Attribute.lastEventId], updateCondition)
            default: continue
            }
            guard key.resourceKey.hasPrefix("TENANT#"), case .string(let id)? = set else { continue }
            let link = Link(required: condition.flatMap(Self.required), set: id)
            committed.withLock { $0[key.tenantId, default: []].append(link) }
        }
    }

    private static func required(_ condition: WriteCondition) -> String? {
        switch condition {
        case .attributeEquals(Tenant.Attribute.lastEventId, .string(let id)): id
        case .and(let lhs, let rhs), .or(let lhs, let rhs): required(lhs) ?? required(rhs)
        default: nil
        }
    }

    private struct Store: TenantStore {
        let base: any TenantStore
        let owner: LastEventIdChain

        func get(_ key: ItemKey) async throws -> Item? { try await base.get(key) }
        func put(_ item: Item, condition: WriteCondition?) async throws { try await base.put(item, condition: condition) }
        func delete(_ key: ItemKey, condition: WriteCondition?) async throws { try await base.delete(key, condition: condition) }
        func update(_ key: ItemKey, set: [String: AttributeValue], condition: WriteCondition?) async throws {
            try await base.update(key, set: set, condition: condition)
        }
        func transact(_ writes: [TransactionWrite]) async throws {
            try await base.transact(writes)
            owner.record(writes)
        }
        func query(_ query: ItemQuery) async throws -> ItemPage { try await base.query(query) }
        func queryListIndex(_ query: ListIndexQuery) async throws -> [Item] { try await base.queryListIndex(query) }
        func checkHealth() async throws { try await base.checkHealth() }
    }
}
