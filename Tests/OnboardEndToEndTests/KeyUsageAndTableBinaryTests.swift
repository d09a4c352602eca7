import AWSClient
import Foundation
import NIOHTTP1
import OnboardTestSupport
import OnboardingCore
import OnboardingDynamoDB
import Testing

@Suite("The onboard binary: lastUsedAt at shutdown", .serialized)
struct KeyUsageBinaryTests {
    @Test("SIGTERM right after a key's use: the server writes its lastUsedAt before it exits")
    func lastUsedAtSurvivesShutdown() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let database = folder.appendingPathComponent("tenants.sqlite").path

        let first = try OnboardProcess(["serve", "--port", "0", "--database", database, "--rate-limits", "off"])
        let base = try await first.waitUntilListening()
        let token = try await first.generatedAdminToken()
        let id: String = try await HTTP.with(base) { http in
            let reply = try await http.onboard(name: "Shutdown", phone: "+14155550177")
            #expect(reply.status == 201)
            let id = try #require(jsonField("tenantId", in: reply.body))
            let key = try #require(jsonField("apiKey", in: reply.body))
            // The key's use is noted; its write waits for the next flush (every few seconds).
            #expect(try await http.tenant(id, token: key).status == 200)
            return id
        }
        #expect(try await first.terminate() == 0)

        let second = try OnboardProcess(["serve", "--port", "0", "--database", database])
        let secondBase = try await second.waitUntilListening()
        try await HTTP.with(secondBase) { http in
            let listed = try await http.send(.GET, "/tenants/\(id)/api-keys", headers: [("Authorization", "Bearer \(token)")])
            #expect(listed.status == 200)
            guard case .list(let keys)? = (try? JSONCodec.parse(listed.body))?.mapValue?["apiKeys"] else {
                Issue.record("no apiKeys in \(listed.body)")
                return
            }
            #expect(keys.count == 1)
            #expect(keys.first?.mapValue?["lastUsedAt"]?.stringValue != nil, "written at shutdown")
        }
        #expect(try await second.terminate() == 0)
    }
}

@Suite("The onboard binary on a DynamoDB table without the listing index (moto)", .serialized, .requires(.moto))
struct TableIndexBinaryTests {
    @Test("serve refuses a table without the index; table create adds it, with the items already there, and serve lists them")
    func addIndex() async throws {
        // A moto of its own: behind the shared one's queue a CreateTable can time out, be resent
        // and find its own table ("already exists").
        let moto = try await MotoServer.start()
        defer { moto.stop() }
        let home = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: home) }
        let table = "noindex-\(UUID().uuidString.prefix(8).lowercased())"
        let environment = [
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_DYNAMODB": moto.endpoint, "HOME": home.path,
        ]
        // A table as an older version (or someone's own template) made it: keys only.
        let dynamoDB = moto.dynamoDB()
        try await dynamoDB.createTable(CreateTableInput(
            TableName: table, AttributeDefinitions: [.init("tenantId", "S"), .init("resourceKey", "S")],
            KeySchema: [.hash("tenantId"), .range("resourceKey")]
        ))
        let store = DynamoDBTenantStore(dynamoDB: dynamoDB, table: table)
        let earlier = try await OnboardingService(store: store, hasher: PlainHasher()).onboard(
            OnboardingRequest(json: ["clientName": .string("Before The Index"), "clientPhone": .string("+14155550123")])
        )

        let refused = try OnboardProcess(["serve", "--port", "0", "--store", "dynamodb", "--table", table], environment: environment)
        #expect(try await refused.waitForExit() == 1)
        #expect(refused.stderr.lines == [
            "onboard: error: the DynamoDB table \(table) has no index tenants-by-creation, which listing tenants needs; "
                + "add it with `onboard table create --table \(table)` (it keeps the table and its items)"
        ])

        let create = try OnboardProcess(["table", "create", "--table", table], environment: environment)
        #expect(try await create.waitForExit() == 0)
        #expect(create.stdout.text.contains("table \(table) already existed; index tenants-by-creation added at \(moto.endpoint): active"))
        let again = try OnboardProcess(["table", "create", "--table", table], environment: environment)
        #expect(try await again.waitForExit() == 0)
        #expect(again.stdout.text.contains("table \(table) already existed at"))

        let server = try OnboardProcess(["serve", "--port", "0", "--store", "dynamodb", "--table", table], environment: environment)
        let base = try await server.waitUntilListening()
        let token = try await server.generatedAdminToken()
        try await HTTP.with(base) { http in
            let reply = try await http.onboard(name: "After The Index", phone: "+14155550124")
            #expect(reply.status == 201)
            let later = try #require(jsonField("tenantId", in: reply.body))
            let listing = try await http.send(.GET, "/tenants?order=oldest", headers: [("Authorization", "Bearer \(token)")])
            #expect(listing.status == 200)
            guard case .list(let tenants)? = (try? JSONCodec.parse(listing.body))?.mapValue?["tenants"] else {
                Issue.record("no tenants in \(listing.body)")
                return
            }
            #expect(tenants.compactMap { $0.mapValue?["tenantId"]?.stringValue } == [earlier.tenant.id.rawValue, later])
        }
        #expect(try await server.terminate() == 0)
    }
}

/// Hashes nothing a test checks: onboarding needs a hasher for the first key.
private struct PlainHasher: SecretHasher {
    func sha256Hex(_ secret: String) -> String { String(repeating: "0", count: 64) }
}
