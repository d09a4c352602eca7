import AWSClient
import Logging
import OnboardingCore
import RequestBudget

/// Publishes events to an SNS topic: the message is the envelope's JSON, with the message
/// attributes `type` (the event type) and `tenantId`, so that subscriptions can filter. On a
/// FIFO topic (`….fifo`) the message group is the tenant (SNS keeps its order) and the
/// deduplication id is the event id (a redelivery within 5 minutes is dropped by SNS).
///
/// Each `Publish` runs under a small retry budget of its own (``callBudget``, 2 retries): the
/// dispatcher does the long-term retrying.
public struct SNSSink: EventSink {
    public let sns: SNS
    public let topicArn: String
    public let id: String
    public let maxBatch: Int
    /// The time one `Publish` may take, its retries included.
    public let callBudget: Duration
    private let logger: Logger

    /// - Parameters:
    ///   - sns: the SNS client (endpoint and credentials).
    ///   - topicArn: the topic; the sink's id is `sns:<topicArn>`.
    ///   - maxBatch: the most events published at once (one `Publish` each, concurrently).
    public init(
        sns: SNS, topicArn: String, callBudget: Duration = .seconds(5), maxBatch: Int = 10, logger: Logger = Logger(label: "onboard.events.sns")
    ) {
        self.sns = sns
        self.topicArn = topicArn
        self.id = "sns:\(topicArn)"
        self.callBudget = callBudget
        self.maxBatch = maxBatch
        self.logger = logger
    }

    /// Whether the topic is a FIFO topic (its name ends in `.fifo`).
    public var isFIFO: Bool { topicArn.hasSuffix(".fifo") }

    public func deliver(_ events: [OutboxEvent]) async -> [DeliveryResult] {
        await withTaskGroup(of: (Int, DeliveryResult).self) { group in
            for (index, event) in events.enumerated() {
                group.addTask { (index, await publish(event)) }
            }
            var results = [DeliveryResult](repeating: .retry("not attempted"), count: events.count)
            for await (index, result) in group { results[index] = result }
            return results
        }
    }

    private func publish(_ event: OutboxEvent) async -> DeliveryResult {
        do {
            _ = try await AWSDelivery.withCallBudget(callBudget) {
                try await sns.publish(
                    topicArn: topicArn, message: event.envelopeJSON, attributes: ["type": event.type.rawValue, "tenantId": event.tenantId.rawValue],
                    messageGroupId: isFIFO ? event.tenantId.rawValue : nil, deduplicationId: isFIFO ? event.id : nil
                )
            }
            return .delivered
        } catch {
            let reason = AWSDelivery.reason(error)
            logger.debug("SNS Publish failed", metadata: ["sink": "\(id)", "eventId": "\(event.id)", "reason": "\(reason)"])
            return .retry(reason)
        }
    }
}

/// What the AWS sinks share.
enum AWSDelivery {
    /// Runs one AWS call under a budget of its own (replacing any request's budget the task
    /// carries): a few seconds and 2 retries, as the dispatcher retries for hours.
    static func withCallBudget<T: Sendable>(_ timeout: Duration, _ body: () async throws -> T) async throws -> T {
        try await RetryBudget.$current.withValue(RetryBudget(timeout: timeout, maxRetries: 2)) { try await body() }
    }

    /// A short reason for a failed call (kept as the outbox item's `lastError`).
    static func reason(_ error: any Error) -> String {
        let text: String
        switch error {
        case let error as AWSServiceError: text = error.description
        case let error as AWSTransportError: text = error.description
        case is CancellationError: text = "cancelled"
        default: text = String(describing: error)
        }
        return text.count > 200 ? String(text.prefix(200)) + "…" : text
    }
}
