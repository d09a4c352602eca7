import Logging
import OnboardingCore

/// The sink of last resort and the default: one info line per event (its type, id and tenant;
/// never its data, which holds the tenant's phone number).
public struct LogSink: EventSink {
    public let id = "log"
    public let maxBatch = 100
    private let logger: Logger

    public init(logger: Logger = Logger(label: "onboard.events.log")) {
        self.logger = logger
    }

    public func deliver(_ events: [OutboxEvent]) async -> [DeliveryResult] {
        for event in events {
            logger.info(
                "event", metadata: ["type": .string(event.type.rawValue), "eventId": .string(event.id), "subject": .string(event.tenantId.rawValue)]
            )
        }
        return events.map { _ in .delivered }
    }
}
