import AWSClient
import Foundation
import OnboardTestSupport
import OnboardingCore
import OnboardingEvents
import RequestBudget
import Testing

@Suite("EventBridgeSink on moto's EventBridge (a rule targeting SQS) and on a stand-in reporting failed entries")
struct EventBridgeSinkTests {
    /// A bus of its own, a rule matching the test's source, an SQS queue as the rule's target.
    static func busWithQueue(source: String) async throws -> (events: EventBridge, bus: String, queue: SQSTestQueue) {
        let moto = try await MotoServer.pooled()
        let events = EventBridge(client: TestAWSClients.client(), endpoint: moto.endpoint)
        let bus = "bus-\(UUID().uuidString.prefix(8).lowercased())"
        func call(_ operation: String, _ input: [String: Any]) async throws {
            _ = try await events.call(operation, body: Array(try JSONSerialization.data(withJSONObject: input)))
        }
        try await call("CreateEventBus", ["Name": bus])
        let pattern = try JSONSerialization.data(withJSONObject: ["source": [source]])
        try await call("PutRule", ["Name": "to-queue", "EventBusName": bus, "EventPattern": String(decoding: pattern, as: UTF8.self), "State": "ENABLED"])
        let queue = try await SQSTestQueue.create(on: moto, name: bus)
        try await call("PutTargets", ["Rule": "to-queue", "EventBusName": bus, "Targets": [["Id": "queue", "Arn": queue.arn]]])
        return (events, bus, queue)
    }

    @Test("each event becomes an entry (Source = the envelope's source, DetailType = the type, Detail = the envelope) that the rule delivers", .requires(.moto))
    func putsEvents() async throws {
        let source = "urn:onboard:eb-\(UUID().uuidString.prefix(8).lowercased())"
        let (events, bus, queue) = try await Self.busWithQueue(source: source)
        let sink = EventBridgeSink(events: events, busName: bus, callBudget: .seconds(120))
        #expect(sink.id == "eventbridge:\(bus)")
        #expect(sink.maxBatch == 10)
        let delivered = [
            SinkTestEvents.make(.tenantOnboarded, source: source),
            SinkTestEvents.make(.tenantSuspended, source: source, data: ["reason": .string("a \"quoted\" & é reason")]),
            SinkTestEvents.make(.apiKeyRevoked, source: source),
        ]
        #expect(await sink.deliver(delivered) == [.delivered, .delivered, .delivered])

        let messages = try await queue.receive(count: 3)
        #expect(messages.count == 3)
        for event in delivered {
            let expectedDetail = try JSONSerialization.jsonObject(with: Data(event.envelopeJSON.utf8)) as? NSDictionary
            let match = try messages.compactMap { message -> [String: Any]? in
                let object = try JSONSerialization.jsonObject(with: Data(message.Body.utf8)) as? [String: Any]
                return (object?["detail"] as? NSDictionary) == expectedDetail ? object : nil
            }.first
            let received = try #require(match, "event \(event.id) arrived with the envelope as its detail")
            #expect(received["source"] as? String == source)
            #expect(received["detail-type"] as? String == event.type.rawValue)
        }
    }

    @Test("a bus that does not exist fails the whole call: every event is retried, with the error code", .requires(.moto))
    func missingBus() async throws {
        let moto = try await MotoServer.pooled()
        let sink = EventBridgeSink(
            events: EventBridge(client: TestAWSClients.client(), endpoint: moto.endpoint), busName: "no-such-bus", callBudget: .seconds(120)
        )
        let results = await sink.deliver([SinkTestEvents.make(), SinkTestEvents.make()])
        #expect(results.count == 2)
        for result in results {
            guard case .retry(let reason) = result else {
                Issue.record("expected a retry, got \(result)")
                continue
            }
            #expect(reason.hasPrefix("ResourceNotFoundException"), "\(reason)")
        }
    }

    /// The request a stand-in EventBridge received.
    struct PutEventsRequest: Decodable {
        struct Entry: Decodable, Equatable {
            let Source: String
            let DetailType: String
            let Detail: String
            let EventBusName: String
            let Resources: [String]
        }
        let Entries: [Entry]
    }

