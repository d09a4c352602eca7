import AWSClient
import Foundation
import Logging
import OnboardingCore

/// Puts events on an EventBridge bus: one entry per event, `Source` = the envelope's `source`,
/// `DetailType` = the event type, `Detail` = the envelope's JSON, `EventBusName` = the bus.
///
/// One `PutEvents` call per delivery (at most 10 entries). Entries the answer reports failed
/// (`FailedEntryCount`, an `ErrorCode` per entry) are retried, the others are delivered; a
/// failure of the whole call retries them all. The call runs under a small retry budget of its
/// own (``callBudget``, 2 retries): the dispatcher does the long-term retrying.
public struct EventBridgeSink: EventSink {
    public let events: EventBridge
    public let busName: String
    public let id: String
    public let maxBatch = EventBridge.maxEntriesPerPut
    /// The time one `PutEvents` may take, its retries included.
    public let callBudget: Duration
    private let logger: Logger

    /// - Parameters:
    ///   - events: the EventBridge client (endpoint and credentials).
    ///   - busName: the bus's name or ARN; the sink's id is `eventbridge:<busName>`.
    public init(events: EventBridge, busName: String, callBudget: Duration = .seconds(5), logger: Logger = Logger(label: "onboard.events.eventbridge")) {
        self.events = events
        self.busName = busName
        self.id = "eventbridge:\(busName)"
        self.callBudget = callBudget
        self.logger = logger
    }

    public func deliver(_ events: [OutboxEvent]) async -> [DeliveryResult] {
        var results: [DeliveryResult] = []
        results.reserveCapacity(events.count)
        // The dispatcher hands at most `maxBatch`; more would be refused by EventBridge.
        for start in stride(from: 0, to: events.count, by: maxBatch) {
            results += await put(Array(events[start..<min(start + maxBatch, events.count)]))
        }
        return results
    }

    private func put(_ batch: [OutboxEvent]) async -> [DeliveryResult] {
        let entries = batch.map { event in
            EventBridge.Entry(
                source: Self.source(of: event), detailType: event.type.rawValue, detail: event.envelopeJSON, eventBusName: busName, resources: []
            )
        }
        let output: EventBridge.PutEventsOutput
        do {
            output = try await AWSDelivery.withCallBudget(callBudget) { try await self.events.putEvents(entries) }
        } catch {
            let reason = AWSDelivery.reason(error)
            logger.debug("EventBridge PutEvents failed", metadata: ["sink": "\(id)", "events": "\(batch.count)", "reason": "\(reason)"])
            return Array(repeating: .retry(reason), count: batch.count)
        }
        if output.failedEntryCount > 0 {
            logger.debug("EventBridge PutEvents refused some entries", metadata: ["sink": "\(id)", "failed": "\(output.failedEntryCount)", "events": "\(batch.count)"])
        }
        return output.entries.map { entry in
            if entry.succeeded { return .delivered }
            let reason = [entry.errorCode ?? "no EventId", entry.errorMessage].compactMap { $0 }.joined(separator: ": ")
            return .retry(reason.count > 200 ? String(reason.prefix(200)) + "…" : reason)
        }
    }

    /// The envelope's CloudEvents `source` (what the event says it came from).
    static func source(of event: OutboxEvent) -> String {
        let envelope = (try? JSONSerialization.jsonObject(with: Data(event.envelopeJSON.utf8))) as? [String: Any]
        return envelope?["source"] as? String ?? "onboard"
    }
}
