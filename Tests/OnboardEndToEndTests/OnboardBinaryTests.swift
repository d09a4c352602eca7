import Foundation
import NIOHTTP1
import Testing

/// A folder under the system's temporary directory for one test.
func temporaryFolder() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("onboard-e2e-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Suite("The onboard binary", .serialized)
struct OnboardBinaryTests {
    @Test("first start prints where it listens, the database and a one-time admin token; a crashed server restarts with every acknowledged tenant")
    func crashAndRestart() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let database = folder.appendingPathComponent("tenants.sqlite").path

        let first = try OnboardProcess(["serve", "--port", "0", "--database", database, "--rate-limits", "off"])
        let base = try await first.waitUntilListening()
        #expect(base.hasPrefix("http://127.0.0.1:"))
        #expect(first.stdout.lines.contains("database: \(database)"))
        let token = try await first.generatedAdminToken()
        #expect(!first.stdout.text.contains(token), "the token never goes to standard output, the log stream")
        #expect(first.stdout.lines.contains { $0.hasPrefix("admin token: generated on this first start") })
        #expect(first.stderr.text.components(separatedBy: token).count == 2, "the token is on standard error once")
        #expect(token.count >= 40)

        let acknowledged: [(id: String, name: String)] = try await HTTP.with(base) { http in
            try await withThrowingTaskGroup(of: (String, String).self) { group in
                for index in 0..<60 {
                    group.addTask {
                        let name = "Crash Test \(index)"
                        let reply = try await http.onboard(name: name, phone: "+4420794\(String(10_000 + index))")
                        #expect(reply.status == 201)
                        return (try #require(jsonField("tenantId", in: reply.body)), name)
                    }
                }
                var all: [(String, String)] = []
                for try await pair in group { all.append(pair) }
                return all
            }
        }
        #expect(acknowledged.count == 60)
        // SIGKILL straight after the last 201: no graceful shutdown, no checkpoint.
        try await first.kill()

        let second = try OnboardProcess(["serve", "--port", "0", "--database", database])
        let secondBase = try await second.waitUntilListening()
        #expect(!second.stdout.text.contains("onb_admin_"), "the token is shown only on the very first start")
        #expect(!second.stderr.text.contains("onb_admin_"), "the token is shown only on the very first start")
        #expect(second.stdout.lines.contains { $0.hasPrefix("admin token: stored hashed") })
        try await HTTP.with(secondBase) { http in
            for (id, name) in acknowledged {
                let reply = try await http.tenant(id, token: token)
                #expect(reply.status == 200, "tenant \(id) acknowledged before the crash")
                #expect(jsonField("clientName", in: reply.body) == name)
            }
            #expect(try await http.tenant(acknowledged[0].id, token: token + "x").status == 401)
        }
        #expect(try await second.terminate() == 0, "SIGTERM stops the server cleanly")

        // The file holds the token's hash, never the token.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: database)) + ((try? Data(contentsOf: URL(fileURLWithPath: database + "-wal"))) ?? Data())
        #expect(bytes.range(of: Data(token.utf8)) == nil)
    }

    @Test("the server logs one line per request, with the route, status, duration and request id, and no secrets or phones")
    func logs() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let adminToken = "e2e-admin-token-k3Qz9vLw2Xr8TmN4"
        let server = try OnboardProcess(
            ["serve", "--port", "0", "--log-level", "debug"],
            environment: ["ONBOARD_DATABASE": folder.appendingPathComponent("db.sqlite").path, "ONBOARD_ADMIN_TOKEN": adminToken]
        )
        let base = try await server.waitUntilListening()
        #expect(server.stdout.lines.contains("admin token: as configured (--admin-token / ONBOARD_ADMIN_TOKEN)"))
        try await HTTP.with(base) { http in
            let created = try await http.send(
                .POST, "/onboard", headers: [("Content-Type", "application/json"), ("X-Request-Id", "e2e-req-1")],
                body: #"{"clientName": "Logged Ltd", "clientPhone": "+1 415 555 0199"}"#
            )
            #expect(created.status == 201)
            #expect(created.headers.first(name: "X-Request-Id") == "e2e-req-1")
            let id = try #require(jsonField("tenantId", in: created.body))
            #expect(try await http.tenant(id, token: adminToken).status == 200)
        }
        _ = try await server.terminate()
        let lines = server.stdout.lines
        let requestLine = try #require(lines.first { $0.contains(" info onboard: request ") && $0.contains("hb.request.id=e2e-req-1") })
        for part in ["method=POST", "route=/onboard", "status=201", "duration_ms="] {
            #expect(requestLine.contains(part), "\(part) in \(requestLine)")
        }
        #expect(lines.contains { $0.contains("route=/tenants/{tenantId}") && $0.contains("status=200") })
        #expect(lines.contains { $0.contains("tenant onboarded") && $0.contains("clientPhone=+14*******99") })
        let output = server.stdout.text + server.stderr.text
        #expect(!output.contains("+14155550199") && !output.contains("415 555 0199"))
        #expect(!output.contains(adminToken))
    }

    @Test("invalid settings exit with code 64 and one line naming the setting", arguments: [
        (["--port", "70000"], [String: String](), "--port"),
        (["--port", "http"], [:], "--port"),
        ([], ["ONBOARD_PORT": "abc"], "ONBOARD_PORT"),
        (["--log-level", "loud"], [:], "--log-level"),
        ([], ["ONBOARD_LOG_LEVEL": "verbose"], "ONBOARD_LOG_LEVEL"),
        (["--admin-token", "short"], [:], "--admin-token"),
        ([], ["ONBOARD_ADMIN_TOKEN": "has spaces in it but is long enough"], "ONBOARD_ADMIN_TOKEN"),
        (["--admin-token", String(repeating: "x", count: 40)], [:], "--admin-token"),
        ([], ["ONBOARD_ADMIN_TOKEN": "password-password-password-password"], "ONBOARD_ADMIN_TOKEN"),
        ([], ["ONBOARD_ADMIN_TOKEN": "e2e-admin-token-abcdefghijklmnop"], "ONBOARD_ADMIN_TOKEN"),
        (["--dynamodb-endpoint", "http://dynamodb.example.com:8000"], [:], "--dynamodb-endpoint"),
        (["--database", "/nonexistent-dir/x/onboarding.sqlite"], [:], "database"),
        (["--host", ""], [:], "--host"),
    ])
    func invalidSettings(arguments: [String], environment: [String: String], named: String) async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        var environment = environment
        if environment["ONBOARD_DATABASE"] == nil && !arguments.contains("--database") {
            environment["ONBOARD_DATABASE"] = folder.appendingPathComponent("db.sqlite").path
        }
        // A free port unless the case is about the port.
        let port = arguments.contains("--port") || environment["ONBOARD_PORT"] != nil ? [] : ["--port", "0"]
        let process = try OnboardProcess(["serve"] + port + arguments, environment: environment)
        #expect(try await process.waitForExit() == 64)
        let errorLines = process.stderr.lines
        #expect(errorLines.count == 1, "one line: \(errorLines)")
        #expect(errorLines.first?.hasPrefix("onboard: error: invalid") == true)
        #expect(errorLines.first?.contains(named) == true)
        #expect(!process.stdout.text.contains("listening"))
        if let token = environment["ONBOARD_ADMIN_TOKEN"] {
            #expect(!process.stderr.text.contains(token), "a bad token is not echoed")
        }
    }

    @Test("a flag wins over its environment variable; variables alone are used")
    func precedence() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let database = folder.appendingPathComponent("from-env.sqlite").path
        let server = try OnboardProcess(["serve", "--port", "0"], environment: ["ONBOARD_PORT": "not-a-port", "ONBOARD_DATABASE": database])
        _ = try await server.waitUntilListening()
        #expect(server.stdout.lines.contains("database: \(database)"))
        _ = try await server.terminate()
    }

    @Test("a port already in use is a one-line error and exit code 1")
    func portInUse() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let first = try OnboardProcess(["serve", "--port", "0", "--database", folder.appendingPathComponent("a.sqlite").path])
        let base = try await first.waitUntilListening()
        let port = try #require(base.split(separator: ":").last.map(String.init))
        // A configured token: a generated one would be on standard error too (it is stored before the bind fails).
        let second = try OnboardProcess(
            ["serve", "--port", port, "--database", folder.appendingPathComponent("b.sqlite").path],
            environment: ["ONBOARD_ADMIN_TOKEN": "port-in-use-admin-token-Zq8Lw3Rk7Pv2Xn5T"]
        )
        #expect(try await second.waitForExit() == 1)
        #expect(second.stderr.lines.count == 1)
        #expect(second.stderr.text.hasPrefix("onboard: error:"))
        _ = try await first.terminate()
    }

    @Test("admin-token rotate issues a new token that a running server accepts, and the old one stops working")
    func rotateAdminToken() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let database = folder.appendingPathComponent("db.sqlite").path
        let server = try OnboardProcess(["serve", "--port", "0", "--database", database])
        let base = try await server.waitUntilListening()
        let oldToken = try await server.generatedAdminToken()

        let rotate = try OnboardProcess(["admin-token", "rotate", "--database", database])
        #expect(try await rotate.waitForExit() == 0)
        let newToken = try #require(rotate.stdout.lines.first)
        #expect(newToken.hasPrefix("onb_admin_") && newToken != String(oldToken))

        try await HTTP.with(base) { http in
            let created = try await http.onboard(name: "Rotated", phone: "+3312345678")
            let id = try #require(jsonField("tenantId", in: created.body))
            // Running servers re-read the stored hash at most every 5 seconds. Asked once a
            // second: each refusal counts against the refused-credential limit of this address
            // and claimed credential (burst 20), which the old token's 401 below must not meet.
            var accepted = false
            for _ in 0..<30 where !accepted {
                accepted = try await http.tenant(id, token: newToken).status == 200
                if !accepted { try await Task.sleep(for: .seconds(1)) }
            }
            #expect(accepted)
            #expect(try await http.tenant(id, token: String(oldToken)).status == 401)
        }
        _ = try await server.terminate()
    }

    @Test("--onboarding admin closes sign-up to anonymous callers; --onboard-rate-limit answers 429 with Retry-After")
    func accessModeAndRateLimits() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let closed = try OnboardProcess(
            ["serve", "--port", "0", "--database", folder.appendingPathComponent("closed.sqlite").path, "--onboarding", "admin"]
        )
        let closedBase = try await closed.waitUntilListening()
        #expect(closed.stdout.lines.contains("onboarding: admin only"))
        let token = try await closed.generatedAdminToken()
        try await HTTP.with(closedBase) { http in
            #expect(try await http.onboard(name: "Anonymous", phone: "+3312345678").status == 401)
            let byAdmin = try await http.send(
                .POST, "/onboard", headers: [("Content-Type", "application/json"), ("Authorization", "Bearer \(token)")],
                body: #"{"clientName": "By admin", "clientPhone": "+3312345678"}"#
            )
            #expect(byAdmin.status == 201)
        }
        _ = try await closed.terminate()

        let limited = try OnboardProcess(
            ["serve", "--port", "0", "--database", folder.appendingPathComponent("limited.sqlite").path],
            environment: ["ONBOARD_ONBOARD_RATE_LIMIT": "2/h:2"]
        )
        let limitedBase = try await limited.waitUntilListening()
        #expect(limited.stdout.lines.contains { $0.hasPrefix("rate limits: ") && $0.contains("sign-ups per address") })
        try await HTTP.with(limitedBase) { http in
            #expect(try await http.onboard(name: "One", phone: "+3312345678").status == 201)
            #expect(try await http.onboard(name: "Two", phone: "+3312345678").status == 201)
            let third = try await http.onboard(name: "Three", phone: "+3312345678")
            #expect(third.status == 429)
            #expect(jsonField("code", in: third.body) == "rate-limited")
            // 1 token per 1,800 s: the next one is about half an hour away.
            let retryAfter = try #require(third.headers.first(name: "Retry-After").flatMap(Int.init))
            #expect((1700...1800).contains(retryAfter))
            #expect(third.headers.first(name: "RateLimit-Remaining") == "0")
            #expect(third.headers.first(name: "RateLimit-Limit") == "2")
        }
        _ = try await limited.terminate()

        let unlimited = try OnboardProcess(
            ["serve", "--port", "0", "--database", folder.appendingPathComponent("unlimited.sqlite").path],
            environment: ["ONBOARD_ONBOARD_RATE_LIMIT": "2/h:2", "ONBOARD_RATE_LIMITS": "off"]
        )
        let unlimitedBase = try await unlimited.waitUntilListening()
        #expect(unlimited.stdout.lines.contains("rate limits: off"))
        try await HTTP.with(unlimitedBase) { (http: HTTP) async throws in
            for index in 0..<5 { #expect(try await http.onboard(name: "Client \(index)", phone: "+3312345678").status == 201) }
        }
        _ = try await unlimited.terminate()

        let invalid = try OnboardProcess(["serve", "--port", "0", "--onboard-rate-limit", "lots"])
        #expect(try await invalid.waitForExit() == 64)
        #expect(invalid.stderr.text.contains("invalid --onboard-rate-limit 'lots': expected <count>/<s|m|h>[:<burst>]"))
    }
}
