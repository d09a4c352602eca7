import Foundation
import OnboardTestSupport
import OnboardingCore
import Testing

/// One run of an operator command: how it exited and what it printed.
struct CLIResult: Sendable, CustomStringConvertible {
    let status: Int32
    let stdout: String
    let stderr: String

    var lines: [String] { stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init).filter { !$0.isEmpty } }
    var description: String { "exit \(status)\nstdout:\n\(stdout)\nstderr:\n\(stderr)" }

    /// The JSON object on standard output (one document).
    func object() throws -> [String: AttributeValue] {
        try #require(try JSONCodec.parse(stdout.trimmingCharacters(in: .whitespacesAndNewlines)).mapValue, "not a JSON object: \(self)")
    }

    /// The JSON objects on standard output, one per line (JSON lines).
    func objects() throws -> [[String: AttributeValue]] {
        try lines.map { line in try #require(try JSONCodec.parse(line).mapValue, "not a JSON object: \(line)") }
    }
}

/// Runs `onboard <arguments>` (or `executable`) to its end, standard output and standard error on
/// pipes read to their ends, with only `environment` (and `PATH`, instance metadata off) set.
/// A run that takes longer than `timeout` is killed and fails the test.
func onboardCLI(
    _ arguments: [String], environment: [String: String] = [:], executable: String? = nil, timeout: Duration = .seconds(90)
) async throws -> CLIResult {
    let child = try ChildProcess.start(
        executable: try executable ?? onboardBinary().path, arguments: arguments,
        environment: ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "AWS_EC2_METADATA_DISABLED": "true"]
            .merging(environment) { $1 },
        standardOutput: .pipe, standardError: .pipe
    )
    let watchdog = Task {
        try await Task.sleep(for: timeout)
        child.kill()
    }
    defer { watchdog.cancel() }
    async let output = child.readAllOutput()
    async let error = child.readAllError()
    let (stdout, stderr) = try await (output, error)
    let status = await child.waitUntilExit()
    let result = CLIResult(status: status.exitCode ?? -1, stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self))
    try #require(status.exitCode != nil, "ended by \(status) (killed after \(timeout)?): \(result)")
    return result
}

@Suite("onboard tenants / onboard keys: the operator CLI")
struct OperatorCLITests {
    /// `--database <folder>/cli.sqlite`, in a fresh folder.
    static func sqlite(_ folder: URL) -> [String] { ["--database", folder.appendingPathComponent("cli.sqlite").path] }

    @Test("a tenant's whole life on SQLite: create, list, show, update, suspend, reactivate, offboard; each exit code")
    func lifecycle() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = Self.sqlite(folder)

        let created = try await onboardCLI(["tenants", "create", "--name", "Acme Ltd", "--phone", "+447700900123", "--json"] + store)
        #expect(created.status == 0, "\(created)")
        let document = try created.object()
        let id = try #require(document["tenantId"]?.stringValue)
        let apiKey = try #require(document["apiKey"]?.stringValue)
        #expect(apiKey.hasPrefix("onb_"))
        #expect(document["tenant"]?.mapValue?["status"] == .string("ACTIVE"))
        #expect(document["tenant"]?.mapValue?["clientPhone"] == .string("+447700900123"))

        // Two more, with names of other lengths, so alignment is visible.
        for (name, phone) in [("Zed", "+14155550100"), ("Bartholomew & Sons Trading", "+33123456789")] {
            let other = try await onboardCLI(["tenants", "create", "--name", name, "--phone", phone] + store)
            #expect(other.status == 0, "\(other)")
            // The key is printed once, on standard output, and nowhere else.
            let keyLine = try #require(other.lines.first { $0.hasPrefix("API key: onb_") }, "\(other)")
            let key = String(keyLine.dropFirst("API key: ".count))
            #expect(other.stdout.components(separatedBy: key).count == 2)
            #expect(!other.stderr.contains(key))
        }

