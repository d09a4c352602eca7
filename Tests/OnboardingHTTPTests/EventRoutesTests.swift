import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import InMemoryLogging
import Logging
import OnboardTestSupport
import OnboardingCore
import OnboardingHTTP
import Testing

/// The events routes end to end: the audit trail (`GET /tenants/{tenantId}/events`), who each
/// event names as its actor and request, and the admin's delivery routes (`GET /events`,
/// `POST /events/{eventId}/redeliver`).
@Suite("Event routes: audit trail, actors, delivery listings, redelivery", .testStoreAvailable)
struct EventRoutesTests {
    static let admin = TestServer.adminToken

    // MARK: Helpers

    /// `GET /tenants/{id}/events` (query included in `query`).
    static func events(
        _ api: APIClient, _ id: String, token: String = admin, query: String = "", headers: HTTPFields = [:],
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> APIResponse {
        try await api.call(.get, "/tenants/\(id)/events\(query)", token: token, headers: headers, sourceLocation: sourceLocation)
    }

    /// A request with an `X-Request-Id` of the test's choosing.
    static func requestID(_ id: String) -> HTTPFields { [.xRequestID: id] }

    /// The `keyId` of an API key's text (`onb_<keyId>_<secret>`).
    static func keyId(_ key: String) -> String { String(key.split(separator: "_")[1]) }

    /// Every event of the tenant, newest first, page by page as the admin.
    static func allEvents(_ api: APIClient, _ id: String, limit: Int, type: String? = nil) async throws -> [[String: AttributeValue]] {
        var events: [[String: AttributeValue]] = []
        var cursor: String?
        var pages = 0
        repeat {
            var query = "?limit=\(limit)"
            if let type { query += "&type=\(type)" }
            if let cursor { query += "&cursor=\(cursor)" }
            let page = try await Self.events(api, id, query: query)
            #expect(page.status == 200)
            #expect(page.listed.count <= limit)
            events += page.listed
            cursor = page["nextCursor"]
            pages += 1
        } while cursor != nil && pages < 100
        return events
    }

    /// Puts an event in `_outbox-failed`, as the dispatcher leaves one a sink gave up on: the
    /// `log` sink failed (the sink every test server has), a webhook delivered.
    static func putFailedEvent(_ store: any TenantStore, tenantId: String, data: [String: AttributeValue] = [:]) async throws -> TenantEvent {
        let id = try #require(TenantID(tenantId))
        let event = EventRecorder(source: "urn:onboard:test").event(.tenantUpdated, tenantId: id, data: data.isEmpty ? ["changed": .list([.string("clientName")])] : data)
        let now = EventOutbox.epochMilliseconds(Date())
        typealias Name = EventOutboxLayout.Attribute
        let item = Item(tenantId: EventOutboxLayout.failedPartition, resourceKey: EventOutboxLayout.prefix + event.id, attributes: [
            Name.envelope: .string(event.envelopeJSON),
            Name.eventTenantId: .string(tenantId),
            Name.eventType: .string(event.type.rawValue),
            Name.time: .string(event.time),
            Name.delivery: SinkDelivery.attributeValue([
                "log": SinkDelivery(state: .failed, attempts: 7, nextAttemptAt: now + 60_000, firstFailedAt: now - 3_600_000, lastError: "injected: HTTP 500"),
                "webhook:http://127.0.0.1:9/hook": SinkDelivery(state: .delivered, attempts: 2, firstFailedAt: now - 3_500_000, lastError: "HTTP 503"),
            ]),
        ])
        try await store.put(item, condition: .itemNotExists)
        return event
    }

    static func failedKey(_ eventId: String) -> ItemKey {
        ItemKey(tenantId: EventOutboxLayout.failedPartition, resourceKey: EventOutboxLayout.prefix + eventId)
    }

    // MARK: Actors and the audit trail

    @Test("each change's event names its actor (anonymous sign-up, API key, admin token) and request id; the trail is newest first, as recorded")
    func actorsAndRequestIDs() async throws {
        try await TestServer.run { api, fixture in
            let created = try await api.send(
                .post, "/onboard", headers: [.contentType: "application/json", .xRequestID: "req-signup-1"],
                body: #"{"clientName": "Audit Corp", "clientPhone": "+14155550100"}"#
            )
            #expect(created.status == 201)
            let id = try #require(created["tenantId"]), key = try #require(created["apiKey"])
            let keyActor = "apikey:" + Self.keyId(key)

            var headers = Self.requestID("req-patch-2")
            headers[.contentType] = "application/merge-patch+json"
            headers[.authorization] = "Bearer \(key)"
            #expect(try await api.send(.patch, "/tenants/\(id)", headers: headers, body: #"{"clientName": "Audit Renamed"}"#).status == 200)
            let issued = try await api.call(.post, "/tenants/\(id)/api-keys", token: Self.admin, headers: Self.requestID("req-key-3"))
            #expect(issued.status == 201)
            let issuedKey = try #require(issued["apiKey"]), issuedKeyId = try #require(issued["keyId"])
            let suspended = try await api.call(
                .post, "/tenants/\(id)/suspend", token: Self.admin, json: #"{"reason": "audit check"}"#, headers: Self.requestID("req-suspend-4")
            )
            #expect(suspended.status == 200)
            #expect(try await api.call(.post, "/tenants/\(id)/reactivate", token: Self.admin, headers: Self.requestID("req-reactivate-5")).status == 200)
            #expect(try await api.call(.delete, "/tenants/\(id)/api-keys/\(issuedKeyId)", token: key, headers: Self.requestID("req-revoke-6")).status == 204)

            let listing = try await Self.events(api, id)
            #expect(listing.status == 200)
            #expect(listing["nextCursor"] == nil)
            let events = listing.listed
            #expect(events.map { $0["type"]?.stringValue } == [
                "apikey.revoked", "tenant.reactivated", "tenant.suspended", "apikey.created", "tenant.updated", "tenant.onboarded",
            ])
            #expect(events.map { $0["actor"]?.stringValue } == [keyActor, "admin", "admin", "admin", keyActor, "anonymous"])
            #expect(events.map { $0["requestid"]?.stringValue } == [
                "req-revoke-6", "req-reactivate-5", "req-suspend-4", "req-key-3", "req-patch-2", "req-signup-1",
            ])
            let ids = events.compactMap { $0["id"]?.stringValue }
            #expect(ids.count == events.count)
            #expect(ids == ids.sorted(by: >), "newest first: ids are time-ordered")
            for event in events {
                #expect(event["specversion"] == .string("1.0"))
                #expect(event["subject"] == .string(id))
                #expect(event["datacontenttype"] == .string("application/json"))
                #expect(event["source"]?.stringValue?.isEmpty == false)
            }
            let updated = try #require(events.first { $0["type"] == .string("tenant.updated") })
            #expect(updated["data"]?.mapValue?["changed"] == .list([.string("clientName")]))
            #expect(updated["data"]?.mapValue?["tenant"]?.mapValue?["clientName"] == .string("Audit Renamed"))
            let suspension = try #require(events.first { $0["type"] == .string("tenant.suspended") })
            #expect(suspension["data"]?.mapValue?["reason"] == .string("audit check"))
            let keyCreated = try #require(events.first { $0["type"] == .string("apikey.created") })
            #expect(keyCreated["data"]?.mapValue?["apiKey"]?.mapValue?["keyId"] == .string(issuedKeyId))
            #expect(!listing.text.contains(issuedKey) && !listing.text.contains(key), "no key's secret is in an event")

            // Each is shown exactly as stored in the tenant's partition (what sinks are sent).
            for event in events {
                let eventId = try #require(event["id"]?.stringValue)
                let stored = try await fixture.store.get(ItemKey(tenantId: id, resourceKey: EventOutboxLayout.prefix + eventId))
                let text = try #require(stored?[EventOutboxLayout.Attribute.envelope]?.stringValue)
                #expect(try JSONCodec.parse(text) == .map(event))
            }

            // The tenant reads its own trail: the same events.
            let own = try await Self.events(api, id, token: key)
            #expect(own.status == 200)
            #expect(own.listed == events)
        }
    }

    @Test("a JWT's changes name its subject (jwt:<sub>); a token without a subject names its tenant (tenant:<id>)", .requires(.moto))
    func jwtActors() async throws {
        let cognito = try await CognitoFixture.make()
        try await TestServer.run(oidc: cognito) { api, _ in
            let (id, _) = try await api.newTenant("Token Corp")
            let tenantToken = try await cognito.idToken(forTenant: id)
            let tenantSubject = try #require(CognitoFixture.claims(of: tenantToken)["sub"] as? String)
            let adminToken = try await cognito.adminIdToken()
            let adminSubject = try #require(CognitoFixture.claims(of: adminToken)["sub"] as? String)
            let noSubject = try await cognito.resign(tenantToken) { $0.removeValue(forKey: "sub") }

            var headers: HTTPFields = [.contentType: "application/merge-patch+json", .authorization: "Bearer \(tenantToken)", .xRequestID: "jwt-patch"]
            #expect(try await api.send(.patch, "/tenants/\(id)", headers: headers, body: #"{"clientName": "By Token"}"#).status == 200)
            headers[.authorization] = "Bearer \(noSubject)"
            headers[.xRequestID] = "nosub-patch"
            #expect(try await api.send(.patch, "/tenants/\(id)", headers: headers, body: #"{"clientName": "By Claims"}"#).status == 200)
            #expect(try await api.call(.post, "/tenants/\(id)/suspend", token: adminToken, json: #"{"reason": "by admin token"}"#).status == 200)

            let events = try await Self.events(api, id, token: adminToken).listed
            #expect(events.map { $0["type"]?.stringValue } == ["tenant.suspended", "tenant.updated", "tenant.updated", "tenant.onboarded"])
            #expect(events.map { $0["actor"]?.stringValue } == ["jwt:\(adminSubject)", "tenant:\(id)", "jwt:\(tenantSubject)", "anonymous"])
            #expect(events[1]["requestid"] == .string("nosub-patch"))
            #expect(events[2]["requestid"] == .string("jwt-patch"))
            #expect(!events.description.contains(tenantToken), "no token is in an event")
        }
    }

    @Test("claims an API Gateway authorizer verified: jwt:<sub>, or without a subject the principal's own actor")
    func authorizerClaimActors() async throws {
        let tenant = "0195f3c4-7a1e-7b2c-9d3e-4f5a6b7c8d9e"
        let router = Router(context: AppRequestContext.self)
        // Stands in for the Lambda adapter, which fills the claims from the API Gateway event.
        router.add(middleware: ClaimsFromHeader())
        router.add(middleware: BearerAuthenticator(verifiers: []))
        router.add(middleware: ChangeContextMiddleware())
        router.get("/actor") { _, _ in ChangeContext.current.actor }
        try await Application(router: router).test(.router) { client in
            let cases: [(String, String)] = [
                (#"{"sub": "user-1", "custom:tenantId": "\#(tenant)"}"#, "jwt:user-1"),
                (#"{"custom:tenantId": "\#(tenant)"}"#, "tenant:\(tenant)"),
                (#"{"cognito:groups": "admin"}"#, "admin"),
                (#"{"sub": "admin-7", "cognito:groups": "admin"}"#, "jwt:admin-7"),
                (#"{"sub": "with space", "custom:tenantId": "\#(tenant)"}"#, "tenant:\(tenant)"),
                ("", "anonymous"),
            ]
            for (claims, actor) in cases {
                let response = try await client.execute(uri: "/actor", method: .get, headers: claims.isEmpty ? [:] : [ClaimsFromHeader.header: claims])
                #expect(String(buffer: response.body) == actor, "\(claims)")
            }
        }
    }

    // MARK: Listing

    @Test("the trail pages newest first with limit and cursor, filters by type, and refuses bad parameters with 400")
    func pagingFilterAndBadParameters() async throws {
        try await TestServer.run { api, _ in
            let (id, key) = try await api.newTenant("Pages")
            for index in 1...6 {
                #expect(try await api.call(.patch, "/tenants/\(id)", token: key, json: #"{"clientName": "Pages \#(index)"}"#).status == 200)
            }
            #expect(try await api.call(.post, "/tenants/\(id)/api-keys", token: key).status == 201)

            let all = try await Self.allEvents(api, id, limit: 100)
            #expect(all.count == 8)
            for limit in [1, 3] {
                let paged = try await Self.allEvents(api, id, limit: limit)
                #expect(paged == all, "limit \(limit): every event once, in order")
            }
            let ids = all.compactMap { $0["id"]?.stringValue }
            #expect(ids == ids.sorted(by: >))
            #expect(all.first?["type"] == .string("apikey.created"))
            #expect(all.last?["type"] == .string("tenant.onboarded"))
            let names = all.compactMap { $0["data"]?.mapValue?["tenant"]?.mapValue?["clientName"]?.stringValue }
            #expect(Array(names.prefix(6)) == (1...6).reversed().map { "Pages \($0)" })

            let updates = try await Self.allEvents(api, id, limit: 4, type: "tenant.updated")
            #expect(updates.count == 6)
            #expect(updates.allSatisfy { $0["type"] == .string("tenant.updated") })
            #expect(updates == all.filter { $0["type"] == .string("tenant.updated") })
            let none = try await Self.events(api, id, query: "?type=tenant.suspended")
            #expect(none.status == 200)
            #expect(none.listed.isEmpty)
            #expect(none["nextCursor"] == nil)

            let badType = try await Self.events(api, id, query: "?type=tenant.deleted")
            #expect(badType.status == 400)
            #expect(badType["code"] == "bad-request")
            for type in TenantEventType.allCases {
                #expect(badType["detail"]?.contains(type.rawValue) == true, "the problem names \(type.rawValue)")
            }
            for query in ["?limit=0", "?limit=101", "?limit=ten", "?limit=1&limit=2", "?order=oldest", "?type=TENANT.UPDATED"] {
                let response = try await Self.events(api, id, query: query)
                #expect(response.status == 400, "\(query)")
                #expect(response["code"] == "bad-request", "\(query)")
            }
            let badCursor = try await Self.events(api, id, query: "?cursor=not*a*cursor")
            #expect(badCursor.status == 400)
            #expect(badCursor["code"] == "invalid-cursor")
        }
    }

    @Test("a tenant reads only its own trail: another tenant's or an unknown id is 404; a suspended tenant's key is 403")
    func isolation() async throws {
        try await TestServer.run { api, _ in
            let (a, keyA) = try await api.newTenant("Alpha Private")
            let (b, keyB) = try await api.newTenant("Beta")
            let other = try await Self.events(api, a, token: keyB)
            #expect(other.status == 404)
            #expect(other["code"] == "tenant-not-found")
            #expect(!other.text.contains("Alpha Private"))
            let own = try await Self.events(api, b, token: keyB)
            #expect(own.status == 200)
            #expect(own.listed.count == 1)
            #expect(!own.text.contains("Alpha Private") && !own.text.contains(a))

            for unknown in ["0195f3c4-7a1e-7b2c-9d3e-4f5a6b7c8d9e", "not-a-tenant"] {
                let response = try await Self.events(api, unknown)
                #expect(response.status == 404, "\(unknown)")
                #expect(response["code"] == "tenant-not-found")
            }
            #expect(try await api.call(.get, "/tenants/\(a)/events", token: nil).status == 401)

            #expect(try await api.call(.post, "/tenants/\(a)/suspend", token: Self.admin, json: #"{"reason": "gate"}"#).status == 200)
            let suspended = try await Self.events(api, a, token: keyA)
            #expect(suspended.status == 403)
            #expect(suspended["code"] == "tenant-suspended")
            #expect(try await Self.events(api, a).listed.first?["type"] == .string("tenant.suspended"), "the admin still reads it")
        }
    }

    @Test("offboarding keeps the trail (the admin reads it after OFFBOARDED) unless purgeEvents=true; a bad purgeEvents is 400")
    func offboardingRetention() async throws {
        try await TestServer.run { api, _ in
            let (kept, _) = try await api.newTenant("Kept")
            let (purged, _) = try await api.newTenant("Purged")
            for id in [kept, purged] {
                #expect(try await api.call(.patch, "/tenants/\(id)", token: Self.admin, json: #"{"clientName": "Renamed"}"#).status == 200)
            }
            for value in ["yes", "1", "TRUE", ""] {
                let response = try await api.call(.delete, "/tenants/\(kept)?purgeEvents=\(value)", token: Self.admin)
                #expect(response.status == 400, "purgeEvents=\(value)")
                #expect(response["code"] == "bad-request")
            }
            #expect(try await api.tenant(kept)["status"] == "ACTIVE", "a refused request starts nothing")

            #expect(try await api.call(.delete, "/tenants/\(kept)?purgeEvents=false", token: Self.admin).status == 202)
            #expect(try await api.call(.delete, "/tenants/\(purged)?purgeEvents=true", token: Self.admin).status == 202)
            for id in [kept, purged] {
                var polls = 0
                while try await api.tenant(id)["status"] != "OFFBOARDED", polls < 600 {
                    polls += 1
                    try await Task.sleep(for: .milliseconds(50))
                }
                #expect(try await api.tenant(id)["status"] == "OFFBOARDED")
            }
            let keptTypes = try await Self.allEvents(api, kept, limit: 100).map { $0["type"]?.stringValue }
            #expect(keptTypes == ["tenant.offboarded", "tenant.offboarding", "tenant.updated", "tenant.onboarded"])
            let purgedTypes = try await Self.allEvents(api, purged, limit: 100).map { $0["type"]?.stringValue }
            #expect(purgedTypes == ["tenant.offboarded"], "purged: only the event written with the tombstone")
        }
    }

    // MARK: Delivery routes

    @Test("GET /events?delivery=failed lists an event a sink gave up on, with each sink's state; redeliver queues it again (202), then 404")
    func failedAndRedeliver() async throws {
        try await TestServer.run { api, fixture in
            let (id, _) = try await api.newTenant("Undelivered")
            let event = try await Self.putFailedEvent(fixture.store, tenantId: id)

            let failed = try await api.call(.get, "/events?delivery=failed", token: Self.admin)
            #expect(failed.status == 200)
            let entry = try #require(failed.listed.first { $0["event"]?.mapValue?["id"] == .string(event.id) })
            #expect(entry["event"] == (try JSONCodec.parse(event.envelopeJSON)), "the envelope as recorded")
            let delivery = try #require(entry["delivery"]?.mapValue)
            let log = try #require(delivery["log"]?.mapValue)
            #expect(log["state"] == .string("failed"))
            #expect(log["attempts"] == .int(7))
            #expect(log["lastError"] == .string("injected: HTTP 500"))
            #expect(log["firstFailedAt"]?.stringValue?.hasSuffix("Z") == true, "RFC 3339")
            #expect(log["nextAttemptAt"] == nil, "a sink that gave up has no next attempt")
            #expect(delivery["webhook:http://127.0.0.1:9/hook"]?.mapValue?["state"] == .string("delivered"))

            // Paging: one at a time reaches it too.
            let first = try await api.call(.get, "/events?delivery=failed&limit=1", token: Self.admin)
            #expect(first.status == 200)
            #expect(first.listed.count == 1)

            let queued = try await api.call(.post, "/events/\(event.id.lowercased())/redeliver", token: Self.admin)
            #expect(queued.status == 202)
            #expect(queued["eventId"] == event.id)
            #expect(try await fixture.store.get(Self.failedKey(event.id)) == nil, "no longer failed")
            let after = try await api.call(.get, "/events?delivery=failed", token: Self.admin)
            #expect(!after.listed.contains { $0["event"]?.mapValue?["id"] == .string(event.id) })
            // Back in the outbox with the log sink's state cleared and the webhook's kept, unless
            // the dispatcher has already delivered it to the log (then the log says so).
            let outboxKey = ItemKey(tenantId: EventOutboxLayout.shard(of: event.tenantId), resourceKey: EventOutboxLayout.prefix + event.id)
            if let item = try await fixture.store.get(outboxKey) {
                let entry = try OutboxEntry(item: item)
                #expect(entry.delivery["log"]?.state != .failed)
                #expect(entry.delivery["webhook:http://127.0.0.1:9/hook"]?.state == .delivered)
            } else {
                // The LogSink's own line (message `event` with the event's id and type), not just
                // any line naming the id: the redelivery route logs the id too.
                let delivered = fixture.logs.entries.contains { entry in
                    entry.level == .info && entry.message.description == "event" && entry.metadata["eventId"] == .string(event.id)
                        && entry.metadata["type"] == .string(event.type.rawValue) && entry.metadata["subject"] == .string(id)
                }
                #expect(delivered, "delivered to the log sink")
            }

            let again = try await api.call(.post, "/events/\(event.id)/redeliver", token: Self.admin)
            #expect(again.status == 404)
            #expect(again["code"] == "event-not-found")
            let unknown = try await api.call(.post, "/events/01ARZ3NDEKTSV4RRFFQ69G5FAV/redeliver", token: Self.admin)
            #expect(unknown.status == 404)
            for malformed in ["not-an-event", "01ARZ3NDEKTSV4RRFFQ69G5FA", "81ARZ3NDEKTSV4RRFFQ69G5FAV", "01ARZ3NDEKTSV4RRFFQ69G5FAU"] {
                let response = try await api.call(.post, "/events/\(malformed)/redeliver", token: Self.admin)
                #expect(response.status == 400, "\(malformed)")
                #expect(response["code"] == "bad-request")
            }
        }
    }

    @Test("GET /events?delivery=pending lists an event a sink is still retrying, with its next attempt")
    func pendingListing() async throws {
        try await TestServer.run { api, fixture in
            // A tenant of its own (nothing else of it is in the outbox), its event retrying on the
            // log sink with the next attempt an hour away: the dispatcher leaves it pending.
            let tenantId = try #require(TenantID("0195f3c4-7a1e-7b2c-9d3e-4f5a6b7c8d9e"))
            let event = EventRecorder(source: "urn:onboard:test").event(.tenantSuspended, tenantId: tenantId, data: ["reason": .string("pending")])
            let now = EventOutbox.epochMilliseconds(Date())
            typealias Name = EventOutboxLayout.Attribute
            try await fixture.store.put(Item(key: EventOutboxLayout.outboxKey(event), attributes: [
                Name.envelope: .string(event.envelopeJSON),
                Name.eventTenantId: .string(tenantId.rawValue),
                Name.eventType: .string(event.type.rawValue),
                Name.time: .string(event.time),
                Name.delivery: SinkDelivery.attributeValue([
                    "log": SinkDelivery(attempts: 2, nextAttemptAt: now + 3_600_000, firstFailedAt: now - 1000, lastError: "injected: timeout")
                ]),
            ]), condition: .itemNotExists)

            let pending = try await api.call(.get, "/events?delivery=pending&limit=100", token: Self.admin)
            #expect(pending.status == 200)
            let entry = try #require(pending.listed.first { $0["event"]?.mapValue?["id"] == .string(event.id) })
            let log = try #require(entry["delivery"]?.mapValue?["log"]?.mapValue)
            #expect(log["state"] == .string("retrying"))
            #expect(log["attempts"] == .int(2))
            #expect(log["nextAttemptAt"] == .string(Timestamp.format(Date(timeIntervalSince1970: Double(now + 3_600_000) / 1000))))
            let notFailed = try await api.call(.post, "/events/\(event.id)/redeliver", token: Self.admin)
            #expect(notFailed.status == 404, "a pending event is not failed")
        }
    }

    @Test("the delivery routes are the admin's: 401 without credentials, 403 for a tenant; delivery is required and checked")
    func deliveryRoutesAccess() async throws {
        try await TestServer.run { api, fixture in
            let (id, key) = try await api.newTenant("Curious")
            let event = try await Self.putFailedEvent(fixture.store, tenantId: id, data: ["marker": .string("curious-marker-42")])
            for token in [nil, key] {
                let list = try await api.call(.get, "/events?delivery=failed", token: token)
                #expect(list.status == (token == nil ? 401 : 403))
                #expect(!list.text.contains("curious-marker-42"))
                let redeliver = try await api.call(.post, "/events/\(event.id)/redeliver", token: token)
                #expect(redeliver.status == (token == nil ? 401 : 403))
            }
            #expect(try await fixture.store.get(Self.failedKey(event.id)) != nil, "refused requests queue nothing")
            for query in ["", "?delivery=delivered", "?delivery=FAILED", "?delivery=failed&type=tenant.updated", "?delivery=failed&limit=0", "?delivery=failed&delivery=pending"] {
                let response = try await api.call(.get, "/events\(query)", token: Self.admin)
                #expect(response.status == 400, "\(query)")
                #expect(response["code"] == "bad-request", "\(query)")
            }
            let badCursor = try await api.call(.get, "/events?delivery=pending&cursor=%21%21", token: Self.admin)
            #expect(badCursor.status == 400)
            #expect(badCursor["code"] == "invalid-cursor")
        }
    }
}

extension APIResponse {
    /// The `events` array of a listing, as JSON objects.
    var listed: [[String: AttributeValue]] {
        guard case .list(let events)? = json["events"] else { return [] }
        return events.compactMap(\.mapValue)
    }
}

/// Test stand-in for the Lambda adapter: the JSON object in `X-Test-Claims` becomes the
/// request's authorizer claims.
private struct ClaimsFromHeader: RouterMiddleware {
    typealias Context = AppRequestContext
    static let header = HTTPField.Name("X-Test-Claims")!

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        if let text = request.headers[Self.header], case .map(let claims)? = try? JSONCodec.parse(text) {
            context.authorizerClaims = AuthorizerClaims(format: .restAPI, strings: claims.compactMapValues(\.stringValue))
        }
        return try await next(request, context)
    }
}
