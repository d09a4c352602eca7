import Foundation
import HTTPTypes
import OnboardingCore
import Testing

@Suite("Tenant resources", .testStoreAvailable)
struct ResourceTests {
    @Test("PUT creates (201, Location, ETag), GET reads it back, PUT again replaces (200, new ETag), DELETE removes")
    func lifecycle() async throws {
        try await TestServer.run { api, fixture in
            let (id, key) = try await api.newTenant()
            let path = "/tenants/\(id)/resources/invoice/inv-001"
            let created = try await api.call(.put, path, token: key, json: #"{"amount": 120.50, "currency": "EUR", "lines": [{"sku": "A-1", "qty": 2}]}"#)
            #expect(created.status == 201)
            #expect(created.headers[.location] == path)
            let etag = try #require(created.headers[.eTag])
            #expect(created["etag"] == etag)
            #expect(created.json["data"] == (try JSONCodec.parse(#"{"amount": 120.5, "currency": "EUR", "lines": [{"sku": "A-1", "qty": 2}]}"#)))

            let read = try await api.call(.get, path, token: key)
            #expect(read.status == 200)
            #expect(read.headers[.eTag] == etag)
            #expect(read.json["data"]?.mapValue?["currency"] == .string("EUR"))
            #expect(read["type"] == "invoice" && read["resourceId"] == "inv-001")

            // Stored as the brief's design says: `<type>#<resourceId>` in the tenant's partition.
            let item = try await fixture.store.get(ItemKey(tenantId: id, resourceKey: "invoice#inv-001"))
            #expect(item?["data"]?.mapValue?["currency"] == .string("EUR"))

            let replaced = try await api.call(.put, path, token: key, json: #"{"amount": 99}"#)
            #expect(replaced.status == 200)
            #expect(replaced.headers[.eTag] != etag)
            #expect(replaced["createdAt"] == created["createdAt"])
            #expect(replaced.json["data"] == .map(["amount": .number("99")]))

            #expect(try await api.call(.delete, path, token: key).status == 204)
            let gone = try await api.call(.get, path, token: key)
            #expect(gone.status == 404)
            #expect(gone["code"] == "resource-not-found")
            #expect(try await api.call(.delete, path, token: key).status == 404)
        }
    }

    @Test("optimistic concurrency: a stale If-Match is 412 and writes nothing; If-None-Match: * only creates")
    func conditionalWrites() async throws {
        try await TestServer.run { api, _ in
            let (id, key) = try await api.newTenant()
            let path = "/tenants/\(id)/resources/settings/main"
            // If-Match on a resource that does not exist: 412, nothing created.
            let missing = try await api.call(.put, path, token: key, json: #"{"v": 0}"#, headers: [.ifMatch: "*"])
            #expect(missing.status == 412)
            #expect(missing["code"] == "precondition-failed")
            #expect(try await api.call(.get, path, token: key).status == 404)

            let first = try await api.call(.put, path, token: key, json: #"{"v": 1}"#, headers: [.ifNoneMatch: "*"])
            #expect(first.status == 201)
            let etag1 = try #require(first.headers[.eTag])
            let again = try await api.call(.put, path, token: key, json: #"{"v": 99}"#, headers: [.ifNoneMatch: "*"])
            #expect(again.status == 412)

            // Two clients read etag1; the first write wins, the second is refused.
            let winner = try await api.call(.put, path, token: key, json: #"{"v": 2}"#, headers: [.ifMatch: etag1])
            #expect(winner.status == 200)
            let loser = try await api.call(.put, path, token: key, json: #"{"v": 3}"#, headers: [.ifMatch: etag1])
            #expect(loser.status == 412)
            let current = try await api.call(.get, path, token: key)
            #expect(current.json["data"] == .map(["v": .number("2")]))
            let etag2 = try #require(current.headers[.eTag])

            // A weak tag never satisfies If-Match; one of a list does.
            #expect(try await api.call(.put, path, token: key, json: #"{"v": 4}"#, headers: [.ifMatch: "W/\(etag2)"]).status == 412)
            #expect(try await api.call(.put, path, token: key, json: #"{"v": 4}"#, headers: [.ifMatch: #""0000000000000000", \#(etag2)"#]).status == 200)

            // Conditional GET: 304 while unchanged, 200 once changed.
            let latest = try await api.call(.get, path, token: key)
            let etag3 = try #require(latest.headers[.eTag])
            let notModified = try await api.call(.get, path, token: key, headers: [.ifNoneMatch: etag3])
            #expect(notModified.status == 304)
            #expect(notModified.body.isEmpty)
            #expect(try await api.call(.get, path, token: key, headers: [.ifNoneMatch: etag2]).status == 200)

            // Conditional DELETE.
            #expect(try await api.call(.delete, path, token: key, headers: [.ifMatch: etag2]).status == 412)
            #expect(try await api.call(.delete, path, token: key, headers: [.ifMatch: etag3]).status == 204)

            // An empty If-Match is no precondition (an empty list); malformed ones are a 400, not ignored.
            #expect(try await api.call(.get, "/tenants/\(id)/resources/settings/gone", token: key, headers: [.ifMatch: ""]).status == 404)
            #expect(try await api.call(.put, path, token: key, json: #"{"v": 5}"#, headers: [.ifMatch: " "]).status == 201)
            let malformed = try await api.call(.put, path, token: key, json: "{}", headers: [.ifMatch: "no-quotes"])
            #expect(malformed.status == 400)
        }
    }

    @Test("concurrent conditional writers: exactly one of those holding the same ETag wins")
    func racingWriters() async throws {
        try await TestServer.run(logLevel: .warning) { api, _ in
            let (id, key) = try await api.newTenant()
            let path = "/tenants/\(id)/resources/counter/c"
            let etag = try #require(try await api.call(.put, path, token: key, json: #"{"n": 0}"#).headers[.eTag])
            let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 1...8 {
                    group.addTask {
                        try await api.call(.put, path, token: key, json: #"{"n": \#(index)}"#, headers: [.ifMatch: etag]).status
                    }
                }
                return try await group.reduce(into: [Int]()) { $0.append($1) }
            }
            #expect(statuses.filter { $0 == 200 }.count == 1)
            #expect(statuses.filter { $0 == 412 }.count == 7)
        }
    }

    @Test("listing a type: resourceId order, cursor pages that cover every resource once, other types excluded")
    func listing() async throws {
        try await TestServer.run(logLevel: .warning) { api, _ in
            let (id, key) = try await api.newTenant()
            let ids = (0..<7).map { String(format: "doc-%02d", $0) }
            for resourceId in ids.shuffled() {
                #expect(try await api.call(.put, "/tenants/\(id)/resources/note/\(resourceId)", token: key, json: #"{"id": "\#(resourceId)"}"#).status == 201)
            }
            // Another type whose name extends this one must not leak into the listing.
            #expect(try await api.call(.put, "/tenants/\(id)/resources/notes/doc-00", token: key, json: "{}").status == 201)

            var seen: [String] = []
            var cursor: String?
            var pages = 0
            repeat {
                let query = cursor.map { "?limit=3&cursor=\($0)" } ?? "?limit=3"
                let page = try await api.call(.get, "/tenants/\(id)/resources/note\(query)", token: key)
                #expect(page.status == 200)
                guard case .list(let resources)? = page.json["resources"] else { Issue.record("no resources"); return }
                seen += resources.compactMap { $0.mapValue?["resourceId"]?.stringValue }
                #expect(resources.allSatisfy { $0.mapValue?["type"] == .string("note") })
                cursor = page["nextCursor"]
                pages += 1
            } while cursor != nil && pages < 10
            #expect(seen == ids)
            #expect(pages == 3)

            let empty = try await api.call(.get, "/tenants/\(id)/resources/nothing-here", token: key)
            #expect(empty.json["resources"] == .list([]))
            #expect(empty["nextCursor"] == nil)
            #expect(try await api.call(.get, "/tenants/\(id)/resources/note?limit=0", token: key).status == 400)
            #expect(try await api.call(.get, "/tenants/\(id)/resources/note?cursor=%%%", token: key).status == 400)
        }
    }

    @Test("types and ids are validated: no '#', no upper-case types (the service's own items stay unreachable)", arguments: [
        "/resources/TENANT/x", "/resources/APIKEY/x", "/resources/a%23b/x", "/resources/note/a%23b", "/resources/note/..",
        "/resources/1note/x", "/resources/note/\(String(repeating: "x", count: 201))", "/resources/\(String(repeating: "t", count: 65))/x",
    ])
    func invalidPaths(suffix: String) async throws {
        try await TestServer.run { api, _ in
            let (id, key) = try await api.newTenant()
            for method in [HTTPRequest.Method.get, .put, .delete] {
                let response = try await api.call(method, "/tenants/\(id)\(suffix)", token: key, json: method == .put ? "{}" : nil)
                #expect(response.status == 400, "\(method) \(suffix)")
                #expect(response["code"] == "invalid-resource-path")
            }
        }
    }

    @Test("the profile item cannot be reached or overwritten through the resources API")
    func profileUnreachable() async throws {
        try await TestServer.run { api, _ in
            let (id, key) = try await api.newTenant("Original")
            let write = try await api.call(.put, "/tenants/\(id)/resources/TENANT/\(id)", token: key, json: #"{"clientName": "Hijacked"}"#)
            #expect(write.status == 400)
            #expect(try await api.call(.get, "/tenants/\(id)", token: key)["clientName"] == "Original")
        }
    }

    @Test("documents: at most 64 KiB (413), a JSON object (400), numbers DynamoDB can keep (422 with a pointer), JSON content type (415)")
    func documentRules() async throws {
        try await TestServer.run { api, _ in
            let (id, key) = try await api.newTenant()
            let path = "/tenants/\(id)/resources/blob/b1"
            let filler = String(repeating: "x", count: 64 * 1024)
            let tooLarge = try await api.call(.put, path, token: key, json: #"{"x": "\#(filler)"}"#)
            #expect(tooLarge.status == 413)
            let justFits = try await api.call(.put, path, token: key, json: #"{"x": "\#(filler.dropLast(20))"}"#)
            #expect(justFits.status == 201)

            #expect(try await api.call(.put, path, token: key, json: "[1, 2]").status == 400)
            #expect(try await api.call(.put, path, token: key, json: #"{"a": "#).status == 400)

            let badNumber = try await api.call(.put, path, token: key, json: #"{"a": {"b": [1, 1e200]}}"#)
            #expect(badNumber.status == 422)
            #expect(badNumber.fieldErrors["a/b/1"] == "invalid-format")
            let emptyName = try await api.call(.put, path, token: key, json: #"{"": 1}"#)
            #expect(emptyName.status == 422)
            let deep = String(repeating: "[", count: 40) + String(repeating: "]", count: 40)
            #expect(try await api.call(.put, path, token: key, json: #"{"d": \#(deep)}"#).status == 422)

            let text = try await api.send(.put, path, headers: [.authorization: "Bearer \(key)", .contentType: "text/plain"], body: "{}")
            #expect(text.status == 415)
            // None of the refused writes changed the stored document.
            let stored = try await api.call(.get, path, token: key)
            #expect(stored.json["data"]?.mapValue?["x"]?.stringValue?.count == filler.count - 20)
        }
    }

    @Test("writing into a tenant that does not exist is a 404 and stores nothing (admin included)")
    func unknownTenant() async throws {
        try await TestServer.run { api, fixture in
            let ghost = "0195f3c4-7a1e-7b2c-9d3e-4f5a6b7c8d9e"
            let before = try await fixture.itemCount()
            let write = try await api.call(.put, "/tenants/\(ghost)/resources/note/n1", token: TestServer.adminToken, json: "{}")
            #expect(write.status == 404)
            #expect(write["code"] == "tenant-not-found")
            #expect(try await fixture.itemCount() == before)
            #expect(try await api.call(.get, "/tenants/\(ghost)/resources/note", token: TestServer.adminToken).status == 404)
        }
    }

    @Test("entity-tag lists: commas inside tags, weak tags, empty tags; anything else is malformed")
    func entityTagLists() {
        #expect(EntityTagList(header: "*") == .any)
        #expect(EntityTagList(header: #""a,b", W/"c""#) == .tags([("a,b", false), ("c", true)]))
        #expect(EntityTagList(header: #" W/"" ,, "x" "#) == .tags([("", true), ("x", false)]))
        for bad in ["abc", #""unterminated"#, #""a" "b""#, #"*, "a""#, #""a"b"#, "W/abc", #""sp ace""#] {
            #expect(EntityTagList(header: bad) == nil, "\(bad)")
        }
    }
}
