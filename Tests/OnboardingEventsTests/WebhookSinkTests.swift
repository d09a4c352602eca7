import AsyncHTTPClient
import Foundation
import Hummingbird
import InMemoryLogging
import Logging
import OnboardTestSupport
import OnboardingCore
import OnboardingEvents
import Synchronization
import Testing

@Suite("Standard Webhooks secrets and signatures")
struct StandardWebhooksTests {
    @Test("the signature is the Standard Webhooks spec's own example")
    func specExample() throws {
        // From the Standard Webhooks specification's reference libraries.
        let secret = try WebhookSecret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        let signature = StandardWebhooks.signature(
            id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330, body: #"{"test": 2432232314}"#, secret: secret
        )
        #expect(signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        #expect(StandardWebhooks.verify(
            signatureHeader: "v1,bm9wZQ== " + signature, id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330,
            body: Array(#"{"test": 2432232314}"#.utf8), secret: secret
        ))
        #expect(!StandardWebhooks.verify(
            signatureHeader: signature, id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_331, body: Array(#"{"test": 2432232314}"#.utf8),
            secret: secret
        ))
    }

    @Test("a secret that is not whsec_<base64> of 24 to 64 bytes is refused with an error that does not repeat it", arguments: [
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  // no prefix
        "whsk_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  // another prefix
        "whsec_MfKQ9r8GKYqrTwjUPD8I!!!PZIo2LaLaSw",  // not base64
        "whsec_c2hvcnQta2V5",  // 9 bytes
        "whsec_" + Data(repeating: 7, count: 65).base64EncodedString(),  // 65 bytes
        "",
    ])
    func malformedSecrets(text: String) {
        let error = #expect(throws: WebhookSecretError.self) { try WebhookSecret(text) }
        let description = error.map { "\($0)" } ?? ""
        #expect(description.contains("whsec_"), "the error says what form is expected: \(description)")
        let secretPart = text.hasPrefix("whsec_") ? String(text.dropFirst(6)) : text
        if !secretPart.isEmpty { #expect(!description.contains(secretPart)) }
    }

    @Test("a secret never shows in its description, debug description or dump")
    func redacted() throws {
        let (secret, text) = WebhookSecret.generate()
        let base64 = String(text.dropFirst(6))
        var dumped = ""
        dump(secret, to: &dumped)
        for shown in ["\(secret)", String(reflecting: secret), dumped, "\([secret])"] {
            #expect(!shown.contains(base64), "\(shown)")
        }
        // The generated text is itself a valid secret signing the same way.
        let again = try WebhookSecret(text)
        #expect(
            StandardWebhooks.signature(id: "a", timestamp: 1, body: "b", secret: secret)
                == StandardWebhooks.signature(id: "a", timestamp: 1, body: "b", secret: again)
        )
    }
}

@Suite("WebhookSink against a receiver on 127.0.0.1")
struct WebhookSinkTests {
    static let httpClient = HTTPClient(eventLoopGroupProvider: .singleton)

