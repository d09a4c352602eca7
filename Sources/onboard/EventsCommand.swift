import ArgumentParser
import Foundation
import OnboardingCore
import OnboardingHTTP

/// `onboard events …`: a tenant's audit trail, and the events whose delivery is pending or failed,
/// from a terminal (what `GET /tenants/{id}/events`, `GET /events?delivery=` and
/// `POST /events/{id}/redeliver` do).
struct EventsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "events",
        abstract: "List a tenant's events (its audit trail) or the events not yet delivered, and queue failed ones again.",
        discussion: """
            Store options as for `serve`. Output: a table for people, or --json for scripts (JSON lines). \
            Exit codes: 0 done, 1 not found, 64 usage (bad arguments), 69 store unavailable.
            """,
        subcommands: [List.self, Redeliver.self]
    )

    /// `onboard events list --tenant ID | --failed | --pending`.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List a tenant's events newest first (--tenant), or the events some sink gave up on (--failed) or not yet delivered everywhere (--pending), oldest first.",
            discussion: """
                With --json, one JSON object per line: a tenant's events are CloudEvents envelopes; \
                --failed and --pending give {"event": <envelope>, "delivery": {<sink id>: {state (delivered, failed \
                or retrying), attempts, lastError, nextAttemptAt, firstFailedAt}}}, as GET /events?delivery= does. \
                A note on standard error says when more events exist.
                """
        )

        @OptionGroup var options: OperatorOptions

        @Option(help: ArgumentHelp("The tenant whose events (its audit trail) to list.", valueName: "tenant-id"))
        var tenant: String?

        @Option(help: ArgumentHelp(
            "With --tenant: only events of this type (\(TenantEventType.allCases.map(\.rawValue).joined(separator: ", "))).", valueName: "type"
        ))
        var type: String?

        @Flag(help: "The events some sink gave up on (after --event-fail-after, or a webhook's 410); `onboard events redeliver` queues them again.")
        var failed = false

        @Flag(help: "The events still in the outbox: not yet delivered to (or given up on by) every sink.")
        var pending = false

        @Option(help: ArgumentHelp("How many events to show at most.", valueName: "count"))
        var limit: Int = 50

        func validate() throws {
            let chosen = [tenant != nil, failed, pending].filter { $0 }.count
            guard chosen == 1 else {
                throw ArgumentParser.ValidationError(chosen == 0 ? "give --tenant <tenant-id>, --failed or --pending" : "give only one of --tenant, --failed and --pending")
            }
            if let tenant { _ = try parseTenantID(tenant) }
            if type != nil, tenant == nil { throw ArgumentParser.ValidationError("--type goes with --tenant") }
            _ = try parsedType()
            guard limit >= 1 else { throw ArgumentParser.ValidationError("--limit must be 1 or more") }
        }

        func parsedType() throws -> TenantEventType? {
            guard let type else { return nil }
            guard let parsed = TenantEventType(rawValue: type.lowercased()) else {
                throw ArgumentParser.ValidationError("--type must be one of \(TenantEventType.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return parsed
        }

        func run() async throws {
            let type = try parsedType()
            let tenantId = try tenant.map(parseTenantID)
            let json = options.json
            let limit = self.limit
            let failed = self.failed
            try await options.storeOptions.withOperatorStore { opened in
                if let tenantId {
                    let log = TenantEventLog(store: opened.store)
                    var shown: [TenantEvent] = []
                    var cursor: String?
                    repeat {
                        let page = try await log.list(tenantId, limit: min(limit - shown.count, TenantEventLog.maxPageSize), cursor: cursor, type: type)
                        if json {
                            for event in page.events { CLIOutput.json(event.envelope) }
                        }
                        shown += page.events
                        cursor = page.nextCursor
                    } while cursor != nil && shown.count < limit
                    if !json { CLIOutput.print(EventView.table(shown)) }
                    if cursor != nil { Console.note("(more events exist: show them with --limit \(limit * 2))") }
                } else {
                    let outbox = EventOutbox(store: opened.store)
                    var shown: [OutboxEntry] = []
                    var cursor: String?
                    repeat {
                        let wanted = min(limit - shown.count, 100)
                        let page = failed ? try await outbox.failed(limit: wanted, cursor: cursor) : try await outbox.pending(limit: wanted, cursor: cursor)
                        if json {
                            for entry in page.entries {
                                CLIOutput.json(EventView.outboxJSON(entry))
                            }
                        }
                        shown += page.entries
                        cursor = page.nextCursor
                    } while cursor != nil && shown.count < limit
                    if !json { CLIOutput.print(EventView.table(shown, emptyText: failed ? "no failed events" : "no pending events")) }
                    if cursor != nil { Console.note("(more events exist: show them with --limit \(limit * 2))") }
                }
            }
        }
    }

    /// `onboard events redeliver ID | --all-failed`.
    struct Redeliver: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Queue failed events again: the sinks that gave up on them are tried anew (those that have them are not).",
            discussion: """
                The event goes back to the outbox; a running `onboard serve` (or the next one started, or the \
                Lambda function's sweep) delivers it. Exit 1 when no failed event has the id.
                """
        )

        @OptionGroup var options: OperatorOptions

        @Argument(help: ArgumentHelp("The event's id (26 characters, as `onboard events list --failed` shows).", valueName: "event-id"))
        var eventId: String?

        @Flag(help: "Every failed event.")
        var allFailed = false

        func validate() throws {
            switch (eventId, allFailed) {
            case (nil, false): throw ArgumentParser.ValidationError("give an event id or --all-failed")
            case (.some, true): throw ArgumentParser.ValidationError("give an event id or --all-failed, not both")
            case (let id?, false):
                guard EventView.isEventID(id) else {
                    throw ArgumentParser.ValidationError("'\(id)' is not an event id (26 characters of 0-9 A-Z, as `onboard events list --failed` shows)")
                }
            case (nil, true): break
            }
        }

        func run() async throws {
            let json = options.json
            let eventId = self.eventId?.uppercased()
            try await options.storeOptions.withOperatorStore { opened in
                let outbox = EventOutbox(store: opened.store)
                if let eventId {
                    let entry = try await outbox.redeliver(eventId: eventId)
                    if json {
                        CLIOutput.json(["eventId": .string(entry.eventId), "tenantId": .string(entry.tenantId.rawValue), "redelivered": .bool(true)])
                    } else {
                        Console.line("queued again: event \(entry.eventId) (\(entry.type.rawValue) of tenant \(entry.tenantId.rawValue))")
                    }
                } else {
                    let count = try await outbox.redeliverAllFailed()
                    if json {
                        CLIOutput.json(["redelivered": .int(count)])
                    } else {
                        Console.line("queued again: \(count) failed \(count == 1 ? "event" : "events")")
                    }
                }
            }
        }
    }
}

