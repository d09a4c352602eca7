import OnboardingCore

/// An event as the dispatcher hands it to sinks: read from the outbox, its envelope the exact
/// JSON text that was recorded (``TenantEvent/envelopeJSON``).
public struct OutboxEvent: Sendable, Hashable {
    /// The event id (CloudEvents `id`, the webhook's `webhook-id`).
    public var id: String
    public var tenantId: TenantID
    public var type: TenantEventType
    /// RFC 3339 time of the change.
    public var time: String
    /// The CloudEvents envelope, byte for byte as recorded: what every sink delivers.
    public var envelopeJSON: String

    public init(id: String, tenantId: TenantID, type: TenantEventType, time: String, envelopeJSON: String) {
        self.id = id
        self.tenantId = tenantId
        self.type = type
        self.time = time
        self.envelopeJSON = envelopeJSON
    }
}

/// What a sink made of one event.
public enum DeliveryResult: Sendable, Hashable {
    /// The receiver has it (2xx, `MessageId`, an entry without error).
    case delivered
    /// Not delivered this time; tried again after a backoff. The text says why (logged and kept
    /// on the outbox item as `lastError`; never a secret).
    case retry(String)
    /// The receiver said it wants no more events (a webhook's `410 Gone`): the sink is disabled
    /// for the rest of the process's life and its pending events are marked failed for it.
    case disable(String)
}

/// Somewhere events are delivered: a webhook endpoint, an SNS topic, an EventBridge bus, the log.
///
/// The dispatcher keeps per-tenant order: one call never holds two events of the same tenant,
/// and a tenant's next event is handed to a sink only once its previous one was delivered there
/// (or given up on). A sink may deliver the events of one call concurrently.
public protocol EventSink: Sendable {
    /// A stable name, stored on outbox items to remember what this sink already has:
    /// `webhook:<scheme>://<host>[:port]#<8 hex of SHA-256 of the URL>` (never the URL itself), `sns:<topic ARN>`, `eventbridge:<bus>`, `log`.
    var id: String { get }
    /// The most events one ``deliver(_:)`` call takes (EventBridge: 10).
    var maxBatch: Int { get }
    /// Delivers the events and says, for each in the same order, what became of it. Never
    /// throws: every failure is a ``DeliveryResult``.
    func deliver(_ events: [OutboxEvent]) async -> [DeliveryResult]
}
