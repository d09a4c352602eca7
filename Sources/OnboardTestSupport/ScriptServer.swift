#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// A Python script of the repository's `scripts/` folder, run as a child process that serves
/// HTTP on 127.0.0.1 and a free port (the fault proxy, the AWS metadata stand-in). The scripts
/// end themselves when their parent does; ``stop()`` (or the end of this object) ends them sooner.
public final class ScriptServer: Sendable {
    public let port: Int
    /// `http://127.0.0.1:<port>`.
    public var endpoint: String { "http://127.0.0.1:\(port)" }
    private let process: ChildProcess

    /// The path of `scripts/<name>` in this repository.
    public static func scriptPath(_ name: String) -> String {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/\(name)").path
    }

    /// Runs `python3 scripts/<script> <port> <arguments…>` and waits until it accepts connections.
    /// - Throws: ``UnavailableInThisEnvironment`` when the script is missing or does not start in
    ///   time (the process is ended then).
    public static func start(script: String, arguments: [String] = [], within timeout: Duration = .seconds(20)) async throws -> ScriptServer {
        try Requirements.check(.python3)
        let path = scriptPath(script)
        guard FileManager.default.fileExists(atPath: path) else {
            throw UnavailableInThisEnvironment(description: "the script \(path) is missing")
        }
        let port = try MotoServer.freePort()
        let process = try ChildProcess.start(
            executable: "/usr/bin/env", arguments: ["python3", path, String(port)] + arguments,
            standardOutput: .null, standardError: .null
        )
        let server = ScriptServer(port: port, process: process)
        let deadline = ContinuousClock.now + timeout
        while !MotoServer.canConnect(port: port) {
            guard process.isRunning, ContinuousClock.now < deadline else {
                server.stop()
                throw UnavailableInThisEnvironment(description: "python3 \(path) did not start on 127.0.0.1:\(port)")
            }
            try await Task.sleep(for: .milliseconds(30))
        }
        return server
    }

    private init(port: Int, process: ChildProcess) {
        self.port = port
        self.process = process
    }

    deinit {
        stop()
    }

    /// Ends the script (SIGKILL: it keeps no state worth a clean exit).
    public func stop() {
        process.kill()
    }
}
