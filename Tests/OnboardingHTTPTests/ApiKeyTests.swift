import Foundation
import HTTPTypes
import OnboardingCore
import Testing

@Suite("Tenant API keys", .testStoreAvailable)
struct ApiKeyTests {
    @Test("onboarding returns a first key that reads the tenant; the key has the documented shape")
    func firstKey() async throws {
        try await TestServer.run { api, fixture in
            let (id, key) = try await api.newTenant("Acme")
            #expect(key.wholeMatch(of: /onb_[0-9a-f]{16}_[A-Za-z0-9_-]{43}/) != nil)
            let read = try await api.call(.get, "/tenants/\(id)", token: key)
            #expect(read.status == 200)
            #expect(read["clientName"] == "Acme")
            // Stored only as a hash: the key's text is nowhere in the table.
            let keyId = String(key.split(separator: "_")[1])
            let lookup = try #require(try await fixture.store.get(ItemKey(tenantId: "_apikey#\(keyId)", resourceKey: "APIKEY")))
            #expect(lookup["keyHash"]?.stringValue?.hasPrefix("sha256:") == true)
            #expect(lookup["keyHash"]?.stringValue?.contains(key) == false)
            let item = try #require(try await fixture.store.get(ItemKey(tenantId: id, resourceKey: "APIKEY#\(keyId)")))
            #expect(!item.attributes.values.contains { $0.stringValue == key })
        }
    }

    @Test("create, list and revoke: a revoked key is refused on its very next request, others keep working")
    func lifecycle() async throws {
        try await TestServer.run { api, _ in
            let (id, first) = try await api.newTenant()
            let created = try await api.call(.post, "/tenants/\(id)/api-keys", token: first)
            #expect(created.status == 201)
            let second = try #require(created["apiKey"])
            let secondId = try #require(created["keyId"])
            #expect(created.headers[.location] == "/tenants/\(id)/api-keys/\(secondId)")
            #expect(try await api.call(.get, "/tenants/\(id)", token: second).status == 200)

            let list = try await api.call(.get, "/tenants/\(id)/api-keys", token: second)
            #expect(list.status == 200)
            guard case .list(let keys)? = list.json["apiKeys"] else { Issue.record("no apiKeys list"); return }
            #expect(keys.count == 2)
            // Prefix and dates only: no listed key reveals a secret.
            #expect(!list.text.contains(first) && !list.text.contains(second))
            #expect(keys.allSatisfy { $0.mapValue?["prefix"]?.stringValue?.hasPrefix("onb_") == true })

            let revoked = try await api.call(.delete, "/tenants/\(id)/api-keys/\(secondId)", token: first)
            #expect(revoked.status == 204)
            let refused = try await api.call(.get, "/tenants/\(id)", token: second)
            #expect(refused.status == 401)
            #expect(refused["code"] == "unauthorized")
            #expect(try await api.call(.get, "/tenants/\(id)", token: first).status == 200)
            // Revoking again: the key is gone.
            let again = try await api.call(.delete, "/tenants/\(id)/api-keys/\(secondId)", token: first)
            #expect(again.status == 404)
            #expect(again["code"] == "api-key-not-found")
        }
    }

    @Test("a tenant can revoke the key it is using; it is refused right after")
    func revokeOwnKey() async throws {
        try await TestServer.run { api, _ in
            let (id, key) = try await api.newTenant()
            let keyId = String(key.split(separator: "_")[1])
            #expect(try await api.call(.delete, "/tenants/\(id)/api-keys/\(keyId)", token: key).status == 204)
            #expect(try await api.call(.get, "/tenants/\(id)/api-keys", token: key).status == 401)
            // The admin still sees the tenant, with no keys left.
            let list = try await api.call(.get, "/tenants/\(id)/api-keys", token: TestServer.adminToken)
            #expect(list.json["apiKeys"] == .list([]))
        }
    }

    @Test("a key that looks right but has a wrong secret, or another tenant's key id, is refused")
    func forgedKeys() async throws {
        try await TestServer.run { api, _ in
            let (id, key) = try await api.newTenant()
            var forged = Array(key)
            forged[forged.count - 1] = forged.last == "A" ? "B" : "A"
            #expect(try await api.call(.get, "/tenants/\(id)", token: String(forged)).status == 401)
            let keyId = String(key.split(separator: "_")[1])
            let unknownId = "onb_\(String(repeating: "0", count: 16))_\(key.split(separator: "_", maxSplits: 2)[2])"
            #expect(try await api.call(.get, "/tenants/\(id)", token: unknownId).status == 401)
            #expect(keyId.count == 16)
        }
    }

    @Test("a tenant holds at most 20 keys: the 21st is a 409 problem")
    func keyLimit() async throws {
        try await TestServer.run(logLevel: .warning) { api, _ in
            let (id, key) = try await api.newTenant()
            for _ in 1..<ApiKeys.maxKeysPerTenant {
                #expect(try await api.call(.post, "/tenants/\(id)/api-keys", token: key).status == 201)
            }
            let over = try await api.call(.post, "/tenants/\(id)/api-keys", token: key)
            #expect(over.status == 409)
            #expect(over["code"] == "limit-reached")
        }
    }

    @Test("lastUsedAt is recorded after a key is used, without a write on every request")
    func lastUsed() async throws {
        try await TestServer.run { api, fixture in
            let (id, key) = try await api.newTenant()
            let keyId = String(key.split(separator: "_")[1])
            let itemKey = ItemKey(tenantId: id, resourceKey: "APIKEY#\(keyId)")
            #expect(try await fixture.store.get(itemKey)?["lastUsedAt"] == nil)
            for _ in 0..<5 { #expect(try await api.call(.get, "/tenants/\(id)", token: key).status == 200) }
            // Written off the request path: wait for it.
            var lastUsed: String?
            let deadline = ContinuousClock.now + .seconds(300)
            while lastUsed == nil, ContinuousClock.now < deadline {
                lastUsed = try await fixture.store.get(itemKey)?["lastUsedAt"]?.stringValue
                if lastUsed == nil { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(lastUsed != nil)
            let listed = try await api.call(.get, "/tenants/\(id)/api-keys", token: key)
            guard case .list(let keys)? = listed.json["apiKeys"], let first = keys.first?.mapValue else {
                Issue.record("no key listed")
                return
            }
            #expect(first["lastUsedAt"]?.stringValue == lastUsed)
            // More requests within the resolution (TestServer's: an hour) do not move it.
            for _ in 0..<5 { _ = try await api.call(.get, "/tenants/\(id)", token: key) }
            try await Task.sleep(for: .milliseconds(200))
            #expect(try await fixture.store.get(itemKey)?["lastUsedAt"]?.stringValue == lastUsed)
        }
    }
}