/// How the operator commands show events.
enum EventView {
    /// A tenant's events: id, time, type, who, what changed.
    static func table(_ events: [TenantEvent]) -> [String] {
        guard !events.isEmpty else { return ["no events"] }
        return CLIOutput.table(
            header: ["EVENT ID", "TIME", "TYPE", "ACTOR", "DETAIL"],
            rows: events.map { [$0.id, time($0.time), $0.type.rawValue, $0.actor, detail($0.data)] }
        )
    }

    /// Pending or failed events: id, tenant, type, time, and where each sink stands.
    static func table(_ entries: [OutboxEntry], emptyText: String) -> [String] {
        guard !entries.isEmpty else { return [emptyText] }
        return CLIOutput.table(
            header: ["EVENT ID", "TENANT ID", "TYPE", "TIME", "DELIVERY"],
            rows: entries.map { [$0.eventId, $0.tenantId.rawValue, $0.type.rawValue, time($0.time), delivery($0.delivery)] }
        )
    }

    /// A pending or failed event as `GET /events?delivery=` shows it: the envelope, and per sink
    /// tried its `state` (`delivered`, `failed`, `retrying`), `attempts`, `lastError` and the
    /// times as RFC 3339.
    static func outboxJSON(_ entry: OutboxEntry) -> [String: AttributeValue] {
        let delivery = entry.delivery.mapValues { sink -> AttributeValue in
            var map: [String: AttributeValue] = ["state": .string(sink.state?.rawValue ?? "retrying"), "attempts": .int(sink.attempts)]
            if let error = sink.lastError { map["lastError"] = .string(error) }
            if let due = sink.nextAttemptAt, sink.state == nil { map["nextAttemptAt"] = .string(timestamp(milliseconds: due)) }
            if let first = sink.firstFailedAt { map["firstFailedAt"] = .string(timestamp(milliseconds: first)) }
            return .map(map)
        }
        return ["event": entry.envelope ?? .string(entry.envelopeJSON), "delivery": .map(delivery)]
    }

    static func timestamp(milliseconds: Int) -> String {
        Timestamp.format(Date(timeIntervalSince1970: Double(milliseconds) / 1000))
    }

    /// `2026-12-02T03:50:54.123Z` → `2026-12-02 03:50:54 UTC` (events of one minute stay apart).
    static func time(_ timestamp: String) -> String {
        let characters = Array(timestamp)
        guard characters.count >= 20, characters[10] == "T", timestamp.hasSuffix("Z") else { return timestamp }
        return String(characters[0..<10]) + " " + String(characters[11..<19]) + " UTC"
    }

    /// What the event says beyond its type: the changed fields, the suspension reason, the key.
    static func detail(_ data: [String: AttributeValue]) -> String {
        var parts: [String] = []
        if case .list(let fields)? = data["changed"] {
            let names = fields.compactMap(\.stringValue)
            if !names.isEmpty { parts.append("changed " + names.joined(separator: ",")) }
        }
        if let reason = data["reason"]?.stringValue { parts.append("reason: \(reason)") }
        if let keyId = data["apiKey"]?.mapValue?["keyId"]?.stringValue { parts.append("key \(keyId)") }
        return parts.isEmpty ? "-" : parts.joined(separator: "; ")
    }

    /// Each sink's state: `webhook:https://… failed (3 attempts: HTTP 500)`, `log delivered`,
    /// `sns:… retrying (2 attempts: …)`; sinks not tried yet are not listed.
    static func delivery(_ delivery: [String: SinkDelivery]) -> String {
        guard !delivery.isEmpty else { return "not tried yet" }
        return delivery.sorted { $0.key < $1.key }.map { sink, state in
            let name = state.state?.rawValue ?? "retrying"
            guard state.attempts > 0 else { return "\(sink) \(name)" }
            let attempts = "\(state.attempts) failed \(state.attempts == 1 ? "attempt" : "attempts")"
            return "\(sink) \(name) (\(attempts)\(state.lastError.map { ": \($0)" } ?? ""))"
        }.joined(separator: "; ")
    }

    /// A ULID: 26 characters of Crockford base32 (either case).
    static func isEventID(_ text: String) -> Bool {
        text.count == 26 && text.uppercased().allSatisfy { "0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains($0) }
    }
}
