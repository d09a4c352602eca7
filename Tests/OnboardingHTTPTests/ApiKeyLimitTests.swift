import Foundation
import GRDB
import HTTPTypes
import OnboardingCore
import OnboardingHTTP
import OnboardingSQLite
import Testing
import OnboardTestSupport

/// The 20-key limit under concurrency (kept by a count on the tenant item, raised in the key's
/// own transaction), tenants stored before that count existed, and the paged key listing.
@Suite("API-key limit and listing", .testStoreAvailable)
struct ApiKeyLimitTests {
    /// The tenant's keys as the store holds them: the `APIKEY#` items of its partition, each
    /// checked to have its look-up item, and the profile's count.
    static func storedKeys(_ fixture: TestFixture, _ id: String, sourceLocation: SourceLocation = #_sourceLocation) async throws -> (keyIds: [String], count: Int?) {
        let page = try await fixture.store.query(ItemQuery(tenantId: id, prefix: "APIKEY#", limit: 1000))
        #expect(page.lastEvaluatedKey == nil, sourceLocation: sourceLocation)
        var keyIds: [String] = []
        for item in page.items {
            let keyId = String(item.key.resourceKey.dropFirst("APIKEY#".count))
            let lookup = try await fixture.store.get(ItemKey(tenantId: "_apikey#\(keyId)", resourceKey: "APIKEY"))
            #expect(lookup?["ownerTenantId"] == .string(id), "key \(keyId) has its look-up item", sourceLocation: sourceLocation)
            keyIds.append(keyId)
        }
        let profile = try await fixture.store.get(ItemKey(tenantId: id, resourceKey: "TENANT#\(id)"))
        return (keyIds, profile?[Tenant.Attribute.apiKeyCount]?.intValue)
    }

    /// Removes `apiKeyCount` from the profile, as a tenant stored before counts existed has none.
    static func forgetCount(_ fixture: TestFixture, _ id: String) async throws {
        let key = ItemKey(tenantId: id, resourceKey: "TENANT#\(id)")
        var profile = try #require(try await fixture.store.get(key))
        #expect(profile.attributes.removeValue(forKey: Tenant.Attribute.apiKeyCount) != nil)
        try await fixture.store.put(profile)
    }

    /// `count` concurrent `POST /tenants/{id}/api-keys`, each on a connection of its own (see
    /// ``APIClient/sendConcurrently(_:port:connections:timeout:sourceLocation:)``): their statuses and problem codes.
    static func createConcurrently(
        _ api: APIClient, _ fixture: TestFixture, _ id: String, token: String, count: Int
    ) async throws -> [(status: Int, code: String?)] {
        let requests = Array(repeating: ConcurrentRequest.call(.post, "/tenants/\(id)/api-keys", token: token), count: count)
        return try await api.sendConcurrently(requests, port: fixture.port).map { ($0.status, $0["code"]) }
    }

    @Test("100 concurrent key requests leave exactly 20 live keys; the rest are 409 limit-reached; the count matches", .heavyLoad)
    func concurrentCreates() async throws {
        try await TestServer.run(logLevel: .warning) { api, fixture in
            let (id, key) = try await api.newTenant()
            let before = try await fixture.itemCount()
            let answers = try await Self.createConcurrently(api, fixture, id, token: key, count: 100)
            #expect(answers.filter { $0.status == 201 }.count == ApiKeys.maxKeysPerTenant - 1)
            #expect(answers.filter { $0.status == 409 && $0.code == "limit-reached" }.count == 100 - (ApiKeys.maxKeysPerTenant - 1))
            #expect(answers.allSatisfy { $0.status == 201 || $0.status == 409 })

            let stored = try await Self.storedKeys(fixture, id)
            #expect(stored.keyIds.count == ApiKeys.maxKeysPerTenant)
            #expect(stored.count == ApiKeys.maxKeysPerTenant)
            // Three items per new key (the key, its look-up and its apikey.created event), nothing
            // else: no orphan look-up.
            #expect(try await fixture.itemCount() - before == 3 * (ApiKeys.maxKeysPerTenant - 1))

            // Revoking frees exactly one place.
            let revoked = try #require(stored.keyIds.first { !key.contains($0) })
            #expect(try await api.call(.delete, "/tenants/\(id)/api-keys/\(revoked)", token: key).status == 204)
            #expect(try await Self.storedKeys(fixture, id).count == ApiKeys.maxKeysPerTenant - 1)
            let again = try await Self.createConcurrently(api, fixture, id, token: key, count: 10)
            #expect(again.count == 10)
            #expect(again.filter { $0.status == 201 }.count == 1)
            #expect(again.filter { $0.status == 409 && $0.code == "limit-reached" }.count == 9)
            #expect(try await Self.storedKeys(fixture, id).count == ApiKeys.maxKeysPerTenant)
        }
    }

