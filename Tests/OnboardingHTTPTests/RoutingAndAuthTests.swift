import HTTPTypes
import OnboardingCore
import Testing

@Suite("Routing, tenants and authentication", .testStoreAvailable)
struct RoutingAndAuthTests {
    @Test("an unknown route is a 404 problem")
    func unknownRoute() async throws {
        try await TestServer.run { api, _ in
            for path in ["/nope", "/tenant", "/onboard/extra", "/tenants/a/b"] {
                let response = try await api.send(.get, path)
                #expect(response.status == 404, "\(path)")
                #expect(response["code"] == "route-not-found")
                #expect(response["instance"] == path)
            }
        }
    }

    @Test("a known path with the wrong method is a 405 problem with Allow", arguments: [
        (HTTPRequest.Method.get, "/onboard", "POST"),
        (.delete, "/onboard", "POST"),
        (.put, "/onboard/", "POST"),
        (.post, "/health", "GET, HEAD"),
        (.put, "/tenants/0195f3c4-7a1e-7b2c-9d3e-4f5a6b7c8d9e", "GET, PATCH, DELETE, HEAD"),
        (.patch, "/openapi.yaml", "GET, HEAD"),
        (.trace, "/health", "GET, HEAD"),
        (HTTPRequest.Method("PURGE")!, "/onboard", "POST"),
    ])
    func wrongMethod(method: HTTPRequest.Method, path: String, allow: String) async throws {
        try await TestServer.run { api, fixture in
            // A TRACE carries no content (RFC 9110 §9.3.8; async-http-client refuses to send one).
            let response = try await api.send(method, path, headers: [.contentType: "application/json"], body: method == .trace ? nil : "{}")
            #expect(response.status == 405)
            #expect(response["code"] == "method-not-allowed")
            #expect(response.headers[.allow] == allow)
            #expect(try await fixture.itemCount() == 0)
        }
    }

    @Test("HEAD works wherever GET does")
    func head() async throws {
        try await TestServer.run { api, _ in
            let response = try await api.send(.head, "/health")
            #expect(response.status == 200)
            #expect(response.body.isEmpty)
        }
    }

    @Test("reading a tenant needs the admin token")
    func tenantNeedsAdmin() async throws {
        try await TestServer.run { api, _ in
            let created = try await api.onboard(#"{"clientName": "Acme Corp", "clientPhone": "+1234567890"}"#)
            let id = try #require(created["tenantId"])

            let anonymous = try await api.send(.get, "/tenants/\(id)")
            #expect(anonymous.status == 401)
            #expect(anonymous["code"] == "unauthorized")
            #expect(anonymous.headers[.wwwAuthenticate] == #"Bearer realm="onboard""#)
            #expect(anonymous["clientName"] == nil, "nothing of the tenant leaks")

            let wrong = try await api.tenant(id, token: "not-the-admin-token-at-all-0000")
            #expect(wrong.status == 401)
            #expect(wrong.headers[.wwwAuthenticate] == #"Bearer realm="onboard", error="invalid_token""#)
            #expect(!wrong.text.contains("Acme"))

            for header in ["Basic YWRtaW46YWRtaW4=", "Bearer", "Bearer ", TestServer.adminToken, "Token \(TestServer.adminToken)"] {
                let malformed = try await api.send(.get, "/tenants/\(id)", headers: [.authorization: header])
                #expect(malformed.status == 401, "\(header)")
            }

            let lowercaseScheme = try await api.send(.get, "/tenants/\(id)", headers: [.authorization: "bearer \(TestServer.adminToken)"])
            #expect(lowercaseScheme.status == 200, "the scheme is case-insensitive")

            let admin = try await api.tenant(id)
            #expect(admin.status == 200)
            #expect(admin["clientName"] == "Acme Corp")
        }
    }

    @Test("a bad token is rejected even on public routes, so broken clients notice")
    func badTokenOnPublicRoute() async throws {
        try await TestServer.run { api, fixture in
            let response = try await api.send(
                .post, "/onboard",
                headers: [.contentType: "application/json", .authorization: "Bearer wrong-token-wrong-token-wrong"],
                body: #"{"clientName": "Acme Corp", "clientPhone": "+1234567890"}"#
            )
            #expect(response.status == 401)
            #expect(try await fixture.itemCount() == 0)
            let withAdmin = try await api.send(
                .post, "/onboard",
                headers: [.contentType: "application/json", .authorization: "Bearer \(TestServer.adminToken)"],
                body: #"{"clientName": "Acme Corp", "clientPhone": "+1234567890"}"#
            )
            #expect(withAdmin.status == 201)
        }
    }

    @Test("unknown and malformed tenant ids are 404 problems; ids match case-insensitively")
    func tenantIds() async throws {
        try await TestServer.run { api, _ in
            let unknown = try await api.tenant("0195f3c4-7a1e-7b2c-9d3e-4f5a6b7c8d9e")
            #expect(unknown.status == 404)
            #expect(unknown["code"] == "tenant-not-found")
            for malformed in ["not-a-uuid", "_system", "0195f3c47a1e7b2c9d3e4f5a6b7c8d9e", "%27%20OR%201=1"] {
                let response = try await api.tenant(malformed)
                #expect(response.status == 404, "\(malformed)")
                #expect(response["code"] == "tenant-not-found")
            }
            let created = try await api.onboard(#"{"clientName": "Acme Corp", "clientPhone": "+1234567890"}"#)
            let id = try #require(created["tenantId"])
            let upper = try await api.tenant(id.uppercased())
            #expect(upper.status == 200)
            #expect(upper["tenantId"] == id)
        }
    }

    @Test("the admin token record in the reserved partition is not reachable as a tenant")
    func reservedPartition() async throws {
        try await TestServer.run { api, fixture in
            _ = try await AdminTokenRecordProbe.store(in: fixture.store)
            let response = try await api.tenant("_system")
            #expect(response.status == 404)
        }
    }
}

import OnboardingHTTP

enum AdminTokenRecordProbe {
    static func store(in store: any TenantStore) async throws -> String? {
        try await AdminTokenRecord.prepare(store: store, configuredToken: nil).generatedToken
    }
}
