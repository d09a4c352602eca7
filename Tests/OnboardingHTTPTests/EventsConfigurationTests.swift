import AWSClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import InMemoryLogging
import Logging
import NIOCore
import OnboardTestSupport
import OnboardingApp
import OnboardingCore
import OnboardingEvents
import OnboardingHTTP
import SigV4
import Synchronization
import Testing
import ServiceLifecycle

/// The event settings of `onboard serve` (flags, `ONBOARD_*` variables, their checks), the sinks
/// they make, and the wiring: `buildApplication` from those settings delivers to a webhook.
@Suite("Event delivery settings and wiring")
struct EventsConfigurationTests {
    static let secret = "whsec_" + Data((0..<32).map { UInt8($0) }).base64EncodedString()

    func resolve(flags: [String: String] = [:], environment: [String: String] = [:]) throws -> EventsConfiguration {
        try ServeConfiguration.resolve(flags: flags, environment: environment).events
    }

    /// The one-line error `onboard serve` would print.
    func error(flags: [String: String] = [:], environment: [String: String] = [:]) -> String? {
        do {
            _ = try ServeConfiguration.resolve(flags: flags, environment: environment)
            return nil
        } catch {
            return error.description
        }
    }

    @Test("nothing configured: no delivery sinks, the log sink, 24h, the default source")
    func defaults() throws {
        let events = try resolve()
        #expect(events.webhookURLs.isEmpty)
        #expect(events.webhookSecret == nil)
        #expect(events.snsTopicARN == nil)
        #expect(events.eventBridgeBus == nil)
        #expect(events.failAfter == .seconds(86_400))
        #expect(events.usesLogSink)
        #expect(events.resolvedSource == EventRecorder.defaultSource)
        #expect(events.resolvedSource.hasPrefix("urn:onboard:"))
    }

    @Test("flags: --webhook-url repeated (a URL may hold a comma), the secret, SNS, EventBridge, fail-after, --log-events, the source")
    func flags() throws {
        let urls = ["http://127.0.0.1:9000/hook", "https://hooks.example.com/a,b?x=1"]
        let events = try resolve(flags: [
            Setting.webhookURLs.key: urls.joined(separator: String(Setting.repeatedFlagSeparator)),
            Setting.webhookSecret.key: Self.secret,
            Setting.snsTopicARN.key: "arn:aws:sns:eu-west-1:123456789012:onboard-events.fifo",
            Setting.eventBridgeBus.key: "onboard-bus",
            Setting.eventFailAfter.key: "90m",
            Setting.logEvents.key: "true",
            Setting.eventSource.key: "urn:onboard:prod",
        ])
        #expect(events.webhookURLs == urls)
        #expect(events.webhookSecret != nil)
        #expect(events.snsTopicARN == "arn:aws:sns:eu-west-1:123456789012:onboard-events.fifo")
        #expect(events.eventBridgeBus == "onboard-bus")
        #expect(events.failAfter == .seconds(90 * 60))
        #expect(events.logEvents && events.usesLogSink)
        #expect(events.resolvedSource == "urn:onboard:prod")
        // The secret never shows in the configuration's description.
        #expect(!"\(events)".contains(Self.secret.dropFirst(6)))
    }

