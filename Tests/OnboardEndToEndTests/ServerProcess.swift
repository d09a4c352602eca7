import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import OnboardTestSupport
import OnboardingCore
import Synchronization
import Testing

/// The `onboard` binary built next to this test bundle (`.build/<config>/onboard`), or `$ONBOARD_BINARY`.
func onboardBinary() throws -> URL {
    if let explicit = ProcessInfo.processInfo.environment["ONBOARD_BINARY"] {
        return URL(fileURLWithPath: explicit)
    }
    var directory = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent()
    for _ in 0..<4 {
        let candidate = directory.appendingPathComponent("onboard")
        if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
        directory.deleteLastPathComponent()
    }
    throw ProcessError(description: "no onboard binary next to \(CommandLine.arguments[0]); run `swift build` or set ONBOARD_BINARY")
}

struct ProcessError: Error, CustomStringConvertible {
    let description: String
}

/// Collects what a child process writes to one of its pipes (the read end).
final class OutputCollector: Sendable {
    private let buffer = Mutex(Data())

    init(_ pipe: FileHandle?) {
        pipe?.readabilityHandler = { [self] handle in
            let data = handle.availableData
            if data.isEmpty {
                handle.readabilityHandler = nil
            } else {
                self.buffer.withLock { $0.append(data) }
            }
        }
    }

    var text: String { buffer.withLock { String(decoding: $0, as: UTF8.self) } }
    var lines: [String] { text.split(separator: "\n").map(String.init) }
}

/// One run of the `onboard` binary.
final class OnboardProcess: Sendable {
    let process: ChildProcess
    let stdout: OutputCollector
    let stderr: OutputCollector

    /// - Parameter executable: the binary to run (default: the `onboard` built next to the tests).
    init(_ arguments: [String], executable: String? = nil, environment: [String: String] = [:]) throws {
        // Only what the test sets, so ONBOARD_* variables of the developer's shell cannot leak in.
        // Instance metadata off unless a test sets it: a binary that finds no credentials would
        // otherwise ask 169.254.169.254, and tests may reach nothing but 127.0.0.1.
        let process = try ChildProcess.start(
            executable: try executable ?? onboardBinary().path, arguments: arguments,
            environment: ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "AWS_EC2_METADATA_DISABLED": "true"]
                .merging(environment) { $1 },
            standardOutput: .pipe, standardError: .pipe
        )
        stdout = OutputCollector(process.standardOutput)
        stderr = OutputCollector(process.standardError)
        self.process = process
    }

    /// Waits for the process to exit and returns its status.
    func waitForExit(timeout: Duration = .seconds(30)) async throws -> Int32 {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            guard ContinuousClock.now < deadline else {
                process.terminate()
                throw ProcessError(description: "onboard did not exit within \(timeout); stdout: \(stdout.text) stderr: \(stderr.text)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        // Let the pipe handlers drain the last bytes.
        try await Task.sleep(for: .milliseconds(100))
        return process.exitStatus?.terminationStatus ?? -1
    }

    /// Waits for the line `listening on http://HOST:PORT` and returns that URL.
    func waitUntilListening(timeout: Duration = .seconds(30)) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let line = stdout.lines.first(where: { $0.hasPrefix("listening on ") }) {
                return String(line.dropFirst("listening on ".count))
            }
            guard process.isRunning else {
                throw ProcessError(description: "onboard exited with \(process.exitStatus?.terminationStatus ?? -1): \(stderr.text)")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ProcessError(description: "onboard did not start listening; stdout: \(stdout.text) stderr: \(stderr.text)")
    }

    /// The admin token a first start generated: the line `admin token: onb_admin_…` it writes to
    /// standard error (never to standard output, the log stream), waited for up to `timeout`.
    func generatedAdminToken(timeout: Duration = .seconds(30)) async throws -> String {
        let prefix = "admin token: onb_admin_"
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let line = stderr.lines.first(where: { $0.hasPrefix(prefix) }) {
                return String(line.dropFirst("admin token: ".count))
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw ProcessError(description: "no generated admin token on standard error; stdout: \(stdout.text) stderr: \(stderr.text)")
    }

    /// A crash: SIGKILL, no chance to flush or close anything.
    func kill() async throws {
        process.kill()
        _ = try await waitForExit()
    }

    /// A polite stop: SIGTERM.
    func terminate() async throws -> Int32 {
        if process.isRunning { process.terminate() }
        return try await waitForExit()
    }
}

/// A small HTTP client for the tests.
struct HTTP: Sendable {
    let client: HTTPClient
    let base: String

    struct Reply: Sendable {
        let status: Int
        let headers: HTTPHeaders
        let body: String
    }

    func send(_ method: HTTPMethod, _ path: String, headers: [(String, String)] = [], body: String? = nil) async throws -> Reply {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await client.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        return Reply(status: Int(response.status.code), headers: response.headers, body: String(buffer: bytes))
    }

    func onboard(name: String, phone: String) async throws -> Reply {
        try await send(.POST, "/onboard", headers: [("Content-Type", "application/json")], body: #"{"clientName": "\#(name)", "clientPhone": "\#(phone)"}"#)
    }

    func tenant(_ id: String, token: String) async throws -> Reply {
        try await send(.GET, "/tenants/\(id)", headers: [("Authorization", "Bearer \(token)")])
    }

    static func with<T: Sendable>(_ base: String, _ body: (HTTP) async throws -> T) async throws -> T {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            let result = try await body(HTTP(client: client, base: base))
            try await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }
}

/// The string field of a JSON object text.
func jsonField(_ field: String, in text: String) -> String? {
    (try? JSONCodec.parse(text))?.mapValue?[field]?.stringValue
}
