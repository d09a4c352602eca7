import AWSClient
import Foundation
import GRDB
import HTTPTypes
import OnboardTestSupport
import OnboardingCore
import OnboardingDynamoDB
import OnboardingHTTP
import OnboardingSQLite
import Synchronization
import Testing

/// A real store whose whole table can be counted, so a test sees items it cannot name (a key's
/// look-up item in `_apikey#<random id>`).
struct CountableStore: Sendable, CustomTestStringConvertible {
    let name: String
    let make: @Sendable () async throws -> (store: any TenantStore, countItems: @Sendable () async throws -> Int)

    var testDescription: String { name }

    /// A SQLite file in a fresh temporary folder.
    static let sqlite = CountableStore(name: "SQLite") {
        let directory = try TemporaryDirectory()
        let path = directory.path("atomic.sqlite")
        let store = try SQLiteTenantStore(path: path)
        return (store, { try DatabaseQueue(path: path).read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM items") ?? -1 } })
    }

    /// A table on a moto of its own (the loops make hundreds of calls; on the shared moto they
    /// would queue behind the other suites'). The server lives as long as the count closure.
    static let dynamoDB = CountableStore(name: "DynamoDB (own moto)") {
        let moto = try await MotoServer.start()
        let table = "atomic-\(UUID().uuidString.prefix(8).lowercased())"
        let dynamoDB = moto.dynamoDB()
        try await DynamoDBTable.create(dynamoDB, name: table)
        return (DynamoDBTenantStore(dynamoDB: dynamoDB, table: table), {
            let count = try await dynamoDB.countItems(table: table)
            withExtendedLifetime(moto) {}
            return count
        })
    }

    /// SQLite, and DynamoDB where moto can run (always under `CI=true`); see ``AtomicProvisioningTests/dynamoDBCases()``.
    static var all: [CountableStore] { Requirements.moto ? [.sqlite, .dynamoDB] : [.sqlite] }
}

/// Hands out the id it is told, so a test can look for a tenant whose onboarding failed.
private final class NextTenantID: TenantIDGenerator, Sendable {
    private let next = Mutex(TenantID(UUID().uuidString.lowercased())!)
    func set(_ id: TenantID) { next.withLock { $0 = id } }
    func newTenantID() -> TenantID { next.withLock { $0 } }
}

/// What the table holds of one tenant: its profile, its keys, and whether each key's look-up
/// item is there and names it.
private struct TenantState: CustomStringConvertible {
    var profile: Item?
    var keyIds: [String]
    var lookupsPresent: Int

    static func read(_ store: any TenantStore, _ id: TenantID) async throws -> TenantState {
        let profile = try await store.get(Tenant.key(id))
        let keys = try await store.query(ItemQuery(tenantId: id.rawValue, prefix: "APIKEY#", limit: 1000)).items
        let keyIds = keys.map { String($0.key.resourceKey.dropFirst("APIKEY#".count)) }
        var lookups = 0
        for keyId in keyIds {
            let lookup = try await store.get(ItemKey(tenantId: "_apikey#\(keyId)", resourceKey: "APIKEY"))
            if lookup?["ownerTenantId"] == .string(id.rawValue) { lookups += 1 }
        }
        return TenantState(profile: profile, keyIds: keyIds, lookupsPresent: lookups)
    }

    var apiKeyCount: Int? { profile?[Tenant.Attribute.apiKeyCount]?.intValue }

    /// How many audit events the tenant's partition holds.
    static func events(_ store: any TenantStore, _ id: TenantID) async throws -> Int {
        try await store.query(ItemQuery(tenantId: id.rawValue, prefix: EventOutboxLayout.prefix, limit: 1000)).items.count
    }

    /// Every key has its look-up item, and the profile's count (when it has one) is the number of keys.
    var isConsistent: Bool { lookupsPresent == keyIds.count && (apiKeyCount == nil || apiKeyCount == keyIds.count) }

    var description: String {
        "profile: \(profile == nil ? "absent" : "present"), keys: \(keyIds.count), look-ups: \(lookupsPresent), apiKeyCount: \(apiKeyCount.map(String.init) ?? "none")"
    }
}

/// Atomic provisioning, proven with injected faults: the store fails its N-th call, for every N
/// an operation makes (and one more: no failure), before the call reaches the store (nothing of
/// it happens) and after it (it happened, the caller hears a failure, as when an answer is
/// lost). Afterwards the table holds all of the tenant or nothing of it, never a half; the
/// whole table is counted, so no look-up item is left behind unseen.
@Suite("Atomic provisioning under injected store failures")
struct AtomicProvisioningTests {
    static let request = OnboardingRequest(clientName: .string("Atomic Ltd"), clientPhone: .string("+14155550100"))

    /// Swift Testing reports a trait's skip per test, not per argument: this test stands for the
    /// DynamoDB cases left out of ``CountableStore/all``, so their absence shows as SKIPPED.
    @Test("every atomic-provisioning test also runs on DynamoDB (moto)", .requires(.moto))
    func dynamoDBCases() {
        #expect(CountableStore.all.map(\.name) == [CountableStore.sqlite.name, CountableStore.dynamoDB.name])
    }

    /// How many store calls `operation` makes when nothing fails.
    static func operations(
        on store: any TenantStore, _ operation: @Sendable (any TenantStore) async throws -> Void
    ) async throws -> Int {
        let counter = FailingStore(base: store, failAt: nil)
        try await operation(counter)
        return counter.operations
    }

    @Test("an onboarding failed at any store call leaves the whole tenant or nothing", arguments: CountableStore.all)
    func onboarding(_ subject: CountableStore) async throws {
        let (store, countItems) = try await subject.make()
        let ids = NextTenantID()
        let calls = try await Self.operations(on: store) { store in
            _ = try await OnboardingService(store: store, hasher: CryptoSecretHasher(), ids: ids).onboard(Self.request)
        }
        #expect(calls >= 1)
        for mode in [FailingStore.Mode.beforeForwarding, .afterForwarding] {
            for failAt in 1...(calls + 1) {
                let id = TenantID(UUID().uuidString.lowercased())!
                ids.set(id)
                let failing = FailingStore(base: store, failAt: failAt, mode: mode)
                let before = try await countItems()
                let succeeded: Bool
                do {
                    _ = try await OnboardingService(store: failing, hasher: CryptoSecretHasher(), ids: ids).onboard(Self.request)
                    succeeded = true
                } catch let error as StoreError {
                    #expect(error.code == .unavailable, "\(mode) at \(failAt): \(error)")
                    succeeded = false
                }
                let state = try await TenantState.read(store, id)
                let added = try await countItems() - before
                let label = "\(mode), call \(failAt) of \(calls) failing: \(state), \(added) items added"
                #expect(succeeded == (failAt > calls), "\(label)")
                if state.profile == nil {
                    #expect(state.keyIds.isEmpty && added == 0, "nothing of the tenant: \(label)")
                } else {
                    // The profile, the key and its look-up item, tenant.onboarded's audit and outbox items.
                    #expect(state.keyIds.count == 1 && state.isConsistent && state.apiKeyCount == 1 && added == 5, "all of the tenant: \(label)")
                }
                if succeeded || mode == .afterForwarding { #expect(state.profile != nil, "\(label)") }
            }
        }
    }

    @Test("issuing or revoking a key failed at any store call leaves the key whole or absent, and the count right", arguments: CountableStore.all)
    func issueAndRevoke(_ subject: CountableStore) async throws {
        let (store, countItems) = try await subject.make()
        let tenantId = try await OnboardingService(store: store, hasher: CryptoSecretHasher()).onboard(Self.request).tenant.id
        let issue: @Sendable (any TenantStore) async throws -> Void = { store in
            _ = try await ApiKeys(store: store, hasher: CryptoSecretHasher()).issue(for: tenantId)
        }
        let issueCalls = try await Self.operations(on: store, issue)
        for mode in [FailingStore.Mode.beforeForwarding, .afterForwarding] {
            for failAt in 1...(issueCalls + 1) {
                let before = try await TenantState.read(store, tenantId)
                let itemsBefore = try await countItems()
                let succeeded = (try? await issue(FailingStore(base: store, failAt: failAt, mode: mode))) != nil
                let after = try await TenantState.read(store, tenantId)
                let added = try await countItems() - itemsBefore
                let label = "issue, \(mode), call \(failAt) of \(issueCalls) failing: \(after), \(added) items added"
                #expect(succeeded == (failAt > issueCalls), "\(label)")
                #expect(after.isConsistent && after.apiKeyCount != nil, "\(label)")
                let newKeys = after.keyIds.count - before.keyIds.count
                // A key: it, its look-up item, and apikey.created's audit and outbox items.
                #expect((newKeys == 0 && added == 0) || (newKeys == 1 && added == 4), "\(label)")
                // The transaction is the last call (the profile is read first: a read's lost answer changes nothing).
                if succeeded || (mode == .afterForwarding && failAt == issueCalls) { #expect(newKeys == 1, "\(label)") }
            }
        }

        // Keys enough for every revoke below, whatever the count of calls.
        for _ in 0..<6 { try await issue(store) }
        var remaining = try await TenantState.read(store, tenantId).keyIds[...]
        let cleanKey = remaining.removeFirst()
        let revokeCalls = try await Self.operations(on: store) { store in
            try await ApiKeys(store: store, hasher: CryptoSecretHasher()).revoke(cleanKey, of: tenantId)
        }
        for mode in [FailingStore.Mode.beforeForwarding, .afterForwarding] {
            for failAt in 1...(revokeCalls + 1) {
                let keyId = remaining.removeFirst()
                let itemsBefore = try await countItems()
                let eventsBefore = try await TenantState.events(store, tenantId)
                let keys = ApiKeys(store: FailingStore(base: store, failAt: failAt, mode: mode), hasher: CryptoSecretHasher())
                let succeeded = (try? await keys.revoke(keyId, of: tenantId)) != nil
                let after = try await TenantState.read(store, tenantId)
                let removed = itemsBefore - (try await countItems())
                let recorded = try await TenantState.events(store, tenantId) - eventsBefore
                let label = "revoke, \(mode), call \(failAt) of \(revokeCalls) failing: \(after), \(removed) items removed, \(recorded) events recorded"
                #expect(succeeded == (failAt > revokeCalls), "\(label)")
                #expect(after.isConsistent && after.apiKeyCount != nil, "\(label)")
                let gone = !after.keyIds.contains(keyId)
                // Revoked: the key and its look-up item went, apikey.revoked's audit and outbox items came.
                #expect((gone && removed == 0 && recorded == 1) || (!gone && removed == 0 && recorded == 0), "\(label)")
                // The transaction is the last call (the key is read first: a read's lost answer changes nothing).
                if succeeded || (mode == .afterForwarding && failAt == revokeCalls) { #expect(gone, "\(label)") }
                if !gone { remaining.insert(keyId, at: remaining.startIndex) }
            }
        }
    }

    @Test("a key for a tenant stored before key counts existed: a failure anywhere in counting and issuing leaves it consistent", arguments: CountableStore.all)
    func issueForTenantWithoutCount(_ subject: CountableStore) async throws {
        let (store, countItems) = try await subject.make()
        let tenantId = try await OnboardingService(store: store, hasher: CryptoSecretHasher()).onboard(Self.request).tenant.id
        _ = try await ApiKeys(store: store, hasher: CryptoSecretHasher()).issue(for: tenantId)
        @Sendable func forgetCount() async throws {
            var profile = try #require(try await store.get(Tenant.key(tenantId)))
            profile.attributes[Tenant.Attribute.apiKeyCount] = nil
            try await store.put(profile)
        }
        let issue: @Sendable (any TenantStore) async throws -> Void = { store in
            _ = try await ApiKeys(store: store, hasher: CryptoSecretHasher()).issue(for: tenantId)
        }
        try await forgetCount()
        let calls = try await Self.operations(on: store, issue)
        // The refused transaction, the profile read, the count, the count's write, the key's transaction.
        #expect(calls == 5)
        for mode in [FailingStore.Mode.beforeForwarding, .afterForwarding] {
            for failAt in 1...(calls + 1) {
                try await forgetCount()
                let before = try await TenantState.read(store, tenantId)
                let itemsBefore = try await countItems()
                let succeeded = (try? await issue(FailingStore(base: store, failAt: failAt, mode: mode))) != nil
                let after = try await TenantState.read(store, tenantId)
                let added = try await countItems() - itemsBefore
                let label = "\(mode), call \(failAt) of \(calls) failing: \(after), \(added) items added"
                // After forwarding, the first call (the refused transaction) fails on its own: the
                // injector passes on the store's own answer, so that attempt goes through.
                if mode == .beforeForwarding || failAt > 1 { #expect(succeeded == (failAt > calls), "\(label)") }
                #expect(after.isConsistent, "\(label)")
                let newKeys = after.keyIds.count - before.keyIds.count
                #expect((newKeys == 0 && added == 0) || (newKeys == 1 && added == 4), "\(label)")
                // A key that was written always came with the count (its transaction needs it).
                if newKeys == 1 { #expect(after.apiKeyCount == after.keyIds.count, "\(label)") }
            }
        }
    }
}

/// Holds the fault injector `buildApplication` wrapped around the test server's store.
private final class FailingStoreSlot: Sendable {
    private let slot = Mutex<FailingStore?>(nil)

    /// The event dispatcher's calls bypass the injector: it counts only the requests' calls.
    func wrap(_ store: any TenantStore, mode: FailingStore.Mode) -> any TenantStore {
        OutboxBypass(base: store) { store in
            let failing = FailingStore(base: store, failAt: nil, mode: mode)
            slot.withLock { $0 = failing }
            return failing
        }
    }

    var store: FailingStore {
        get throws { try #require(slot.withLock { $0 }) }
    }
}

extension AtomicProvisioningTests {
    @Test(
        "POST /onboard with an Idempotency-Key, failed at any store call: no half tenant, and the retry gets the one tenant",
        .testStoreAvailable, arguments: [FailingStore.Mode.beforeForwarding, .afterForwarding]
    )
    func idempotentOnboarding(mode: FailingStore.Mode) async throws {
        let slot = FailingStoreSlot()
        try await TestServer.run(logLevel: .error, wrapStore: { slot.wrap($0, mode: mode) }) { api, fixture in
            let failing = try slot.store
            let body = #"{"clientName": "Atomic Ltd", "clientPhone": "+14155550100"}"#
            func onboard(_ key: String) async throws -> APIResponse {
                try await api.send(.post, "/onboard", headers: [.contentType: "application/json", HTTPField.Name("Idempotency-Key")!: key], body: body)
            }
            // A clean run tells how many store calls one idempotent onboarding makes.
            failing.setFailure(at: nil)
            let clean = try await onboard(UUID().uuidString)
            #expect(clean.status == 201)
            let calls = failing.operations
            #expect(calls >= 2)
            for failAt in 1...(calls + 1) {
                let key = UUID().uuidString
                let before = try await fixture.itemCount()
                failing.setFailure(at: failAt)
                let first = try await onboard(key)
                failing.setFailure(at: nil)
                let afterFirst = try await fixture.itemCount() - before
                let label = "\(mode), call \(failAt) of \(calls) failing: first answer \(first.status), \(afterFirst) items added"
                // Nothing, a claimed record only, or the tenant's three items and its event with its
                // completed record (the outbox is not counted).
                #expect([0, 1, 5].contains(afterFirst), "\(label)")
                #expect([201, 409, 503].contains(first.status), "\(label)")
                if failAt > calls { #expect(first.status == 201, "\(label)") }

                let retry = try await onboard(key)
                let added = try await fixture.itemCount() - before
                if retry.status == 409 {
                    // The failed attempt's claim is still leased: no tenant was made.
                    #expect(retry["code"] == "request-in-progress" && added == 1 && first.status != 201, "\(label), retry 409 with \(added) items")
                    continue
                }
                #expect(retry.status == 201, "\(label), retry \(retry.status)")
                #expect(added == 5, "one tenant, its key, its look-up, its event and the record: \(label), \(added) items after the retry")
                let tenantId = try #require(retry["tenantId"].flatMap(TenantID.init))
                let state = try await TenantState.read(fixture.store, tenantId)
                #expect(state.profile != nil && state.keyIds.count == 1 && state.isConsistent && state.apiKeyCount == 1, "\(label): \(state)")
                if first.status == 201 {
                    #expect(retry.headers[HTTPField.Name("Idempotent-Replayed")!] == "true", "\(label)")
                    #expect(retry["tenantId"] == first["tenantId"] && retry["apiKey"] == first["apiKey"], "\(label)")
                }
                // (The key is not used here: its lastUsedAt write, in the background, would be a
                // store call of its own and move the count of the next round.)
            }
        }
    }
}