    @Test("environment: ONBOARD_WEBHOOK_URLS comma-separated, the others by name; a flag wins over its variable")
    func environment() throws {
        let events = try resolve(environment: [
            "ONBOARD_WEBHOOK_URLS": " http://127.0.0.1:9000/a , https://example.com/b ,",
            "ONBOARD_WEBHOOK_SECRET": Self.secret,
            "ONBOARD_SNS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:topic",
            "ONBOARD_EVENTBRIDGE_BUS": "arn:aws:events:eu-central-1:123456789012:event-bus/default",
            "ONBOARD_EVENT_FAIL_AFTER": "24h",
            "ONBOARD_EVENT_SOURCE": "https://onboard.example.com",
            "ONBOARD_LOG_EVENTS": "false",
        ])
        #expect(events.webhookURLs == ["http://127.0.0.1:9000/a", "https://example.com/b"])
        #expect(events.snsTopicARN == "arn:aws:sns:us-east-1:123456789012:topic")
        #expect(events.eventBridgeBus == "arn:aws:events:eu-central-1:123456789012:event-bus/default")
        #expect(events.failAfter == .seconds(86_400))
        #expect(!events.usesLogSink)
        #expect(events.resolvedSource == "https://onboard.example.com")

        let overridden = try resolve(
            flags: [Setting.eventFailAfter.key: "90s", Setting.webhookURLs.key: "http://127.0.0.1:1/flag"],
            environment: ["ONBOARD_EVENT_FAIL_AFTER": "1h", "ONBOARD_WEBHOOK_URLS": "http://127.0.0.1:1/env", "ONBOARD_WEBHOOK_SECRET": Self.secret]
        )
        #expect(overridden.failAfter == .seconds(90))
        #expect(overridden.webhookURLs == ["http://127.0.0.1:1/flag"])

        // Empty values (a template's unset parameters) are settings left unset.
        let empty = try resolve(environment: ["ONBOARD_WEBHOOK_URLS": "", "ONBOARD_SNS_TOPIC_ARN": "", "ONBOARD_EVENTBRIDGE_BUS": " "])
        #expect(!empty.hasDeliverySinks)
    }

    @Test("durations of --event-fail-after", arguments: [
        ("24h", Duration.seconds(86_400)), ("90m", .seconds(5400)), ("90s", .seconds(90)), ("1500ms", .milliseconds(1500)),
        ("2d", .seconds(172_800)), ("0s", .zero), ("45", .seconds(45)), ("1.5h", .seconds(5400)),
    ])
    func durations(text: String, expected: Duration) throws {
        #expect(try resolve(flags: [Setting.eventFailAfter.key: text]).failAfter == expected)
    }

    @Test("each bad value is refused with one line naming the flag or variable and what is expected", arguments: [
        ([Setting.webhookURLs.key: "ftp://example.com/hook", Setting.webhookSecret.key: secret], [String: String](),
            "invalid --webhook-url 'ftp://example.com/hook': expected an http:// or https:// URL"),
        ([:], ["ONBOARD_WEBHOOK_URLS": "http://ok.example.com/a,not a url", "ONBOARD_WEBHOOK_SECRET": secret],
            "invalid ONBOARD_WEBHOOK_URLS 'not a url': expected an http:// or https:// URL"),
        ([Setting.webhookURLs.key: "https://example.com/hook\nhttps://example.com/hook", Setting.webhookSecret.key: secret], [:],
            "invalid --webhook-url: webhook:https://example.com#19f13522 is listed twice"),
        ([Setting.webhookURLs.key: "https://user:p4ssw0rd@example.com/hook", Setting.webhookSecret.key: secret], [:],
            "invalid --webhook-url: a webhook URL may not hold a user name or password"),
        ([Setting.webhookURLs.key: "https://example.com/hook"], [:], "invalid --webhook-url: webhooks need a signing secret (--webhook-secret / ONBOARD_WEBHOOK_SECRET"),
        ([:], ["ONBOARD_WEBHOOK_URLS": "https://example.com/hook"], "invalid ONBOARD_WEBHOOK_URLS: webhooks need a signing secret"),
        ([Setting.webhookURLs.key: "https://example.com/hook", Setting.webhookSecret.key: "hunter2-not-a-whsec-secret"], [:],
            "invalid --webhook-secret: a webhook secret"),
        ([Setting.webhookURLs.key: "https://example.com/hook"], ["ONBOARD_WEBHOOK_SECRET": "whsec_c2hvcnQ="],
            "invalid ONBOARD_WEBHOOK_SECRET: a webhook secret"),
        ([Setting.webhookURLs.key: "https://example.com/hook"], ["ONBOARD_WEBHOOK_SECRET": "whsec_!!!notbase64!!!"],
            "invalid ONBOARD_WEBHOOK_SECRET: a webhook secret"),
        ([Setting.snsTopicARN.key: "arn:aws:sqs:eu-west-1:123456789012:queue"], [:], "invalid --sns-topic-arn 'arn:aws:sqs:eu-west-1:123456789012:queue': expected an SNS topic ARN"),
        ([:], ["ONBOARD_SNS_TOPIC_ARN": "my-topic"], "invalid ONBOARD_SNS_TOPIC_ARN 'my-topic': expected an SNS topic ARN, arn:aws:sns:<region>:<account id>:<topic name>"),
        ([Setting.snsTopicARN.key: "arn:aws:sns:eu-west-1:12345:topic"], [:], "invalid --sns-topic-arn"),
        ([Setting.eventBridgeBus.key: "my bus!"], [:], "invalid --eventbridge-bus 'my bus!': expected an event bus name"),
        ([:], ["ONBOARD_EVENTBRIDGE_BUS": "arn:aws:sns:eu-west-1:123456789012:topic"], "invalid ONBOARD_EVENTBRIDGE_BUS"),
        ([Setting.eventFailAfter.key: "soon"], [:], "invalid --event-fail-after 'soon': expected a duration from 0s to 30d"),
        ([:], ["ONBOARD_EVENT_FAIL_AFTER": "31d"], "invalid ONBOARD_EVENT_FAIL_AFTER '31d'"),
        ([Setting.eventFailAfter.key: "-5s"], [:], "invalid --event-fail-after '-5s'"),
        ([Setting.eventSource.key: "has spaces in it"], [:], "invalid --event-source 'has spaces in it': expected a URI"),
        ([:], ["ONBOARD_LOG_EVENTS": "maybe"], "invalid ONBOARD_LOG_EVENTS 'maybe': expected true or false"),
    ])
    func refused(flags: [String: String], environment: [String: String], expected: String) throws {
        let message = try #require(error(flags: flags, environment: environment), "accepted: \(flags) \(environment)")
        #expect(message.hasPrefix(expected), "\(message)")
        #expect(!message.contains("\n"))
    }

