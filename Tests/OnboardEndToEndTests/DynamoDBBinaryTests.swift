import Foundation
import NIOHTTP1
import OnboardTestSupport
import Testing

@Suite("The onboard binary on DynamoDB (moto)", .serialized, .requires(.moto))
struct DynamoDBBinaryTests {
    /// AWS settings for moto: test credentials, a region, the endpoint by the SDKs' variable.
    func awsEnvironment(_ moto: MotoServer, home: URL) -> [String: String] {
        [
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_DYNAMODB": moto.endpoint, "HOME": home.path,
        ]
    }

    @Test("table create (twice), serve --store dynamodb, crash, restart: every acknowledged tenant is there")
    func createServeRestart() async throws {
        let moto = try await MotoServer.shared()
        let home = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: home) }
        let table = "e2e-\(UUID().uuidString.prefix(8).lowercased())"
        let environment = awsEnvironment(moto, home: home)

        let create = try OnboardProcess(["table", "create", "--table", table], environment: environment)
        #expect(try await create.waitForExit() == 0)
        #expect(create.stdout.text.contains("table \(table) created at \(moto.endpoint): active, index tenants-by-creation, TTL on expiresAt"))
        let again = try OnboardProcess(["table", "create", "--table", table, "--dynamodb-endpoint", moto.endpoint, "--region", "us-east-1"], environment: environment)
        #expect(try await again.waitForExit() == 0)
        #expect(again.stdout.text.contains("already existed"))

        let first = try OnboardProcess(["serve", "--port", "0", "--store", "dynamodb", "--table", table, "--rate-limits", "off"], environment: environment)
        let base = try await first.waitUntilListening()
        #expect(first.stdout.lines.contains("store: DynamoDB table \(table) at \(moto.endpoint) (us-east-1)"))
        let token = try await first.generatedAdminToken()
        let ids: [String] = try await HTTP.with(base) { http in
            var ids: [String] = []
            for index in 0..<20 {
                let reply = try await http.onboard(name: "Dynamo \(index)", phone: "+3312345\(String(1000 + index))")
                #expect(reply.status == 201)
                ids.append(try #require(jsonField("tenantId", in: reply.body)))
            }
            return ids
        }
        try await first.kill()

        let second = try OnboardProcess(["serve", "--port", "0"], environment: environment.merging(["ONBOARD_STORE": "dynamodb", "ONBOARD_TABLE": table]) { $1 })
        let secondBase = try await second.waitUntilListening()
        try await HTTP.with(secondBase) { http in
            for id in ids {
                #expect(try await http.tenant(id, token: token).status == 200)
            }
            let listing = try await http.send(.GET, "/tenants?limit=100", headers: [("Authorization", "Bearer \(token)")])
            #expect(ids.allSatisfy { listing.body.contains($0) })
        }
        _ = try await second.terminate()
    }

    @Test("a missing table, no credentials, or no region: one line and exit code 1")
    func startupErrors() async throws {
        let moto = try await MotoServer.shared()
        let home = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: home) }
        let environment = awsEnvironment(moto, home: home)

        let missing = try OnboardProcess(["serve", "--port", "0", "--store", "dynamodb", "--table", "no-such-table"], environment: environment)
        #expect(try await missing.waitForExit() == 1)
        #expect(missing.stderr.lines == ["onboard: error: the DynamoDB table no-such-table does not exist at \(moto.endpoint); create it with `onboard table create --table no-such-table`"])

        var noCredentials = environment
        noCredentials["AWS_ACCESS_KEY_ID"] = nil
        noCredentials["AWS_SECRET_ACCESS_KEY"] = nil
        let anonymous = try OnboardProcess(["serve", "--port", "0", "--store", "dynamodb"], environment: noCredentials)
        #expect(try await anonymous.waitForExit() == 1)
        #expect(anonymous.stderr.lines.count == 1)
        #expect(anonymous.stderr.text.contains("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"))

        var noRegion = environment
        noRegion["AWS_REGION"] = nil
        let nowhere = try OnboardProcess(["serve", "--port", "0", "--store", "dynamodb"], environment: noRegion)
        #expect(try await nowhere.waitForExit() == 1)
        #expect(nowhere.stderr.text.contains("no AWS region"))

        let badStore = try OnboardProcess(["serve", "--port", "0", "--store", "postgres"], environment: environment)
        #expect(try await badStore.waitForExit() == 64)
        #expect(badStore.stderr.lines == ["onboard: error: invalid --store 'postgres': expected sqlite or dynamodb"])
    }
}
