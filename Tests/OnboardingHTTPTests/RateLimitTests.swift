import Foundation
import HTTPTypes
import OnboardingCore
import OnboardingHTTP
import Testing

@Suite("Rate limits and onboarding access", .testStoreAvailable)
struct RateLimitTests {
    static func policy(_ change: (inout RateLimitPolicy) -> Void) -> RateLimitPolicy {
        var policy = RateLimitPolicy()
        change(&policy)
        return policy
    }

    @Test("each principal has its own bucket: 429 with Retry-After and RateLimit-* once it is empty; other tenants unaffected")
    func perPrincipal() async throws {
        let policy = Self.policy { $0.perPrincipal = RateLimit(perSecond: 1.0 / 3600, burst: 3) }
        try await TestServer.run(rateLimits: policy) { api, _ in
            let (a, keyA) = try await api.newTenant("A")
            let (b, keyB) = try await api.newTenant("B")
            for expected in [2, 1, 0] {
                let ok = try await api.call(.get, "/tenants/\(a)", token: keyA)
                #expect(ok.status == 200)
                #expect(ok.headers[HTTPField.Name("RateLimit-Remaining")!] == String(expected))
                #expect(ok.headers[HTTPField.Name("RateLimit-Limit")!] == "3")
            }
            let limited = try await api.call(.get, "/tenants/\(a)", token: keyA)
            #expect(limited.status == 429)
            #expect(limited["code"] == "rate-limited")
            let retryAfter = try #require(limited.headers[.retryAfter].flatMap(Int.init))
            #expect((3500...3600).contains(retryAfter))
            // The tenant's other key is the same principal; another tenant is not.
            #expect(try await api.call(.get, "/tenants/\(b)", token: keyB).status == 200)
        }
    }

    @Test("anonymous requests are limited per client address")
    func anonymous() async throws {
        let policy = Self.policy { $0.anonymousPerAddress = RateLimit(perSecond: 1.0 / 3600, burst: 2) }
        try await TestServer.run(rateLimits: policy) { api, _ in
            #expect(try await api.send(.get, "/health").status == 200)
            #expect(try await api.send(.get, "/health").status == 200)
            let limited = try await api.send(.get, "/health")
            #expect(limited.status == 429)
            #expect(limited.headers[.retryAfter] != nil)
            // Authenticated callers use their own buckets.
            #expect(try await api.tenant("0195f3c4-7a1e-7b2c-9d3e-4f5a6b7c8d9e").status == 404)
        }
    }

    @Test("refused credentials use up their bucket: then the same bad key is answered 429, a valid key from there 200")
    func failedCredentials() async throws {
        let policy = Self.policy { $0.failedAuthPerCredential = RateLimit(perSecond: 1.0 / 3600, burst: 3) }
        try await TestServer.run(rateLimits: policy) { api, _ in
            let (id, key) = try await api.newTenant()
            let bad = "onb_0000000000000000_" + String(repeating: "A", count: 43)
            for _ in 0..<3 {
                #expect(try await api.call(.get, "/tenants/\(id)", token: bad).status == 401)
            }
            #expect(try await api.call(.get, "/tenants/\(id)", token: bad).status == 429)
            // A credential that verifies is never refused (RateLimitLoopholeTests has the rest).
            #expect(try await api.call(.get, "/tenants/\(id)", token: key).status == 200)
            // Requests without credentials are not affected by this bucket.
            #expect(try await api.send(.get, "/health").status == 200)
        }
    }

    @Test("sign-ups are limited per address; X-Forwarded-For counts only from a trusted proxy, read from the right")
    func onboardPerAddress() async throws {
        let one = RateLimit(perSecond: 1.0 / 3600, burst: 1)
        let body = Self.signUp
        // No trusted proxy: the header is the client's word, ignored.
        try await TestServer.run(rateLimits: Self.policy { $0.onboardPerAddress = one }) { api, _ in
            #expect(try await Self.onboard(api, forwardedFor: "203.0.113.5") == 201)
            #expect(try await Self.onboard(api, forwardedFor: "203.0.113.6") == 429)
            // The admin may onboard in bulk.
            let admin = try await api.send(.post, "/onboard", headers: [.contentType: "application/json", .authorization: "Bearer \(TestServer.adminToken)"], body: body)
            #expect(admin.status == 201)
        }
        // Behind a trusted proxy (the test client's 127.0.0.1): the address the proxy appended.
        let trusted = Self.policy {
            $0.onboardPerAddress = one
            $0.trustedProxies = [IPNetwork("127.0.0.0/8")!]
        }
        try await TestServer.run(rateLimits: trusted) { (api: APIClient, _: TestFixture) async throws in
            #expect(try await Self.onboard(api, forwardedFor: "203.0.113.5") == 201)
            #expect(try await Self.onboard(api, forwardedFor: "203.0.113.5") == 429)
            #expect(try await Self.onboard(api, forwardedFor: "203.0.113.6") == 201)
            // A client prepending a fake address does not get a fresh bucket.
            #expect(try await Self.onboard(api, forwardedFor: "198.51.100.77, 203.0.113.6") == 429)
        }
    }

