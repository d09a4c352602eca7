import AWSClient
import Foundation
import OnboardTestSupport
import OnboardingDynamoDB
import Testing

/// The repository's root (this file is Tests/OnboardEndToEndTests/LambdaBinaryTests.swift).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// The Lambda function's binary: `ONBOARD_BOOTSTRAP` (CI points it at `sam build`'s
/// `.aws-sam/build/OnboardFunction/bootstrap`), else the `onboard` binary it is a copy of.
func bootstrapBinary() throws -> String {
    if let path = ProcessInfo.processInfo.environment["ONBOARD_BOOTSTRAP"] { return path }
    return try onboardBinary().path
}

/// A sample API Gateway event (from `sam local generate-event`, kept with the LambdaRuntime tests).
func lambdaEvent(_ name: String) throws -> [String: Any] {
    let url = repositoryRoot.appendingPathComponent("Tests/LambdaRuntimeTests/Events/\(name).json")
    return try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
}

/// `scripts/lambda_runtime_api.py` on a free port, serving `events`; its results once all are answered.
final class RuntimeAPIEmulator: Sendable {
    let port: Int
    let results: URL
    let process: ChildProcess

    init(events: [Any], folder: URL, arguments extra: [String] = []) throws {
        port = try MotoServer.freePort()
        let eventsFile = folder.appendingPathComponent("events.json")
        try JSONSerialization.data(withJSONObject: events).write(to: eventsFile)
        results = folder.appendingPathComponent("results.json")
        process = try ChildProcess.start(
            executable: "/usr/bin/env",
            arguments: [
                "python3", repositoryRoot.appendingPathComponent("scripts/lambda_runtime_api.py").path,
                "--port", String(port), "--events", eventsFile.path, "--results", results.path,
            ] + extra,
            standardOutput: .inherit, standardError: .inherit
        )
    }

