import AsyncHTTPClient
import Foundation
import OnboardTestSupport
import Testing

/// The binary on DynamoDB with credentials only from a container endpoint (ECS, EKS Pod
/// Identity), served by `scripts/aws_metadata_standin.py`: the case that did not start before.
@Suite("The onboard binary with container credentials", .requires(.moto))
struct ContainerCredentialsBinaryTests {
    func containerFetches(_ endpoint: String) async throws -> Int {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: endpoint + "/_log"), timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        let log = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any]
        return try #require((log?["counts"] as? [String: Any])?["container"] as? Int)
    }

    @Test("serve --store dynamodb starts and onboards with AWS_CONTAINER_CREDENTIALS_FULL_URI only; a refused token is one line")
    func containerOnly() async throws {
        let moto = try await MotoServer.shared()
        let standIn = try await ScriptServer.start(script: "aws_metadata_standin.py", arguments: ["--container-token", "pod-identity-secret"])
        defer { standIn.stop() }
        let home = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: home) }
        let table = "creds-\(UUID().uuidString.prefix(8).lowercased())"
        let environment = [
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": standIn.endpoint + "/container/v1/credentials",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": "pod-identity-secret", "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_DYNAMODB": moto.endpoint, "HOME": home.path,
        ]

        let create = try OnboardProcess(["table", "create", "--table", table], environment: environment)
        #expect(try await create.waitForExit() == 0)
        let server = try OnboardProcess(["serve", "--port", "0", "--store", "dynamodb", "--table", table], environment: environment)
        let base = try await server.waitUntilListening()
        let status = try await HTTP.with(base) { http in try await http.onboard(name: "Container Co", phone: "+33123456789").status }
        #expect(status == 201)
        _ = try await server.terminate()
        #expect(try await containerFetches(standIn.endpoint) == 2, "one fetch per process: table create, then serve")

        var refused = environment
        refused["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = "not-the-pod-token"
        let denied = try OnboardProcess(["serve", "--port", "0", "--store", "dynamodb", "--table", table], environment: refused)
        #expect(try await denied.waitForExit() == 1)
        #expect(denied.stderr.lines.count == 1)
        #expect(denied.stderr.text.contains("container credential endpoint http://127.0.0.1:"))
        #expect(denied.stderr.text.contains("HTTP 403"))
        #expect(!denied.stderr.text.contains("not-the-pod-token"))
    }
}
