import AWSClient
import Foundation
import OnboardTestSupport
import OnboardingCore
import OnboardingEvents
import RequestBudget
import Testing

@Suite("SNSSink on moto's SNS, read back through a subscribed SQS queue", .requires(.moto))
struct SNSSinkTests {
    /// A topic of a name of its own with a queue subscribed (raw delivery off: the queue gets
    /// SNS's notification JSON, message attributes included).
    static func topicWithQueue(fifo: Bool = false) async throws -> (sns: SNS, topicArn: String, queue: SQSTestQueue) {
        let moto = try await MotoServer.pooled()
        let sns = SNS(client: TestAWSClients.client(), endpoint: moto.endpoint)
        let name = "events-\(UUID().uuidString.prefix(8).lowercased())" + (fifo ? ".fifo" : "")
        let topicArn = try await sns.createTopic(name: name, attributes: fifo ? ["FifoTopic": "true"] : [:])
        #expect(topicArn.hasSuffix(":\(name)"))
        let queue = try await SQSTestQueue.create(on: moto, name: name)
        let subscription = try await sns.subscribe(topicArn: topicArn, protocol: "sqs", endpoint: queue.arn)
        #expect(subscription.hasPrefix(topicArn))
        return (sns, topicArn, queue)
    }

    struct Notification: Decodable {
        struct Attribute: Decodable, Equatable {
            let `Type`: String
            let Value: String
        }
        let `Type`: String
        let Message: String
        let MessageId: String
        let TopicArn: String
        let MessageAttributes: [String: Attribute]?
    }

    @Test("each event is published with the envelope as the message and the attributes type and tenantId")
    func publishes() async throws {
        let (sns, topicArn, queue) = try await Self.topicWithQueue()
        // A patient budget: moto serves the whole test process's requests one at a time.
        let sink = SNSSink(sns: sns, topicArn: topicArn, callBudget: .seconds(120))
        #expect(sink.id == "sns:\(topicArn)")
        #expect(!sink.isFIFO)
        // Characters that form encoding must carry intact: & = + % space, non-ASCII, newlines.
        let events = [
            SinkTestEvents.make(.tenantOnboarded),
            SinkTestEvents.make(.tenantSuspended, data: ["reason": .string("a&b=c+d %41 é ✓\nline </Message>")]),
        ]
        let results = await sink.deliver(events)
        #expect(results == [.delivered, .delivered])

        let messages = try await queue.receive(count: 2)
        #expect(messages.count == 2)
        let notifications = try messages.map { try JSONDecoder().decode(Notification.self, from: Data($0.Body.utf8)) }
        for event in events {
            let notification = try #require(notifications.first { $0.Message == event.envelopeJSON }, "the envelope arrived byte for byte")
            #expect(notification.TopicArn == topicArn)
            #expect(notification.MessageAttributes?["type"] == .init(Type: "String", Value: event.type.rawValue))
            #expect(notification.MessageAttributes?["tenantId"] == .init(Type: "String", Value: event.tenantId.rawValue))
        }
    }

    @Test("on a FIFO topic the message group is the tenant and the deduplication id the event id (a redelivery is dropped by SNS)")
    func fifo() async throws {
        let (sns, topicArn, queue) = try await Self.topicWithQueue(fifo: true)
        let sink = SNSSink(sns: sns, topicArn: topicArn, callBudget: .seconds(120))
        #expect(sink.isFIFO)
        let tenant = TenantID(UUID().uuidString)!
        let first = SinkTestEvents.make(.tenantOnboarded, tenant: tenant)
        let second = SinkTestEvents.make(.tenantUpdated, tenant: tenant)
        #expect(await sink.deliver([first]) == [.delivered])
        #expect(await sink.deliver([first]) == [.delivered], "delivered again (a dispatcher retry after a lost answer)")
        #expect(await sink.deliver([second]) == [.delivered])

        let messages = try await queue.receive(count: 3, attempts: 3)
        let envelopes = try messages.map { try JSONDecoder().decode(Notification.self, from: Data($0.Body.utf8)).Message }
        #expect(envelopes == [first.envelopeJSON, second.envelopeJSON], "once each, in order")
        #expect(messages.map { $0.Attributes?["MessageGroupId"] } == [tenant.rawValue, tenant.rawValue])
        #expect(messages.map { $0.Attributes?["MessageDeduplicationId"] } == [first.id, second.id])
    }

