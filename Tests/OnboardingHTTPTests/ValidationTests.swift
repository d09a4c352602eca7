import Foundation
import HTTPTypes
import OnboardingCore
import Testing

/// One bad request and the field errors it must produce.
struct BadBody: Sendable, CustomTestStringConvertible {
    let name: String
    let json: String
    /// field → error code
    let errors: [String: String]

    var testDescription: String { name }
}

@Suite("POST /onboard validation: every bad input gets a clear problem and stores nothing", .testStoreAvailable)
struct ValidationTests {
    static let longName = String(repeating: "a", count: 201)
    static let zalgo = "A" + String(repeating: "\u{301}", count: 900)

    static let badBodies: [BadBody] = [
        BadBody(name: "clientName missing", json: #"{"clientPhone": "+1234567890"}"#, errors: ["clientName": "missing"]),
        BadBody(name: "clientPhone missing", json: #"{"clientName": "Acme"}"#, errors: ["clientPhone": "missing"]),
        BadBody(name: "both missing", json: #"{}"#, errors: ["clientName": "missing", "clientPhone": "missing"]),
        BadBody(name: "null counts as missing", json: #"{"clientName": null, "clientPhone": "+1234567890"}"#, errors: ["clientName": "missing"]),
        BadBody(name: "clientName a number", json: #"{"clientName": 42, "clientPhone": "+1234567890"}"#, errors: ["clientName": "wrong-type"]),
        BadBody(name: "clientName an object", json: #"{"clientName": {"x": 1}, "clientPhone": "+1234567890"}"#, errors: ["clientName": "wrong-type"]),
        BadBody(name: "clientPhone a number", json: #"{"clientName": "Acme", "clientPhone": 1234567890}"#, errors: ["clientPhone": "wrong-type"]),
        BadBody(name: "clientPhone an array", json: #"{"clientName": "Acme", "clientPhone": ["+1234567890"]}"#, errors: ["clientPhone": "wrong-type"]),
        BadBody(name: "clientPhone a boolean", json: #"{"clientName": "Acme", "clientPhone": true}"#, errors: ["clientPhone": "wrong-type"]),
        BadBody(name: "clientName empty", json: #"{"clientName": "", "clientPhone": "+1234567890"}"#, errors: ["clientName": "empty"]),
        BadBody(name: "clientName only spaces", json: #"{"clientName": " \t\n ", "clientPhone": "+1234567890"}"#, errors: ["clientName": "empty"]),
        BadBody(name: "clientName 201 characters", json: #"{"clientName": "\#(longName)", "clientPhone": "+1234567890"}"#, errors: ["clientName": "too-long"]),
        BadBody(name: "clientName of 199 characters and 2 spaces (the limit is on what is sent)", json: #"{"clientName": "\#(String(repeating: "b", count: 199))  ", "clientPhone": "+1234567890"}"#, errors: ["clientName": "too-long"]),
        BadBody(name: "clientName ending in NEL (a C1 control, not white space)", json: #"{"clientName": "Acme\u0085", "clientPhone": "+1234567890"}"#, errors: ["clientName": "invalid-characters"]),
        BadBody(name: "clientName of a few characters but 900 combining marks, 30 in a row", json: #"{"clientName": "\#(String(repeating: "A" + String(repeating: "\u{301}", count: 30), count: 30))", "clientPhone": "+1234567890"}"#, errors: ["clientName": "too-long"]),
        BadBody(name: "clientName with a NUL", json: #"{"clientName": "Ac\u0000me", "clientPhone": "+1234567890"}"#, errors: ["clientName": "invalid-characters"]),
        BadBody(name: "clientName with a newline inside", json: #"{"clientName": "Acme\nCorp", "clientPhone": "+1234567890"}"#, errors: ["clientName": "invalid-characters"]),
        BadBody(name: "clientName with an escape sequence", json: #"{"clientName": "Acme\u001b[31m", "clientPhone": "+1234567890"}"#, errors: ["clientName": "invalid-characters"]),
        BadBody(name: "clientName with a C1 control", json: #"{"clientName": "Acme\u0085Corp", "clientPhone": "+1234567890"}"#, errors: ["clientName": "invalid-characters"]),
        BadBody(name: "clientName with a bidi override", json: #"{"clientName": "Acme\u202Eproc", "clientPhone": "+1234567890"}"#, errors: ["clientName": "invalid-characters"]),
        BadBody(name: "clientName with a line separator", json: #"{"clientName": "Acme\u2028Corp", "clientPhone": "+1234567890"}"#, errors: ["clientName": "invalid-characters"]),
        BadBody(name: "clientPhone empty", json: #"{"clientName": "Acme", "clientPhone": ""}"#, errors: ["clientPhone": "empty"]),
        BadBody(name: "clientPhone without +", json: #"{"clientName": "Acme", "clientPhone": "1234567890"}"#, errors: ["clientPhone": "invalid-format"]),
        BadBody(name: "clientPhone with 00 instead of +", json: #"{"clientName": "Acme", "clientPhone": "001234567890"}"#, errors: ["clientPhone": "invalid-format"]),
        BadBody(name: "clientPhone with letters", json: #"{"clientName": "Acme", "clientPhone": "+1-800-FLOWERS"}"#, errors: ["clientPhone": "invalid-format"]),
        BadBody(name: "clientPhone with an extension", json: #"{"clientName": "Acme", "clientPhone": "+14155550123 x12"}"#, errors: ["clientPhone": "invalid-format"]),
        BadBody(name: "clientPhone with 7 digits", json: #"{"clientName": "Acme", "clientPhone": "+1234567"}"#, errors: ["clientPhone": "invalid-format"]),
        BadBody(name: "clientPhone with 16 digits", json: #"{"clientName": "Acme", "clientPhone": "+1234567890123456"}"#, errors: ["clientPhone": "invalid-format"]),
        BadBody(name: "clientPhone country code 0", json: #"{"clientName": "Acme", "clientPhone": "+0123456789"}"#, errors: ["clientPhone": "invalid-format"]),
        BadBody(name: "clientPhone with non-ASCII digits", json: #"{"clientName": "Acme", "clientPhone": "+١٢٣٤٥٦٧٨٩٠"}"#, errors: ["clientPhone": "invalid-format"]),
        BadBody(name: "clientPhone with two +", json: #"{"clientName": "Acme", "clientPhone": "++1234567890"}"#, errors: ["clientPhone": "invalid-format"]),
        BadBody(name: "an unknown field", json: #"{"clientName": "Acme", "clientPhone": "+1234567890", "tenantId": "x"}"#, errors: ["tenantId": "unknown-field"]),
        BadBody(
            name: "every field wrong at once",
            json: #"{"clientName": "", "clientPhone": "12", "plan": "gold"}"#,
            errors: ["clientName": "empty", "clientPhone": "invalid-format", "plan": "unknown-field"]
        ),
    ]

    @Test("bad fields are 422 with one error per bad field", arguments: badBodies)
    func badFields(_ bad: BadBody) async throws {
        try await TestServer.run { api, fixture in
            let response = try await api.onboard(bad.json)
            #expect(response.status == 422)
            #expect(response.headers[.contentType] == "application/problem+json")
            #expect(response["type"] == "urn:onboard:problem:validation-error")
            #expect(response["code"] == "validation-error")
            #expect(response.json["status"] == .int(422))
            #expect(response["instance"] == "/onboard")
            #expect(response["requestId"] == response.headers[.init("X-Request-Id")!])
            #expect(response.fieldErrors == bad.errors)
            #expect(try await fixture.itemCount() == 0, "nothing is stored")
        }
    }

    @Test("the 200-character limit counts characters, not bytes: 200 CJK characters are accepted")
    func twoHundredCharacters() async throws {
        try await TestServer.run { api, _ in
            let name = String(repeating: "社", count: 200)
            let response = try await api.onboard(#"{"clientName": "\#(name)", "clientPhone": "+1234567890"}"#)
            #expect(response.status == 201)
        }
    }

    struct BadRequest: Sendable, CustomTestStringConvertible {
        let name: String
        let contentType: String?
        let body: [UInt8]
        let status: Int
        let code: String
        var testDescription: String { name }
    }

    static let badRequests: [BadRequest] = [
        BadRequest(name: "malformed JSON", contentType: "application/json", body: Array(#"{"clientName": "Acme""#.utf8), status: 400, code: "malformed-json"),
        BadRequest(name: "trailing comma", contentType: "application/json", body: Array(#"{"clientName": "Acme",}"#.utf8), status: 400, code: "malformed-json"),
        BadRequest(name: "single quotes", contentType: "application/json", body: Array("{'clientName': 'Acme'}".utf8), status: 400, code: "malformed-json"),
        BadRequest(name: "duplicate keys", contentType: "application/json", body: Array(#"{"clientName": "A", "clientName": "B", "clientPhone": "+1234567890"}"#.utf8), status: 400, code: "malformed-json"),
        BadRequest(name: "invalid UTF-8", contentType: "application/json", body: [0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D], status: 400, code: "malformed-json"),
        BadRequest(name: "empty body", contentType: "application/json", body: [], status: 400, code: "malformed-json"),
        BadRequest(name: "nesting 10,000 deep", contentType: "application/json", body: Array((String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)).utf8), status: 400, code: "malformed-json"),
        BadRequest(name: "an array, not an object", contentType: "application/json", body: Array(#"[{"clientName": "Acme"}]"#.utf8), status: 400, code: "bad-request"),
        BadRequest(name: "a string, not an object", contentType: "application/json", body: Array(#""Acme""#.utf8), status: 400, code: "bad-request"),
        BadRequest(name: "no Content-Type", contentType: nil, body: Array(#"{"clientName": "Acme", "clientPhone": "+1234567890"}"#.utf8), status: 415, code: "unsupported-media-type"),
        BadRequest(name: "form encoded (curl -d without -H)", contentType: "application/x-www-form-urlencoded", body: Array(#"{"clientName": "Acme", "clientPhone": "+1234567890"}"#.utf8), status: 415, code: "unsupported-media-type"),
        BadRequest(name: "text/plain", contentType: "text/plain", body: Array(#"{"clientName": "Acme", "clientPhone": "+1234567890"}"#.utf8), status: 415, code: "unsupported-media-type"),
        BadRequest(name: "JSON in Latin-1", contentType: "application/json; charset=iso-8859-1", body: Array(#"{"clientName": "Acme", "clientPhone": "+1234567890"}"#.utf8), status: 415, code: "unsupported-media-type"),
        BadRequest(name: "900 combining marks in a row (over Unicode's stream-safe 30)", contentType: "application/json", body: Array(#"{"clientName": "\#(zalgo)", "clientPhone": "+1234567890"}"#.utf8), status: 400, code: "malformed-json"),
        BadRequest(name: "a body over 64 KiB", contentType: "application/json", body: Array((#"{"clientName": ""# + String(repeating: "a", count: 70_000) + #"", "clientPhone": "+1234567890"}"#).utf8), status: 413, code: "payload-too-large"),
    ]

    @Test("unreadable bodies get 400, 413 or 415 problems and store nothing", arguments: badRequests)
    func badRequest(_ bad: BadRequest) async throws {
        try await TestServer.run { api, fixture in
            var headers: HTTPFields = [:]
            if let contentType = bad.contentType { headers[.contentType] = contentType }
            let response = try await api.send(.post, "/onboard", headers: headers, bytes: bad.body)
            #expect(response.status == bad.status)
            #expect(response["code"] == bad.code)
            #expect(response["detail"]?.isEmpty == false)
            #expect(try await fixture.itemCount() == 0, "nothing is stored")
        }
    }

    @Test("Content-Type parameters: charset=utf-8 in any case is fine")
    func contentTypeWithCharset() async throws {
        try await TestServer.run { api, _ in
            for contentType in ["application/json; charset=utf-8", "Application/JSON;charset=UTF-8", "application/json; charset=\"utf-8\""] {
                let response = try await api.send(
                    .post, "/onboard", headers: [.contentType: contentType], body: #"{"clientName": "Acme", "clientPhone": "+1234567890"}"#
                )
                #expect(response.status == 201, "\(contentType)")
            }
        }
    }

    @Test("a body of exactly 64 KiB is read (and then judged on its fields)")
    func bodyAtTheLimit() async throws {
        try await TestServer.run { api, _ in
            let prefix = #"{"clientPhone": "+1234567890", "clientName": ""#
            let suffix = #""}"#
            let padding = String(repeating: "a", count: 64 * 1024 - prefix.utf8.count - suffix.utf8.count)
            let body = prefix + padding + suffix
            #expect(body.utf8.count == 64 * 1024)
            let response = try await api.onboard(body)
            #expect(response.status == 422)
            #expect(response.fieldErrors == ["clientName": "too-long"])
        }
    }
}