    /// Waits until the emulator accepts connections.
    func waitUntilListening() async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !MotoServer.canConnect(port: port) {
            guard ContinuousClock.now < deadline, process.isRunning else { throw ProcessError(description: "the Runtime API emulator did not start") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits until every event is answered (the emulator then exits) and returns the answers.
    func answers(timeout: Duration = .seconds(60)) async throws -> [[String: Any]] {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        if process.isRunning { process.terminate() }
        let data = try Data(contentsOf: results)
        return try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
    }
}

@Suite("The Lambda bootstrap against a local Runtime API and DynamoDB on moto", .serialized, .requires(.moto))
struct LambdaBinaryTests {
    func environment(_ moto: MotoServer, table: String, runtimeAPI: Int, home: URL) -> [String: String] {
        [
            "AWS_LAMBDA_RUNTIME_API": "127.0.0.1:\(runtimeAPI)", "ONBOARD_STORE": "dynamodb", "ONBOARD_TABLE": table,
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "lambda-session",
            "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_DYNAMODB": moto.endpoint, "HOME": home.path,
        ]
    }

    @Test("POST /Prod/onboard/ through the loop stores the tenant; a malformed event goes to /error and the loop keeps serving")
    func invocations() async throws {
        let moto = try await MotoServer.shared()
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let table = "lambda-\(UUID().uuidString.prefix(8).lowercased())"
        try await DynamoDBTable.create(moto.dynamoDB(), name: table)

        var health = try lambdaEvent("rest-v1")
        health["httpMethod"] = "GET"
        health["path"] = "/health"
        health["body"] = NSNull()
        let events: [Any] = [try lambdaEvent("rest-v1"), "this is not an API Gateway event", try lambdaEvent("http-v2"), health]
        let runtime = try RuntimeAPIEmulator(events: events, folder: folder)
        try await runtime.waitUntilListening()
        let function = try OnboardProcess([], executable: bootstrapBinary(), environment: environment(moto, table: table, runtimeAPI: runtime.port, home: folder))
        let answers = try await runtime.answers().sorted { ($0["index"] as? Int ?? -1) < ($1["index"] as? Int ?? -1) }
        try await function.kill()

        #expect(answers.map { $0["kind"] as? String } == ["response", "error", "response", "response"])
        let first = try #require(try JSONSerialization.jsonObject(with: Data((answers[0]["body"] as? String ?? "").utf8)) as? [String: Any])
        #expect(first["statusCode"] as? Int == 201)
        let body = try #require(try JSONSerialization.jsonObject(with: Data((first["body"] as? String ?? "").utf8)) as? [String: Any])
        #expect(body["message"] as? String == "Client onboarded successfully")
        let tenantId = try #require(body["tenantId"] as? String)
        let stored = try await moto.dynamoDB().getItem(GetItemInput(TableName: table, Key: ["tenantId": .s(tenantId), "resourceKey": .s("TENANT#\(tenantId)")]))
        #expect(stored.Item?["clientName"] == .s("Acme Corp"), "the item is in the table")

        #expect(answers[1]["errorType"] as? String == "APIGatewayEventError")
        #expect((answers[1]["body"] as? String)?.contains("errorMessage") == true)
        let third = try #require(try JSONSerialization.jsonObject(with: Data((answers[2]["body"] as? String ?? "").utf8)) as? [String: Any])
        #expect(third["statusCode"] as? Int == 201, "the loop kept serving after the bad event")
        let fourth = try #require(try JSONSerialization.jsonObject(with: Data((answers[3]["body"] as? String ?? "").utf8)) as? [String: Any])
        #expect(fourth["statusCode"] as? Int == 200)

        // Logs are JSON lines carrying the invocation's request id.
        let logLines = function.stdout.lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(!logLines.isEmpty && logLines.count == function.stdout.lines.count, "every log line is JSON")
        #expect(logLines.contains { $0["message"] as? String == "request" && $0["aws_request_id"] as? String == answers[0]["requestId"] as? String })
        #expect(logLines.contains { $0["message"] as? String == "invocation failed" && $0["error_type"] as? String == "APIGatewayEventError" })
    }

    @Test("a response the Runtime API refuses (413, too large) is logged with its status and reported to /error")
    func refusedResponse() async throws {
        let moto = try await MotoServer.shared()
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        var health = try lambdaEvent("rest-v1")
        health["httpMethod"] = "GET"
        health["path"] = "/health"
        health["body"] = NSNull()
        // Any proxy response is over 10 bytes: the emulator refuses it as Lambda refuses 6 MB.
        let runtime = try RuntimeAPIEmulator(events: [health], folder: folder, arguments: ["--max-response-bytes", "10"])
        try await runtime.waitUntilListening()
        let function = try OnboardProcess([], executable: bootstrapBinary(), environment: environment(moto, table: "unused", runtimeAPI: runtime.port, home: folder))
        let answers = try await runtime.answers()
        try await function.kill()

        #expect(answers.map { $0["kind"] as? String } == ["error"], "the caller gets an error, not a timeout")
        #expect(answers.first?["errorType"] as? String == "Runtime.ResponseNotAccepted")
        let logLines = function.stdout.lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let refused = try #require(logLines.first { $0["message"] as? String == "the Runtime API did not take the response" })
        #expect(refused["level"] as? String == "error")
        #expect(refused["status"] as? String == "413")
        #expect((refused["body"] as? String)?.contains("RequestEntityTooLarge") == true)
    }

    @Test("a start-up failure is posted to /runtime/init/error and the process exits")
    func initError() async throws {
        let moto = try await MotoServer.shared()
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let runtime = try RuntimeAPIEmulator(events: [try lambdaEvent("rest-v1")], folder: folder)
        try await runtime.waitUntilListening()
        var environment = environment(moto, table: "whatever", runtimeAPI: runtime.port, home: folder)
        environment["ONBOARD_STORE"] = "postgres"
        let function = try OnboardProcess([], executable: bootstrapBinary(), environment: environment)
        let answers = try await runtime.answers()
        #expect(try await function.waitForExit() != 0)
        #expect(answers.map { $0["kind"] as? String } == ["init-error"])
        #expect(answers.first?["errorType"] as? String == "ConfigurationError")
        #expect((answers.first?["body"] as? String)?.contains("ONBOARD_STORE") == true)
    }
}

/// Runs a command to its end; its status and what it printed (stdout and stderr together).
func runToEnd(_ arguments: [String], in folder: URL? = nil) throws -> (status: Int32, output: String) {
    let command = try ChildProcess.run(
        executable: "/usr/bin/env", arguments: arguments, workingDirectory: folder?.path, standardError: .standardOutput
    )
    return (command.status.terminationStatus, command.outputText)
}

func isOnPath(_ tool: String) -> Bool { (try? runToEnd(["sh", "-c", "command -v \(tool)"]).status) == 0 }

/// A C compiler: `cc`, or the `clang` every Swift toolchain ships.
let cCompiler = ["cc", "clang"].first(where: isOnPath) ?? "cc"

/// Whether the tools of the glibc script's test are here: a C compiler and objdump (binutils).
let canBuildELFFixtures = isOnPath(cCompiler) && isOnPath("objdump")

@Suite("scripts/check-glibc.sh, the gate on the bootstrap's glibc")
struct CheckGlibcScriptTests {
    let script = repositoryRoot.appendingPathComponent("scripts/check-glibc.sh").path

    /// A bootstrap that needs `too_new@GLIBC_2.35` and `old_enough@GLIBC_2.4` from a library
    /// shipped beside it in lib/, as the Lambda package ships libsqlite3: the versions a glibc
    /// newer than Amazon Linux 2023's would give it, on any build machine.
    func fixture(in folder: URL) throws -> URL {
        let lib = folder.appendingPathComponent("lib")
        try FileManager.default.createDirectory(at: lib, withIntermediateDirectories: true)
        try "int too_new(void) { return 1; }\nint old_enough(void) { return 2; }\n".write(to: folder.appendingPathComponent("fixture.c"), atomically: true, encoding: .utf8)
        try "GLIBC_2.4 { global: old_enough; local: *; };\nGLIBC_2.35 { global: too_new; } GLIBC_2.4;\n"
            .write(to: folder.appendingPathComponent("fixture.map"), atomically: true, encoding: .utf8)
        try "int too_new(void); int old_enough(void);\nint main(void) { return too_new() + old_enough(); }\n"
            .write(to: folder.appendingPathComponent("main.c"), atomically: true, encoding: .utf8)
        let library = try runToEnd([cCompiler, "-shared", "-fPIC", "-Wl,--version-script=fixture.map", "-o", "lib/libfixture.so", "fixture.c"], in: folder)
        try #require(library.status == 0, "cc: \(library.output)")
        let binary = try runToEnd([cCompiler, "-o", "bootstrap", "main.c", "-Llib", "-lfixture"], in: folder)
        try #require(binary.status == 0, "cc: \(binary.output)")
        return folder.appendingPathComponent("bootstrap")
    }

    @Test(
        "a binary needing symbols above the limit fails, naming them (and only them); at a higher limit it passes",
        .enabled(if: Requirements.isCI || canBuildELFFixtures, "needs a C compiler (cc or clang) and objdump (binutils)")
    )
    func fixtureAboveTheLimit() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let bootstrap = try fixture(in: folder)

        let refused = try runToEnd([script, bootstrap.path])
        #expect(refused.status == 1, "\(refused.output)")
        #expect(refused.output.contains("bootstrap: too_new@GLIBC_2.35"))
        // 2.4 is older than 2.34 (versions compare as numbers, not as text).
        #expect(!refused.output.contains("old_enough"))

        let accepted = try runToEnd([script, bootstrap.path, "2.35"])
        #expect(accepted.status == 0, "\(accepted.output)")
        #expect(accepted.output.contains("every file runs on glibc 2.35"))
    }

    @Test(
        "the built bootstrap and its shipped libraries are read, and pass at this machine's own glibc",
        .enabled(if: Requirements.isCI || canBuildELFFixtures, "needs objdump (binutils)")
    )
    func builtBootstrap() throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let lib = folder.appendingPathComponent("lib")
        try FileManager.default.createDirectory(at: lib, withIntermediateDirectories: true)
        let bootstrap = folder.appendingPathComponent("bootstrap")
        try FileManager.default.copyItem(at: URL(fileURLWithPath: try bootstrapBinary()), to: bootstrap)
        let version = try runToEnd(["getconf", "GNU_LIBC_VERSION"]).output.split(separator: " ").last.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        let hostGlibc = try #require(version)
        // A library beside it is read too: one that needs symbols above 1.0, as every glibc user does.
        let sqlite = try runToEnd(["sh", "-c", "ldd '\(bootstrap.path)' | awk '/libsqlite3/ { print $3 }'"]).output.trimmingCharacters(in: .whitespacesAndNewlines)
        try #require(!sqlite.isEmpty, "the bootstrap links libsqlite3")
        try FileManager.default.copyItem(at: URL(fileURLWithPath: sqlite).resolvingSymlinksInPath(), to: lib.appendingPathComponent("libsqlite3.so.0"))

        let onThisMachine = try runToEnd([script, bootstrap.path, hostGlibc])
        #expect(onThisMachine.status == 0, "\(onThisMachine.output)")
        #expect(onThisMachine.output.contains("\(bootstrap.path): needs glibc"))
        #expect(onThisMachine.output.contains("libsqlite3.so.0: needs glibc"))
        let tooOld = try runToEnd([script, bootstrap.path, "1.0"])
        #expect(tooOld.status == 1)
        #expect(tooOld.output.contains("libsqlite3.so.0: "))
    }
}