    @Test("a refused secret is never repeated in the error")
    func secretNotEchoed() throws {
        let wrong = "whsec_" + Data((0..<8).map { UInt8($0 + 100) }).base64EncodedString()
        for secret in [wrong, "sk_live_0123456789abcdefghijkl"] {
            let message = try #require(error(flags: [Setting.webhookURLs.key: "https://example.com/h", Setting.webhookSecret.key: secret]))
            #expect(!message.contains(secret))
            #expect(!message.contains(secret.dropFirst(6)))
        }
    }

    /// An AWS environment of its own: static keys, a region, no shared files.
    func awsEnvironment(_ variables: [String: String]) throws -> AWSEnvironment {
        AWSEnvironment(
            variables: ["AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"].merging(variables) { $1 },
            homeDirectory: FileManager.default.temporaryDirectory.appendingPathComponent("no-home-\(UUID().uuidString)").path
        )
    }

    @Test("makeSinks: one webhook sink per URL, SNS at AWS_ENDPOINT_URL_SNS in the topic's region, EventBridge at AWS_ENDPOINT_URL, the log when asked")
    func sinks() async throws {
        var configuration = try resolve(flags: [
            Setting.webhookURLs.key: "http://127.0.0.1:9000/a\nhttp://127.0.0.1:9000/b", Setting.webhookSecret.key: Self.secret,
            Setting.snsTopicARN.key: "arn:aws:sns:eu-west-1:123456789012:onboard-events",
            Setting.eventBridgeBus.key: "onboard-bus",
        ])
        let environment = try awsEnvironment([
            "AWS_REGION": "us-east-2", "AWS_ENDPOINT_URL_SNS": "http://127.0.0.1:5001", "AWS_ENDPOINT_URL": "http://127.0.0.1:5002",
        ])
        let built = try await configuration.makeSinks(region: nil, environment: environment, logger: Logger(label: "test"))
        #expect(built.sinks.map(\.id) == [
            WebhookSink.sinkId(url: "http://127.0.0.1:9000/a"), WebhookSink.sinkId(url: "http://127.0.0.1:9000/b"),
            "sns:arn:aws:sns:eu-west-1:123456789012:onboard-events",
            "eventbridge:onboard-bus",
        ])
        let sns = try #require(built.sinks.compactMap { $0 as? SNSSink }.first)
        #expect(sns.sns.endpoint == "http://127.0.0.1:5001")
        #expect(sns.sns.client.region == "eu-west-1")
        let bus = try #require(built.sinks.compactMap { $0 as? EventBridgeSink }.first)
        #expect(bus.events.endpoint == "http://127.0.0.1:5002")
        #expect(bus.events.client.region == "us-east-2")
        #expect(!built.summary.contains(Self.secret))
        // The sinks' ids, never the URLs' paths (where tokens live).
        #expect(built.summary.contains("webhook \(WebhookSink.sinkId(url: "http://127.0.0.1:9000/a")), \(WebhookSink.sinkId(url: "http://127.0.0.1:9000/b"))"))
        #expect(!built.summary.contains("9000/a") && !built.summary.contains("9000/b"))
        await built.shutdown()

        // No endpoint variables: the public endpoints; --region for a bus given by name; --log-events adds the log.
        configuration.logEvents = true
        let plain = try await configuration.makeSinks(region: "ap-southeast-2", environment: try awsEnvironment([:]), logger: Logger(label: "test"))
        #expect(plain.sinks.last?.id == "log")
        #expect(plain.sinks.compactMap { $0 as? SNSSink }.first?.sns.endpoint == "https://sns.eu-west-1.amazonaws.com")
        #expect(plain.sinks.compactMap { $0 as? EventBridgeSink }.first?.events.endpoint == "https://events.ap-southeast-2.amazonaws.com")
        await plain.shutdown()
    }

    @Test("makeSinks: a bus by name without any region is refused with the SDKs' places to set one; only the log without settings")
    func sinksWithoutRegion() async throws {
        let configuration = try resolve(flags: [Setting.eventBridgeBus.key: "default"])
        await #expect(throws: ConfigurationError.self) {
            _ = try await configuration.makeSinks(region: nil, environment: try awsEnvironment([:]), logger: Logger(label: "test"))
        }
        do {
            _ = try await configuration.makeSinks(region: nil, environment: try awsEnvironment([:]), logger: Logger(label: "test"))
        } catch {
            #expect("\(error)".contains("no AWS region"))
        }
        let none = try await EventsConfiguration().makeSinks(region: nil, environment: try awsEnvironment([:]), logger: Logger(label: "test"))
        #expect(none.sinks.map(\.id) == ["log"])
        await none.shutdown()
    }

    @Test("buildApplication from serve's settings: the dispatcher is a background service with the configured sinks")
    func dispatcherInApplication() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        func application(_ flags: [String: String]) async throws -> OnboardApplication {
            let configuration = try ServeConfiguration.resolve(
                flags: [Setting.adminToken.key: TestServer.adminToken, Setting.database.key: directory.path("wiring.sqlite")].merging(flags) { $1 },
                environment: [:]
            )
            return try await buildApplication(configuration)
        }
        let plain = try await application([:])
        #expect(plain.dispatcher.sinks.map(\.id) == ["log"])
        #expect(plain.backgroundServices.first is EventDispatcher)
        #expect(plain.dispatcher.configuration.failAfter == .seconds(86_400))
        await plain.close()

        let hooks = try await application([
            Setting.webhookURLs.key: "http://127.0.0.1:9/hook", Setting.webhookSecret.key: Self.secret, Setting.eventFailAfter.key: "2h",
        ])
        #expect(hooks.dispatcher.sinks.map(\.id) == ["webhook:http://127.0.0.1:9#a94bb7e8"])
        #expect(hooks.dispatcher.configuration.failAfter == .seconds(7200))
        #expect(hooks.eventSinksSummary.hasPrefix("webhook webhook:http://127.0.0.1:9#a94bb7e8 (source"), "the id, not the URL")
        await hooks.close()

        let both = try await application([Setting.webhookURLs.key: "http://127.0.0.1:9/hook", Setting.webhookSecret.key: Self.secret, Setting.logEvents.key: "true"])
        #expect(both.dispatcher.sinks.map(\.id) == ["webhook:http://127.0.0.1:9#a94bb7e8", "log"])
        await both.close()
    }

    @Test("the wiring delivers: serve's application with a webhook URL on 127.0.0.1; onboarding and suspending arrive signed, in order")
    func deliversToWebhook() async throws {
        let receiver = try await WiringWebhookReceiver.start()
        defer { receiver.stop() }
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var logs = InMemoryLogHandler()
        logs.logLevel = .debug
        let handler = logs
        // What `onboard serve --webhook-url … --webhook-secret …` resolves, on a SQLite file.
        let configuration = try ServeConfiguration.resolve(
            flags: [
                Setting.adminToken.key: TestServer.adminToken, Setting.host.key: "127.0.0.1", Setting.port.key: "0",
                Setting.database.key: directory.path("events.sqlite"), Setting.webhookURLs.key: receiver.url,
                Setting.webhookSecret.key: Self.secret, Setting.eventSource.key: "urn:onboard:wiring-test", Setting.rateLimits.key: "off",
            ],
            environment: [:]
        )
        let app = try await buildApplication(configuration, overrides: AppOverrides(logger: Logger(label: "events-wiring", factory: { _ in handler })))
        let secret = try WebhookSecret(Self.secret)
        try await app.test(.live) { client in
            let api = APIClient(client: client)
            let (tenantId, _) = try await api.newTenant("Webhook Wiring Ltd")
            let suspended = try await api.call(.post, "/tenants/\(tenantId)/suspend", token: TestServer.adminToken, json: #"{"reason": "unpaid invoice"}"#)
            #expect(suspended.status == 200)

            // Both deliveries arrive (the dispatcher is woken by each change; the bound only ends a broken run).
            let deadline = ContinuousClock.now + .seconds(60)
            while receiver.deliveries.count < 2, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            let deliveries = receiver.deliveries
            try #require(deliveries.count >= 2, "deliveries: \(deliveries.count)")
            var types: [String] = []
            for delivery in deliveries {
                let envelope = try #require(try JSONCodec.parse(delivery.body).mapValue)
                let id = try #require(delivery.headers["webhook-id"])
                let timestamp = try #require(delivery.headers["webhook-timestamp"].flatMap { Int($0) })
                let signature = try #require(delivery.headers["webhook-signature"])
                #expect(signature.hasPrefix("v1,"))
                #expect(StandardWebhooks.verify(signatureHeader: signature, id: id, timestamp: timestamp, body: delivery.body, secret: secret))
                #expect(envelope["id"]?.stringValue == id)
                #expect(envelope["subject"]?.stringValue == tenantId)
                #expect(envelope["source"]?.stringValue == "urn:onboard:wiring-test")
                #expect(envelope["specversion"]?.stringValue == "1.0")
                types.append(envelope["type"]?.stringValue ?? "?")
            }
            // Per-tenant order: onboarded before suspended (a duplicate delivery would be allowed).
            #expect(Array(NSOrderedSet(array: types)) as? [String] == ["tenant.onboarded", "tenant.suspended"])
            let suspendedEnvelope = try #require(deliveries.compactMap { try? JSONCodec.parse($0.body).mapValue }.first { $0["type"]?.stringValue == "tenant.suspended" })
            #expect(suspendedEnvelope["actor"]?.stringValue == "admin")
            #expect(suspendedEnvelope["data"]?.mapValue?["reason"]?.stringValue == "unpaid invoice")
        }
        await app.close()
        // The secret never reaches the logs.
        let logText = TestFixture.text(of: handler)
        #expect(!logText.contains(Self.secret.dropFirst(6)))
    }
}

