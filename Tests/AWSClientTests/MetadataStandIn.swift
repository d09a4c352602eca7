import AsyncHTTPClient
import Foundation
import NIOCore
import OnboardTestSupport

/// `scripts/aws_metadata_standin.py` on 127.0.0.1 and a free port: IMDSv2, the container
/// credential endpoint, and a service answering `ExpiredTokenException` once. One per test, so
/// its counts are the test's own; it ends with the test process at the latest.
final class MetadataStandIn: Sendable {
    private let server: ScriptServer
    var port: Int { server.port }
    var endpoint: String { server.endpoint }
    /// The container endpoint's URL (any path under `/container/`).
    var containerURL: String { endpoint + "/container/v1/credentials" }

    /// - Parameters:
    ///   - containerToken: the `Authorization` value the container endpoint requires (`nil`: none).
    ///   - expiresIn: seconds from each fetch to the credentials' `Expiration`.
    static func start(containerToken: String? = nil, expiresIn: Int = 3600) async throws -> MetadataStandIn {
        let arguments = ["--expires-in", String(expiresIn)] + (containerToken.map { ["--container-token", $0] } ?? [])
        return MetadataStandIn(server: try await ScriptServer.start(script: "aws_metadata_standin.py", arguments: arguments))
    }

    private init(server: ScriptServer) {
        self.server = server
    }

    struct Log: Decodable {
        /// Requests per endpoint: `token` (IMDSv2 token), `role`, `imds` and `container`
        /// (credential fetches), `unauthorized`, `service`.
        let counts: [String: Int]
        /// The access key id that signed each service request, in order.
        let signedBy: [String?]
        func count(_ name: String) -> Int { counts[name] ?? 0 }
    }

    /// What the stand-in was asked so far.
    func log() async throws -> Log {
        try JSONDecoder().decode(Log.self, from: Data(try await get("/_log").body))
    }

    /// A plain GET, for checking what the stand-in itself answers.
    func get(_ path: String, headers: [(String, String)] = []) async throws -> (status: Int, body: [UInt8]) {
        var request = HTTPClientRequest(url: endpoint + path)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), Array(body.readableBytesView))
    }
}
