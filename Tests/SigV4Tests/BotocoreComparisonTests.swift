import Foundation
import OnboardTestSupport
import SigV4
import Testing

/// SplitMix64: a small deterministic generator, so the generated requests are the same every run.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// One generated request and what it is signed with.
struct SigningCase {
    var method: String
    var url: String
    var headers: [(name: String, value: String)]
    var body: [UInt8]
    var credentials: AWSCredentials
    var region: String
    var service: String
    var epochSeconds: Int

    var json: [String: Any] {
        var object: [String: Any] = [
            "method": method, "url": url, "headers": headers.map { [$0.name, $0.value] },
            "body": Data(body).base64EncodedString(), "accessKeyId": credentials.accessKeyId,
            "secretAccessKey": credentials.secretAccessKey, "region": region, "service": service, "epochSeconds": epochSeconds,
        ]
        if let token = credentials.sessionToken { object["sessionToken"] = token }
        return object
    }

    static func generate(count: Int, seed: UInt64) -> [SigningCase] {
        var random = SeededGenerator(state: seed)
        let hosts = ["dynamodb.us-east-1.amazonaws.com", "127.0.0.1:5000", "Example.AmazonAWS.com", "localhost:8000", "sns.eu-west-3.amazonaws.com", "[::1]:4566"]
        let paths = ["/", "", "/a/b", "/a/./b/../c", "//double//slash/", "/with%20space", "/%E2%82%AC/euro", "/~user/x", "/a+b=c", "/..", "/a/b/", "/path:colon", "/%2F"]
        let queries: [String?] = [nil, "a=1", "b=2&a=1", "a=2&a=1", "key-only", "x=%2F%20y", "Action=ListTopics&Version=2010-03-31", "empty=", "Z=1&a=1&_=2"]
        let headerPool: [(String, String)] = [
            ("Content-Type", "application/x-amz-json-1.0"), ("X-Amz-Target", "DynamoDB_20120810.PutItem"),
            ("My-Header", "  a   b  "), ("my-header", "second\tvalue"), ("User-Agent", "onboard/0.1"), ("X-Amzn-Trace-Id", "Root=1-abc"),
            ("Accept", "*/*"), ("Content-Length", "12"), ("X-Amz-Meta-Ünicode", "value"), ("x-custom", ""), ("Connection", "keep-alive"),
        ]
        let regions = ["us-east-1", "eu-west-3", "ap-southeast-2", "us-gov-west-1"]
        let services = ["dynamodb", "sns", "events", "service", "execute-api"]
        return (0..<count).map { index in
            let scheme = index % 3 == 0 ? "http" : "https"
            var host = hosts.randomElement(using: &random)!
            if scheme == "https", index % 7 == 0, !host.contains(":") { host += ":443" }
            let query = queries.randomElement(using: &random)!
            let url = "\(scheme)://\(host)\(paths.randomElement(using: &random)!)" + (query.map { "?\($0)" } ?? "")
            let headers = (0..<Int.random(in: 0...4, using: &random)).map { _ in headerPool.randomElement(using: &random)! }
            let body = (0..<Int.random(in: 0...200, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            let token = Bool.random(using: &random) ? "IQoJb3JpZ2luX2VjE\(index)/+=" : nil
            return SigningCase(
                method: ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"].randomElement(using: &random)!,
                url: url, headers: headers, body: body,
                credentials: AWSCredentials(accessKeyId: "AKIA\(index)EXAMPLE", secretAccessKey: "secret/\(index)+key", sessionToken: token),
                region: regions.randomElement(using: &random)!, service: services.randomElement(using: &random)!,
                epochSeconds: Int.random(in: 946_684_800...4_102_444_800, using: &random)
            )
        }
    }
}

@Suite("SigV4: byte-identical to botocore")
struct BotocoreComparisonTests {
    /// Runs botocore on the cases and returns what it printed (a JSON list, one object per case).
    static func botocoreOutput(_ cases: [SigningCase]) throws -> Data {
        try Requirements.check(.botocore)
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Resources/botocore_sign.py")
        let botocore = try ChildProcess.run(
            executable: "/usr/bin/env", arguments: ["python3", script.path],
            input: Array(try JSONSerialization.data(withJSONObject: cases.map(\.json))), standardError: .inherit
        )
        guard botocore.status.isSuccess else { throw SigV4Error(message: "botocore_sign.py failed") }
        return Data(botocore.output)
    }

    @Test("500 generated requests: every signature equals botocore's", .requires(.botocore))
    func generatedRequests() throws {
        let cases = SigningCase.generate(count: 500, seed: 0x5147_4E56_3431)
        let output = try Self.botocoreOutput(cases)
        let expected = try #require(
            try JSONSerialization.jsonObject(with: output) as? [[String: Any]],
            "botocore's output is a JSON list of objects: \(String(decoding: output.prefix(200), as: UTF8.self))"
        )
        try #require(expected.count == cases.count, "botocore signed every case")
        var compared = 0
        var mismatches = 0
        for (signingCase, reference) in zip(cases, expected) {
            let referenceAuthorization = try #require(reference["authorization"] as? String, "botocore's Authorization: \(reference)")
            let referenceDate = try #require(reference["date"] as? String, "botocore's X-Amz-Date: \(reference)")
            let referenceToken = reference["token"] as? String
            #expect(referenceToken == signingCase.credentials.sessionToken, "botocore sent the session token exactly when there is one")
            let signer = SigV4Signer(credentials: signingCase.credentials, region: signingCase.region, service: signingCase.service)
            let headers = try signer.sign(
                method: signingCase.method, url: signingCase.url, headers: signingCase.headers, body: signingCase.body,
                date: Date(timeIntervalSince1970: Double(signingCase.epochSeconds))
            )
            let authorization = headers.first { $0.name == "Authorization" }?.value
            let date = headers.first { $0.name == "X-Amz-Date" }?.value
            let token = headers.first { $0.name == "X-Amz-Security-Token" }?.value
            compared += 1
            if authorization != referenceAuthorization || date != referenceDate || token != referenceToken {
                mismatches += 1
                if mismatches <= 5 {
                    Issue.record("\(signingCase.method) \(signingCase.url) \(signingCase.headers): \(authorization ?? "nil") != \(reference)")
                }
            }
        }
        #expect(compared == 500)
        #expect(mismatches == 0)
    }
}
