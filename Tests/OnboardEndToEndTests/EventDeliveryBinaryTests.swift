import AsyncHTTPClient
import Foundation
import NIOHTTP1
import OnboardTestSupport
import OnboardingCore
import Testing

/// `scripts/webhook_receiver.py` on 127.0.0.1 and a chosen port: a Standard Webhooks receiver
/// that verifies every delivery with Python's own `hmac` (not the server's code), answers `401`
/// to a bad signature, `500` to the first `failFirst` verified requests, and appends one JSON line
/// per request to `record` before it answers. Started again on the same port and file after
/// ``kill()``, it continues the file.
final class WebhookReceiver: Sendable {
    let port: Int
    let record: String
    private let process: ChildProcess

    /// Where the server delivers: `http://127.0.0.1:<port>/hook`.
    var url: String { "http://127.0.0.1:\(port)/hook" }

    static func start(port: Int, secret: String, record: String, failFirst: Int = 0) async throws -> WebhookReceiver {
        try Requirements.check(.python3)
        let errors = record + ".stderr"
        let process = try ChildProcess.start(
            executable: "/usr/bin/env",
            arguments: [
                "python3", ScriptServer.scriptPath("webhook_receiver.py"), "--port", String(port), "--secret", secret, "--record", record,
                "--fail-first", String(failFirst),
            ],
            standardOutput: .null, standardError: .file(errors)
        )
        let receiver = WebhookReceiver(port: port, record: record, process: process)
        for _ in 0..<1000 {
            if MotoServer.canConnect(port: port) { return receiver }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(30))
        }
        process.kill()
        let stderr = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
        throw ProcessError(description: "webhook_receiver.py did not start on 127.0.0.1:\(port): \(stderr)")
    }

    private init(port: Int, record: String, process: ChildProcess) {
        self.port = port
        self.record = record
        self.process = process
    }

    deinit { process.kill() }

    /// Down at once (SIGKILL): connections refused until it is started again.
    func kill() async {
        process.kill()
        _ = await process.waitUntilExit()
    }

    /// Every request the receiver answered so far (across its restarts), in order of arrival.
    func requests() -> [ReceivedRequest] { Self.requests(in: record) }

    /// Every request recorded in the receiver's file at `record`, in order of arrival.
    static func requests(in record: String) -> [ReceivedRequest] {
        guard let text = try? String(contentsOfFile: record, encoding: .utf8) else { return [] }
        // A line is complete once its newline is there (the receiver writes each in one go).
        return text.split(separator: "\n", omittingEmptySubsequences: true).compactMap { line in
            guard let fields = (try? JSONCodec.parse(String(line)))?.mapValue else { return nil }
            return ReceivedRequest(fields)
        }
    }
}

/// One line of the receiver's record.
struct ReceivedRequest: Sendable, CustomStringConvertible {
    /// 204 accepted (the signature verified), 401 refused (it did not), 500 an injected failure.
    let status: Int
    /// `webhook-id`.
    let id: String
    /// The envelope's `id`, `type` and `subject` (absent on a 401).
    let eventId: String?
    let type: String?
    let subject: String?
    let reason: String?

    init(_ fields: [String: AttributeValue]) {
        status = fields["status"]?.intValue ?? -1
        id = fields["id"]?.stringValue ?? ""
        eventId = fields["eventId"]?.stringValue
        type = fields["type"]?.stringValue
        subject = fields["subject"]?.stringValue
        reason = fields["reason"]?.stringValue
    }

    var accepted: Bool { status == 204 }
    var description: String { "\(status) \(id) \(type ?? "-") \(subject ?? "-")\(reason.map { " (\($0))" } ?? "")" }
}

/// One event of a tenant's audit trail, as `GET /tenants/{id}/events` shows it.
struct RecordedEvent: Sendable, Hashable {
    let id: String
    let type: String
    let subject: String
}

/// A new Standard Webhooks secret: `whsec_` and the base64 of 24 random bytes.
func newWebhookSecret() -> String {
    var generator = SystemRandomNumberGenerator()
    return "whsec_" + Data((0..<24).map { _ in UInt8.random(in: 0...255, using: &generator) }).base64EncodedString()
}