    @Test("a tenant stored before key counts existed gets its keys counted once, and the limit holds under concurrency")
    func tenantWithoutCount() async throws {
        try await TestServer.run(logLevel: .warning) { api, fixture in
            let (id, key) = try await api.newTenant()
            for _ in 0..<4 {
                #expect(try await api.call(.post, "/tenants/\(id)/api-keys", token: key).status == 201)
            }
            try await Self.forgetCount(fixture, id)
            let answers = try await Self.createConcurrently(api, fixture, id, token: key, count: 40)
            #expect(answers.filter { $0.status == 201 }.count == ApiKeys.maxKeysPerTenant - 5)
            #expect(answers.filter { $0.status == 409 && $0.code == "limit-reached" }.count == 40 - (ApiKeys.maxKeysPerTenant - 5))
            let stored = try await Self.storedKeys(fixture, id)
            #expect(stored.keyIds.count == ApiKeys.maxKeysPerTenant)
            #expect(stored.count == ApiKeys.maxKeysPerTenant)

            // A revoke on such a tenant counts first, then takes one off.
            try await Self.forgetCount(fixture, id)
            #expect(try await api.call(.delete, "/tenants/\(id)/api-keys/\(stored.keyIds[0])", token: TestServer.adminToken).status == 204)
            let after = try await Self.storedKeys(fixture, id)
            #expect(after.keyIds.count == ApiKeys.maxKeysPerTenant - 1)
            #expect(after.count == ApiKeys.maxKeysPerTenant - 1)
        }
    }

    @Test("no key is issued once a tenant's offboarding has started: 409 invalid-transition, nothing written")
    func noKeyWhileOffboarding() async throws {
        try await TestServer.run(logLevel: .warning) { api, fixture in
            let (id, _) = try await api.newTenant()
            try await fixture.store.update(
                ItemKey(tenantId: id, resourceKey: "TENANT#\(id)"), set: [Tenant.Attribute.status: .string("OFFBOARDING")], condition: nil
            )
            let before = try await fixture.itemCount()
            let refused = try await api.call(.post, "/tenants/\(id)/api-keys", token: TestServer.adminToken)
            #expect(refused.status == 409)
            #expect(refused["code"] == "invalid-transition")
            #expect(refused["detail"]?.contains("OFFBOARDING") == true)
            #expect(try await fixture.itemCount() == before)
            #expect(try await Self.storedKeys(fixture, id).count == 1)
            // A tenant that does not exist: 404, as before.
            let missing = try await api.call(.post, "/tenants/\(UUID().uuidString.lowercased())/api-keys", token: TestServer.adminToken)
            #expect(missing.status == 404)
        }
    }