    @Test("events arrive as the exact envelope bytes, with webhook-id/-timestamp/-signature that Python's hmac verifies; a tampered body does not", .requires(.python3))
    func signedDeliveries() async throws {
        let receiver = try await RecordingWebhookReceiver.start()
        defer { receiver.stop() }
        let (secret, secretText) = WebhookSecret.generate()
        let sink = WebhookSink(url: receiver.url, secret: secret, httpClient: Self.httpClient)
        #expect(sink.id == WebhookSink.sinkId(url: receiver.url) && !sink.id.contains("/hook"))
        // Text that JSON escaping and UTF-8 could change: the signature must be over what arrives.
        let events = [
            SinkTestEvents.make(.tenantOnboarded),
            SinkTestEvents.make(.tenantSuspended, data: ["reason": .string("unpaid & \"late\" — é ✓ </x>\n")]),
            SinkTestEvents.make(.apiKeyCreated),
        ]
        let results = await sink.deliver(events)
        #expect(results == [.delivered, .delivered, .delivered])

        let deliveries = receiver.deliveries
        #expect(deliveries.count == 3)
        let byId = Dictionary(deliveries.map { ($0.header("webhook-id") ?? "", $0) }, uniquingKeysWith: { first, _ in first })
        var cases: [PythonWebhookVerifier.Case] = []
        let now = Int(Date().timeIntervalSince1970)
        for event in events {
            let delivery = try #require(byId[event.id], "event \(event.id) arrived")
            #expect(delivery.body == Array(event.envelopeJSON.utf8))
            #expect(delivery.header("content-type") == "application/json")
            #expect(delivery.header("user-agent")?.isEmpty == false)
            let timestamp = try #require(delivery.header("webhook-timestamp"))
            let seconds = try #require(Int(timestamp))
            #expect(abs(seconds - now) < 600, "webhook-timestamp is in seconds since 1970")
            let signature = try #require(delivery.header("webhook-signature"))
            #expect(signature.hasPrefix("v1,"))
            cases.append(.init(secret: secretText, id: event.id, timestamp: timestamp, signature: signature, body: delivery.body))
        }
        #expect(try PythonWebhookVerifier.verify(cases) == [true, true, true])

        // The same checks fail on a changed body, id or timestamp, or another secret.
        let original = cases[1]
        let tamperedBody = Array(Data(base64Encoded: original.body)!) + [UInt8(ascii: " ")]
        let otherSecret = WebhookSecret.generate().text
        let tampered: [PythonWebhookVerifier.Case] = [
            .init(secret: secretText, id: original.id, timestamp: original.timestamp, signature: original.signature, body: tamperedBody),
            .init(secret: secretText, id: events[0].id, timestamp: original.timestamp, signature: original.signature, body: Array(Data(base64Encoded: original.body)!)),
            .init(secret: secretText, id: original.id, timestamp: String(Int(original.timestamp)! + 1), signature: original.signature, body: Array(Data(base64Encoded: original.body)!)),
            .init(secret: otherSecret, id: original.id, timestamp: original.timestamp, signature: original.signature, body: Array(Data(base64Encoded: original.body)!)),
        ]
        #expect(try PythonWebhookVerifier.verify(tampered) == [false, false, false, false])
    }

    @Test("the events of one call are sent concurrently: the receiver holds each request until all of them arrived")
    func concurrent() async throws {
        let count = 4
        let gate = WebhookTestGate(count: count)
        let receiver = try await RecordingWebhookReceiver.start { _, _ in
            await gate.arriveAndWait()
            return .ok
        }
        defer { receiver.stop() }
        // Sent one after another, the first request would wait forever for the others and time out.
        let sink = WebhookSink(url: receiver.url, secret: WebhookSecret.generate().secret, httpClient: Self.httpClient, timeout: .seconds(60))
        let results = await sink.deliver((0..<count).map { _ in SinkTestEvents.make() })
        #expect(results == Array(repeating: .delivered, count: count))
        #expect(receiver.deliveries.count == count)
    }

    @Test("500 is retried, 410 disables the endpoint (with an error log), other answers are retried", arguments: [
        (500, DeliveryResult.retry("HTTP 500 Internal Server Error")),
        (410, DeliveryResult.disable("HTTP 410 Gone")),
        (404, DeliveryResult.retry("HTTP 404 Not Found")),
        (302, DeliveryResult.retry("HTTP 302 Found")),
        (200, DeliveryResult.delivered),
        (202, DeliveryResult.delivered),
    ])
    func statuses(status: Int, expected: DeliveryResult) async throws {
        let receiver = try await RecordingWebhookReceiver.start { _, _ in HTTPResponse.Status(code: status) }
        defer { receiver.stop() }
        let logs = InMemoryLogHandler()
        let sink = WebhookSink(url: receiver.url, secret: WebhookSecret.generate().secret, httpClient: Self.httpClient, logger: Logger(label: "test") { _ in logs })
        let results = await sink.deliver([SinkTestEvents.make()])
        #expect(results == [expected])
        #expect(receiver.deliveries.count == 1)
        #expect(logs.entries.filter { $0.level >= .error }.count == (status == 410 ? 1 : 0))
    }

