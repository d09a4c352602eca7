import OnboardingCore
import OnboardTestSupport

/// Lets the event dispatcher's own store calls pass a fault injector: a call that touches only
/// the outbox partitions (`_outbox#0` … `_outbox#f`, `_outbox-failed`: the dispatcher's leases,
/// reads and deletes) goes straight to the real store; every other call (the requests', whose
/// transactions write an event's outbox item together with the change) goes through `faulty`.
///
/// The dispatcher runs on a schedule of its own, so a ``FailingStore`` that counted its calls
/// would fail a call of its instead of the N-th of the request under test.
struct OutboxBypass: TenantStore {
    let base: any TenantStore
    let faulty: any TenantStore

    /// `faulty` made over `base` (e.g. a ``FailingStore`` over it).
    init(base: any TenantStore, faulty: (any TenantStore) -> any TenantStore) {
        self.base = base
        self.faulty = faulty(base)
    }

    private static func isOutbox(_ partition: String) -> Bool { partition.hasPrefix("_outbox") }

    private func route(_ partitions: [String]) -> any TenantStore {
        partitions.allSatisfy(Self.isOutbox) ? base : faulty
    }

    func get(_ key: ItemKey) async throws -> Item? { try await route([key.tenantId]).get(key) }
    func put(_ item: Item, condition: WriteCondition?) async throws { try await route([item.key.tenantId]).put(item, condition: condition) }
    func delete(_ key: ItemKey, condition: WriteCondition?) async throws { try await route([key.tenantId]).delete(key, condition: condition) }
    func update(_ key: ItemKey, set: [String: AttributeValue], condition: WriteCondition?) async throws {
        try await route([key.tenantId]).update(key, set: set, condition: condition)
    }
    func transact(_ writes: [TransactionWrite]) async throws { try await route(writes.map(\.key.tenantId)).transact(writes) }
    func query(_ query: ItemQuery) async throws -> ItemPage { try await route([query.tenantId]).query(query) }
    func queryListIndex(_ query: ListIndexQuery) async throws -> [Item] { try await faulty.queryListIndex(query) }
    func checkHealth() async throws { try await faulty.checkHealth() }
}
