#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import AsyncHTTPClient
import Foundation
import NIOCore
import OnboardTestSupport

/// `scripts/aws_metadata_standin.py` on 127.0.0.1 and a free port: IMDSv2, the container
/// credential endpoint, and a service answering `ExpiredTokenException` once. One per test, so
/// its counts are the test's own; it ends with the test process at the latest.
final class MetadataStandIn: Sendable {
    let port: Int
    private let process: Process
    var endpoint: String { "http://127.0.0.1:\(port)" }
    /// The container endpoint's URL (any path under `/container/`).
    var containerURL: String { endpoint + "/container/v1/credentials" }

    static let scriptPath: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/aws_metadata_standin.py").path

    /// - Parameters:
    ///   - containerToken: the `Authorization` value the container endpoint requires (`nil`: none).
    ///   - expiresIn: seconds from each fetch to the credentials' `Expiration`.
    static func start(containerToken: String? = nil, expiresIn: Int = 3600) async throws -> MetadataStandIn {
        try Requirements.check(.python3)
        let port = try MotoServer.freePort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", scriptPath, String(port), "--expires-in", String(expiresIn)]
            + (containerToken.map { ["--container-token", $0] } ?? [])
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        let standIn = MetadataStandIn(port: port, process: process)
        let deadline = ContinuousClock.now + .seconds(20)
        while !MotoServer.canConnect(port: port) {
            guard process.isRunning, ContinuousClock.now < deadline else {
                throw UnavailableInThisEnvironment(description: "the metadata stand-in did not start on 127.0.0.1:\(port)")
            }
            try await Task.sleep(for: .milliseconds(30))
        }
        return standIn
    }

    private init(port: Int, process: Process) {
        self.port = port
        self.process = process
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
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
