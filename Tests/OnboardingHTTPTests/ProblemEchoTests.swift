import Foundation
import HTTPTypes
import OnboardingCore
import Testing

/// What README's "Errors" promises about echoes: a problem names the parts of the request it is
/// about (path, unknown member name, refused media type), quoted at most 100 characters long, and
/// never repeats a submitted value.
@Suite("problems name what is wrong but echo no submitted value", .testStoreAvailable)
struct ProblemEchoTests {
    @Test("a field's value is never repeated back, whichever field is wrong")
    func valuesAreNotEchoed() async throws {
        try await TestServer.run { api, _ in
            let bodies = [
                #"{"clientName": "Acme", "clientPhone": "+1234567890", "password": "hunter2-secret-value"}"#,
                #"{"clientName": "Acme\u0000hunter2-secret-value", "clientPhone": "+1234567890"}"#,
                #"{"clientName": "Acme", "clientPhone": "hunter2-secret-value"}"#,
                #"{"clientName": 7, "clientPhone": {"hunter2-secret-value": 1}}"#,
            ]
            for body in bodies {
                let response = try await api.onboard(body)
                #expect(response.status == 422, "\(body)")
                let text = String(decoding: response.body, as: UTF8.self)
                #expect(!text.contains("hunter2"), "the problem repeats a submitted value: \(text)")
            }
            // The unknown member is named (that is what the client has to fix), its value is not.
            let unknown = try await api.onboard(#"{"clientName": "Acme", "clientPhone": "+1234567890", "password": "hunter2-secret-value"}"#)
            #expect(unknown.fieldErrors == ["password": "unknown-field"])
        }
    }

    @Test("a long path or media type is quoted at most 100 characters long")
    func longEchoesAreShortened() async throws {
        try await TestServer.run { api, _ in
            let path = "/" + String(repeating: "p", count: 5_000)
            let notFound = try await api.send(.get, path)
            #expect(notFound.status == 404)
            let detail = try #require(notFound["detail"])
            #expect(detail.contains(String(repeating: "p", count: 99) + "…"))
            #expect(!detail.contains(String(repeating: "p", count: 101)), "\(detail.count) characters of detail")

            let mediaType = "text/" + String(repeating: "x", count: 5_000)
            let refused = try await api.send(
                .post, "/onboard", headers: [.contentType: mediaType], body: #"{"clientName": "Acme", "clientPhone": "+1234567890"}"#
            )
            #expect(refused.status == 415)
            let refusal = try #require(refused["detail"])
            #expect(refusal.contains("text/xxxx"))
            #expect(!refusal.contains(String(repeating: "x", count: 101)), "\(refusal.count) characters of detail")
        }
    }
}