    @Test("the key listing pages with limit and cursor; every key once, in keyId order")
    func pagedListing() async throws {
        try await TestServer.run(logLevel: .warning) { api, fixture in
            let (id, key) = try await api.newTenant()
            for _ in 1..<ApiKeys.maxKeysPerTenant {
                #expect(try await api.call(.post, "/tenants/\(id)/api-keys", token: key).status == 201)
            }
            var seen: [String] = []
            var pageSizes: [Int] = []
            var cursor: String?
            repeat {
                let path = "/tenants/\(id)/api-keys?limit=7" + (cursor.map { "&cursor=\($0)" } ?? "")
                let page = try await api.call(.get, path, token: key)
                #expect(page.status == 200)
                guard case .list(let keys)? = page.json["apiKeys"] else { Issue.record("no apiKeys list"); return }
                pageSizes.append(keys.count)
                seen += keys.compactMap { $0.mapValue?["keyId"]?.stringValue }
                cursor = page["nextCursor"]
            } while cursor != nil && pageSizes.count < 10
            #expect(pageSizes == [7, 7, 6])
            #expect(seen == seen.sorted())
            #expect(Set(seen) == Set(try await Self.storedKeys(fixture, id).keyIds))

            // Without parameters: the first 20, and no next page when there are exactly 20.
            let whole = try await api.call(.get, "/tenants/\(id)/api-keys", token: key)
            guard case .list(let all)? = whole.json["apiKeys"] else { Issue.record("no apiKeys list"); return }
            #expect(all.count == 20)
            #expect(whole["nextCursor"] == nil)
            let one = try await api.call(.get, "/tenants/\(id)/api-keys?limit=1", token: key)
            #expect(one["nextCursor"] != nil)
        }
    }

    @Test("SQLite: opening a file whose profiles have no key count stores each tenant's count (migration v3)")
    func migrationCountsKeys() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let path = directory.path("before-counts.sqlite")
        let request = OnboardingRequest(clientName: .string("Old Ltd"), clientPhone: .string("+14155550100"))
        var tenants: [TenantID] = []
        do {
            let store = try SQLiteTenantStore(path: path)
            for extraKeys in [0, 2] {
                let tenantId = try await OnboardingService(store: store, hasher: CryptoSecretHasher()).onboard(request).tenant.id
                for _ in 0..<extraKeys { _ = try await ApiKeys(store: store, hasher: CryptoSecretHasher()).issue(for: tenantId) }
                tenants.append(tenantId)
            }
        }
        // The file as it was before the migration: no count on any profile, v3 not applied.
        try await DatabaseQueue(path: path).write { db in
            try db.execute(sql: "UPDATE items SET attributes = json_remove(attributes, '$.apiKeyCount')")
            try db.execute(sql: "DELETE FROM grdb_migrations WHERE identifier LIKE 'v3:%'")
        }
        let reopened = try SQLiteTenantStore(path: path)
        #expect(try await reopened.get(Tenant.key(tenants[0]))?[Tenant.Attribute.apiKeyCount] == .int(1))
        #expect(try await reopened.get(Tenant.key(tenants[1]))?[Tenant.Attribute.apiKeyCount] == .int(3))
        // Nothing else was touched: a key item has no count.
        let key = try await reopened.query(ItemQuery(tenantId: tenants[1].rawValue, prefix: "APIKEY#")).items.first
        #expect(key != nil && key?[Tenant.Attribute.apiKeyCount] == nil)
    }

    @Test("bad listing parameters are 400 problems")
    func badListingParameters() async throws {
        try await TestServer.run(logLevel: .warning) { api, _ in
            let (id, key) = try await api.newTenant()
            for (query, code) in [
                ("limit=0", "bad-request"), ("limit=101", "bad-request"), ("limit=ten", "bad-request"),
                ("order=oldest", "bad-request"), ("limit=5&limit=6", "bad-request"), ("cursor=not%20a%20cursor", "invalid-cursor"),
            ] {
                let response = try await api.call(.get, "/tenants/\(id)/api-keys?\(query)", token: key)
                #expect(response.status == 400, "\(query)")
                #expect(response["code"] == code, "\(query)")
                #expect(response.headers[.contentType] == "application/problem+json", "\(query)")
            }
        }
    }
}
