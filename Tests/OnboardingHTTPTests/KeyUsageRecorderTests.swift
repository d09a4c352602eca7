import Foundation
import Logging
import OnboardingCore
import OnboardingHTTP
import ServiceLifecycle
import Synchronization
import Testing

/// A wall clock the test sets.
private final class SetClock: WallClock {
    private let date: Mutex<Date>

    init(_ date: Date) { self.date = Mutex(date) }

    func now() -> Date { date.withLock { $0 } }
    func set(_ new: Date) { date.withLock { $0 = new } }
}

@Suite("API keys' lastUsedAt: noted per request, written in batches, drained at shutdown", .testStoreAvailable)
struct KeyUsageRecorderTests {
    static let usedAt = Date(timeIntervalSince1970: 1_790_000_000.123)

    /// A store of the suite's kind with one onboarded tenant: its id, its first key's id, the
    /// key's item key.
    func withTenant(
        _ body: @Sendable (any TenantStore, TenantID, String, ItemKey) async throws -> Void
    ) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (store, _, _) = try await TestStore.make(in: directory)
        let onboarded = try await OnboardingService(store: store, hasher: CryptoSecretHasher()).onboard(
            OnboardingRequest(json: ["clientName": .string("Key User"), "clientPhone": .string("+14155550100")])
        )
        let keyId = onboarded.apiKey.key.keyId
        try await body(store, onboarded.tenant.id, keyId, ItemKey(tenantId: onboarded.tenant.id.rawValue, resourceKey: "APIKEY#\(keyId)"))
    }

    @Test("a use is written on the next flush, with the time of the use, in one update that keeps the key's other attributes")
    func flushWrites() async throws {
        try await withTenant { store, tenantId, keyId, itemKey in
            let clock = SetClock(Self.usedAt)
            let recorder = KeyUsageRecorder(store: store, clock: clock)
            let before = try #require(try await store.get(itemKey))
            recorder.record(keyId: keyId, tenantId: tenantId)
            clock.set(Self.usedAt.addingTimeInterval(30))
            #expect(recorder.pendingCount == 1)
            #expect(try await store.get(itemKey)?["lastUsedAt"] == nil, "nothing is written on the request's path")
            await recorder.flush()
            #expect(recorder.pendingCount == 0)
            var expected = before
            expected["lastUsedAt"] = .string(Timestamp.format(Self.usedAt))
            #expect(try await store.get(itemKey) == expected)
        }
    }

    @Test("uses of one key within the resolution are noted once; a full recorder drops uses of further keys")
    func coalescedAndBounded() async throws {
        try await withTenant { store, tenantId, keyId, itemKey in
            let recorder = KeyUsageRecorder(store: store, configuration: .init(resolution: .seconds(3600), maxPending: 2))
            for _ in 0..<5 { recorder.record(keyId: keyId, tenantId: tenantId) }
            #expect(recorder.pendingCount == 1)
            await recorder.flush()
            let first = try #require(try await store.get(itemKey)?["lastUsedAt"])
            recorder.record(keyId: keyId, tenantId: tenantId)
            #expect(recorder.pendingCount == 0, "within the resolution: not noted again")
            for other in ["0000000000000001", "0000000000000002", "0000000000000003"] { recorder.record(keyId: other, tenantId: tenantId) }
            #expect(recorder.pendingCount == 2)
            await recorder.flush()
            #expect(try await store.get(itemKey)?["lastUsedAt"] == first)
            // The keys that do not exist were not created.
            let keys = try await store.query(ItemQuery(tenantId: tenantId.rawValue, prefix: "APIKEY#"))
            #expect(keys.items.map(\.key) == [itemKey])
        }
    }

    @Test("a key revoked before the flush is not brought back")
    func revokedKey() async throws {
        try await withTenant { store, tenantId, keyId, itemKey in
            let recorder = KeyUsageRecorder(store: store)
            recorder.record(keyId: keyId, tenantId: tenantId)
            try await ApiKeys(store: store, hasher: CryptoSecretHasher()).revoke(keyId, of: tenantId)
            await recorder.flush()
            #expect(try await store.get(itemKey) == nil)
            #expect(recorder.pendingCount == 0)
        }
    }

    @Test("a use the store could not take waits for the next flush")
    func retriedAfterOutage() async throws {
        try await withTenant { store, tenantId, keyId, itemKey in
            let switchable = SwitchableStore(base: store, down: true)
            let recorder = KeyUsageRecorder(store: switchable)
            recorder.record(keyId: keyId, tenantId: tenantId)
            await recorder.flush()
            #expect(recorder.pendingCount == 1)
            switchable.down.store(false, ordering: .relaxed)
            await recorder.flush()
            #expect(recorder.pendingCount == 0)
            let written = try await store.get(itemKey)?["lastUsedAt"]
            #expect(written != nil)
        }
    }

    @Test("a graceful shutdown of the service group writes the uses still pending")
    func drainedAtShutdown() async throws {
        try await withTenant { store, tenantId, keyId, itemKey in
            // An interval far longer than the test: only the shutdown can write.
            let recorder = KeyUsageRecorder(store: store, configuration: .init(flushInterval: .seconds(3600)))
            let group = ServiceGroup(services: [recorder], logger: Logger(label: "test"))
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                tasks.addTask { try await group.run() }
                recorder.record(keyId: keyId, tenantId: tenantId)
                try await Task.sleep(for: .milliseconds(100))
                #expect(try await store.get(itemKey)?["lastUsedAt"] == nil)
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
            }
            #expect(try await store.get(itemKey)?["lastUsedAt"] != nil)
            #expect(recorder.pendingCount == 0)
        }
    }
}
