import Foundation
import HTTPTypes
import OnboardTestSupport
import OnboardingCore
import OnboardingHTTP
import Synchronization
import Testing

/// The tenant's life after onboarding: `PATCH /tenants/{id}`, suspend, reactivate, the
/// suspension gate on its credentials, and the listing by state; on the suite's store (SQLite,
/// or DynamoDB on moto in CI).
@Suite("Tenant lifecycle: update, suspend, reactivate", .testStoreAvailable)
struct LifecycleTests {
    static let admin = TestServer.adminToken

    /// `PATCH /tenants/{id}` with a merge-patch body.
    @discardableResult
    func patch(
        _ api: APIClient, _ id: String, _ json: String, token: String = admin, contentType: String = "application/merge-patch+json",
        ifMatch: String? = nil, sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> APIResponse {
        var headers: HTTPFields = [.authorization: "Bearer \(token)", .contentType: contentType]
        if let ifMatch { headers[.ifMatch] = ifMatch }
        return try await api.send(.patch, "/tenants/\(id)", headers: headers, body: json, sourceLocation: sourceLocation)
    }

    @discardableResult
    func suspend(
        _ api: APIClient, _ id: String, reason: String = #"{"reason": "unpaid invoice"}"#, ifMatch: String? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> APIResponse {
        var headers: HTTPFields = [.authorization: "Bearer \(Self.admin)", .contentType: "application/json"]
        if let ifMatch { headers[.ifMatch] = ifMatch }
        return try await api.send(.post, "/tenants/\(id)/suspend", headers: headers, body: reason, sourceLocation: sourceLocation)
    }

    @discardableResult
    func reactivate(_ api: APIClient, _ id: String, ifMatch: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) async throws -> APIResponse {
        var headers: HTTPFields = [.authorization: "Bearer \(Self.admin)"]
        if let ifMatch { headers[.ifMatch] = ifMatch }
        return try await api.send(.post, "/tenants/\(id)/reactivate", headers: headers, sourceLocation: sourceLocation)
    }

    /// Puts the tenant in `status` directly in the store (the states OFFBOARDING's engine sets).
    func force(_ store: any TenantStore, _ id: String, _ status: TenantStatus) async throws {
        let tenantId = try #require(TenantID(id))
        try await store.update(Tenant.key(tenantId), set: [Tenant.Attribute.status: .string(status.rawValue)], condition: nil)
    }

    // MARK: transitions

    @Test("ACTIVE → SUSPENDED → ACTIVE: each change answers the tenant with its new version as ETag; the reason and date come and go")
    func suspendAndReactivate() async throws {
        try await TestServer.run { api, fixture in
            let (id, _) = try await api.newTenant("Acme")
            let read = try await api.tenant(id)
            #expect(read.headers[.eTag] == #""1""#)
            #expect(read["status"] == "ACTIVE")

            let suspended = try await suspend(api, id, reason: #"{"reason": "  unpaid invoice #42  "}"#)
            #expect(suspended.status == 200)
            #expect(suspended["status"] == "SUSPENDED")
            #expect(suspended["suspensionReason"] == "unpaid invoice #42", "stored trimmed")
            #expect(suspended["suspendedAt"] != nil)
            #expect(suspended.json["version"] == .int(2))
            #expect(suspended.headers[.eTag] == #""2""#)
            #expect(suspended["clientName"] == "Acme", "the profile is untouched")
            // What GET shows is what the store holds.
            let afterSuspend = try await api.tenant(id)
            #expect(afterSuspend.json == suspended.json)
            #expect(afterSuspend.headers[.eTag] == #""2""#)

            let reactivated = try await reactivate(api, id)
            #expect(reactivated.status == 200)
            #expect(reactivated["status"] == "ACTIVE")
            #expect(reactivated.json["suspensionReason"] == nil && reactivated.json["suspendedAt"] == nil)
            #expect(reactivated.json["version"] == .int(3))
            #expect(reactivated.headers[.eTag] == #""3""#)
            #expect(try await api.tenant(id).json == reactivated.json)
            // The item keeps what the lifecycle does not own: the API-key count.
            let tenantId = try #require(TenantID(id))
            let item = try #require(try await fixture.store.get(Tenant.key(tenantId)))
            #expect(item[Tenant.Attribute.apiKeyCount] == .int(1))
            #expect(try Tenant(item: item).suspensionReason == nil)
        }
    }

    @Test("illegal transitions are 409 invalid-transition naming the current state, and change nothing")
    func illegalTransitions() async throws {
        try await TestServer.run { api, fixture in
            let (id, _) = try await api.newTenant()
            let again = try await reactivate(api, id)
            #expect(again.status == 409)
            #expect(again["code"] == "invalid-transition")
            #expect(again["detail"]?.contains("ACTIVE") == true)

            #expect(try await suspend(api, id).status == 200)
            let twice = try await suspend(api, id)
            #expect(twice.status == 409)
            #expect(twice["code"] == "invalid-transition")
            #expect(twice["detail"]?.contains("SUSPENDED") == true)
            #expect(try await api.tenant(id).json["version"] == .int(2), "nothing changed")

            for state in [TenantStatus.offboarding, .offboarded] {
                try await force(fixture.store, id, state)
                for response in [
                    try await suspend(api, id), try await reactivate(api, id),
                    try await patch(api, id, #"{"clientName": "Renamed"}"#),
                ] {
                    #expect(response.status == 409, "\(state)")
                    #expect(response["code"] == "invalid-transition")
                    #expect(response["detail"]?.contains(state.rawValue) == true)
                }
                #expect(try await api.tenant(id)["status"] == state.rawValue)
            }
        }
    }

    @Test("every pair of states: the service allows exactly the transitions the model allows")
    func transitionTable() async throws {
        try await TestServer.run { api, fixture in
            let lifecycle = TenantLifecycle(store: fixture.store)
            for from in TenantStatus.allCases {
                let (text, _) = try await api.newTenant()
                let id = try #require(TenantID(text))
                try await force(fixture.store, text, from)
                for (target, action) in [(TenantStatus.suspended, "suspend"), (.active, "reactivate")] {
                    do {
                        let changed = action == "suspend"
                            ? try await lifecycle.suspend(id, reason: "table") : try await lifecycle.reactivate(id)
                        #expect(from.canTransition(to: target), "\(from) → \(target) was allowed")
                        #expect(changed.status == target)
                        try await force(fixture.store, text, from)  // back, for the next action
                    } catch let error as OnboardingError {
                        #expect(error.code == .invalidTransition)
                        #expect(!from.canTransition(to: target), "\(from) → \(target) was refused")
                        #expect(error.message.contains(from.rawValue))
                    }
                }
            }
        }
    }

    @Test("an unknown tenant is 404 for PATCH, suspend and reactivate; a tenant cannot suspend itself")
    func unknownAndForbidden() async throws {
        try await TestServer.run { api, _ in
            let unknown = "0195f3c4-7a1e-7b2c-9d3e-4f5a6b7c8d9e"
            #expect(try await patch(api, unknown, #"{"clientName": "X"}"#)["code"] == "tenant-not-found")
            #expect(try await suspend(api, unknown)["code"] == "tenant-not-found")
            #expect(try await reactivate(api, unknown)["code"] == "tenant-not-found")
            let (id, key) = try await api.newTenant()
            let own = try await api.call(.post, "/tenants/\(id)/suspend", token: key, json: #"{"reason": "self"}"#)
            #expect(own.status == 403)
            #expect(own["code"] == "forbidden")
            #expect(try await api.tenant(id)["status"] == "ACTIVE")
        }
    }

    // MARK: PATCH

    @Test("PATCH changes only the fields given (merge patch), by the tenant's key or the admin; both media types")
    func mergePatch() async throws {
        try await TestServer.run { api, _ in
            let (id, key) = try await api.newTenant("Old Name")
            let phone = try await patch(api, id, #"{"clientPhone": "+44 7700 900123"}"#, token: key)
            #expect(phone.status == 200)
            #expect(phone["clientPhone"] == "+447700900123", "normalised as onboarding does")
            #expect(phone["clientName"] == "Old Name")
            #expect(phone.headers[.eTag] == #""2""#)
            let name = try await patch(api, id, #"{"clientName": "  New Name  "}"#, contentType: "application/json; charset=utf-8")
            #expect(name.status == 200)
            #expect(name["clientName"] == "New Name")
            #expect(name["clientPhone"] == "+447700900123")
            #expect(try await api.tenant(id).json == name.json)
            // An empty patch changes nothing, not even the version.
            let empty = try await patch(api, id, "{}")
            #expect(empty.status == 200)
            #expect(empty.json == name.json)
            #expect(empty.headers[.eTag] == #""3""#)
            // A suspended tenant's profile is still the admin's to correct.
            #expect(try await suspend(api, id).status == 200)
            let whileSuspended = try await patch(api, id, #"{"clientName": "Corrected"}"#)
            #expect(whileSuspended.status == 200)
            #expect(whileSuspended["status"] == "SUSPENDED")
            #expect(whileSuspended["suspensionReason"] == "unpaid invoice")
        }
    }

    @Test("PATCH validation: every bad field at once, null for a required field, unknown fields, bodies and media types")
    func patchValidation() async throws {
        try await TestServer.run { api, _ in
            let (id, _) = try await api.newTenant("Kept")
            let both = try await patch(api, id, #"{"clientName": "   ", "clientPhone": "12", "plan": "gold"}"#)
            #expect(both.status == 422)
            #expect(both["code"] == "validation-error")
            #expect(both.fieldErrors == ["clientName": "empty", "clientPhone": "invalid-format", "plan": "unknown-field"])
            let removed = try await patch(api, id, #"{"clientName": null, "clientPhone": null}"#)
            #expect(removed.status == 422)
            #expect(removed.fieldErrors == ["clientName": "missing", "clientPhone": "missing"])
            let wrongType = try await patch(api, id, #"{"clientName": 7}"#)
            #expect(wrongType.fieldErrors == ["clientName": "wrong-type"])
            #expect(try await patch(api, id, "[1]").status == 400)
            #expect(try await patch(api, id, "{").json["code"] == .string("malformed-json"))
            let text = try await patch(api, id, #"{"clientName": "X"}"#, contentType: "text/plain")
            #expect(text.status == 415)
            #expect(text.headers[HTTPField.Name("Accept-Patch")!] == "application/merge-patch+json, application/json")
            #expect(try await patch(api, id, #"{"clientName": "X"}"#, contentType: "application/json-patch+json").status == 415)
            // None of it changed the tenant.
            let tenant = try await api.tenant(id)
            #expect(tenant["clientName"] == "Kept")
            #expect(tenant.json["version"] == .int(1))
        }
    }

    @Test("suspend validation: reason required, 1-500 characters after trimming, a string, nothing else")
    func suspendValidation() async throws {
        try await TestServer.run { api, _ in
            let (id, _) = try await api.newTenant()
            let cases: [(String, [String: String])] = [
                ("{}", ["reason": "missing"]),
                (#"{"reason": null}"#, ["reason": "missing"]),
                (#"{"reason": " \n\t "}"#, ["reason": "empty"]),
                (#"{"reason": 5}"#, ["reason": "wrong-type"]),
                (#"{"reason": "\#(String(repeating: "é", count: 501))"}"#, ["reason": "too-long"]),
                (#"{"reason": "a\u0000b"}"#, ["reason": "invalid-characters"]),
                (#"{"reason": "ok", "until": "tomorrow"}"#, ["until": "unknown-field"]),
            ]
            for (body, errors) in cases {
                let response = try await suspend(api, id, reason: body)
                #expect(response.status == 422, "\(body)")
                #expect(response.fieldErrors == errors, "\(body)")
            }
            #expect(try await api.tenant(id)["status"] == "ACTIVE")
            let longest = try await suspend(api, id, reason: #"{"reason": "  \#(String(repeating: "é", count: 500))  "}"#)
            #expect(longest.status == 200)
            #expect(longest["suspensionReason"]?.unicodeScalars.count == 500)
        }
    }

    // MARK: If-Match and concurrency

    @Test("If-Match: the current version applies, a stale one is 412 and changes nothing, a malformed one is 400")
    func ifMatch() async throws {
        try await TestServer.run { api, _ in
            let (id, _) = try await api.newTenant("First")
            let applied = try await patch(api, id, #"{"clientName": "Second"}"#, ifMatch: #""1""#)
            #expect(applied.status == 200)
            #expect(applied.headers[.eTag] == #""2""#)
            let stale = try await patch(api, id, #"{"clientName": "Third"}"#, ifMatch: #""1""#)
            #expect(stale.status == 412)
            #expect(stale["code"] == "precondition-failed")
            #expect(try await suspend(api, id, ifMatch: #""1""#).status == 412)
            #expect(try await api.tenant(id)["clientName"] == "Second")
            // A weak tag never matches (strong comparison), `*` only needs the tenant to exist.
            #expect(try await patch(api, id, #"{"clientName": "Weak"}"#, ifMatch: #"W/"2""#).status == 412)
            #expect(try await patch(api, id, #"{"clientName": "Any"}"#, ifMatch: "*").status == 200)
            for malformed in ["3", #""3"x"#, #""2", "3""#] {
                let response = try await patch(api, id, #"{"clientName": "Bad"}"#, ifMatch: malformed)
                #expect(response.status == 400, "\(malformed)")
                #expect(response["code"] == "bad-request")
            }
            let suspended = try await suspend(api, id, ifMatch: #""3""#)
            #expect(suspended.status == 200)
            #expect(try await reactivate(api, id, ifMatch: #""3""#).status == 412)
            #expect(try await reactivate(api, id, ifMatch: #""4""#).status == 200)
            #expect(try await api.tenant(id)["clientName"] == "Any")
        }
    }

    @Test("20 concurrent PATCHes without If-Match: none is lost (each 200 is one version); with the same If-Match exactly one wins")
    func concurrentPatches() async throws {
        try await TestServer.run(logLevel: .warning) { api, fixture in
            let (id, _) = try await api.newTenant("Race")
            // Each on a connection of its own: `api.send` would have Hummingbird serve them one by one.
            func patches(ifMatch: String?) -> [ConcurrentRequest] {
                (0..<20).map { index in
                    var headers: HTTPFields = [.authorization: "Bearer \(Self.admin)", .contentType: "application/merge-patch+json"]
                    if let ifMatch { headers[.ifMatch] = ifMatch }
                    let name = ifMatch == nil ? "Writer \(index)" : "Conditional \(index)"
                    return ConcurrentRequest(method: .patch, path: "/tenants/\(id)", headers: headers, body: #"{"clientName": "\#(name)"}"#)
                }
            }
            let answers = try await api.sendConcurrently(patches(ifMatch: nil), port: fixture.port)
            let applied = answers.filter { $0.status == 200 }.count
            // A PATCH that keeps losing the race past its retry budget gives up with 409 conflict
            // (seen on moto, which serves one call at a time); every 200 must be a version of its own.
            #expect(answers.allSatisfy { $0.status == 200 || ($0.status == 409 && $0["code"] == "conflict") }, "\(answers.map(\.status))")
            #expect(applied >= 1)
            let after = try await api.tenant(id)
            #expect(after.json["version"] == .int(1 + applied), "no update was lost: \(applied) applied")
            #expect(after.headers[.eTag] == "\"\(1 + applied)\"")

            let etag = try #require(after.headers[.eTag])
            let conditional = try await api.sendConcurrently(patches(ifMatch: etag), port: fixture.port).map(\.status)
            #expect(conditional.filter { $0 == 200 }.count == 1)
            #expect(conditional.filter { $0 == 412 }.count == 19)
            #expect(try await api.tenant(id).json["version"] == .int(2 + applied))
        }
    }

    @Test(
        "a failed write is a 503: refused before the store, nothing changed; answer lost after it, the change a read shows",
        arguments: [FailingStore.Mode.beforeForwarding, .afterForwarding]
    )
    func storeFaults(mode: FailingStore.Mode) async throws {
        let injector = Mutex<FailingStore?>(nil)
        try await TestServer.run(wrapStore: { base in
            // Only writes count: the test's own requests use the admin token, so nothing else
            // writes (the event dispatcher's calls bypass the counting).
            OutboxBypass(base: base) { base in
                let failing = FailingStore(base: base, failAt: nil, counting: .writesOnly, mode: mode)
                injector.withLock { $0 = failing }
                return failing
            }
        }) { api, _ in
            let store = try #require(injector.withLock { $0 })
            let (id, _) = try await api.newTenant("Faulty")
            let applied = mode == .afterForwarding
            for change in ["suspend", "patch"] {
                let before = try await api.tenant(id).json["version"]?.intValue ?? 0
                store.setFailure(at: 1)
                let failed = change == "suspend"
                    ? try await suspend(api, id) : try await patch(api, id, #"{"clientName": "Renamed"}"#)
                #expect(failed.status == 503, "\(change), \(mode)")
                #expect(failed["code"] == "store-unavailable")
                #expect(store.failuresInjected == 1)
                store.setFailure(at: nil)
                let after = try await api.tenant(id)
                #expect(after.json["version"] == .int(applied ? before + 1 : before), "\(change), \(mode)")
                // (The patch runs on the tenant the suspend step left SUSPENDED.)
                #expect(after["status"] == (change == "suspend" && !applied ? "ACTIVE" : "SUSPENDED"))
                if change == "suspend" && !applied {
                    // Nothing happened: the same request now succeeds.
                    #expect(try await suspend(api, id).status == 200)
                } else if change == "suspend" {
                    // It happened: repeating it is refused, naming the state (read before repeating).
                    let again = try await suspend(api, id)
                    #expect(again.status == 409)
                    #expect(again["detail"]?.contains("SUSPENDED") == true)
                }
                if change == "patch" {
                    #expect(after["clientName"] == (applied ? "Renamed" : "Faulty"))
                }
            }
        }
    }

    // MARK: the gate

    /// Every route of the route table, with its path filled in for `id`, and a body where it takes one.
    func everyRoute(_ fixture: TestFixture, id: String) -> [(HTTPRequest.Method, String, String?)] {
        routeTable(AppDependencies(store: fixture.store, verifiers: [])).map { route in
            let path = route.path
                .replacingOccurrences(of: "{tenantId}", with: id)
                .replacingOccurrences(of: "{keyId}", with: "0000000000000000")
                .replacingOccurrences(of: "{type}", with: "doc")
                .replacingOccurrences(of: "{resourceId}", with: "one")
                .replacingOccurrences(of: "{eventId}", with: "01ARZ3NDEKTSV4RRFFQ69G5FAV")
            let body: String? = switch (route.method, route.path) {
            case (.post, "/onboard"): #"{"clientName": "Other", "clientPhone": "+14155550100"}"#
            case (.post, "/tenants/{tenantId}/suspend"): #"{"reason": "again"}"#
            case (.post, _), (.put, _), (.patch, _): "{}"
            default: nil
            }
            return (route.method, path, body)
        }
    }

    @Test("a suspended tenant's key gets 403 tenant-suspended on every route, the admin still manages it, reactivation restores access")
    func suspendedKeyIsGated() async throws {
        try await TestServer.run { api, fixture in
            let (id, key) = try await api.newTenant("Paused")
            let (other, otherKey) = try await api.newTenant("Unaffected")
            #expect(try await api.call(.put, "/tenants/\(id)/resources/doc/one", token: key, json: #"{"kept": true}"#).status == 201)
            #expect(try await suspend(api, id).status == 200)

            for (method, path, body) in everyRoute(fixture, id: id) {
                let response = try await api.call(method, path, token: key, json: body)
                #expect(response.status == 403, "\(method) \(path)")
                #expect(response["code"] == "tenant-suspended", "\(method) \(path)")
            }
            // The other tenant and the admin are not affected; the data is untouched.
            #expect(try await api.call(.get, "/tenants/\(other)", token: otherKey).status == 200)
            let document = try await api.call(.get, "/tenants/\(id)/resources/doc/one", token: Self.admin)
            #expect(document.json["data"] == .map(["kept": .bool(true)]))
            #expect(try await patch(api, id, #"{"clientName": "Still Paused"}"#).status == 200)
            #expect(try await api.call(.get, "/tenants/\(id)/api-keys", token: Self.admin).status == 200)

            #expect(try await reactivate(api, id).status == 200)
            let back = try await api.call(.get, "/tenants/\(id)/resources/doc/one", token: key)
            #expect(back.status == 200)
            #expect(back.json["data"] == .map(["kept": .bool(true)]))
        }
    }

    @Test("a suspended tenant's JWT gets 403 tenant-suspended; an admin JWT still manages the tenant", .requires(.moto))
    func suspendedJWTIsGated() async throws {
        let cognito = try await CognitoFixture.make()
        try await TestServer.run(oidc: cognito) { api, fixture in
            let (id, _) = try await api.newTenant("Paused by token")
            let token = try await cognito.idToken(forTenant: id)
            #expect(try await api.call(.get, "/tenants/\(id)", token: token).status == 200)
            #expect(try await suspend(api, id).status == 200)
            for (method, path, body) in everyRoute(fixture, id: id) {
                let response = try await api.call(method, path, token: token, json: body)
                #expect(response.status == 403, "\(method) \(path)")
                #expect(response["code"] == "tenant-suspended", "\(method) \(path)")
            }
            #expect(try await reactivate(api, id).status == 200)
            #expect(try await api.call(.get, "/tenants/\(id)", token: token).status == 200)
        }
    }

    @Test("an offboarding or offboarded tenant's key, or a key whose tenant is gone, is 401 as an invalid credential")
    func removedTenantsKeysAre401() async throws {
        try await TestServer.run { api, fixture in
            let (id, key) = try await api.newTenant()
            for state in [TenantStatus.offboarding, .offboarded] {
                try await force(fixture.store, id, state)
                let response = try await api.call(.get, "/tenants/\(id)", token: key)
                #expect(response.status == 401, "\(state)")
                #expect(response["code"] == "unauthorized")
                #expect(response.headers[.wwwAuthenticate] == #"Bearer realm="onboard", error="invalid_token""#)
                // Even on a public route, as any credential that is not valid.
                #expect(try await api.call(.get, "/health", token: key).status == 401)
            }
            // The profile gone altogether (the key's look-up item left behind).
            let tenantId = try #require(TenantID(id))
            try await fixture.store.delete(Tenant.key(tenantId))
            #expect(try await api.call(.get, "/tenants/\(id)", token: key).status == 401)
        }
    }

    // MARK: listing by state

    /// Pages through `GET /tenants?status=…` and returns the ids in page order and the page sizes.
    func listAll(_ api: APIClient, status: String, limit: Int, order: String = "newest") async throws -> (ids: [String], pages: [Int]) {
        var ids: [String] = []
        var pages: [Int] = []
        var cursor: String?
        repeat {
            var path = "/tenants?status=\(status)&limit=\(limit)&order=\(order)"
            if let cursor { path += "&cursor=\(cursor)" }
            let response = try await api.send(.get, path, headers: [.authorization: "Bearer \(Self.admin)"])
            #expect(response.status == 200)
            guard case .list(let page)? = response.json["tenants"] else { break }
            for case .map(let tenant) in page {
                #expect(tenant["status"] == .string(status))
                ids.append(tenant["tenantId"]?.stringValue ?? "")
            }
            pages.append(page.count)
            cursor = response["nextCursor"]
        } while cursor != nil && pages.count < 50
        return (ids, pages)
    }

    @Test("GET /tenants?status= lists only that state, in full pages, without skipping any, in both orders")
    func statusFilter() async throws {
        try await TestServer.run(logLevel: .warning) { api, _ in
            var created: [String] = []
            for index in 0..<12 {
                created.append(try await api.newTenant("Listed \(index)").id)
            }
            let suspended = created.enumerated().filter { $0.offset % 3 == 0 }.map(\.element)
            for id in suspended { #expect(try await suspend(api, id).status == 200) }
            // The unfiltered listing's order (creation time, then id), filtered here.
            let all = try await api.send(.get, "/tenants?limit=100", headers: [.authorization: "Bearer \(Self.admin)"])
            guard case .list(let listed)? = all.json["tenants"] else { Issue.record("no tenants"); return }
            let order = listed.compactMap { $0.mapValue?["tenantId"]?.stringValue }
            #expect(Set(order) == Set(created))

            let newest = try await listAll(api, status: "SUSPENDED", limit: 3)
            #expect(newest.ids == order.filter { suspended.contains($0) })
            #expect(newest.pages == [3, 1], "full pages; the last one short; no empty page after it")
            let oldest = try await listAll(api, status: "SUSPENDED", limit: 2, order: "oldest")
            #expect(oldest.ids == order.filter { suspended.contains($0) }.reversed())
            #expect(try await listAll(api, status: "ACTIVE", limit: 5).ids == order.filter { !suspended.contains($0) })
            let none = try await listAll(api, status: "OFFBOARDED", limit: 5)
            #expect(none.ids.isEmpty && none.pages == [0])

            for bad in ["suspended", "PAUSED", ""] {
                let response = try await api.send(.get, "/tenants?status=\(bad)", headers: [.authorization: "Bearer \(Self.admin)"])
                #expect(response.status == 400, "\(bad)")
                #expect(response["code"] == "bad-request")
            }
        }
    }

    @Test("the filtered listing reads past batches of non-matching tenants (more than a page of the index between matches)")
    func statusFilterAcrossBatches() async throws {
        try await TestServer.run(logLevel: .warning) { api, fixture in
            // Written directly (as onboarding writes profiles), to have many quickly.
            var suspended: [String] = []
            for index in 0..<230 {
                let id = TenantID(String(format: "0195f3c4-7a1e-7b2c-9d3e-%012x", index * 7919 + 11))!
                let created = String(format: "2026-11-01T10:%02d:%02d.000Z", index / 60, index % 60)
                let status: TenantStatus = index % 101 == 5 ? .suspended : .active
                let tenant = Tenant(
                    id: id, clientName: ClientName(stored: "Bulk \(index)"), clientPhone: PhoneNumber(stored: "+14155550100"),
                    status: status, createdAt: created, updatedAt: created, version: 1, apiKeyCount: 0
                )
                try await fixture.store.put(tenant.item, condition: .itemNotExists)
                if status == .suspended { suspended.append(id.rawValue) }
            }
            #expect(suspended.count == 3)
            let newest = try await listAll(api, status: "SUSPENDED", limit: 1)
            #expect(newest.ids == suspended.reversed())
            #expect(newest.pages == [1, 1, 1])
            #expect(try await listAll(api, status: "SUSPENDED", limit: 100, order: "oldest").ids == suspended)
            #expect(try await listAll(api, status: "ACTIVE", limit: 100).ids.count == 227)
        }
    }
}