        let table = try await onboardCLI(["tenants", "list"] + store)
        #expect(table.status == 0, "\(table)")
        #expect(table.stderr.isEmpty)
        try Self.expectAligned(table.lines, columns: ["TENANT ID", "NAME", "PHONE", "STATUS", "CREATED"])
        #expect(table.lines.count == 4)
        let acmeRow = try #require(table.lines.first { $0.hasPrefix(id) })
        #expect(acmeRow.contains("Acme Ltd"))
        #expect(acmeRow.contains("+447700900123"))
        #expect(acmeRow.contains("ACTIVE"))
        #expect(acmeRow.range(of: #"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC$"#, options: .regularExpression) != nil, "\(acmeRow)")
        // Newest first: Acme was created first.
        #expect(table.lines.last?.hasPrefix(id) == true)

        let lines = try await onboardCLI(["tenants", "list", "--json"] + store)
        #expect(lines.status == 0, "\(lines)")
        let listed = try lines.objects()
        #expect(listed.count == 3)
        let listedIds = listed.compactMap { $0["tenantId"]?.stringValue }
        #expect(listedIds.contains(id))
        #expect(listed.allSatisfy { $0["status"] == .string("ACTIVE") })

        let limited = try await onboardCLI(["tenants", "list", "--limit", "2", "--json"] + store)
        #expect(limited.status == 0)
        #expect(try limited.objects().count == 2)
        #expect(limited.stderr.contains("more tenants exist"))

        let shown = try await onboardCLI(["tenants", "show", id] + store)
        #expect(shown.status == 0, "\(shown)")
        #expect(shown.lines.contains { $0.hasPrefix("status") && $0.hasSuffix("ACTIVE") })
        #expect(shown.lines.contains { $0.hasPrefix("phone") && $0.hasSuffix("+447700900123") })
        let shownJSON = try await onboardCLI(["tenants", "show", id, "--json"] + store)
        #expect(try shownJSON.object()["clientName"] == .string("Acme Ltd"))
        #expect(try shownJSON.object()["version"] == .int(1))

        let updated = try await onboardCLI(["tenants", "update", id, "--name", "Acme Group", "--json"] + store)
        #expect(updated.status == 0, "\(updated)")
        #expect(try updated.object()["clientName"] == .string("Acme Group"))
        #expect(try updated.object()["clientPhone"] == .string("+447700900123"))
        #expect(try updated.object()["version"] == .int(2))
        let badPhone = try await onboardCLI(["tenants", "update", id, "--phone", "call me"] + store)
        #expect(badPhone.status == 64, "\(badPhone)")
        #expect(badPhone.stderr.hasPrefix("onboard: error: --phone: "), "\(badPhone)")

        let noReason = try await onboardCLI(["tenants", "suspend", id, "--reason", "  "] + store)
        #expect(noReason.status == 64, "\(noReason)")
        #expect(noReason.stderr.hasPrefix("onboard: error: --reason: "), "\(noReason)")
        let suspended = try await onboardCLI(["tenants", "suspend", id, "--reason", "unpaid invoice"] + store)
        #expect(suspended.status == 0, "\(suspended)")
        #expect(suspended.lines.contains { $0.hasPrefix("status") && $0.hasSuffix("SUSPENDED") })
        #expect(suspended.lines.contains { $0.hasPrefix("suspension reason") && $0.hasSuffix("unpaid invoice") })
        let onlySuspended = try await onboardCLI(["tenants", "list", "--status", "suspended", "--json"] + store)
        #expect(try onlySuspended.objects().compactMap { $0["tenantId"]?.stringValue } == [id])
        let twice = try await onboardCLI(["tenants", "suspend", id, "--reason", "again"] + store)
        #expect(twice.status == 1, "\(twice)")
        #expect(twice.stderr.contains("SUSPENDED"), "\(twice)")

        let reactivated = try await onboardCLI(["tenants", "reactivate", id, "--json"] + store)
        #expect(reactivated.status == 0, "\(reactivated)")
        #expect(try reactivated.object()["status"] == .string("ACTIVE"))
        #expect(try reactivated.object()["suspensionReason"] == nil)
        let notSuspended = try await onboardCLI(["tenants", "reactivate", id] + store)
        #expect(notSuspended.status == 1, "\(notSuspended)")

