import Foundation
import HTTPTypes
import OnboardingCore
import OnboardingHTTP
import Synchronization
import Testing

/// The credential cache's bounds, as a user of the API sees them: this server's own revocations
/// and suspensions apply on the very next request; other processes' (a second connection to the
/// store, as `onboard keys revoke` or another Lambda instance is) within `--credential-cache`.
@Suite("Credential cache", .testStoreAvailable)
struct CredentialCacheTests {
    /// Lets the server's requests through while counting how often they read a look-up item
    /// (`_apikey#…`) or a tenant's profile.
    final class ReadCounter: Sendable {
        private let counts = Mutex((lookups: 0, profiles: 0))
        var lookups: Int { counts.withLock { $0.lookups } }
        var profiles: Int { counts.withLock { $0.profiles } }

        func counted(_ key: ItemKey) {
            counts.withLock { counts in
                if key.tenantId.hasPrefix("_apikey#") { counts.lookups += 1 }
                if key.resourceKey.hasPrefix("TENANT#") { counts.profiles += 1 }
            }
        }
    }

    struct GetCountingStore: TenantStore {
        let base: any TenantStore
        let counter: ReadCounter

        func get(_ key: ItemKey) async throws -> Item? {
            counter.counted(key)
            return try await base.get(key)
        }
        func put(_ item: Item, condition: WriteCondition?) async throws { try await base.put(item, condition: condition) }
        func delete(_ key: ItemKey, condition: WriteCondition?) async throws { try await base.delete(key, condition: condition) }
        func update(_ key: ItemKey, set: [String: AttributeValue], condition: WriteCondition?) async throws {
            try await base.update(key, set: set, condition: condition)
        }
        func transact(_ writes: [TransactionWrite]) async throws { try await base.transact(writes) }
        func query(_ query: ItemQuery) async throws -> ItemPage { try await base.query(query) }
        func queryListIndex(_ query: ListIndexQuery) async throws -> [Item] { try await base.queryListIndex(query) }
        func checkHealth() async throws { try await base.checkHealth() }
    }

    static let hour = CredentialCache.Configuration(maxAge: .seconds(3600))