    @Test("a receiver that accepts the connection but never answers is retried once the sink's timeout passes")
    func neverAnswers() async throws {
        let listener = try SilentListener()
        let sink = WebhookSink(
            url: "http://127.0.0.1:\(listener.port)/hook", secret: WebhookSecret.generate().secret, httpClient: Self.httpClient,
            timeout: .milliseconds(500)
        )
        let results = await sink.deliver([SinkTestEvents.make(), SinkTestEvents.make()])
        #expect(results.count == 2)
        for result in results {
            guard case .retry(let reason) = result else {
                Issue.record("expected a retry, got \(result)")
                continue
            }
            #expect(reason.contains("no answer within"), "\(reason)")
        }
    }

    @Test("a webhook's id is webhook:<scheme>://<host>[:port]#<8 hex of SHA-256 of the URL>: stable, distinct per URL, without the path or query")
    func sinkIdHidesTheToken() {
        let url = "https://hooks.example.com/services/T000/B000/SECRETPATHTOKEN?token=SECRETQUERYTOKEN"
        let id = WebhookSink.sinkId(url: url)
        #expect(id.hasPrefix("webhook:https://hooks.example.com#"), "\(id)")
        #expect(id.count == "webhook:https://hooks.example.com#".count + 8)
        #expect(id.suffix(8).allSatisfy { $0.isHexDigit && !$0.isUppercase })
        #expect(!id.contains("SECRET") && !id.contains("services"))
        #expect(WebhookSink.sinkId(url: url) == id, "stable")
        #expect(WebhookSink.sinkId(url: url + "x") != id, "distinct per URL")
        #expect(WebhookSink.sinkId(url: "http://127.0.0.1:8080/a").hasPrefix("webhook:http://127.0.0.1:8080#"))
    }

    @Test("a URL's token (path and query) is in no log line and no result of a delivery (500, 410, refused)", arguments: [500, 410, 0])
    func tokenNeverShown(status: Int) async throws {
        let receiver = try await RecordingWebhookReceiver.start { _, _ in HTTPResponse.Status(code: status == 0 ? 200 : status) }
        defer { receiver.stop() }
        let port = status == 0 ? try MotoServer.freePort() : receiver.port
        let url = "http://127.0.0.1:\(port)/hook/SECRETPATHTOKEN?token=SECRETQUERYTOKEN"
        let logs = InMemoryLogHandler()
        var logger = Logger(label: "test") { _ in logs }
        logger.logLevel = .trace
        let sink = WebhookSink(url: url, secret: WebhookSecret.generate().secret, httpClient: Self.httpClient, timeout: .seconds(1), logger: logger)
        let results = await sink.deliver([SinkTestEvents.make()])
        let shown = "\(results) \(sink.id) " + logs.entries.map { "\($0.message) \($0.metadata)" }.joined(separator: "\n")
        #expect(!shown.contains("SECRET"), "\(shown)")
        #expect(results != [.delivered])
        #expect(!logs.entries.isEmpty || status == 0, "something was logged, without the token")
    }

    @Test("a refused connection is retried, with a short reason")
    func refused() async throws {
        let port = try MotoServer.freePort()  // nothing listens there
        // async-http-client keeps reconnecting until the deadline, then reports the refusal.
        let sink = WebhookSink(
            url: "http://127.0.0.1:\(port)/hook", secret: WebhookSecret.generate().secret, httpClient: Self.httpClient, timeout: .seconds(1)
        )
        let results = await sink.deliver([SinkTestEvents.make()])
        #expect(results == [.retry("connection refused")])
    }
}

/// Lets `count` callers through together: each waits until the last has arrived.
actor WebhookTestGate {
    private let count: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []
    private var arrived = 0

    init(count: Int) { self.count = count }

    func arriveAndWait() async {
        arrived += 1
        if arrived >= count {
            waiting.forEach { $0.resume() }
            waiting.removeAll()
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }
}