        let extraKey = try await onboardCLI(["keys", "create", id] + store)
        #expect(extraKey.status == 0, "\(extraKey)")
        let offboarded = try await onboardCLI(["tenants", "offboard", id] + store)
        #expect(offboarded.status == 0, "\(offboarded)")
        #expect(offboarded.stderr.isEmpty, "\(offboarded)")  // no progress bar on a pipe
        #expect(offboarded.lines.first == "offboarded: 2 items deleted", "\(offboarded)")  // both API keys
        let tombstone = try await onboardCLI(["tenants", "show", id] + store)
        #expect(tombstone.status == 0, "\(tombstone)")
        #expect(tombstone.lines.contains { $0.hasPrefix("status") && $0.hasSuffix("OFFBOARDED") })
        #expect(!tombstone.stdout.contains("Acme"))
        #expect(!tombstone.stdout.contains("+447700900123"))
        let tombstoneJSON = try await onboardCLI(["tenants", "show", id, "--json"] + store)
        let erased = try tombstoneJSON.object()
        #expect(erased["status"] == .string("OFFBOARDED"))
        #expect(erased["clientName"] == nil && erased["clientPhone"] == nil && erased["offboardedAt"] != nil)
        let noKeys = try await onboardCLI(["keys", "list", id, "--json"] + store)
        #expect(noKeys.stdout.isEmpty, "\(noKeys)")