    @Test("repeated reads with one API key read its look-up item and the tenant's status once, not per request")
    func readsAreShared() async throws {
        let counter = ReadCounter()
        try await TestServer.run(wrapStore: { GetCountingStore(base: $0, counter: counter) }, credentialCache: Self.hour) { api, _ in
            let (id, key) = try await api.newTenant()
            let resource = try await api.call(.put, "/tenants/\(id)/resources/notes/a", token: key, json: #"{"text": "hi"}"#)
            #expect(resource.status == 201)
            let (lookupsBefore, profilesBefore) = (counter.lookups, counter.profiles)
            for _ in 0..<20 {
                #expect(try await api.call(.get, "/tenants/\(id)", token: key).status == 200)
                #expect(try await api.call(.get, "/tenants/\(id)/resources/notes/a", token: key).status == 200)
            }
            #expect(counter.lookups - lookupsBefore == 0, "the look-up item was read when the PUT verified the key")
            // GET /tenants/{id} reads the profile it answers with (20); the gate reads none.
            #expect(counter.profiles - profilesBefore == 20)
        }
    }

    @Test("with the cache hot, this server's own revocation and suspension are refused on the very next request")
    func ownChangesApplyAtOnce() async throws {
        try await TestServer.run(credentialCache: Self.hour) { api, _ in
            let (id, first) = try await api.newTenant()
            let created = try await api.call(.post, "/tenants/\(id)/api-keys", token: first)
            let second = try #require(created["apiKey"])
            let secondId = try #require(created["keyId"])
            #expect(try await api.call(.get, "/tenants/\(id)", token: second).status == 200)
            #expect(try await api.call(.delete, "/tenants/\(id)/api-keys/\(secondId)", token: first).status == 204)
            #expect(try await api.call(.get, "/tenants/\(id)", token: second).status == 401)

            #expect(try await api.call(.get, "/tenants/\(id)/api-keys", token: first).status == 200)
            let suspended = try await api.call(.post, "/tenants/\(id)/suspend", token: TestServer.adminToken, json: #"{"reason": "unpaid"}"#)
            #expect(suspended.status == 200)
            let refused = try await api.call(.get, "/tenants/\(id)/api-keys", token: first)
            #expect(refused.status == 403)
            #expect(refused["code"] == "tenant-suspended")
            #expect(try await api.call(.post, "/tenants/\(id)/reactivate", token: TestServer.adminToken).status == 200)
            #expect(try await api.call(.get, "/tenants/\(id)/api-keys", token: first).status == 200)
        }
    }

    @Test("another process's revocation is refused once --credential-cache has passed")
    func otherProcessRevocation() async throws {
        try await TestServer.run(credentialCache: .init(maxAge: .milliseconds(300))) { api, fixture in
            let (id, key) = try await api.newTenant()
            #expect(try await api.call(.get, "/tenants/\(id)", token: key).status == 200)
            // Straight through the store, as another process would: this server hears nothing of it.
            let keyId = try #require(ApiKeys.keyId(of: key))
            try await ApiKeys(store: fixture.store, hasher: CryptoSecretHasher()).revoke(keyId, of: try #require(TenantID(id)))
            try await Task.sleep(for: .milliseconds(400))
            #expect(try await api.call(.get, "/tenants/\(id)", token: key).status == 401)
        }
    }

    @Test("another process's suspension is refused once --credential-cache has passed, and at once where the route reads the profile")
    func otherProcessSuspension() async throws {
        try await TestServer.run(credentialCache: .init(maxAge: .milliseconds(300))) { api, fixture in
            let (id, key) = try await api.newTenant()
            let put = try await api.call(.put, "/tenants/\(id)/resources/notes/a", token: key, json: #"{"text": "hi"}"#)
            #expect(put.status == 201)
            _ = try await TenantLifecycle(store: fixture.store).suspend(try #require(TenantID(id)), reason: "unpaid")
            // GET /tenants/{id} decides on the profile it has just read, whatever the gate kept.
            #expect(try await api.call(.get, "/tenants/\(id)", token: key)["code"] == "tenant-suspended")
            try await Task.sleep(for: .milliseconds(400))
            let refused = try await api.call(.get, "/tenants/\(id)/resources/notes/a", token: key)
            #expect(refused.status == 403)
            #expect(refused["code"] == "tenant-suspended")
        }
    }

    @Test("with the cache off every request reads the look-up item and the status")
    func off() async throws {
        let counter = ReadCounter()
        try await TestServer.run(wrapStore: { GetCountingStore(base: $0, counter: counter) }, credentialCache: .off) { api, _ in
            let (id, key) = try await api.newTenant()
            let (lookupsBefore, profilesBefore) = (counter.lookups, counter.profiles)
            for _ in 0..<5 { #expect(try await api.call(.get, "/tenants/\(id)", token: key).status == 200) }
            #expect(counter.lookups - lookupsBefore == 5)
            #expect(counter.profiles - profilesBefore == 10)
        }
    }
}

@Suite("Credential cache entries")
struct CredentialCacheEntryTests {
    final class Clock: Sendable {
        private let current = Mutex(ContinuousClock.now)
        var now: ContinuousClock.Instant { current.withLock { $0 } }
        func advance(_ duration: Duration) { current.withLock { $0 += duration } }
    }

    static let owner = TenantID("0195f3c4-7a1e-7b2c-9d3e-4f5a6b7c8d9e")!
    static let lookup = ApiKeyLookup(owner: owner, keyHash: "sha256:00")

    @Test("an entry is used until maxAge, then read again")
    func expiry() {
        let clock = Clock()
        let cache = CredentialCache(configuration: .init(maxAge: .seconds(1)), now: { clock.now })
        cache.keep(Self.lookup, keyId: "k", ticket: cache.ticket())
        cache.keep(.active, tenant: Self.owner, ticket: cache.ticket())
        clock.advance(.milliseconds(999))
        #expect(cache.key("k") == Self.lookup)
        #expect(cache.status(Self.owner) == .active)
        clock.advance(.milliseconds(1))
        #expect(cache.key("k") == nil)
        #expect(cache.status(Self.owner) == nil)
    }

    @Test("a read begun before an invalidation is not kept (no stale refill)")
    func staleFill() {
        let cache = CredentialCache()
        let ticket = cache.ticket()
        cache.invalidateAll()
        cache.keep(Self.lookup, keyId: "k", ticket: ticket)
        cache.keep(.active, tenant: Self.owner, ticket: ticket)
        #expect(cache.key("k") == nil)
        #expect(cache.status(Self.owner) == nil)
        cache.keep(Self.lookup, keyId: "k", ticket: cache.ticket())
        #expect(cache.key("k") == Self.lookup)
    }

    @Test("events that change credentials empty it; others keep it", arguments: TenantEventType.allCases)
    func invalidation(type: TenantEventType) {
        let cache = CredentialCache()
        cache.keep(Self.lookup, keyId: "k", ticket: cache.ticket())
        let event = EventRecorder().event(type, tenantId: Self.owner, data: [:])
        cache.invalidate(after: [event])
        let emptied = [TenantEventType.apiKeyRevoked, .tenantSuspended, .tenantReactivated, .tenantOffboarding, .tenantOffboarded].contains(type)
        #expect((cache.key("k") == nil) == emptied)
    }

    @Test("a flood of distinct keys keeps at most maxEntries")
    func bounded() {
        let clock = Clock()
        let cache = CredentialCache(configuration: .init(maxAge: .seconds(60), maxEntries: 100), now: { clock.now })
        for index in 0..<1_000 {
            clock.advance(.milliseconds(1))
            cache.keep(Self.lookup, keyId: "k\(index)", ticket: cache.ticket())
        }
        #expect(cache.counts.keys <= 100)
        #expect(cache.key("k999") == Self.lookup, "the newest stay")
    }

    @Test("off keeps nothing")
    func disabled() {
        let cache = CredentialCache(configuration: .off)
        cache.keep(Self.lookup, keyId: "k", ticket: cache.ticket())
        #expect(cache.key("k") == nil)
    }
}
