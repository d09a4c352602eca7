import AWSClient
import Crypto
import Foundation
import OnboardTestSupport
import OnboardingCore
import OnboardingDynamoDB
import Testing

/// SHA-256, as the service hashes API keys (so a key made here verifies in the function).
private struct SHA256Hasher: SecretHasher {
    func sha256Hex(_ secret: String) -> String { ByteEncoding.hex(SHA256.hash(data: Array(secret.utf8))) }
}

@Suite("The Lambda bootstrap records API-key uses between invocations (moto)", .serialized, .requires(.moto))
struct LambdaKeyUsageBinaryTests {
    @Test("a key used in one invocation has its lastUsedAt in the table once that invocation is answered")
    func lastUsedAtBetweenInvocations() async throws {
        let moto = try await MotoServer.shared()
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let table = "lambda-usage-\(UUID().uuidString.prefix(8).lowercased())"
        try await DynamoDBTable.create(moto.dynamoDB(), name: table)
        let store = DynamoDBTenantStore(dynamoDB: moto.dynamoDB(), table: table)
        let onboarded = try await OnboardingService(store: store, hasher: SHA256Hasher()).onboard(
            OnboardingRequest(json: ["clientName": .string("Lambda Keys"), "clientPhone": .string("+14155550199")])
        )
        let tenantId = onboarded.tenant.id.rawValue
        let keyItem = ItemKey(tenantId: tenantId, resourceKey: "APIKEY#\(onboarded.apiKey.key.keyId)")

        var read = try lambdaEvent("rest-v1")
        read["httpMethod"] = "GET"
        read["path"] = "/tenants/\(tenantId)"
        read["body"] = NSNull()
        read["headers"] = ["Authorization": "Bearer \(onboarded.apiKey.text)"]
        read["multiValueHeaders"] = ["Authorization": ["Bearer \(onboarded.apiKey.text)"]]
        let runtime = try RuntimeAPIEmulator(events: [read], folder: folder)
        try await runtime.waitUntilListening()
        let function = try OnboardProcess([], executable: bootstrapBinary(), environment: [
            "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:\(runtime.port)", "ONBOARD_STORE": "dynamodb", "ONBOARD_TABLE": table,
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_DYNAMODB": moto.endpoint, "HOME": folder.path,
        ])
        let answers = try await runtime.answers()
        // The loop writes the use after posting the answer and before asking for the next
        // invocation; the emulator then has none, and the process ends.
        _ = try await function.waitForExit()

        #expect(answers.map { $0["kind"] as? String } == ["response"])
        let answer = try #require(try JSONSerialization.jsonObject(with: Data((answers.first?["body"] as? String ?? "").utf8)) as? [String: Any])
        #expect(answer["statusCode"] as? Int == 200)
        #expect(try await store.get(keyItem)?["lastUsedAt"]?.stringValue != nil, "written between invocations, not left for a background task")
    }
}
