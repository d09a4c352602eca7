import Foundation
import HTTPTypes
import OnboardingCore
@testable import OnboardingHTTP
import Testing

/// The loopholes of issue 12 in the rate limits, each through the real server on 127.0.0.1.
/// Client addresses other than 127.0.0.1 come from `X-Forwarded-For` with the test client's
/// 127.0.0.0/8 as the trusted proxy.
@Suite("Rate-limit loopholes", .testStoreAvailable)
struct RateLimitLoopholeTests {
    static let hour = 1.0 / 3600
    static let signUp = #"{"clientName": "Acme", "clientPhone": "+14155550100"}"#
    static let forwardedFor = HTTPField.Name("X-Forwarded-For")!
    static let limitHeaders = ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"].map { HTTPField.Name($0)! }

    static func policy(_ change: (inout RateLimitPolicy) -> Void) -> RateLimitPolicy {
        var policy = RateLimitPolicy()
        policy.trustedProxies = [IPNetwork("127.0.0.0/8")!]
        change(&policy)
        return policy
    }

    static func onboard(_ api: APIClient, path: String = "/onboard", from client: String) async throws -> APIResponse {
        try await api.send(.post, path, headers: [.contentType: "application/json", forwardedFor: client], body: signUp)
    }

    static func hasLimitHeaders(_ response: APIResponse) -> Bool {
        limitHeaders.allSatisfy { response.headers[$0] != nil }
    }

    @Test("the sign-up limit holds on the route, however its path is spelled: //onboard, /onboard/, ///onboard")
    func onboardSpellings() async throws {
        let policy = Self.policy { $0.onboardPerAddress = RateLimit(perSecond: Self.hour, burst: 1) }
        try await TestServer.run(rateLimits: policy) { (api: APIClient, fixture: TestFixture) async throws in
            #expect(try await Self.onboard(api, from: "203.0.113.5").status == 201)
            for path in ["//onboard", "/onboard/", "///onboard", "//onboard//"] {
                let again = try await Self.onboard(api, path: path, from: "203.0.113.5")
                #expect(again.status == 429, "\(path)")
                #expect(again["code"] == "rate-limited", "\(path)")
            }
            // Spellings the router does not resolve to the route reach no handler: 404, nothing stored.
            let before = try await fixture.itemCount()
            for path in ["/./onboard", "/%6Fnboard", "/%2Fonboard", "/ONBOARD"] {
                #expect(try await Self.onboard(api, path: path, from: "203.0.113.5").status == 404, "\(path)")
            }
            #expect(try await fixture.itemCount() == before)
            // Another address still signs up, through any spelling of the route.
            #expect(try await Self.onboard(api, path: "//onboard", from: "203.0.113.6").status == 201)
        }
    }

    @Test("IPv6 clients share a bucket per /64 (configurable); IPv4 clients have one per address")
    func ipv6Networks() async throws {
        let one = RateLimit(perSecond: Self.hour, burst: 1)
        try await TestServer.run(rateLimits: Self.policy { $0.onboardPerAddress = one }) { (api: APIClient, _: TestFixture) async throws in
            #expect(try await Self.onboard(api, from: "2001:db8:1:2::1").status == 201)
            #expect(try await Self.onboard(api, from: "2001:db8:1:2::2").status == 429, "same /64")
            #expect(try await Self.onboard(api, from: "2001:db8:1:2:ffff:ffff:ffff:ffff").status == 429, "same /64")
            #expect(try await Self.onboard(api, from: "2001:db8:1:3::1").status == 201, "next /64")
            #expect(try await Self.onboard(api, from: "203.0.113.5").status == 201)
            #expect(try await Self.onboard(api, from: "203.0.113.6").status == 201, "IPv4: per address")
        }
        let per48 = Self.policy {
            $0.onboardPerAddress = one
            $0.ipv6Prefix = 48
        }
        try await TestServer.run(rateLimits: per48) { (api: APIClient, _: TestFixture) async throws in
            #expect(try await Self.onboard(api, from: "2001:db8:1:2::1").status == 201)
            #expect(try await Self.onboard(api, from: "2001:db8:1:3::1").status == 429, "same /48")
            #expect(try await Self.onboard(api, from: "2001:db8:2::1").status == 201, "next /48")
        }
        let per128 = Self.policy {
            $0.onboardPerAddress = one
            $0.ipv6Prefix = 128
        }
        try await TestServer.run(rateLimits: per128) { (api: APIClient, _: TestFixture) async throws in
            #expect(try await Self.onboard(api, from: "2001:db8:1:2::1").status == 201)
            #expect(try await Self.onboard(api, from: "2001:db8:1:2::2").status == 201, "per address")
        }
    }