    @Test("only the entries PutEvents reports failed (FailedEntryCount, ErrorCode) are retried; sent again, they are delivered")
    func failedEntries() async throws {
        // A stand-in EventBridge: the first call fails its 2nd and 4th entries, later calls succeed.
        let standIn = try await RecordingWebhookReceiver.start(path: "/") { request, number in
            let count = (try? JSONDecoder().decode(PutEventsRequest.self, from: Data(request.body)))?.Entries.count ?? 0
            let entries = (0..<count).map { index in
                number == 1 && (index == 1 || index == 3)
                    ? #"{"ErrorCode":"InternalFailure","ErrorMessage":"try again"}"#
                    : #"{"EventId":"id-\#(number)-\#(index)"}"#
            }
            let failed = number == 1 ? 2 : 0
            return (.ok, #"{"FailedEntryCount":\#(failed),"Entries":[\#(entries.joined(separator: ","))]}"#)
        }
        defer { standIn.stop() }
        let events = EventBridge(client: TestAWSClients.client(), endpoint: "http://127.0.0.1:\(standIn.port)")
        let sink = EventBridgeSink(events: events, busName: "the-bus")
        let batch = (0..<5).map { _ in SinkTestEvents.make(source: "urn:onboard:stand-in") }
        let results = await sink.deliver(batch)
        #expect(results == [.delivered, .retry("InternalFailure: try again"), .delivered, .retry("InternalFailure: try again"), .delivered])

        // The dispatcher sends the failed ones again: only those.
        let retried = [batch[1], batch[3]]
        #expect(await sink.deliver(retried) == [.delivered, .delivered])

        let requests = standIn.deliveries
        #expect(requests.count == 2)
        let first = try JSONDecoder().decode(PutEventsRequest.self, from: Data(requests[0].body))
        #expect(first.Entries == batch.map {
            .init(Source: "urn:onboard:stand-in", DetailType: $0.type.rawValue, Detail: $0.envelopeJSON, EventBusName: "the-bus", Resources: [])
        })
        let second = try JSONDecoder().decode(PutEventsRequest.self, from: Data(requests[1].body))
        #expect(second.Entries.map(\.Detail) == retried.map(\.envelopeJSON))
        #expect(requests[0].header("x-amz-target") == "AWSEvents.PutEvents")
        #expect(requests[0].header("content-type") == "application/x-amz-json-1.1")
        #expect(requests[0].header("authorization")?.contains("/us-east-1/events/aws4_request") == true)
    }

    @Test("an answer without one result per entry retries them all; a failing call is retried by the sink's own budget (3 attempts)")
    func unreadableAnswerAndOwnBudget() async throws {
        let standIn = try await RecordingWebhookReceiver.start(path: "/") { _, number in
            number == 1 ? (.ok, #"{"FailedEntryCount":0,"Entries":[]}"#) : (.serviceUnavailable, #"{"__type":"ServiceUnavailable","message":"busy"}"#)
        }
        defer { standIn.stop() }
        // A call budget long enough for its 3 attempts on a loaded CI machine (the 5 s default ran
        // out there after 2); what is tested is the count, not the time.
        let sink = EventBridgeSink(
            events: EventBridge(client: TestAWSClients.client(), endpoint: "http://127.0.0.1:\(standIn.port)"), busName: "b", callBudget: .seconds(120)
        )
        let results = await sink.deliver([SinkTestEvents.make(), SinkTestEvents.make()])
        #expect(results.count == 2)
        #expect(results.allSatisfy { if case .retry(let reason) = $0 { reason.hasPrefix("InvalidResponse") } else { false } }, "\(results)")

        let outer = RetryBudget(timeout: .seconds(3600), maxRetries: 1000)
        let failing = await RetryBudget.$current.withValue(outer) { await sink.deliver([SinkTestEvents.make()]) }
        #expect(failing == [.retry("ServiceUnavailable (HTTP 503): busy")])
        #expect(standIn.deliveries.count == 1 + 3)
        #expect(outer.retries == 0)
    }
}