    static let signUp = #"{"clientName": "Acme", "clientPhone": "+14155550100"}"#

    static func onboard(_ api: APIClient, forwardedFor: String?) async throws -> Int {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let forwardedFor { headers[HTTPField.Name("X-Forwarded-For")!] = forwardedFor }
        return try await api.send(.post, "/onboard", headers: headers, body: signUp).status
    }

    @Test("client address resolution", arguments: [
        ("10.0.0.1", ["1.2.3.4"], [], "10.0.0.1"),
        ("10.0.0.1", ["1.2.3.4"], ["10.0.0.0/8"], "1.2.3.4"),
        ("10.0.0.1", ["1.2.3.4, 10.0.0.7"], ["10.0.0.0/8"], "1.2.3.4"),
        ("10.0.0.1", ["9.9.9.9, 1.2.3.4"], ["10.0.0.0/8"], "1.2.3.4"),
        ("10.0.0.1", ["garbage, 1.2.3.4"], ["10.0.0.0/8"], "1.2.3.4"),
        ("10.0.0.1", ["1.2.3.4, garbage"], ["10.0.0.0/8"], "10.0.0.1"),
        ("10.0.0.1", ["10.0.0.9"], ["10.0.0.0/8"], "10.0.0.9"),
        ("::ffff:10.0.0.1", ["2001:db8::1"], ["10.0.0.0/8"], "2001:db8::1"),
        ("2001:db8::5", ["1.2.3.4"], ["2001:db8::/32"], "1.2.3.4"),
        ("2001:db9::5", ["1.2.3.4"], ["2001:db8::/32"], "2001:db9::5"),
    ])
    func clientAddress(peer: String, forwardedFor: [String], trusted: [String], expected: String) {
        let networks = trusted.compactMap(IPNetwork.init)
        #expect(networks.count == trusted.count)
        #expect(ClientAddress.resolve(peer: peer, forwardedFor: forwardedFor, trustedProxies: networks) == expected)
    }

    @Test("rate and network syntax")
    func parsing() {
        #expect(RateLimit(parsing: "50/s:100") == RateLimit(perSecond: 50, burst: 100))
        #expect(RateLimit(parsing: "60/m") == RateLimit(perSecond: 1, burst: 60))
        #expect(RateLimit(parsing: "36/h:2") == RateLimit(perSecond: 0.01, burst: 2))
        for bad in ["", "50", "50/d", "0/s", "-1/s", "5/s:", "5/s:0", "x/s", "5/s:2:3"] {
            #expect(RateLimit(parsing: bad) == nil, "\(bad)")
        }
        #expect(IPNetwork("10.0.0.0/8")?.contains("10.200.1.1") == true)
        #expect(IPNetwork("10.0.0.0/8")?.contains("11.0.0.1") == false)
        #expect(IPNetwork("::1")?.contains("::1") == true)
        for bad in ["10.0.0.0/33", "10.0.0", "::1/129", "host.example", "10.0.0.0/x", ""] {
            #expect(IPNetwork(bad) == nil, "\(bad)")
        }
    }

    @Test("onboarding access 'admin': anonymous 401, a tenant's key 403, the admin 201")
    func adminOnlyOnboarding() async throws {
        let body = #"{"clientName": "Acme", "clientPhone": "+14155550100"}"#
        try await TestServer.run(onboardingAccess: .admin) { api, fixture in
            let anonymous = try await api.onboard(body)
            #expect(anonymous.status == 401)
            let byAdmin = try await api.call(.post, "/onboard", token: TestServer.adminToken, json: body)
            #expect(byAdmin.status == 201)
            let key = try #require(byAdmin["apiKey"])
            let byTenant = try await api.call(.post, "/onboard", token: key, json: body)
            #expect(byTenant.status == 403)
            #expect(try await fixture.itemCount() == 4, "only the admin's onboarding stored anything (3 items and its event)")
        }
    }
}
