import Crypto
import Foundation
import SigV4
import Testing

/// The AWS SigV4 test suite's credentials and time (aws-sig-v4-test-suite).
let suiteCredentials = AWSCredentials(accessKeyId: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
let suiteDate = Date(timeIntervalSince1970: 1_440_938_160)  // 2015-08-30T12:36:00Z

@Suite("SigV4: published vectors")
struct SigV4VectorTests {
    let signer = SigV4Signer(credentials: suiteCredentials, region: "us-east-1", service: "service")

    @Test("get-vanilla")
    func getVanilla() throws {
        let headers = try signer.sign(method: "GET", url: "https://example.amazonaws.com/", headers: [], body: [UInt8](), date: suiteDate)
        #expect(headers.first { $0.name == "X-Amz-Date" }?.value == "20150830T123600Z")
        #expect(headers.first { $0.name == "Authorization" }?.value == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
    }

    @Test("post-vanilla")
    func postVanilla() throws {
        let headers = try signer.sign(method: "POST", url: "https://example.amazonaws.com/", headers: [], body: [UInt8](), date: suiteDate)
        #expect(headers.first { $0.name == "Authorization" }?.value == "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b")
    }

    @Test("get-vanilla's stages: canonical request and string to sign")
    func stages() {
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        let (canonical, signed) = signer.canonicalRequest(
            method: "GET", path: "/", query: nil,
            headers: [("Host", "example.amazonaws.com"), ("X-Amz-Date", "20150830T123600Z")], payloadHash: empty
        )
        #expect(signed == "host;x-amz-date")
        #expect(canonical == "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\(empty)")
        #expect(signer.stringToSign(canonicalRequest: canonical, date: suiteDate) == """
            AWS4-HMAC-SHA256
            20150830T123600Z
            20150830/us-east-1/service/aws4_request
            bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63
            """)
    }

    @Test("the documented signing-key derivations (IAM examples)", arguments: [
        (1_329_264_000.0, "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"),  // 20120215
        (1_440_892_800.0, "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"),  // 20150830
    ])
    func signingKey(seconds: Double, expected: String) {
        let iam = SigV4Signer(credentials: suiteCredentials, region: "us-east-1", service: "iam")
        let key = iam.signingKey(date: Date(timeIntervalSince1970: seconds)).withUnsafeBytes { Array($0) }
        #expect(key.map { String(format: "%02x", $0) }.joined() == expected)
    }

    @Test("session tokens are sent and signed; signing again replaces the old signature")
    func sessionToken() throws {
        let temporary = SigV4Signer(
            credentials: AWSCredentials(accessKeyId: "ASIAEXAMPLE", secretAccessKey: "secret", sessionToken: "token/with+chars="),
            region: "eu-west-1", service: "dynamodb"
        )
        let first = try temporary.sign(
            method: "POST", url: "http://127.0.0.1:4566/", headers: [("Content-Type", "application/x-amz-json-1.0")],
            body: Array("{}".utf8), date: suiteDate
        )
        #expect(first.first { $0.name == "X-Amz-Security-Token" }?.value == "token/with+chars=")
        let authorization = try #require(first.first { $0.name == "Authorization" }?.value)
        #expect(authorization.contains("SignedHeaders=content-type;host;x-amz-date;x-amz-security-token,"))
        let again = try temporary.sign(method: "POST", url: "http://127.0.0.1:4566/", headers: first, body: Array("{}".utf8), date: suiteDate + 60)
        #expect(again.filter { $0.name.lowercased() == "authorization" }.count == 1)
        #expect(again.filter { $0.name.lowercased() == "x-amz-date" }.map(\.value) == ["20150830T123700Z"])
        #expect(again.filter { $0.name.lowercased() == "x-amz-security-token" }.count == 1)
    }

    @Test("credentials never print their secrets")
    func redaction() {
        let credentials = AWSCredentials(accessKeyId: "AKID", secretAccessKey: "very-secret", sessionToken: "session-secret")
        #expect(!"\(credentials)".contains("very-secret"))
        #expect(!"\(credentials)".contains("session-secret"))
    }

    @Test("a relative URL cannot be signed")
    func relativeURL() {
        #expect(throws: SigV4Error.self) { try signer.sign(method: "GET", url: "/relative", headers: [], body: [UInt8](), date: suiteDate) }
    }
}