        for arguments in [["tenants", "offboard", id], ["tenants", "suspend", id, "--reason", "late"], ["tenants", "update", id, "--name", "Back"]] {
            let refused = try await onboardCLI(arguments + store)
            #expect(refused.status == 1, "\(arguments): \(refused)")
            #expect(refused.stderr.contains("OFFBOARDED"), "\(arguments): \(refused)")
        }
        // The other tenants are untouched.
        let rest = try await onboardCLI(["tenants", "list", "--status", "ACTIVE", "--json"] + store)
        #expect(try rest.objects().count == 2)
    }

    @Test("offboard on a tenant a crash left OFFBOARDING finishes it, counting the earlier batch's items too")
    func offboardFinishesUnfinished() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = Self.sqlite(folder)
        let database = store[1]
        let (id, firstBatch) = try await unfinishedOffboarding(database: database, resources: 250)
        let shown = try await onboardCLI(["tenants", "show", id, "--json"] + store)
        #expect(try shown.object()["status"] == .string("OFFBOARDING"), "\(shown)")

        let offboarded = try await onboardCLI(["tenants", "offboard", id] + store)
        #expect(offboarded.status == 0, "\(offboarded)")
        // The 250 documents and the API key, the first batch's \(firstBatch) included.
        #expect(offboarded.lines.first == "offboarded: 251 items deleted", "first batch \(firstBatch): \(offboarded)")
        let tombstone = try await onboardCLI(["tenants", "show", id, "--json"] + store)
        #expect(try tombstone.object()["status"] == .string("OFFBOARDED"), "\(tombstone)")
        let left = try await partitionLeft(database: database, id: id)
        #expect(left.resourceKeys == ["TENANT#\(id)"])
        #expect(left.marked == false)
    }

    @Test("a tenant that does not exist: exit 1 with one line on standard error")
    func notFound() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let missing = "0195f3c4-7a1e-7b2c-9d3e-4f5a6b7c8d9e"
        for arguments in [["tenants", "show", missing], ["keys", "list", missing], ["keys", "create", missing]] {
            let result = try await onboardCLI(arguments + Self.sqlite(folder))
            #expect(result.status == 1, "\(arguments): \(result)")
            #expect(result.stdout.isEmpty)
            #expect(result.stderr.hasPrefix("onboard: error: "), "\(result)")
            #expect(result.stderr.contains(missing))
        }
    }

    @Test("usage errors exit 64: bad name and phone (every field named), a text that is no id, an unknown status, a missing option")
    func usageErrors() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = Self.sqlite(folder)

        let invalid = try await onboardCLI(["tenants", "create", "--name", "   ", "--phone", "12"] + store)
        #expect(invalid.status == 64, "\(invalid)")
        let errors = invalid.stderr.split(separator: "\n")
        #expect(errors.count == 2, "\(invalid)")
        #expect(errors.contains { $0.hasPrefix("onboard: error: --name: ") })
        #expect(errors.contains { $0.hasPrefix("onboard: error: --phone: ") })
        // Nothing was created (the store was not even opened).
        let empty = try await onboardCLI(["tenants", "list", "--json"] + store)
        #expect(empty.status == 0)
        #expect(empty.stdout.isEmpty)

        for arguments in [
            ["tenants", "show", "not-a-tenant"], ["tenants", "list", "--status", "SLEEPING"], ["tenants", "list", "--limit", "0"],
            ["tenants", "create", "--name", "No Phone"], ["keys", "revoke", "0195f3c4-7a1e-7b2c-9d3e-4f5a6b7c8d9e", "XYZ"],
            ["tenants", "list", "--store", "cassandra"],
        ] {
            let result = try await onboardCLI(arguments + store)
            #expect(result.status == 64, "\(arguments): \(result)")
            #expect(result.stdout.isEmpty)
            #expect(result.stderr.contains("Error") || result.stderr.contains("error"), "\(result)")
        }
    }

    @Test("a store that cannot be reached exits 69: DynamoDB at a closed loopback port")
    func storeUnavailable() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let port = try MotoServer.freePort()
        let result = try await onboardCLI(
            ["tenants", "list", "--store", "dynamodb", "--dynamodb-endpoint", "http://127.0.0.1:\(port)", "--region", "us-east-1"],
            environment: ["AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "HOME": folder.path]
        )
        #expect(result.status == 69, "\(result)")
        #expect(result.stdout.isEmpty)
        // (The AWS client's warning about its spent retries may come first.)
        #expect(result.stderr.split(separator: "\n").last?.hasPrefix("onboard: error: cannot open the store: cannot reach DynamoDB at http://127.0.0.1:\(port)") == true, "\(result)")
    }

    @Test("keys: create prints the key once, list shows prefixes only, revoke removes it (twice: exit 1)")
    func keys() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = Self.sqlite(folder)
        let created = try await onboardCLI(["tenants", "create", "--name", "Key Holder", "--phone", "+447700900124", "--json"] + store)
        let id = try #require(try created.object()["tenantId"]?.stringValue)

        let issued = try await onboardCLI(["keys", "create", id, "--json"] + store)
        #expect(issued.status == 0, "\(issued)")
        let key = try issued.object()
        let keyId = try #require(key["keyId"]?.stringValue)
        let text = try #require(key["apiKey"]?.stringValue)
        #expect(text.hasPrefix("onb_\(keyId)_"))

        let table = try await onboardCLI(["keys", "list", id] + store)
        #expect(table.status == 0, "\(table)")
        try Self.expectAligned(table.lines, columns: ["KEY ID", "PREFIX", "CREATED", "LAST USED"])
        #expect(table.lines.count == 3)  // the first key from onboarding, and this one
        #expect(table.lines.contains { $0.hasPrefix(keyId) && $0.hasSuffix("never") })
        #expect(!table.stdout.contains(text))

        let revoked = try await onboardCLI(["keys", "revoke", id, keyId] + store)
        #expect(revoked.status == 0, "\(revoked)")
        let after = try await onboardCLI(["keys", "list", id, "--json"] + store)
        let remaining = try after.objects()
        #expect(remaining.count == 1)
        #expect(remaining.allSatisfy { $0["keyId"]?.stringValue != keyId && $0["apiKey"] == nil })

        let again = try await onboardCLI(["keys", "revoke", id, keyId] + store)
        #expect(again.status == 1, "\(again)")
        #expect(again.stderr.contains(keyId))
    }

    @Test("--json shows tenants and keys exactly as the API does (the same store read by serve)")
    func jsonIsTheAPIs() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = Self.sqlite(folder)
        let created = try await onboardCLI(["tenants", "create", "--name", "Same View", "--phone", "+447700900125", "--json"] + store)
        let id = try #require(try created.object()["tenantId"]?.stringValue)
        #expect(try await onboardCLI(["tenants", "suspend", id, "--reason", "compare"] + store).status == 0)
        let cliTenant = try await onboardCLI(["tenants", "show", id, "--json"] + store).object()
        let cliListing = try await onboardCLI(["tenants", "list", "--json"] + store).objects()
        let cliKeys = try await onboardCLI(["keys", "list", id, "--json"] + store).objects()

        let token = "cli-compare-admin-token-abcdefgh"
        let server = try OnboardProcess(["serve", "--port", "0"] + store, environment: ["ONBOARD_ADMIN_TOKEN": token])
        let base = try await server.waitUntilListening()
        let admin = [("Authorization", "Bearer \(token)")]
        let (apiTenant, apiListing, apiKeys) = try await HTTP.with(base) { http in
            let tenant = try await http.send(.GET, "/tenants/\(id)", headers: admin)
            let listing = try await http.send(.GET, "/tenants", headers: admin)
            let keys = try await http.send(.GET, "/tenants/\(id)/api-keys", headers: admin)
            return (tenant.body, listing.body, keys.body)
        }
        _ = try await server.terminate()
        #expect(try JSONCodec.parse(apiTenant) == .map(cliTenant))
        #expect(try JSONCodec.parse(apiListing).mapValue?["tenants"] == .list(cliListing.map { .map($0) }))
        #expect(try JSONCodec.parse(apiKeys).mapValue?["apiKeys"] == .list(cliKeys.map { .map($0) }))
        #expect(cliTenant["suspensionReason"] == .string("compare"))
    }

    /// Three tenants in a fresh SQLite file; returns the store options.
    static func threeTenants(_ folder: URL) async throws -> [String] {
        let store = sqlite(folder)
        for index in 0..<3 {
            let created = try await onboardCLI(["tenants", "create", "--name", "Progress \(index)", "--phone", "+4477009001\(10 + index)"] + store)
            #expect(created.status == 0, "\(created)")
        }
        return store
    }

    @Test("list --all with standard error on a pipe: no progress bar, no carriage return")
    func noProgressOnPipes() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try await Self.threeTenants(folder)
        let piped = try await onboardCLI(["tenants", "list", "--all"] + store)
        #expect(piped.status == 0, "\(piped)")
        #expect(piped.stderr.isEmpty, "\(piped)")
        #expect(!piped.stdout.contains("\r"))
        #expect(piped.lines.count == 4)
        try Self.expectAligned(piped.lines, columns: ["TENANT ID", "NAME", "PHONE", "STATUS", "CREATED"])
    }

    @Test(
        "list --all and offboard with standard error on a terminal: the progress is drawn, then erased before the result",
        .enabled(if: Requirements.isCI || FileManager.default.isExecutableFile(atPath: "/usr/bin/script"), "util-linux `script` is not installed")
    )
    func progressOnTerminals() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = try await Self.threeTenants(folder)
        // `script` runs the command on a pseudo-terminal and copies what it writes to its own output.
        let command = ([try onboardBinary().path, "tenants", "list", "--all"] + store).map { "'\($0)'" }.joined(separator: " ")
        let scripted = try await onboardCLI(["-qec", command, "/dev/null"], executable: "/usr/bin/script")
        #expect(scripted.status == 0, "\(scripted)")
        let terminal = scripted.stdout
        #expect(terminal.contains("\r\u{1B}[2Klisting tenants: 3 tenants\r\u{1B}[2K"), "\(terminal.debugDescription)")
        #expect(terminal.contains("Progress 2"))

        // Offboarding: a bar with the total (the tenant's 3 API keys), ending at 100%.
        let listed = try await onboardCLI(["tenants", "list", "--json"] + store)
        let id = try #require(try listed.objects().first?["tenantId"]?.stringValue)
        for _ in 0..<2 { #expect(try await onboardCLI(["keys", "create", id] + store).status == 0) }
        let offboard = ([try onboardBinary().path, "tenants", "offboard", id] + store).map { "'\($0)'" }.joined(separator: " ")
        let offboarded = try await onboardCLI(["-qec", offboard, "/dev/null"], executable: "/usr/bin/script")
        #expect(offboarded.status == 0, "\(offboarded)")
        #expect(offboarded.stdout.contains("offboarding \(id) [##############################] 100%  3/3 items deleted"), "\(offboarded.stdout.debugDescription)")
        #expect(offboarded.stdout.contains("\r\u{1B}[2Koffboarded: 3 items deleted"), "\(offboarded.stdout.debugDescription)")
    }

    /// Every row's cells start where the header's column names start.
    static func expectAligned(_ lines: [String], columns: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let header = try #require(lines.first, sourceLocation: sourceLocation)
        let starts = try columns.map { column in
            try #require(header.range(of: column), "no column \(column) in \(header)", sourceLocation: sourceLocation).lowerBound.utf16Offset(in: header)
        }
        #expect(starts == starts.sorted(), sourceLocation: sourceLocation)
        for row in lines.dropFirst() {
            let characters = Array(row)
            for start in starts.dropFirst() {
                // A column starts after two blanks, with a non-blank at its first position.
                #expect(start < characters.count && characters[start] != " " && characters[start - 1] == " " && characters[start - 2] == " ",
                        "row not aligned at column \(start): \(row)", sourceLocation: sourceLocation)
            }
        }
    }
}

