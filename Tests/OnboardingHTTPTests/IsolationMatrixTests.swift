import Foundation
import HTTPTypes
import OnboardingCore
import OnboardTestSupport
import OnboardingHTTP
import Testing

/// Tenant isolation, proven route by route: every route of the route table × every kind of
/// caller, with the status each must get, and the bodies checked for the other tenant's data.
@Suite("Tenant isolation matrix", .testStoreAvailable)
struct IsolationMatrixTests {
    /// Who calls. Tenant A is the target of every tenant-scoped request.
    enum Caller: String, CaseIterable, CustomStringConvertible {
        case ownKey = "A's key"
        case otherTenantKey = "B's key"
        case revokedKey = "A's revoked key"
        case none = "no credentials"
        case malformedHeader = "malformed Authorization"
        case ownJWT = "A's ID token"
        case otherTenantJWT = "B's ID token"
        case expiredJWT = "A's expired ID token"
        case admin = "admin"

        var needsCognito: Bool { self == .ownJWT || self == .otherTenantJWT || self == .expiredJWT }

        var description: String { rawValue }
    }

    /// One row: a route of the route table and the status each caller gets.
    struct Row: Sendable {
        let method: HTTPRequest.Method
        /// The route as the route table names it.
        let route: String
        let expected: [Caller: Int]
    }

    static let ok = 200

    /// The policy, as a table. Another tenant's objects answer 404 (not 403): existence does not
    /// leak. A credential that is not valid is a 401 on every route, public ones included.
    static let rows: [Row] = {
        func row(_ method: HTTPRequest.Method, _ route: String, own: Int, other: Int, none: Int, admin: Int) -> Row {
            Row(method: method, route: route, expected: [
                .ownKey: own, .otherTenantKey: other, .revokedKey: 401, .none: none, .malformedHeader: 401,
                .ownJWT: own, .otherTenantJWT: other, .expiredJWT: 401, .admin: admin,
            ])
        }
        return [
            row(.post, "/onboard", own: 201, other: 201, none: 201, admin: 201),
            row(.get, "/tenants", own: 403, other: 403, none: 401, admin: 200),
            row(.get, "/tenants/{tenantId}", own: 200, other: 404, none: 401, admin: 200),
            // Offboarding cannot be undone: each cell targets a tenant of its own (see below), and
            // "own" is that tenant's own credentials: offboarding is the admin's alone (Access.admin).
            row(.delete, "/tenants/{tenantId}", own: 403, other: 403, none: 401, admin: 202),
            row(.post, "/tenants/{tenantId}/api-keys", own: 201, other: 404, none: 401, admin: 201),
            row(.get, "/tenants/{tenantId}/api-keys", own: 200, other: 404, none: 401, admin: 200),
            row(.delete, "/tenants/{tenantId}/api-keys/{keyId}", own: 204, other: 404, none: 401, admin: 204),
            row(.get, "/tenants/{tenantId}/resources/{type}", own: 200, other: 404, none: 401, admin: 200),
            row(.get, "/tenants/{tenantId}/resources/{type}/{resourceId}", own: 200, other: 404, none: 401, admin: 200),
            row(.put, "/tenants/{tenantId}/resources/{type}/{resourceId}", own: 200, other: 404, none: 401, admin: 200),
            row(.delete, "/tenants/{tenantId}/resources/{type}/{resourceId}", own: 204, other: 404, none: 401, admin: 204),
            row(.patch, "/tenants/{tenantId}", own: 200, other: 404, none: 401, admin: 200),
            // A is ACTIVE for the suspend cells, SUSPENDED for the reactivate cells (its own
            // credentials then get 403 tenant-suspended rather than forbidden), ACTIVE again after.
            row(.post, "/tenants/{tenantId}/suspend", own: 403, other: 403, none: 401, admin: 200),
            row(.post, "/tenants/{tenantId}/reactivate", own: 403, other: 403, none: 401, admin: 200),
            // The audit trail is the tenant's own; the delivery routes are the admin's (a failed
            // event of A's is put in place for each redeliver cell).
            row(.get, "/tenants/{tenantId}/events", own: 200, other: 404, none: 401, admin: 200),
            row(.get, "/events", own: 403, other: 403, none: 401, admin: 200),
            row(.post, "/events/{eventId}/redeliver", own: 403, other: 403, none: 401, admin: 202),
            row(.get, "/health", own: 200, other: 200, none: 200, admin: 200),
            row(.get, "/openapi.yaml", own: 200, other: 200, none: 200, admin: 200),
        ]
    }()