extension EventsConfigurationTests {
    @Test(
        "the wiring publishes to SNS and EventBridge on moto (AWS_ENDPOINT_URL): the configured topic and bus each get the onboarding, read back from SQS",
        .requires(.moto)
    )
    func deliversToSNSAndEventBridge() async throws {
        let moto = try await MotoServer.shared()
        let name = "wiring-\(UUID().uuidString.prefix(8).lowercased())"
        // A topic with a queue subscribed, and a bus whose rule sends everything from this source to a queue.
        let sns = SNS(client: TestAWSClients.client(), endpoint: moto.endpoint)
        let topicArn = try await sns.createTopic(name: name)
        let topicQueue = try await WiringSQSQueue.create(on: moto, name: name + "-sns")
        _ = try await sns.subscribe(topicArn: topicArn, protocol: "sqs", endpoint: topicQueue.arn)
        let source = "urn:onboard:\(name)"
        let events = EventBridge(client: TestAWSClients.client(), endpoint: moto.endpoint)
        func call(_ operation: String, _ input: [String: Any]) async throws {
            _ = try await events.call(operation, body: Array(try JSONSerialization.data(withJSONObject: input)))
        }
        try await call("CreateEventBus", ["Name": name])
        let pattern = String(decoding: try JSONSerialization.data(withJSONObject: ["source": [source]]), as: UTF8.self)
        try await call("PutRule", ["Name": "to-queue", "EventBusName": name, "EventPattern": pattern, "State": "ENABLED"])
        let busQueue = try await WiringSQSQueue.create(on: moto, name: name + "-bus")
        try await call("PutTargets", ["Rule": "to-queue", "EventBusName": name, "Targets": [["Id": "queue", "Arn": busQueue.arn]]])

        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let configuration = try ServeConfiguration.resolve(
            flags: [
                Setting.adminToken.key: TestServer.adminToken, Setting.port.key: "0", Setting.database.key: directory.path("aws.sqlite"),
                Setting.snsTopicARN.key: topicArn, Setting.eventBridgeBus.key: name, Setting.eventSource.key: source,
                Setting.rateLimits.key: "off",
            ],
            environment: [:]
        )
        // The SDKs' variables, as a deployment sets them: one endpoint for every service, static keys, the region.
        let environment = AWSEnvironment(
            variables: [
                "AWS_ENDPOINT_URL": moto.endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1",
            ],
            homeDirectory: directory.path("home")
        )
        let app = try await buildApplication(configuration, overrides: AppOverrides(
            // moto answers one request at a time: retries come back soon rather than after minutes.
            eventDispatcher: EventDispatcher.Configuration(sweepInterval: .milliseconds(500), backoffCap: .seconds(2)),
            awsEnvironment: environment
        ))
        #expect(app.dispatcher.sinks.map(\.id) == ["sns:\(topicArn)", "eventbridge:\(name)"])
        let tenantId = try await app.test(.live) { client in
            let api = APIClient(client: client)
            let (tenantId, _) = try await api.newTenant("Cloud Wiring Ltd")
            return tenantId
        }
        let published = try await topicQueue.receive(count: 1)
        let routed = try await busQueue.receive(count: 1)
        await app.close()

        let notification = try #require(published.first.flatMap { try? JSONCodec.parse($0.Body).mapValue }, "\(published)")
        let message = try #require(notification["Message"]?.stringValue.flatMap { try? JSONCodec.parse($0).mapValue })
        #expect(message["type"] == .string("tenant.onboarded"))
        #expect(message["subject"] == .string(tenantId))
        #expect(notification["MessageAttributes"]?.mapValue?["type"]?.mapValue?["Value"] == .string("tenant.onboarded"))
        #expect(notification["MessageAttributes"]?.mapValue?["tenantId"]?.mapValue?["Value"] == .string(tenantId))

        let entry = try #require(routed.first.flatMap { try? JSONCodec.parse($0.Body).mapValue }, "\(routed)")
        #expect(entry["source"] == .string(source))
        #expect(entry["detail-type"] == .string("tenant.onboarded"))
        #expect(entry["detail"]?.mapValue?["subject"] == .string(tenantId))
    }
}