@Suite("onboard tenants / onboard keys on DynamoDB (moto)", .serialized, .requires(.moto))
struct OperatorCLIDynamoDBTests {
    @Test("create, list, suspend, list --status, reactivate, keys, offboard, show: the same commands on a DynamoDB table")
    func lifecycleOnDynamoDB() async throws {
        let moto = try await MotoServer.shared()
        let home = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: home) }
        let table = "cli-\(UUID().uuidString.prefix(8).lowercased())"
        let environment = [
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1", "HOME": home.path,
        ]
        let store = ["--store", "dynamodb", "--table", table, "--dynamodb-endpoint", moto.endpoint]
        func run(_ arguments: [String]) async throws -> CLIResult { try await onboardCLI(arguments + store, environment: environment) }

        // No table yet: the store cannot be opened.
        let missing = try await run(["tenants", "list"])
        #expect(missing.status == 69, "\(missing)")
        #expect(missing.stderr.contains("onboard table create"), "\(missing)")
        let created = try await onboardCLI(["table", "create"] + store, environment: environment)
        #expect(created.status == 0, "\(created)")

        let onboarded = try await run(["tenants", "create", "--name", "Dynamo Ltd", "--phone", "+447700900321", "--json"])
        #expect(onboarded.status == 0, "\(onboarded)")
        let id = try #require(try onboarded.object()["tenantId"]?.stringValue)
        let other = try await run(["tenants", "create", "--name", "Other Ltd", "--phone", "+447700900322"])
        #expect(other.status == 0, "\(other)")

        let listed = try await run(["tenants", "list"])
        #expect(listed.status == 0, "\(listed)")
        #expect(listed.lines.count == 3)
        try OperatorCLITests.expectAligned(listed.lines, columns: ["TENANT ID", "NAME", "PHONE", "STATUS", "CREATED"])

        #expect(try await run(["tenants", "suspend", id, "--reason", "audit"]).status == 0)
        // The listing index is eventually consistent on DynamoDB (moto: at once).
        let suspended = try await run(["tenants", "list", "--status", "SUSPENDED", "--json"])
        #expect(try suspended.objects().compactMap { $0["tenantId"]?.stringValue } == [id])
        #expect(try await run(["tenants", "suspend", id, "--reason", "again"]).status == 1)
        #expect(try await run(["tenants", "reactivate", id]).status == 0)
        #expect(try await run(["tenants", "update", id, "--phone", "+447700900323"]).status == 0)

        let key = try await run(["keys", "create", id, "--json"])
        #expect(key.status == 0, "\(key)")
        let keyId = try #require(try key.object()["keyId"]?.stringValue)
        let keys = try await run(["keys", "list", id, "--json"])
        #expect(try keys.objects().count == 2)
        #expect(try await run(["keys", "revoke", id, keyId]).status == 0)
        #expect(try await run(["keys", "revoke", id, keyId]).status == 1)

        let offboarded = try await run(["tenants", "offboard", id, "--json"])
        #expect(offboarded.status == 0, "\(offboarded)")
        #expect(try offboarded.object()["status"] == .string("OFFBOARDED"))
        let shown = try await run(["tenants", "show", id, "--json"])
        let tombstone = try shown.object()
        #expect(tombstone["status"] == .string("OFFBOARDED") && tombstone["clientName"] == nil && tombstone["clientPhone"] == nil)
        #expect(try await run(["tenants", "show", "0195f3c4-7a1e-7b2c-9d3e-4f5a6b7c8d9e"]).status == 1)
    }
}