    @Test("client buckets", arguments: [
        ("203.0.113.5", 64, "203.0.113.5"),
        ("::ffff:203.0.113.5", 64, "203.0.113.5"),
        ("2001:db8:1:2:3:4:5:6", 64, "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::9", 64, "2001:db8:1:2::/64"),
        ("2001:db8:1:2:3:4:5:6", 48, "2001:db8:1::/48"),
        ("2001:db8:1:2:3:4:5:6", 128, "2001:db8:1:2:3:4:5:6"),
        ("unknown", 64, "unknown"),
    ])
    func buckets(address: String, prefix: Int, expected: String) {
        #expect(ClientAddress.bucket(address, ipv6Prefix: prefix) == expected)
    }

    @Test("refused credentials never lock out a credential that verifies: the bucket is the address's and the claimed key's")
    func refusedCredentials() async throws {
        let policy = Self.policy { $0.failedAuthPerCredential = RateLimit(perSecond: Self.hour, burst: 3) }
        try await TestServer.run(rateLimits: policy) { (api: APIClient, _: TestFixture) async throws in
            let (id, key) = try await api.newTenant()
            let keyId = String(key.split(separator: "_")[1])
            let nat: HTTPFields = [Self.forwardedFor: "198.51.100.7"]
            // Someone behind the NAT guesses at this very key: refused, then slowed down.
            let wrong = "onb_\(keyId)_" + String(repeating: "A", count: 43)
            for expected in [2, 1, 0] {
                let refused = try await api.call(.get, "/tenants/\(id)", token: wrong, headers: nat)
                #expect(refused.status == 401)
                #expect(refused.headers[HTTPField.Name("RateLimit-Remaining")!] == String(expected), "the 401 says how many refusals are left")
            }
            let slowed = try await api.call(.get, "/tenants/\(id)", token: wrong, headers: nat)
            #expect(slowed.status == 429)
            #expect(slowed["code"] == "rate-limited")
            #expect(slowed.headers[.retryAfter].flatMap(Int.init) != nil)
            #expect(Self.hasLimitHeaders(slowed))
            // The key itself, from the same address, still verifies and is served.
            let valid = try await api.call(.get, "/tenants/\(id)", token: key, headers: nat)
            #expect(valid.status == 200)
            // A refused credential claiming another key from that address has its own bucket: 401.
            let other = "onb_0123456789abcdef_" + String(repeating: "B", count: 43)
            #expect(try await api.call(.get, "/tenants/\(id)", token: other, headers: nat).status == 401)
            // The same wrong key from another address: its own bucket too.
            #expect(try await api.call(.get, "/tenants/\(id)", token: wrong, headers: [Self.forwardedFor: "198.51.100.8"]).status == 401)
        }
    }

    @Test("an address out of refusals (made-up key ids) gets 429 for each refused credential, and still the valid key's 200")
    func refusedCredentialsPerAddress() async throws {
        let policy = Self.policy { $0.failedAuthPerAddress = RateLimit(perSecond: Self.hour, burst: 4) }
        try await TestServer.run(rateLimits: policy) { (api: APIClient, _: TestFixture) async throws in
            let (id, key) = try await api.newTenant()
            let nat: HTTPFields = [Self.forwardedFor: "198.51.100.9"]
            for index in 0..<4 {
                let madeUp = "onb_\(String(format: "%016x", index))_" + String(repeating: "C", count: 43)
                #expect(try await api.call(.get, "/tenants/\(id)", token: madeUp, headers: nat).status == 401)
            }
            let next = "onb_00000000000000ff_" + String(repeating: "C", count: 43)
            #expect(try await api.call(.get, "/tenants/\(id)", token: next, headers: nat).status == 429)
            #expect(try await api.call(.get, "/tenants/\(id)", token: "not-a-key", headers: nat).status == 429)
            #expect(try await api.call(.get, "/tenants/\(id)", token: key, headers: nat).status == 200)
            #expect(try await api.call(.get, "/tenants/\(id)", token: TestServer.adminToken, headers: nat).status == 200)
        }
    }

