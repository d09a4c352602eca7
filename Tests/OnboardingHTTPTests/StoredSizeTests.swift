import Foundation
import HTTPTypes
import OnboardingCore
import Testing

/// A resource is limited by its size as stored, not only as sent: numbers are stored written out
/// in full, so a body within the 64 KiB request limit could otherwise be stored (and served, 100
/// to a listing page) at twenty times that size. Runs on SQLite, and on DynamoDB (moto) with
/// `ONBOARD_TEST_STORE=dynamodb`.
@Suite("Stored size of documents", .testStoreAvailable)
struct StoredSizeTests {
    /// `{"n":[1e125,1e125,…]}` as close to 64 KiB as it gets.
    static let expandingBody: String = {
        let count = (64 * 1024 - #"{"n":[]}"#.utf8.count + 1) / "1e125,".utf8.count
        return #"{"n":["# + Array(repeating: "1e125", count: count).joined(separator: ",") + "]}"
    }()

    @Test("64 KiB of 1e125 is refused: 413 stored-too-large, stored size and limit in the detail, nothing stored")
    func expandingNumbersRefused() async throws {
        try await TestServer.run { api, fixture in
            let (id, key) = try await api.newTenant()
            let body = Self.expandingBody
            #expect(body.utf8.count <= 64 * 1024 && body.utf8.count > 64 * 1024 - 6)
            let itemsBefore = try await fixture.itemCount()

            let path = "/tenants/\(id)/resources/numbers/n1"
            let refused = try await api.call(.put, path, token: key, json: body)
            #expect(refused.status == 413)
            #expect(refused["code"] == "stored-too-large")
            // Each `1e125` is 126 digits stored: 10,922 of them and their commas, in brackets.
            let count = (body.utf8.count - #"{"n":[]}"#.utf8.count + 1) / 6
            let stored = #"{"n":[]}"#.utf8.count + count * 126 + (count - 1)
            let detail = try #require(refused["detail"])
            #expect(detail.contains("\(stored) bytes as stored"), "\(detail)")
            #expect(detail.contains("limit of 65536 bytes (64 KiB)"))
            #expect(detail.contains("written out in full"))
            #expect(!detail.contains("1000000000"), "the detail repeats no document content")

            #expect(try await api.call(.get, path, token: key).status == 404)
            let listing = try await api.call(.get, "/tenants/\(id)/resources/numbers", token: key)
            #expect(listing.json["resources"] == .list([]))
            #expect(try await fixture.itemCount() == itemsBefore)
        }
    }

    /// `{"n":[1e3,…],"p":"xx…"}`: `1e3` is 3 bytes sent and 4 stored (the body is 5,000 bytes
    /// smaller than the document stored); the padding string sets the stored size.
    static func body(padding: Int) -> String {
        #"{"n":["# + Array(repeating: "1e3", count: 5_000).joined(separator: ",") + #"],"p":""# + String(repeating: "x", count: padding) + #""}"#
    }

    /// The document of ``body(padding:)`` as the store keeps it (numbers in full, compact, sorted).
    static func stored(padding: Int) throws -> [UInt8] {
        let document = try JSONCodec.parse(Self.body(padding: padding))
        guard case .map(var members) = document, case .list(let numbers)? = members["n"] else { return [] }
        members["n"] = .list(numbers.map { _ in .number("1000") })
        return JSONCodec.serializeBytes(.map(members))
    }

    @Test("a document of exactly 64 KiB as stored is kept and reads back byte for byte; one byte more is refused")
    func limitIsExact() async throws {
        let padding = 64 * 1024 - (try Self.stored(padding: 0)).count
        let expected = try Self.stored(padding: padding)
        #expect(expected.count == 64 * 1024)
        #expect(Self.body(padding: padding).utf8.count <= 64 * 1024)

        try await TestServer.run { api, _ in
            let (id, key) = try await api.newTenant()
            let path = "/tenants/\(id)/resources/numbers/exact"
            let created = try await api.call(.put, path, token: key, json: Self.body(padding: padding))
            #expect(created.status == 201)
            let read = try await api.call(.get, path, token: key)
            #expect(read.status == 200)
            // The response's keys are sorted and compact: `"data":` is followed by the document as stored.
            let expectedText = #""data":"# + String(decoding: expected, as: UTF8.self) + ","
            #expect(read.text.contains(expectedText), "the document did not read back byte for byte")

            let etag = try #require(created.headers[.eTag])
            let over = try await api.call(.put, path, token: key, json: Self.body(padding: padding + 1))
            #expect(over.status == 413)
            #expect(over["code"] == "stored-too-large")
            #expect(over["detail"]?.contains("65537 bytes as stored") == true)
            // The refused write left the stored document alone.
            let after = try await api.call(.get, path, token: key)
            #expect(after.headers[.eTag] == etag)
            #expect(after.text.contains(expectedText))
        }
    }

    @Test("a body over 64 KiB as sent is still payload-too-large, before anything is parsed")
    func bodyLimitStillFirst() async throws {
        try await TestServer.run { api, _ in
            let (id, key) = try await api.newTenant()
            let body = #"{"n":["# + Array(repeating: "1e125", count: 12_000).joined(separator: ",") + "]}"
            let refused = try await api.call(.put, "/tenants/\(id)/resources/numbers/big", token: key, json: body)
            #expect(refused.status == 413)
            #expect(refused["code"] == "payload-too-large")
        }
    }

    @Test("a string with more than 30 combining characters in a row is malformed-json; 30 are kept")
    func combiningRun() async throws {
        try await TestServer.run { api, _ in
            let (id, key) = try await api.newTenant()
            func marks(_ count: Int) -> String { (0..<count).map { $0 % 2 == 0 ? "\u{0301}" : "\u{0316}" }.joined() }
            let path = "/tenants/\(id)/resources/text/t1"
            let refused = try await api.call(.put, path, token: key, json: #"{"a\#(marks(5_000))": 1}"#)
            #expect(refused.status == 400)
            #expect(refused["code"] == "malformed-json")
            #expect(refused["detail"]?.contains("more than 30 combining characters in a row") == true)
            #expect(try await api.call(.put, path, token: key, json: #"{"a\#(marks(30))": 1}"#).status == 201)
        }
    }
}
