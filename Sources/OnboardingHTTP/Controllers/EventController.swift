import Foundation
import Hummingbird
import Logging
import OnboardingCore

/// The events routes: a tenant's audit trail, and the admin's view of delivery.
///
/// - `GET /tenants/{tenantId}/events` (the tenant itself, or the admin): the tenant's events,
///   newest first, each its CloudEvents envelope exactly as recorded (and delivered).
/// - `GET /events?delivery=failed|pending` (admin): events some sink gave up on, or not yet
///   delivered everywhere, oldest first, with each sink's delivery state.
/// - `POST /events/{eventId}/redeliver` (admin): queues a failed event again (`202`).
struct EventController: Sendable {
    let log: TenantEventLog
    let outbox: EventOutbox
    /// Told of a redelivered event, which wakes the dispatcher (as a newly recorded one does).
    let recorder: EventRecorder

    /// The largest page of every events listing; 20 when `limit` is absent.
    static let maxPageSize = TenantEventLog.maxPageSize

    var routes: [Route] {
        [
            Route(.get, "/tenants/{tenantId}/events", access: .ownTenant, handler: tenantEvents),
            Route(.get, "/events", access: .admin, handler: deliveries),
            Route(.post, "/events/{eventId}/redeliver", access: .admin, handler: redeliver),
        ]
    }

    /// The query parameters `GET /tenants/{tenantId}/events` accepts.
    static let auditParameters: Set<String> = ["limit", "cursor", "type"]
    /// The query parameters `GET /events` accepts.
    static let deliveryParameters: Set<String> = ["delivery", "limit", "cursor"]

    @Sendable func tenantEvents(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try TenantController.tenantID(context)
        let query = try ListingQuery(
            request, accepts: Self.auditParameters, maxPageSize: Self.maxPageSize, usage: "this listing takes limit, cursor and type"
        )
        var type: TenantEventType?
        if let text = query.parameters["type"] {
            guard let parsed = TenantEventType(rawValue: String(text)) else {
                throw Problem.badRequest("type must be one of \(TenantEventType.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            type = parsed
        }
        let page = try await log.list(tenantId, limit: query.limit, cursor: query.cursor, type: type)
        var body: [String: AttributeValue] = ["events": .list(page.events.map(Self.envelope))]
        if let next = page.nextCursor { body["nextCursor"] = .string(next) }
        return JSONBody.response(.ok, body)
    }

    @Sendable func deliveries(_ request: Request, context: AppRequestContext) async throws -> Response {
        let query = try ListingQuery(
            request, accepts: Self.deliveryParameters, maxPageSize: Self.maxPageSize,
            usage: "GET /events takes delivery (failed or pending), limit and cursor"
        )
        let page: OutboxPage
        switch query.parameters["delivery"] {
        case "failed"?: page = try await outbox.failed(limit: query.limit, cursor: query.cursor)
        case "pending"?: page = try await outbox.pending(limit: query.limit, cursor: query.cursor)
        case nil: throw Problem.badRequest("delivery is required: 'failed' (events a sink gave up on) or 'pending' (not yet delivered everywhere)")
        default: throw Problem.badRequest("delivery must be 'failed' or 'pending'")
        }
        let events: [AttributeValue] = try page.entries.map { entry in
            guard let envelope = entry.envelope else {
                throw OnboardingError.corruptItem(entry.key, attribute: EventOutboxLayout.Attribute.envelope)
            }
            return .map(["event": envelope, "delivery": .map(entry.delivery.mapValues(Self.deliveryState))])
        }
        var body: [String: AttributeValue] = ["events": .list(events)]
        if let next = page.nextCursor { body["nextCursor"] = .string(next) }
        return JSONBody.response(.ok, body)
    }

    @Sendable func redeliver(_ request: Request, context: AppRequestContext) async throws -> Response {
        guard let eventId = context.parameters.get("eventId").flatMap(Self.eventID) else {
            throw Problem.badRequest("An event id is a ULID: 26 characters of Crockford base32 (0-9, A-Z without I, L, O, U), the first 0-7")
        }
        let entry: OutboxEntry
        do {
            entry = try await outbox.redeliver(eventId: eventId)
        } catch let error as OnboardingError where error.code == .eventNotFound {
            throw Problem.eventNotFound()
        }
        if let event = try? TenantEvent(envelopeJSON: entry.envelopeJSON) { recorder.recorded(event) }
        context.logger.info("event queued for redelivery", metadata: ["eventId": .string(eventId), "tenantId": .string(entry.tenantId.rawValue)])
        return JSONBody.response(.accepted, ["eventId": .string(eventId)])
    }

    // MARK: Representation

    /// A stored event as the API shows it: its envelope (the JSON recorded and delivered).
    static func envelope(_ event: TenantEvent) -> AttributeValue {
        .map(event.envelope)
    }

    /// A sink's delivery state as the API shows it: `state` (`delivered`, `failed`, or
    /// `retrying` while attempts go on), `attempts`, `lastError`, and the times as RFC 3339.
    static func deliveryState(_ delivery: SinkDelivery) -> AttributeValue {
        var map: [String: AttributeValue] = [
            "state": .string(delivery.state?.rawValue ?? "retrying"),
            "attempts": .int(delivery.attempts),
        ]
        if let error = delivery.lastError { map["lastError"] = .string(error) }
        if let due = delivery.nextAttemptAt, delivery.state == nil { map["nextAttemptAt"] = .string(timestamp(milliseconds: due)) }
        if let first = delivery.firstFailedAt { map["firstFailedAt"] = .string(timestamp(milliseconds: first)) }
        return .map(map)
    }

    static func timestamp(milliseconds: Int) -> String {
        Timestamp.format(Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }

    /// The path's event id, upper-cased, if it is a ULID (26 Crockford base32 characters, the
    /// first at most 7 so the value fits 128 bits); `nil` otherwise.
    static func eventID(_ text: String) -> String? {
        let upper = text.uppercased()
        guard upper.utf8.count == 26, let first = upper.utf8.first, (UInt8(ascii: "0")...UInt8(ascii: "7")).contains(first) else { return nil }
        let alphabet = Set("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)
        return upper.utf8.allSatisfy(alphabet.contains) ? upper : nil
    }
}

extension Problem {
    /// `POST /events/{eventId}/redeliver` of an event that is not failed.
    static func eventNotFound() -> Problem {
        Problem(
            .notFound, code: "event-not-found", title: "Event not found",
            detail: "No failed event has this id (it may be delivered, still pending, or already queued again); see GET /events?delivery=failed"
        )
    }
}