    @Test("claimed credentials", arguments: [
        ("Bearer onb_0123456789abcdef_" + String(repeating: "A", count: 43), "apikey:0123456789abcdef"),
        ("Bearer onb_0123456789abcdef_short", "apikey:0123456789abcdef"),
        ("Bearer onb_admin_whatever", "admin"),
        ("Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1c2VyLTEifQ.c2ln", "jwt:user-1"),
        ("Bearer eyJhbGciOiJSUzI1NiJ9.eyJub3N1YiI6MX0.c2ln", "jwt"),
        ("Bearer eyJhbGciOiJSUzI1NiJ9.!!!.c2ln", "jwt"),
        ("Bearer test-admin-token-0123456789abcdef", "other"),
        ("Basic dXNlcjpwYXNz", "malformed"),
    ])
    func claimed(header: String, expected: String) {
        #expect(ClaimedCredential.id(authorization: header) == expected)
    }

    @Test("X-Forwarded-For from a peer that is not a trusted proxy: one warning naming --trusted-proxies")
    func untrustedForwardedFor() async throws {
        try await TestServer.run(rateLimits: RateLimitPolicy()) { (api: APIClient, fixture: TestFixture) async throws in
            #expect(try await api.send(.get, "/health").status == 200)
            #expect(!fixture.logText.contains("--trusted-proxies"), "no warning without the header")
            for client in ["203.0.113.5", "203.0.113.6", "203.0.113.7"] {
                #expect(try await api.send(.get, "/health", headers: [Self.forwardedFor: client]).status == 200)
            }
            let warnings = fixture.logText.split(separator: "\n").filter { $0.contains("--trusted-proxies") }
            #expect(warnings.count == 1)
            #expect(warnings.first?.hasPrefix("warning") == true)
        }
        // From a trusted proxy the header is believed: nothing to warn about.
        try await TestServer.run(rateLimits: Self.policy { _ in }) { (api: APIClient, fixture: TestFixture) async throws in
            #expect(try await api.send(.get, "/health", headers: [Self.forwardedFor: "203.0.113.5"]).status == 200)
            #expect(!fixture.logText.contains("--trusted-proxies"))
        }
    }

    @Test("RateLimit-* headers on every status of a limited request: 200, 201, 401, 404, 405, 422, 429")
    func headersOnEveryStatus() async throws {
        try await TestServer.run(rateLimits: RateLimitPolicy()) { (api: APIClient, _: TestFixture) async throws in
            let (id, key) = try await api.newTenant()
            let (other, _) = try await api.newTenant("Other")
            var responses: [(String, Int, APIResponse)] = []
            responses.append(("tenant", 200, try await api.call(.get, "/tenants/\(id)", token: key)))
            responses.append(("sign-up", 201, try await api.onboard(Self.signUp)))
            responses.append(("invalid sign-up", 422, try await api.onboard(#"{"clientName": ""}"#)))
            responses.append(("no credentials", 401, try await api.send(.get, "/tenants/\(id)")))
            responses.append(("refused token", 401, try await api.call(.get, "/tenants/\(id)", token: "onb_0123456789abcdef_" + String(repeating: "A", count: 43))))
            responses.append(("another tenant's id", 404, try await api.call(.get, "/tenants/\(other)", token: key)))
            responses.append(("unknown path", 404, try await api.send(.get, "/nowhere")))
            responses.append(("unknown resource", 404, try await api.call(.get, "/tenants/\(id)/resources/notes/missing", token: key)))
            responses.append(("wrong method", 405, try await api.send(.put, "/onboard")))
            for (name, status, response) in responses {
                #expect(response.status == status, "\(name)")
                #expect(Self.hasLimitHeaders(response), "\(name) (\(response.status))")
            }
        }
        let tight = Self.policy { $0.anonymousPerAddress = RateLimit(perSecond: Self.hour, burst: 1) }
        try await TestServer.run(rateLimits: tight) { (api: APIClient, _: TestFixture) async throws in
            let first = try await api.send(.get, "/tenants/0195f3c4-7a1e-7b2c-9d3e-4f5a6b7c8d9e")
            #expect(first.status == 401)
            #expect(first.headers[HTTPField.Name("RateLimit-Remaining")!] == "0")
            let limited = try await api.send(.get, "/tenants/0195f3c4-7a1e-7b2c-9d3e-4f5a6b7c8d9e")
            #expect(limited.status == 429)
            #expect(Self.hasLimitHeaders(limited))
            #expect(limited.headers[.retryAfter] != nil)
        }
    }
}