extension HTTP {
    /// The tenant's whole audit trail read as the admin, every page (newest first).
    func events(of tenantId: String, token: String) async throws -> [RecordedEvent] {
        var events: [RecordedEvent] = []
        var cursor: String?
        repeat {
            var path = "/tenants/\(tenantId)/events?limit=100"
            if let cursor { path += "&cursor=" + (cursor.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? cursor) }
            let reply = try await send(.GET, path, headers: [("Authorization", "Bearer \(token)")])
            try #require(reply.status == 200, "GET \(path): \(reply.status) \(reply.body)")
            let page = try #require(try JSONCodec.parse(reply.body).mapValue)
            guard case .list(let items)? = page["events"] else { throw ProcessError(description: "no events list: \(reply.body)") }
            for item in items {
                let envelope = try #require(item.mapValue, "\(item)")
                events.append(
                    RecordedEvent(
                        id: try #require(envelope["id"]?.stringValue), type: try #require(envelope["type"]?.stringValue),
                        subject: try #require(envelope["subject"]?.stringValue)))
            }
            cursor = page["nextCursor"]?.stringValue
        } while cursor != nil
        return events
    }

    /// A change made as the admin; expects `expected`.
    @discardableResult
    func change(_ method: HTTPMethod, _ path: String, token: String, contentType: String = "application/json", body: String? = nil, expected: Int = 200)
        async throws -> Reply
    {
        var headers = [("Authorization", "Bearer \(token)")]
        if body != nil { headers.append(("Content-Type", contentType)) }
        let reply = try await send(method, path, headers: headers, body: body)
        #expect(reply.status == expected, "\(method) \(path): \(reply.status) \(reply.body)")
        return reply
    }

    func onboarded(_ name: String, phone: String) async throws -> String {
        let reply = try await onboard(name: name, phone: phone)
        try #require(reply.status == 201, "\(reply.body)")
        return try #require(jsonField("tenantId", in: reply.body))
    }

    func rename(_ id: String, _ name: String, token: String) async throws {
        try await change(.PATCH, "/tenants/\(id)", token: token, contentType: "application/merge-patch+json", body: #"{"clientName": "\#(name)"}"#)
    }

    func suspend(_ id: String, token: String) async throws {
        try await change(.POST, "/tenants/\(id)/suspend", token: token, body: #"{"reason": "Invoice 2026-11 unpaid"}"#)
    }
}

/// Waits, polling, until `done` says so or about `limit` has passed (not an assertion on time:
/// the caller checks what it waited for and fails with what is missing).
func waitUntil(limit: Duration, _ done: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + limit
    while ContinuousClock.now < deadline {
        if try await done() { return }
        try await Task.sleep(for: .milliseconds(250))
    }
}

@Suite("Events delivered to a signed webhook by the onboard binary", .requires(.python3), .serialized)
struct EventDeliveryBinaryTests {
    let adminToken = "events-e2e-admin-token-0123456789abcdef"

    /// The issue's "done when": `serve --webhook-url … --webhook-secret whsec_…`, one tenant
    /// onboarded and suspended, two signed deliveries that an independent implementation verifies.
    @Test("serve --webhook-url/--webhook-secret: onboarding and suspending a tenant delivers two signed, verifiable events, in order")
    func onboardAndSuspend() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let secret = newWebhookSecret()
        let receiver = try await WebhookReceiver.start(
            port: try MotoServer.freePort(), secret: secret, record: folder.appendingPathComponent("received.jsonl").path)
        let server = try OnboardProcess(
            ["serve", "--port", "0", "--database", folder.appendingPathComponent("tenants.sqlite").path, "--webhook-url", receiver.url, "--webhook-secret", secret],
            environment: ["ONBOARD_ADMIN_TOKEN": adminToken])
        let base = try await server.waitUntilListening()

        let id = try await HTTP.with(base) { http in
            let id = try await http.onboarded("Webhook Ltd", phone: "+447700900123")
            try await http.suspend(id, token: adminToken)
            return id
        }
        try await waitUntil(limit: .seconds(120)) { receiver.requests().filter(\.accepted).count >= 2 }
        let requests = receiver.requests()
        _ = try await server.terminate()
        await receiver.kill()

        // A duplicate would be allowed (at least once): each event's first arrival counts.
        var accepted: [ReceivedRequest] = []
        for request in requests where request.accepted && !accepted.contains(where: { $0.id == request.id }) { accepted.append(request) }
        #expect(accepted.map(\.type) == ["tenant.onboarded", "tenant.suspended"], "\(requests)")
        #expect(accepted.allSatisfy { $0.subject == id && $0.eventId == $0.id }, "\(requests)")
        #expect(accepted.count == 2 && accepted[0].id < accepted[1].id, "ids are time-ordered: \(accepted)")
        #expect(requests.allSatisfy { $0.status != 401 }, "every signature verifies: \(requests)")
        #expect(!server.stdout.text.contains(secret) && !server.stderr.text.contains(secret), "the secret is never logged")
    }

    /// The receiver's check can fail: a server signing with another secret is refused (401,
    /// recorded) and nothing is accepted, so the tests above are not vacuous.
    @Test("a receiver with another secret refuses the server's deliveries with 401 and accepts none")
    func wrongSecretRefused() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let receiver = try await WebhookReceiver.start(
            port: try MotoServer.freePort(), secret: newWebhookSecret(), record: folder.appendingPathComponent("received.jsonl").path)
        let server = try OnboardProcess(
            [
                "serve", "--port", "0", "--database", folder.appendingPathComponent("tenants.sqlite").path, "--webhook-url", receiver.url,
                "--webhook-secret", newWebhookSecret(),
            ],
            environment: ["ONBOARD_ADMIN_TOKEN": adminToken])
        let base = try await server.waitUntilListening()
        _ = try await HTTP.with(base) { http in try await http.onboarded("Wrong Secret Ltd", phone: "+447700900124") }
        try await waitUntil(limit: .seconds(120)) { !receiver.requests().isEmpty }
        let requests = receiver.requests()
        _ = try await server.terminate()
        await receiver.kill()

        #expect(!requests.isEmpty, "the server never tried to deliver")
        #expect(requests.allSatisfy { $0.status == 401 && $0.reason == "no v1 signature matches" }, "\(requests)")
    }

    /// The failures somebody can see: with the receiver down, the event is given up on after
    /// `--event-fail-after`, listed by `GET /events?delivery=failed`, and once the receiver is
    /// up, `POST /events/{id}/redeliver` gets it delivered.
    @Test("an event given up on (receiver down past --event-fail-after) is listed as failed and arrives when redelivered")
    func failedThenRedelivered() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let secret = newWebhookSecret()
        let port = try MotoServer.freePort()
        let record = folder.appendingPathComponent("received.jsonl").path
        let server = try OnboardProcess(
            [
                "serve", "--port", "0", "--database", folder.appendingPathComponent("tenants.sqlite").path, "--webhook-url",
                "http://127.0.0.1:\(port)/hook", "--webhook-secret", secret, "--event-fail-after", "2s",
            ],
            environment: ["ONBOARD_ADMIN_TOKEN": adminToken])
        let base = try await server.waitUntilListening()
        let (eventId, failed, redelivered, failedAfter) = try await HTTP.with(base) { http in
            let tenantId = try await http.onboarded("Failed Co", phone: "+447700900125")
            let event = try #require(try await http.events(of: tenantId, token: adminToken).first)
            var failed: [String] = []
            try await waitUntil(limit: .seconds(120)) {
                let reply = try await http.send(.GET, "/events?delivery=failed", headers: [("Authorization", "Bearer \(adminToken)")])
                guard reply.status == 200, case .list(let entries)? = try JSONCodec.parse(reply.body).mapValue?["events"] else { return false }
                failed = entries.compactMap { $0.mapValue?["event"]?.mapValue?["id"]?.stringValue }
                return failed.contains(event.id)
            }
            let receiver = try await WebhookReceiver.start(port: port, secret: secret, record: record)
            let redelivered = try await http.send(.POST, "/events/\(event.id)/redeliver", headers: [("Authorization", "Bearer \(adminToken)")])
            try await waitUntil(limit: .seconds(120)) { receiver.requests().contains { $0.accepted } }
            let failedAfter = try await http.send(.GET, "/events?delivery=failed", headers: [("Authorization", "Bearer \(adminToken)")])
            await receiver.kill()
            return (event.id, failed, redelivered.status, failedAfter.body)
        }
        _ = try await server.terminate()

        #expect(failed == [eventId], "listed as failed: \(failed)")
        #expect(redelivered == 202)
        let accepted = WebhookReceiver.requests(in: record).filter(\.accepted)
        #expect(accepted.map(\.id) == [eventId], "\(accepted)")
        #expect(accepted.first?.type == "tenant.onboarded")
        #expect(!failedAfter.contains(eventId), "no longer failed: \(failedAfter)")
    }

    /// At least once, in order per tenant, across a receiver answering 500 and then down, and a
    /// `kill -9` of the server after its answers and before the events were delivered.
    @Test(
        "every recorded event arrives, verified and in order per tenant, across 500s, a receiver down for a while and a kill -9 of the server between the 2xx and delivery"
    )
    func nothingLostAcrossCrashes() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let database = folder.appendingPathComponent("tenants.sqlite").path
        let record = folder.appendingPathComponent("received.jsonl").path
        let secret = newWebhookSecret()
        let port = try MotoServer.freePort()
        let environment = ["ONBOARD_ADMIN_TOKEN": adminToken]
        func serve() throws -> OnboardProcess {
            try OnboardProcess(
                [
                    "serve", "--port", "0", "--database", database, "--rate-limits", "off", "--webhook-url", "http://127.0.0.1:\(port)/hook",
                    "--webhook-secret", secret,
                ],
                environment: environment)
        }

        // 1. The receiver answers 500 to its first three deliveries; the first changes are made.
        var receiver = try await WebhookReceiver.start(port: port, secret: secret, record: record, failFirst: 3)
        let first = try serve()
        var tenants: [String] = []
        try await HTTP.with(try await first.waitUntilListening()) { http in
            for index in 0..<4 { tenants.append(try await http.onboarded("Crash Co \(index)", phone: "+44770090\(1000 + index)")) }
            try await http.rename(tenants[0], "Crash Co Zero", token: adminToken)
            try await http.rename(tenants[1], "Crash Co One", token: adminToken)
            try await http.suspend(tenants[2], token: adminToken)
        }
        // Some arrive while the server runs (after the injected 500s)...
        try await waitUntil(limit: .seconds(180)) { receiver.requests().contains { $0.accepted } }
        #expect(receiver.requests().contains { $0.accepted }, "nothing was delivered before the receiver went down")

        // 2. ...then the receiver goes down, more changes are acknowledged, and the server is
        // killed (SIGKILL) right after the last answer: those events cannot have been delivered.
        await receiver.kill()
        try await HTTP.with(try await first.waitUntilListening()) { http in
            for index in 4..<6 { tenants.append(try await http.onboarded("Crash Co \(index)", phone: "+44770090\(1000 + index)")) }
            try await http.suspend(tenants[0], token: adminToken)
            try await http.suspend(tenants[4], token: adminToken)
            try await http.rename(tenants[3], "Crash Co Three", token: adminToken)
            try await http.rename(tenants[5], "Crash Co Five", token: adminToken)
            try await http.change(.POST, "/tenants/\(tenants[2])/reactivate", token: adminToken)
            try await http.change(.POST, "/tenants/\(tenants[1])/api-keys", token: adminToken, expected: 201)
        }
        // What the store holds at the kill, and what had arrived by then (the receiver's file).
        let recordedAtKill = try await HTTP.with(try await first.waitUntilListening()) { http in
            var recorded: [RecordedEvent] = []
            for tenant in tenants { recorded += try await http.events(of: tenant, token: adminToken) }
            return Set(recorded.map(\.id))
        }
        try await first.kill()
        let linesAtKill = receiver.requests().count
        let beforeCrash = Set(receiver.requests().filter(\.accepted).map(\.id))

        // 3. The server restarts on the same file while the receiver is still down; a while
        // later the receiver is back on the same port (answering 500 to its first two again).
        let second = try serve()
        let base = try await second.waitUntilListening()
        try await Task.sleep(for: .seconds(3))
        receiver = try await WebhookReceiver.start(port: port, secret: secret, record: record, failFirst: 2)

        // 4. Wait (generously) until every recorded event has arrived.
        let recorded = try await HTTP.with(base) { http in
            var recorded: [RecordedEvent] = []
            try await waitUntil(limit: .seconds(600)) {
                recorded = []
                for tenant in tenants { recorded += try await http.events(of: tenant, token: adminToken) }
                let arrived = Set(receiver.requests().filter(\.accepted).map(\.id))
                return Set(recorded.map(\.id)).isSubset(of: arrived)
            }
            return recorded
        }
        let requests = receiver.requests()
        let status = try await second.terminate()
        await receiver.kill()

        let accepted = requests.filter(\.accepted)
        let recordedIds = Set(recorded.map(\.id))
        let acceptedIds = Set(accepted.map(\.id))
        // What the test is about: nothing lost, nothing invented.
        #expect(recordedIds.subtracting(acceptedIds).isEmpty, "lost: \(recordedIds.subtracting(acceptedIds).sorted())")
        #expect(acceptedIds.subtracting(recordedIds).isEmpty, "delivered but not recorded: \(acceptedIds.subtracting(recordedIds).sorted())")
        // Every tenant has at least two events; the batch after the receiver went down was not
        // delivered before the crash.
        for tenant in tenants { #expect(recorded.filter { $0.subject == tenant }.count >= 2, "\(tenant): \(recorded)") }
        #expect(recorded.count == 15, "\(recorded)")
        // At the kill, some events had arrived and at least the 8 changes made while the receiver
        // was down had not: only the restarted server (reading the store) can have sent those,
        // and the receiver's file after the kill shows it did.
        #expect(recordedIds == recordedAtKill, "nothing was recorded after the kill")
        #expect(!beforeCrash.isEmpty, "nothing arrived before the crash")
        let undeliveredAtKill = recordedAtKill.subtracting(beforeCrash)
        #expect(undeliveredAtKill.count >= 8, "undelivered at the kill: \(undeliveredAtKill.sorted()); arrived: \(beforeCrash.sorted())")
        let afterRestart = Set(requests.dropFirst(linesAtKill).filter(\.accepted).map(\.id))
        #expect(undeliveredAtKill.isSubset(of: afterRestart), "not delivered after the restart: \(undeliveredAtKill.subtracting(afterRestart).sorted())")
        // Every signature verified; the 500s were really answered (the retries were needed).
        #expect(requests.allSatisfy { $0.status != 401 }, "\(requests.filter { $0.status == 401 })")
        #expect(requests.filter { $0.status == 500 }.count >= 5, "\(requests)")
        // What arrived is what was recorded (type and subject) under the id it was sent as.
        let byId = Dictionary(recorded.map { ($0.id, $0) }) { first, _ in first }
        for delivery in accepted {
            #expect(delivery.eventId == delivery.id, "\(delivery)")
            #expect(byId[delivery.id].map { $0.type == delivery.type && $0.subject == delivery.subject } ?? false, "\(delivery)")
        }
        // Per tenant, each event's first arrival is in event-id order (duplicates allowed).
        for tenant in tenants {
            var firstArrivals: [String] = []
            for delivery in accepted where delivery.subject == tenant && !firstArrivals.contains(delivery.id) { firstArrivals.append(delivery.id) }
            #expect(firstArrivals == firstArrivals.sorted(), "\(tenant) arrived out of order: \(firstArrivals)")
        }
        #expect(status == 0, "\(second.stderr.text)")
    }
}