/// An SQS queue on moto read with SQS's JSON protocol (what SNS and EventBridge delivered).
struct WiringSQSQueue {
    let endpoint: String
    let url: String
    let arn: String

    struct Message: Decodable {
        let Body: String
    }

    static func call(endpoint: String, _ operation: String, _ input: [String: Any]) async throws -> [String: Any] {
        let answer = try await TestAWSClients.client().jsonCall(
            endpoint: endpoint, signingName: "sqs", target: "AmazonSQS.\(operation)", contentType: "application/x-amz-json-1.0",
            body: Array(try JSONSerialization.data(withJSONObject: input))
        )
        return (try JSONSerialization.jsonObject(with: Data(answer)) as? [String: Any]) ?? [:]
    }

    static func create(on moto: MotoServer, name: String) async throws -> WiringSQSQueue {
        let created = try await call(endpoint: moto.endpoint, "CreateQueue", ["QueueName": name])
        let url = try #require(created["QueueUrl"] as? String)
        let read = try await call(endpoint: moto.endpoint, "GetQueueAttributes", ["QueueUrl": url, "AttributeNames": ["QueueArn"]])
        let arn = try #require((read["Attributes"] as? [String: String])?["QueueArn"])
        return WiringSQSQueue(endpoint: moto.endpoint, url: url, arn: arn)
    }

