import Foundation
import OnboardTestSupport
import OnboardingCore
import OnboardingEvents
import Testing

/// `onboard events …` and `onboard tenants offboard --purge-events`: the built binary on a real
/// SQLite file, the events made by the CLI's own changes (and a running `serve` for failures).
@Suite("onboard events: the audit trail and failed deliveries from the CLI")
struct EventsCLITests {
    static let secret = "whsec_" + Data((0..<32).map { UInt8(200 - $0) }).base64EncodedString()

    /// `--database <folder>/events.sqlite`.
    static func sqlite(_ folder: URL) -> [String] { ["--database", folder.appendingPathComponent("events.sqlite").path] }

    /// Creates a tenant through the CLI and returns its id.
    static func createTenant(_ store: [String], name: String = "Acme Ltd") async throws -> String {
        let created = try await onboardCLI(["tenants", "create", "--name", name, "--phone", "+447700900123", "--json"] + store)
        try #require(created.status == 0, "\(created)")
        return try #require(try created.object()["tenantId"]?.stringValue)
    }

    @Test("list --tenant after changes made through the CLI: newest first, actor operator, --type, --limit, the table; --pending holds them all")
    func auditTrail() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = Self.sqlite(folder)
        let id = try await Self.createTenant(store)
        for arguments in [
            ["tenants", "update", id, "--name", "Acme Group"], ["tenants", "suspend", id, "--reason", "unpaid invoice"], ["tenants", "reactivate", id],
        ] {
            let result = try await onboardCLI(arguments + store)
            try #require(result.status == 0, "\(result)")
        }
        let key = try await onboardCLI(["keys", "create", id, "--json"] + store)
        let keyId = try #require(try key.object()["keyId"]?.stringValue, "\(key)")
        #expect(try await onboardCLI(["keys", "revoke", id, keyId] + store).status == 0)

