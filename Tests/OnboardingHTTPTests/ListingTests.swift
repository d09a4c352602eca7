import HTTPTypes
import OnboardingCore
import Testing

@Suite("GET /tenants: the listing, merged from the 16-shard index", .testStoreAvailable)
struct ListingTests {
    /// Pages through the listing and returns every tenant (tenantId, createdAt) in page order.
    func listAll(_ api: APIClient, order: String, limit: Int) async throws -> (tenants: [(String, String)], pages: Int) {
        var tenants: [(String, String)] = []
        var cursor: String?
        var pages = 0
        repeat {
            var path = "/tenants?limit=\(limit)&order=\(order)"
            if let cursor { path += "&cursor=\(cursor)" }
            let response = try await api.send(.get, path, headers: [.authorization: "Bearer \(TestServer.adminToken)"])
            #expect(response.status == 200)
            guard case .list(let page)? = response.json["tenants"] else { break }
            #expect(page.count <= limit)
            for case .map(let tenant) in page {
                tenants.append((tenant["tenantId"]?.stringValue ?? "", tenant["createdAt"]?.stringValue ?? ""))
            }
            cursor = response["nextCursor"]
            pages += 1
        } while cursor != nil && pages < 20
        return (tenants, pages)
    }

    @Test("every tenant once, newest first by default, in pages; oldest first on request")
    func pages() async throws {
        try await TestServer.run(logLevel: .warning) { api, _ in
            var created: [String] = []
            for index in 0..<25 {
                let response = try await api.onboard(#"{"clientName": "Listed \#(index)", "clientPhone": "+4930123456\#(index % 10)"}"#)
                created.append(try #require(response["tenantId"]))
            }
            let newest = try await listAll(api, order: "newest", limit: 10)
            #expect(newest.pages == 3)
            #expect(Set(newest.tenants.map(\.0)) == Set(created))
            #expect(newest.tenants.count == 25, "none twice")
            let keys = newest.tenants.map { "\($0.1)#\($0.0)" }
            #expect(keys == keys.sorted(by: >), "creation order, newest first")
            #expect(newest.tenants.first?.0 == created.last)

            let oldest = try await listAll(api, order: "oldest", limit: 7)
            #expect(oldest.tenants.map(\.0) == newest.tenants.map(\.0).reversed())
            #expect(oldest.pages == 4)

            let single = try await api.send(.get, "/tenants", headers: [.authorization: "Bearer \(TestServer.adminToken)"])
            guard case .list(let page)? = single.json["tenants"] else {
                Issue.record("no tenants array")
                return
            }
            #expect(page.count == 20, "the default page size")
        }
    }

    @Test("an empty table lists nothing and has no next page")
    func empty() async throws {
        try await TestServer.run { api, _ in
            let response = try await api.send(.get, "/tenants", headers: [.authorization: "Bearer \(TestServer.adminToken)"])
            #expect(response.status == 200)
            #expect(response.json["tenants"] == .list([]))
            #expect(response["nextCursor"] == nil)
        }
    }

    @Test("bad parameters and cursors are 400 problems; any cursor is a position in either order; the listing is for the admin")
    func badRequests() async throws {
        try await TestServer.run { api, _ in
            let admin: HTTPFields = [.authorization: "Bearer \(TestServer.adminToken)"]
            for path in ["/tenants?limit=0", "/tenants?limit=101", "/tenants?limit=ten", "/tenants?order=random", "/tenants?page=2", "/tenants?limit=5&limit=6"] {
                let response = try await api.send(.get, path, headers: admin)
                #expect(response.status == 400, "\(path)")
                #expect(response["code"] == "bad-request")
            }
            for cursor in ["not-base64!!", "", "a%20b", String(repeating: "A", count: 513)] {
                let response = try await api.send(.get, "/tenants?cursor=\(cursor)", headers: admin)
                #expect(response.status == 400, "\(cursor)")
                #expect(response["code"] == "invalid-cursor")
            }
            var created: [String] = []
            for index in 0..<3 {
                let response = try await api.onboard(#"{"clientName": "C\#(index)", "clientPhone": "+3312345678\#(index)"}"#)
                created.append(try #require(response["tenantId"]))
            }
            // Any base64url text is a position: "MA" is "0", before every timestamp.
            let fromStart = try await api.send(.get, "/tenants?order=oldest&cursor=MA", headers: admin)
            guard case .list(let all)? = fromStart.json["tenants"] else {
                Issue.record("no tenants array")
                return
            }
            #expect(all.count == 3)
            // A cursor is a position in creation order, usable in either order.
            let first = try await api.send(.get, "/tenants?limit=2&order=oldest", headers: admin)
            let cursor = try #require(first["nextCursor"])
            let newerThanSecond = try await api.send(.get, "/tenants?order=oldest&cursor=\(cursor)", headers: admin)
            let olderThanSecond = try await api.send(.get, "/tenants?order=newest&cursor=\(cursor)", headers: admin)
            #expect(newerThanSecond.json["tenants"].flatMap { if case .list(let page) = $0 { page.compactMap { $0.mapValue?["tenantId"]?.stringValue } } else { nil } } == [created[2]])
            #expect(olderThanSecond.json["tenants"].flatMap { if case .list(let page) = $0 { page.compactMap { $0.mapValue?["tenantId"]?.stringValue } } else { nil } } == [created[0]])
            #expect(try await api.send(.get, "/tenants").status == 401)
        }
    }

    @Test("cursors at the ends of the key space: the empty key, a NUL, text repaired from bytes that are not UTF-8")
    func edgeCursors() async throws {
        try await TestServer.run { api, _ in
            let admin: HTTPFields = [.authorization: "Bearer \(TestServer.adminToken)"]
            var created: [String] = []
            for index in 0..<3 {
                let response = try await api.onboard(#"{"clientName": "E\#(index)", "clientPhone": "+3312345678\#(index)"}"#)
                created.append(try #require(response["tenantId"]))
            }
            func ids(_ path: String, sourceLocation: SourceLocation = #_sourceLocation) async throws -> [String]? {
                let response = try await api.send(.get, path, headers: admin, sourceLocation: sourceLocation)
                #expect(response.status == 200, "\(path)", sourceLocation: sourceLocation)
                #expect(response["nextCursor"] == nil, "\(path)", sourceLocation: sourceLocation)
                guard case .list(let page)? = response.json["tenants"] else { return nil }
                return page.compactMap { $0.mapValue?["tenantId"]?.stringValue }
            }
            let oldestFirst = try #require(try await ids("/tenants?order=oldest"))
            #expect(Set(oldestFirst) == Set(created))
            // "A" decodes to no bytes at all: the empty key, before every tenant (DynamoDB refuses
            // an empty key in a query, so it must never get there). "AA" is one NUL byte.
            for cursor in ["A", "AA"] {
                #expect(try await ids("/tenants?order=oldest&cursor=\(cursor)") == oldestFirst, "\(cursor)")
                #expect(try await ids("/tenants?order=newest&cursor=\(cursor)") == [], "\(cursor)")
            }
            // 512 "_" are 384 bytes 0xFF: not UTF-8, each repaired to U+FFFD (three bytes), so
            // longer than any index key (1024 bytes) until cut; it sorts after every tenant.
            let beyond = String(repeating: "_", count: 512)
            #expect(try await ids("/tenants?order=oldest&cursor=\(beyond)") == [])
            #expect(try await ids("/tenants?order=newest&cursor=\(beyond)") == oldestFirst.reversed())
        }
    }
}