    /// Receives until `count` messages came or 30 receives in a row (of up to 1 s each) found none.
    func receive(count: Int) async throws -> [Message] {
        var messages: [Message] = []
        var emptyInARow = 0
        while messages.count < count, emptyInARow < 30 {
            let answer = try await Self.call(endpoint: endpoint, "ReceiveMessage", ["QueueUrl": url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1])
            let batch = try JSONDecoder().decode([Message].self, from: JSONSerialization.data(withJSONObject: answer["Messages"] ?? []))
            emptyInARow = batch.isEmpty ? emptyInARow + 1 : 0
            messages += batch
        }
        return messages
    }
}

/// A webhook receiver on 127.0.0.1 (Hummingbird) that records every request and answers 204.
final class WiringWebhookReceiver: Sendable {
    struct Delivery: Sendable {
        /// Header names in lower case.
        let headers: [String: String]
        let body: [UInt8]
    }

    private final class Recorded: Sendable {
        let deliveries = Mutex<[Delivery]>([])
    }

    let port: Int
    var url: String { "http://127.0.0.1:\(port)/hook" }
    private let recorded: Recorded
    private let services: ServiceGroup
    private let task: Task<Void, any Error>

    /// The requests received so far, in arrival order.
    var deliveries: [Delivery] { recorded.deliveries.withLock { $0 } }