        let listed = try await onboardCLI(["events", "list", "--tenant", id, "--json"] + store)
        #expect(listed.status == 0, "\(listed)")
        #expect(listed.stderr.isEmpty, "\(listed)")
        let envelopes = try listed.objects()
        #expect(envelopes.compactMap { $0["type"]?.stringValue } == [
            "apikey.revoked", "apikey.created", "tenant.reactivated", "tenant.suspended", "tenant.updated", "tenant.onboarded",
        ])
        let ids = envelopes.compactMap { $0["id"]?.stringValue }
        #expect(ids.count == 6)
        #expect(ids == ids.sorted(by: >), "newest first: ids descend")
        for envelope in envelopes {
            #expect(envelope["specversion"] == .string("1.0"))
            #expect(envelope["subject"] == .string(id))
            #expect(envelope["actor"] == .string("operator"))
            #expect(envelope["source"]?.stringValue?.hasPrefix("urn:onboard:") == true)
        }
        #expect(envelopes[1]["data"]?.mapValue?["apiKey"]?.mapValue?["keyId"] == .string(keyId))
        // The key's secret is never in an event.
        let secretText = try #require(try key.object()["apiKey"]?.stringValue)
        #expect(!listed.stdout.contains(secretText))

        let suspensions = try await onboardCLI(["events", "list", "--tenant", id, "--type", "tenant.suspended", "--json"] + store)
        let suspension = try suspensions.objects()
        #expect(suspension.count == 1)
        #expect(suspension.first?["data"]?.mapValue?["reason"] == .string("unpaid invoice"))

        let limited = try await onboardCLI(["events", "list", "--tenant", id, "--limit", "2", "--json"] + store)
        #expect(try limited.objects().compactMap { $0["id"]?.stringValue } == Array(ids.prefix(2)))
        #expect(limited.stderr.contains("more events exist"), "\(limited)")

        let table = try await onboardCLI(["events", "list", "--tenant", id] + store)
        #expect(table.status == 0, "\(table)")
        try OperatorCLITests.expectAligned(table.lines, columns: ["EVENT ID", "TIME", "TYPE", "ACTOR", "DETAIL"])
        #expect(table.lines.count == 7)
        let suspendedRow = try #require(table.lines.first { $0.contains("tenant.suspended") })
        #expect(suspendedRow.hasPrefix(ids[3]))
        #expect(suspendedRow.contains("operator"))
        #expect(suspendedRow.contains("reason: unpaid invoice"))
        #expect(suspendedRow.range(of: #"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} UTC"#, options: .regularExpression) != nil, "\(suspendedRow)")

        // No server ran: every event is still in the outbox, oldest first, not tried by any sink.
        let pending = try await onboardCLI(["events", "list", "--pending", "--json"] + store)
        #expect(pending.status == 0, "\(pending)")
        let entries = try pending.objects()
        #expect(entries.compactMap { $0["event"]?.mapValue?["id"]?.stringValue } == ids.reversed())
        #expect(entries.allSatisfy { $0["delivery"] == .map([:]) })
        let failed = try await onboardCLI(["events", "list", "--failed"] + store)
        #expect(failed.status == 0, "\(failed)")
        #expect(failed.lines == ["no failed events"])

        // A tenant that does not exist: exit 1.
        let unknown = try await onboardCLI(["events", "list", "--tenant", "0195f3c4-7a1e-7b2c-9d3e-4f5a6b7c8d9e"] + store)
        #expect(unknown.status == 1, "\(unknown)")
        #expect(unknown.stderr.hasPrefix("onboard: error: "), "\(unknown)")
    }

    @Test("bad arguments exit 64 with a message saying what to give", arguments: [
        (["events", "list"], "give --tenant <tenant-id>, --failed or --pending"),
        (["events", "list", "--failed", "--pending"], "give only one of --tenant, --failed and --pending"),
        (["events", "list", "--tenant", "0195f3c4-7a1e-7b2c-9d3e-4f5a6b7c8d9e", "--failed"], "give only one of --tenant, --failed and --pending"),
        (["events", "list", "--tenant", "not-a-tenant"], "'not-a-tenant' is not a tenant id"),
        (["events", "list", "--failed", "--type", "tenant.updated"], "--type goes with --tenant"),
        (["events", "list", "--tenant", "0195f3c4-7a1e-7b2c-9d3e-4f5a6b7c8d9e", "--type", "tenant.deleted"], "--type must be one of tenant.onboarded,"),
        (["events", "list", "--pending", "--limit", "0"], "--limit must be 1 or more"),
        (["events", "redeliver"], "give an event id or --all-failed"),
        (["events", "redeliver", "01JDQ5ZB0V1NQ3N5QW2C8W1XYZ", "--all-failed"], "give an event id or --all-failed, not both"),
        (["events", "redeliver", "42"], "'42' is not an event id"),
    ])
    func usage(arguments: [String], message: String) async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let result = try await onboardCLI(arguments + Self.sqlite(folder))
        #expect(result.status == 64, "\(result)")
        #expect(result.stdout.isEmpty, "\(result)")
        #expect(result.stderr.contains(message), "\(result)")
    }

    @Test("a store that cannot be reached exits 69; a redelivery of an event that is not failed exits 1")
    func unavailableAndNotFound() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let port = try MotoServer.freePort()
        let down = try await onboardCLI(
            ["events", "list", "--failed", "--store", "dynamodb", "--dynamodb-endpoint", "http://127.0.0.1:\(port)", "--region", "us-east-1"],
            environment: ["AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "HOME": folder.path]
        )
        #expect(down.status == 69, "\(down)")
        #expect(down.stdout.isEmpty)

        let missing = try await onboardCLI(["events", "redeliver", "01JDQ5ZB0V1NQ3N5QW2C8W1XYZ"] + Self.sqlite(folder))
        #expect(missing.status == 1, "\(missing)")
        #expect(missing.stderr == "onboard: error: no failed event has the id 01JDQ5ZB0V1NQ3N5QW2C8W1XYZ\n", "\(missing)")
    }

    /// Polls `onboard events list <selector> --json` until `done` holds of its entries (a running
    /// server works meanwhile); the bound only ends a broken run.
    static func waitForEntries(
        _ selector: String, store: [String], until done: ([[String: AttributeValue]]) -> Bool
    ) async throws -> [[String: AttributeValue]] {
        let deadline = ContinuousClock.now + .seconds(90)
        while true {
            let result = try await onboardCLI(["events", "list", selector, "--json"] + store)
            try #require(result.status == 0, "\(result)")
            let entries = try result.objects()
            if done(entries) || ContinuousClock.now > deadline { return entries }
            try await Task.sleep(for: .milliseconds(200))
        }
    }

    @Test("a webhook that refuses connections: --event-fail-after 0s marks the events failed (list --failed), redeliver queues one again (list --pending), a later serve delivers it")
    func failedAndRedelivered() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = Self.sqlite(folder)
        let first = try await Self.createTenant(store, name: "First Ltd")
        let second = try await Self.createTenant(store, name: "Second Ltd")
        let port = try MotoServer.freePort()
        let url = "http://127.0.0.1:\(port)/hook"
        let serveArguments = ["serve", "--port", "0", "--admin-token", "events-cli-admin-token-0123456789", "--webhook-url", url, "--event-fail-after", "0s"] + store

        // Nobody listens at the port: each first attempt fails, and with 0s that is a give-up.
        let server = try OnboardProcess(serveArguments, environment: ["ONBOARD_WEBHOOK_SECRET": Self.secret])
        _ = try await server.waitUntilListening()
        // The sink's id, never the URL (its path may hold a token).
        let sinkId = WebhookSink.sinkId(url: url)
        #expect(server.stdout.lines.contains { $0.hasPrefix("events: webhook \(sinkId)") }, "\(server.stdout.text)")
        #expect(!server.stdout.text.contains(url) && !server.stderr.text.contains(url))
        let failed = try await Self.waitForEntries("--failed", store: store) { $0.count >= 2 }
        #expect(try await server.terminate() == 0)
        try #require(failed.count == 2, "\(failed)")
        let failedIds = failed.compactMap { $0["event"]?.mapValue?["id"]?.stringValue }
        #expect(failed.compactMap { $0["event"]?.mapValue?["subject"]?.stringValue }.sorted() == [first, second].sorted())
        for entry in failed {
            let state = try #require(entry["delivery"]?.mapValue?[sinkId]?.mapValue, "\(entry)")
            #expect(state["state"] == .string("failed"))
            #expect(state["attempts"] == .int(1))
            #expect(state["lastError"]?.stringValue?.isEmpty == false)
            // Times as the API shows them (RFC 3339).
            #expect(state["firstFailedAt"]?.stringValue?.hasSuffix("Z") == true, "\(state)")
        }
        let table = try await onboardCLI(["events", "list", "--failed"] + store)
        try OperatorCLITests.expectAligned(table.lines, columns: ["EVENT ID", "TENANT ID", "TYPE", "TIME", "DELIVERY"])
        #expect(table.lines.dropFirst().allSatisfy { $0.contains("\(sinkId) failed (1 failed attempt: ") }, "\(table)")
        #expect(try await onboardCLI(["events", "list", "--pending"] + store).lines == ["no pending events"])

        // One queued again: back in the outbox with the failed sink's state cleared.
        let redelivered = try await onboardCLI(["events", "redeliver", failedIds[0], "--json"] + store)
        #expect(redelivered.status == 0, "\(redelivered)")
        #expect(try redelivered.object()["redelivered"] == .bool(true))
        let pending = try await onboardCLI(["events", "list", "--pending", "--json"] + store)
        let pendingEntries = try pending.objects()
        #expect(pendingEntries.compactMap { $0["event"]?.mapValue?["id"]?.stringValue } == [failedIds[0]])
        #expect(pendingEntries.first?["delivery"] == .map([:]))
        let stillFailed = try await onboardCLI(["events", "list", "--failed", "--json"] + store)
        #expect(try stillFailed.objects().compactMap { $0["event"]?.mapValue?["id"]?.stringValue } == [failedIds[1]])
        // Twice: it is no longer failed.
        let again = try await onboardCLI(["events", "redeliver", failedIds[0]] + store)
        #expect(again.status == 1, "\(again)")

        // The endpoint is up now (Python's hmac checks the signature): the next serve delivers it.
        let receiver = try await WebhookReceiver.start(port: port, secret: Self.secret, record: folder.appendingPathComponent("hook.jsonl").path)
        let secondServer = try OnboardProcess(serveArguments, environment: ["ONBOARD_WEBHOOK_SECRET": Self.secret])
        _ = try await secondServer.waitUntilListening()
        let drained = try await Self.waitForEntries("--pending", store: store) { $0.isEmpty }
        #expect(try await secondServer.terminate() == 0)
        #expect(drained.isEmpty, "\(drained)")
        let accepted = receiver.requests().filter { $0.status == 204 }
        #expect(accepted.map(\.eventId) == [failedIds[0]], "\(receiver.requests())")

        // The rest at once; nothing is left failed.
        let all = try await onboardCLI(["events", "redeliver", "--all-failed"] + store)
        #expect(all.status == 0, "\(all)")
        #expect(all.lines == ["queued again: 1 failed event"])
        #expect(try await onboardCLI(["events", "list", "--failed"] + store).lines == ["no failed events"])
    }

    @Test("tenants offboard keeps the tenant's events (its audit record); --purge-events leaves only tenant.offboarded")
    func purgeEvents() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let store = Self.sqlite(folder)
        let kept = try await Self.createTenant(store, name: "Kept Ltd")
        let purged = try await Self.createTenant(store, name: "Purged Ltd")
        for id in [kept, purged] {
            #expect(try await onboardCLI(["tenants", "suspend", id, "--reason", "closing"] + store).status == 0)
        }

        let offboarded = try await onboardCLI(["tenants", "offboard", kept] + store)
        #expect(offboarded.status == 0, "\(offboarded)")
        let keptEvents = try await onboardCLI(["events", "list", "--tenant", kept, "--json"] + store)
        #expect(keptEvents.status == 0, "\(keptEvents)")
        #expect(try keptEvents.objects().compactMap { $0["type"]?.stringValue } == [
            "tenant.offboarded", "tenant.offboarding", "tenant.suspended", "tenant.onboarded",
        ])

        let purging = try await onboardCLI(["tenants", "offboard", purged, "--purge-events", "--json"] + store)
        #expect(purging.status == 0, "\(purging)")
        #expect(try purging.object()["status"] == .string("OFFBOARDED"))
        let purgedEvents = try await onboardCLI(["events", "list", "--tenant", purged, "--json"] + store)
        #expect(purgedEvents.status == 0, "\(purgedEvents)")
        #expect(try purgedEvents.objects().compactMap { $0["type"]?.stringValue } == ["tenant.offboarded"])
        // The other tenant's trail is untouched.
        #expect(try await onboardCLI(["events", "list", "--tenant", kept, "--json"] + store).objects().count == 4)
    }
}