    @Test("a topic that does not exist: every event is retried, the reason naming SNS's error code from its XML answer")
    func missingTopic() async throws {
        let moto = try await MotoServer.pooled()
        let sns = SNS(client: TestAWSClients.client(), endpoint: moto.endpoint)
        let sink = SNSSink(sns: sns, topicArn: "arn:aws:sns:us-east-1:123456789012:no-such-topic", callBudget: .seconds(120))
        let results = await sink.deliver([SinkTestEvents.make(), SinkTestEvents.make()])
        #expect(results.count == 2)
        for result in results {
            guard case .retry(let reason) = result else {
                Issue.record("expected a retry, got \(result)")
                continue
            }
            #expect(reason.hasPrefix("NotFound (HTTP 404)"), "\(reason)")
        }
        // The typed error itself, decoded from `<ErrorResponse><Error><Type/><Code/><Message/>`.
        let error = await #expect(throws: AWSServiceError.self) {
            _ = try await sns.publish(topicArn: "arn:aws:sns:us-east-1:123456789012:no-such-topic", message: "x")
        }
        #expect(error?.type == "NotFound")
        #expect(error?.status == 404)
        #expect(error?.message.isEmpty == false)
        #expect(error?.isRetryable == false)
        #expect(error?.requestID?.isEmpty == false)
    }

    @Test("a failing Publish is retried by the sink's own small budget (3 attempts), whatever budget the calling task carries")
    func ownBudget() async throws {
        // A stand-in SNS that always answers a server fault (retryable).
        let standIn = try await RecordingWebhookReceiver.start(path: "/") { _, _ in
            (.internalServerError, "<ErrorResponse><Error><Type>Receiver</Type><Code>InternalError</Code><Message>down &amp; out</Message></Error><RequestId>r-1</RequestId></ErrorResponse>")
        }
        defer { standIn.stop() }
        let sns = SNS(client: TestAWSClients.client(), endpoint: "http://127.0.0.1:\(standIn.port)")
        let sink = SNSSink(sns: sns, topicArn: "arn:aws:sns:us-east-1:123456789012:t", callBudget: .seconds(60))
        // A generous request's budget around the dispatcher must not make the sink insist for
        // hours: the sink's call runs under its own (2 retries).
        let outer = RetryBudget(timeout: .seconds(3600), maxRetries: 1000)
        let results = await RetryBudget.$current.withValue(outer) { await sink.deliver([SinkTestEvents.make()]) }
        #expect(results == [.retry("InternalError (HTTP 500): down & out")])
        #expect(standIn.deliveries.count == 3)
        #expect(outer.retries == 0, "the request's budget was left alone")

        // What went out: a signed, form-encoded Query request.
        let request = try #require(standIn.deliveries.first)
        #expect(request.header("content-type") == "application/x-www-form-urlencoded; charset=utf-8")
        #expect(request.header("authorization")?.contains("/us-east-1/sns/aws4_request") == true)
        let form = String(decoding: request.body, as: UTF8.self)
        #expect(form.hasPrefix("Action=Publish&Version=2010-03-31&TopicArn=arn%3Aaws%3Asns%3Aus-east-1%3A123456789012%3At&Message=%7B"))
        #expect(form.contains("&MessageAttributes.entry.1.Name=tenantId&MessageAttributes.entry.1.Value.DataType=String&MessageAttributes.entry.1.Value.StringValue="))
        #expect(form.contains("&MessageAttributes.entry.2.Name=type&MessageAttributes.entry.2.Value.DataType=String&MessageAttributes.entry.2.Value.StringValue=tenant.onboarded"))
        #expect(!form.contains("MessageGroupId"), "not a FIFO topic")
    }

    @Test("SNS and EventBridge calls are signed as AWS checks them: moto with authentication accepts them and refuses a wrong secret", .requires(.moto), .requires(.boto3))
    func signed() async throws {
        let moto = try await MotoServer.start(environment: ["INITIAL_NO_AUTH_ACTION_COUNT": "3"])
        defer { moto.stop() }
        let user = try sinkTestIAMUser(on: moto)
        let client = AWSClient(credentials: .init(accessKeyId: user.accessKeyId, secretAccessKey: user.secretAccessKey), region: "us-east-1")
        let wrongClient = AWSClient(credentials: .init(accessKeyId: user.accessKeyId, secretAccessKey: user.secretAccessKey + "x"), region: "us-east-1")
        defer {
            Task {
                try? await client.shutdown()
                try? await wrongClient.shutdown()
            }
        }
        let sns = SNS(client: client, endpoint: moto.endpoint)
        // A name and a message that percent-encoding must get right for the signature to match.
        let topicArn = try await sns.createTopic(name: "signed-topic")
        let event = SinkTestEvents.make(.tenantSuspended, data: ["reason": .string("a&b=c+d %41 é ✓ ~*'()!")])
        let published = await SNSSink(sns: sns, topicArn: topicArn).deliver([event])
        #expect(published == [.delivered])

        let eventBridge = EventBridge(client: client, endpoint: moto.endpoint)
        #expect(await EventBridgeSink(events: eventBridge, busName: "default").deliver([event]) == [.delivered])

        let refused = await SNSSink(sns: SNS(client: wrongClient, endpoint: moto.endpoint), topicArn: topicArn).deliver([event])
        guard case .retry(let reason)? = refused.first else {
            Issue.record("expected a retry, got \(refused)")
            return
        }
        #expect(reason.contains("SignatureDoesNotMatch"), "\(reason)")
        #expect(!reason.contains(user.secretAccessKey))
    }
}

@Suite("QueryXML: the Query protocol's answers read")
struct QueryXMLTests {
    @Test("an element's text: escapes decoded, attributes and empty elements allowed, longer names not confused with it")
    func texts() {
        let xml = """
            <PublishResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><PublishResult>
            <MessageIdList>no</MessageIdList><MessageId a="1">id &lt;1&gt; &amp;amp; &quot;&apos; &#233;&#x2713; &bogus; & done</MessageId>
            <Empty/><MessageId>second</MessageId></PublishResult></PublishResponse>
            """
        #expect(QueryXML.text(of: "MessageId", in: xml) == "id <1> &amp; \"' é✓ &bogus; & done")
        #expect(QueryXML.texts(of: "MessageId", in: xml).count == 2)
        #expect(QueryXML.texts(of: "MessageId", in: xml).last == "second")
        #expect(QueryXML.text(of: "Empty", in: xml) == "")
        #expect(QueryXML.text(of: "Missing", in: xml) == nil)
        #expect(QueryXML.text(of: "MessageId", in: "<MessageId>unterminated") == nil)
    }
}