    static func start() async throws -> WiringWebhookReceiver {
        let recorded = Recorded()
        let router = Router()
        router.post("/hook") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            let delivery = Delivery(headers: headers, body: Array(body.readableBytesView))
            recorded.deliveries.withLock { $0.append(delivery) }
            return Response(status: .noContent)
        }
        let port = Mutex<Int?>(nil)
        let app = Application(
            router: router, configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in port.withLock { $0 = channel.localAddress?.port } },
            // Quiet: stopping makes Hummingbird log errors that are not the test's.
            logger: { var logger = Logger(label: "test.receiver"); logger.logLevel = .critical; return logger }()
        )
        // Stopped gracefully, never by cancelling it while it listens: a connection accepted but
        // not yet served when the serving task is cancelled makes NIO trap ("Deinited
        // NIOAsyncWriter without calling finish()", apple/swift-nio#3481; seen in CI). Graceful
        // shutdown closes the listening socket first; what is still open after 2 s is cancelled.
        let services = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: app.logger))
        let task = Task { try await services.run() }
        for _ in 0..<3000 {
            if let bound = port.withLock({ $0 }) { return WiringWebhookReceiver(port: bound, recorded: recorded, services: services, task: task) }
            try await Task.sleep(for: .milliseconds(10))
        }
        await services.triggerGracefulShutdown()
        throw UnavailableInThisEnvironment(description: "the webhook receiver did not start listening")
    }

    private init(port: Int, recorded: Recorded, services: ServiceGroup, task: Task<Void, any Error>) {
        self.port = port
        self.recorded = recorded
        self.services = services
        self.task = task
    }

    /// Shuts the receiver down gracefully (its listening socket closes first); what still runs
    /// after 2 s is cancelled.
    func stop() {
        Task { [services, task] in
            await services.triggerGracefulShutdown()
            try? await Task.sleep(for: .seconds(2))
            task.cancel()
        }
    }
}