    @Test("the matrix covers every route the server serves")
    func coversEveryRoute() async throws {
        try await TestServer.run { _, fixture in
            let served = Set(routeTable(AppDependencies(store: fixture.store, verifiers: [])).map { "\($0.method) \($0.path)" })
            let covered = Set(Self.rows.map { "\($0.method) \($0.route)" })
            #expect(served == covered)
        }
    }

    @Test("every route × every caller with a key, no credentials or the admin token gets the expected status, and B never sees A's data")
    func matrix() async throws {
        try await checkMatrix(callers: Caller.allCases.filter { !$0.needsCognito }, cognito: nil)
    }

    @Test("every route × every caller with an ID token gets the expected status, and B never sees A's data", .requires(.moto))
    func jwtMatrix() async throws {
        // JWTs come from moto's Cognito.
        try await checkMatrix(callers: Caller.allCases.filter(\.needsCognito), cognito: try await CognitoFixture.make())
    }

    /// Runs every route of the table as each of `callers` (ID tokens from `cognito`'s pool).
    func checkMatrix(callers: [Caller], cognito: CognitoFixture?) async throws {
        try await TestServer.run(oidc: cognito) { api, fixture in
            // Two tenants holding a resource of the same type and id, with tell-tale contents.
            let alpha = try await api.onboard(#"{"clientName": "Alpha Secret Holdings", "clientPhone": "+14155550111"}"#)
            let a = try #require(alpha["tenantId"]), keyA = try #require(alpha["apiKey"])
            let beta = try await api.onboard(#"{"clientName": "Beta Corp", "clientPhone": "+14155550122"}"#)
            let b = try #require(beta["tenantId"]), keyB = try #require(beta["apiKey"])
            let alphaMarkers = ["Alpha Secret Holdings", "4155550111", "alpha-marker-7f3a"]
            #expect(try await api.call(.put, "/tenants/\(a)/resources/doc/same", token: keyA, json: #"{"owner": "alpha-marker-7f3a"}"#).status == 201)
            #expect(try await api.call(.put, "/tenants/\(b)/resources/doc/same", token: keyB, json: #"{"owner": "beta-marker-19c2"}"#).status == 201)
            let revokedA = try #require(try await api.call(.post, "/tenants/\(a)/api-keys", token: keyA)["apiKey"])
            #expect(try await api.call(.delete, "/tenants/\(a)/api-keys/\(Self.keyId(revokedA))", token: keyA).status == 204)
            var jwts: [Caller: String] = [:]
            if let cognito {
                jwts[.ownJWT] = try await cognito.idToken(forTenant: a)
                jwts[.otherTenantJWT] = try await cognito.idToken(forTenant: b)
                jwts[.expiredJWT] = try await cognito.expiredIdToken(forTenant: a)
            }

            for row in Self.rows {
                for caller in callers {
                    // Each cell starts from the same state: A's document exists (and a key to revoke).
                    let reset = try await api.call(.put, "/tenants/\(a)/resources/doc/same", token: TestServer.adminToken, json: #"{"owner": "alpha-marker-7f3a"}"#)
                    #expect(reset.status == 200 || reset.status == 201)
                    if row.route == "/tenants/{tenantId}/reactivate" {
                        let suspended = try await api.call(.post, "/tenants/\(a)/suspend", token: TestServer.adminToken, json: #"{"reason": "matrix"}"#)
                        #expect(suspended.status == 200)
                    }
                    var spareKey = "0000000000000000"
                    if row.route.contains("{keyId}") {
                        spareKey = try #require(try await api.call(.post, "/tenants/\(a)/api-keys", token: TestServer.adminToken)["keyId"])
                    }
                    var failedEvent = "00000000000000000000000000"
                    if row.route.contains("{eventId}") {
                        failedEvent = try await EventRoutesTests.putFailedEvent(
                            fixture.store, tenantId: a, data: ["note": .string("alpha-marker-7f3a")]
                        ).id
                    }

                    // DELETE /tenants/{tenantId} targets a fresh tenant: the admin's 202 offboards it.
                    // Its "own" cells use that tenant's own credentials (a tenant offboarding itself);
                    // the other cells keep B's and A's.
                    var target = a
                    var ownKey = keyA
                    var ownJWT = jwts[.ownJWT]
                    if row.method == .delete && row.route == "/tenants/{tenantId}" {
                        let disposable = try await api.onboard(#"{"clientName": "Disposable", "clientPhone": "+14155550144"}"#)
                        target = try #require(disposable["tenantId"])
                        ownKey = try #require(disposable["apiKey"])
                        if caller == .ownJWT, let cognito { ownJWT = try await cognito.idToken(forTenant: target) }
                    }
                    let path = row.route
                        .replacingOccurrences(of: "{tenantId}", with: target)
                        .replacingOccurrences(of: "{keyId}", with: spareKey)
                        .replacingOccurrences(of: "{type}", with: "doc")
                        .replacingOccurrences(of: "{resourceId}", with: "same")
                        .replacingOccurrences(of: "{eventId}", with: failedEvent)
                        + (row.route == "/events" ? "?delivery=failed" : "")
                    var headers: HTTPFields = [:]
                    switch caller {
                    case .ownKey: headers[.authorization] = "Bearer \(ownKey)"
                    case .otherTenantKey: headers[.authorization] = "Bearer \(keyB)"
                    case .revokedKey: headers[.authorization] = "Bearer \(revokedA)"
                    case .none: break
                    case .malformedHeader: headers[.authorization] = "Basic \(Data("a:b".utf8).base64EncodedString())"
                    case .admin: headers[.authorization] = "Bearer \(TestServer.adminToken)"
                    case .ownJWT: headers[.authorization] = "Bearer \(try #require(ownJWT))"
                    case .otherTenantJWT, .expiredJWT: headers[.authorization] = "Bearer \(try #require(jwts[caller]))"
                    }
                    var body: String?
                    if row.method == .put {
                        body = caller == .otherTenantKey || caller == .otherTenantJWT
                            ? #"{"owner": "overwritten-by-b"}"# : #"{"owner": "alpha-marker-7f3a"}"#
                    } else if row.method == .patch {
                        body = caller == .otherTenantKey || caller == .otherTenantJWT
                            ? #"{"clientName": "overwritten-by-b"}"# : #"{"clientName": "Alpha Secret Holdings"}"#
                    } else if row.route == "/tenants/{tenantId}/suspend" {
                        body = #"{"reason": "matrix"}"#
                    } else if row.route == "/onboard" {
                        body = #"{"clientName": "Gamma", "clientPhone": "+14155550133"}"#
                    }
                    if body != nil { headers[.contentType] = "application/json" }
                    let response = try await api.send(row.method, path, headers: headers, body: body)
                    let expected = try #require(row.expected[caller])
                    #expect(response.status == expected, "\(row.method) \(row.route) as \(caller)")
                    if response.status >= 400 {
                        #expect(response.headers[.contentType] == "application/problem+json", "\(row.method) \(row.route) as \(caller)")
                    }
                    if target != a {
                        // Offboarding started exactly when the answer says so.
                        let state = try await api.call(.get, "/tenants/\(target)", token: TestServer.adminToken)["status"]
                        let offboarding = state == "OFFBOARDING" || state == "OFFBOARDED"
                        #expect(offboarding == (response.status == 202), "\(row.method) \(row.route) as \(caller): \(state ?? "no status")")
                    }
                    if row.route.contains("{keyId}") {
                        let cleanup = try await api.call(.delete, "/tenants/\(a)/api-keys/\(spareKey)", token: TestServer.adminToken)
                        #expect(cleanup.status == (response.status == 204 ? 404 : 204), "the key is revoked exactly when the answer says so")
                    }
                    if row.route.contains("{eventId}") {
                        // Queued again exactly when the answer says so; a refused one is removed by hand.
                        let failedKey = EventRoutesTests.failedKey(failedEvent)
                        let stillFailed = try await fixture.store.get(failedKey) != nil
                        #expect(stillFailed == (response.status != 202), "\(row.method) \(row.route) as \(caller)")
                        if stillFailed { try await fixture.store.delete(failedKey, condition: nil) }
                    }
                    if row.route.hasSuffix("/suspend") || row.route.hasSuffix("/reactivate") {
                        // Suspended exactly when the answer says so; then A is made ACTIVE for the next cell.
                        let state = try await api.call(.get, "/tenants/\(a)", token: TestServer.adminToken)["status"]
                        let suspendedNow = row.route.hasSuffix("/suspend") ? response.status == 200 : response.status != 200
                        #expect(state == (suspendedNow ? "SUSPENDED" : "ACTIVE"), "\(row.method) \(row.route) as \(caller)")
                        if state == "SUSPENDED" {
                            #expect(try await api.call(.post, "/tenants/\(a)/reactivate", token: TestServer.adminToken).status == 200)
                        }
                    }
                    // What a caller that is not A (nor the admin) receives holds nothing of A's.
                    if caller != .ownKey && caller != .ownJWT && caller != .admin {
                        for marker in alphaMarkers {
                            #expect(!response.text.contains(marker), "\(row.method) \(row.route) as \(caller) leaked A's data")
                        }
                    }
                }
            }

            // B's attempts changed nothing of A's, and each tenant still sees only its own data.
            let docA = try await api.call(.get, "/tenants/\(a)/resources/doc/same", token: keyA)
            #expect(docA.json["data"] == .map(["owner": .string("alpha-marker-7f3a")]))
            #expect(try await api.tenant(a)["clientName"] == "Alpha Secret Holdings", "B's PATCH changed nothing")
            let docB = try await api.call(.get, "/tenants/\(b)/resources/doc/same", token: keyB)
            #expect(docB.json["data"] == .map(["owner": .string("beta-marker-19c2")]))
            for path in ["/tenants/\(b)", "/tenants/\(b)/resources/doc", "/tenants/\(b)/resources/doc/same", "/tenants/\(b)/api-keys"] {
                let own = try await api.call(.get, path, token: keyB)
                #expect(own.status == 200, "\(path)")
                for marker in alphaMarkers { #expect(!own.text.contains(marker), "\(path) shows A's data to B") }
            }
            let listB = try await api.call(.get, "/tenants/\(b)/resources/doc", token: keyB)
            guard case .list(let resources)? = listB.json["resources"] else { Issue.record("no listing"); return }
            #expect(resources.count == 1)
            // The store agrees: A's partition holds A's document, B's holds B's.
            #expect(try await fixture.store.get(ItemKey(tenantId: a, resourceKey: "doc#same"))?["data"] == .map(["owner": .string("alpha-marker-7f3a")]))
            #expect(try await fixture.store.get(ItemKey(tenantId: b, resourceKey: "doc#same"))?["data"] == .map(["owner": .string("beta-marker-19c2")]))
        }
    }

    static func keyId(_ key: String) -> String { String(key.split(separator: "_")[1]) }
}
