import Foundation

/// What happened to a tenant: the `type` of a ``TenantEvent`` (CloudEvents `type`).
public enum TenantEventType: String, Sendable, Hashable, CaseIterable {
    case tenantOnboarded = "tenant.onboarded"
    case tenantUpdated = "tenant.updated"
    case tenantSuspended = "tenant.suspended"
    case tenantReactivated = "tenant.reactivated"
    case tenantOffboarding = "tenant.offboarding"
    case tenantOffboarded = "tenant.offboarded"
    case apiKeyCreated = "apikey.created"
    case apiKeyRevoked = "apikey.revoked"
}

/// One change of a tenant, as recorded in its partition (`EVENT#<id>`, the audit trail) and in
/// the outbox (``EventOutboxLayout``), in the change's own transaction: a CloudEvents 1.0 JSON
/// envelope.
///
/// The envelope's bytes are made once, when the event is recorded, and stored as text: every
/// sink delivers exactly those bytes, so a webhook signature is over what the receiver reads.
public struct TenantEvent: Sendable, Hashable {
    /// Time-ordered (``EventID``): sorts in the order the events were recorded.
    public var id: String
    public var type: TenantEventType
    public var tenantId: TenantID
    /// RFC 3339 UTC with milliseconds (``Timestamp``).
    public var time: String
    /// CloudEvents `source` (configurable; default `urn:onboard:<host>`).
    public var source: String
    /// Who made the change (extension `actor`): `admin`, `apikey:<keyId>`, `jwt:<subject>`,
    /// `tenant:<tenantId>`, `operator` (the CLI), `system` (background work). Never a secret.
    public var actor: String
    /// The request that made the change (extension `requestid`); `nil` outside a request.
    public var requestID: String?
    /// CloudEvents `data`: the tenant as the API shows it (`tenant`), the names of the fields
    /// the change set (`changed`), a suspension's `reason`, an API key's `apiKey` (never its secret).
    public var data: [String: AttributeValue]

    public init(
        id: String, type: TenantEventType, tenantId: TenantID, time: String, source: String, actor: String, requestID: String?,
        data: [String: AttributeValue]
    ) {
        self.id = id
        self.type = type
        self.tenantId = tenantId
        self.time = time
        self.source = source
        self.actor = actor
        self.requestID = requestID
        self.data = data
    }

    /// The CloudEvents 1.0 structured-mode JSON envelope (`application/cloudevents+json`).
    public var envelope: [String: AttributeValue] {
        var envelope: [String: AttributeValue] = [
            "specversion": .string("1.0"),
            "id": .string(id),
            "source": .string(source),
            "type": .string(type.rawValue),
            "subject": .string(tenantId.rawValue),
            "time": .string(time),
            "datacontenttype": .string("application/json"),
            "data": .map(data),
            "actor": .string(actor),
        ]
        if let requestID { envelope["requestid"] = .string(requestID) }
        return envelope
    }

    /// The envelope as JSON text (keys sorted): the bytes stored and delivered.
    public var envelopeJSON: String { JSONCodec.serialize(.map(envelope)) }

    /// Reads an envelope back (the stored text).
    /// - Throws: ``OnboardingError`` `.corruptItem` when it is not an envelope this service wrote.
    public init(envelopeJSON text: String) throws(OnboardingError) {
        guard case .map(let fields)? = try? JSONCodec.parse(text),
            let id = fields["id"]?.stringValue, let typeName = fields["type"]?.stringValue, let type = TenantEventType(rawValue: typeName),
            let subject = fields["subject"]?.stringValue, let tenantId = TenantID(subject), let time = fields["time"]?.stringValue,
            let source = fields["source"]?.stringValue, let actor = fields["actor"]?.stringValue, case .map(let data)? = fields["data"]
        else { throw OnboardingError(.corruptItem, "a stored event is not a CloudEvents envelope of this service") }
        self.init(
            id: id, type: type, tenantId: tenantId, time: time, source: source, actor: actor, requestID: fields["requestid"]?.stringValue,
            data: data
        )
    }
}

/// Who is making the changes of the current task, and for which request: read by
/// ``EventRecorder`` for an event's `actor` and `requestid`. The HTTP layer binds it for each
/// authenticated request, the operator CLI for its commands; background work runs as `system`.
public struct ChangeContext: Sendable, Hashable {
    public var actor: String
    public var requestID: String?

    public init(actor: String, requestID: String? = nil) {
        self.actor = actor
        self.requestID = requestID
    }

    /// Background work (offboarding batches, sweeps).
    public static let system = ChangeContext(actor: "system")

    /// The context of the current task (`system` unless bound).
    @TaskLocal public static var current: ChangeContext = .system
}
