import Foundation

extension OnboardingError.Code {
    /// No event with this id is failed (``EventOutbox/redeliver(eventId:)``): 404.
    public static let eventNotFound = OnboardingError.Code(rawValue: "event_not_found")
}

/// What one sink made of one event so far: an entry of the outbox item's `delivery` map.
///
/// Stored as a map `{state, attempts, nextAttemptAt, firstFailedAt, lastError}`; `state` is
/// `delivered` or `failed`, absent while the sink is still retrying. A sink without an entry has
/// not been tried yet.
public struct SinkDelivery: Sendable, Hashable {
    /// Where a sink stands with an event.
    public enum State: String, Sendable, Hashable {
        /// The sink has it.
        case delivered
        /// Given up on: it kept failing for the configured time, or the sink was disabled.
        case failed
    }

    /// `nil` while the sink is still being retried.
    public var state: State?
    /// Attempts that failed so far (a delivered attempt is not counted).
    public var attempts: Int
    /// When the next attempt is due (Unix epoch milliseconds); `nil`: now.
    public var nextAttemptAt: Int?
    /// When the first attempt failed (Unix epoch milliseconds): `failAfter` counts from here.
    public var firstFailedAt: Int?
    /// Why the last attempt failed (never a secret).
    public var lastError: String?

    public init(state: State? = nil, attempts: Int = 0, nextAttemptAt: Int? = nil, firstFailedAt: Int? = nil, lastError: String? = nil) {
        self.state = state
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.firstFailedAt = firstFailedAt
        self.lastError = lastError
    }

    /// Whether the sink is done with the event (delivered or given up on).
    public var isSettled: Bool { state != nil }

    /// The stored map.
    public var attributeValue: AttributeValue {
        var map: [String: AttributeValue] = ["attempts": .int(attempts)]
        if let state { map["state"] = .string(state.rawValue) }
        if let nextAttemptAt { map["nextAttemptAt"] = .int(nextAttemptAt) }
        if let firstFailedAt { map["firstFailedAt"] = .int(firstFailedAt) }
        if let lastError { map["lastError"] = .string(lastError) }
        return .map(map)
    }

    /// Reads a stored map; `nil` when it is not one.
    public init?(_ value: AttributeValue) {
        guard case .map(let map) = value else { return nil }
        let stateName = map.valueForExactKey("state")?.stringValue
        self.init(
            state: stateName.flatMap(State.init(rawValue:)), attempts: map.valueForExactKey("attempts")?.intValue ?? 0,
            nextAttemptAt: map.valueForExactKey("nextAttemptAt")?.intValue, firstFailedAt: map.valueForExactKey("firstFailedAt")?.intValue,
            lastError: map.valueForExactKey("lastError")?.stringValue
        )
    }

    /// A whole `delivery` map as stored.
    public static func attributeValue(_ delivery: [String: SinkDelivery]) -> AttributeValue {
        .map(delivery.mapValues(\.attributeValue))
    }
}

/// One event in the outbox (pending) or in `_outbox-failed`: the envelope as recorded and the
/// delivery state per sink id.
public struct OutboxEntry: Sendable, Hashable {
    /// Where the item is (an outbox shard, or the failed partition).
    public var key: ItemKey
    /// The event id (ULID).
    public var eventId: String
    public var tenantId: TenantID
    public var type: TenantEventType
    /// RFC 3339 time of the change.
    public var time: String
    /// The CloudEvents envelope, byte for byte as recorded.
    public var envelopeJSON: String
    /// Sink id -> what it made of the event so far (absent: not tried yet).
    public var delivery: [String: SinkDelivery]
    /// Writes made to the item's delivery state (the condition of the next one: a concurrent
    /// writer is never overwritten).
    public var revision: Int

    public init(
        key: ItemKey, eventId: String, tenantId: TenantID, type: TenantEventType, time: String, envelopeJSON: String,
        delivery: [String: SinkDelivery], revision: Int = 0
    ) {
        self.key = key
        self.eventId = eventId
        self.tenantId = tenantId
        self.type = type
        self.time = time
        self.envelopeJSON = envelopeJSON
        self.delivery = delivery
        self.revision = revision
    }

    /// The envelope as a JSON value (what `GET /events` shows as `event`); `nil` if the stored text is damaged.
    public var envelope: AttributeValue? { try? JSONCodec.parse(envelopeJSON) }

    /// The delivery map as a JSON value (what `GET /events` shows as `delivery`).
    public var deliveryValue: AttributeValue { SinkDelivery.attributeValue(delivery) }

    /// Reads an outbox or failed item.
    /// - Throws: `.corruptItem` when an attribute is missing or malformed.
    public init(item: Item) throws(OnboardingError) {
        typealias Name = EventOutboxLayout.Attribute
        let key = item.key
        guard key.resourceKey.hasPrefix(EventOutboxLayout.prefix) else { throw .corruptItem(key, attribute: KeyAttribute.resourceKey) }
        guard let envelopeJSON = item.attributes.valueForExactKey(Name.envelope)?.stringValue else {
            throw .corruptItem(key, attribute: Name.envelope)
        }
        guard let tenantText = item.attributes.valueForExactKey(Name.eventTenantId)?.stringValue, let tenantId = TenantID(tenantText) else {
            throw .corruptItem(key, attribute: Name.eventTenantId)
        }
        guard let typeName = item.attributes.valueForExactKey(Name.eventType)?.stringValue, let type = TenantEventType(rawValue: typeName) else {
            throw .corruptItem(key, attribute: Name.eventType)
        }
        guard let time = item.attributes.valueForExactKey(Name.time)?.stringValue else { throw .corruptItem(key, attribute: Name.time) }
        var delivery: [String: SinkDelivery] = [:]
        if let stored = item.attributes.valueForExactKey(Name.delivery) {
            guard case .map(let map) = stored else { throw .corruptItem(key, attribute: Name.delivery) }
            for (sinkId, value) in map {
                guard let state = SinkDelivery(value) else { throw .corruptItem(key, attribute: Name.delivery) }
                delivery[sinkId] = state
            }
        }
        self.init(
            key: key, eventId: String(key.resourceKey.dropFirst(EventOutboxLayout.prefix.count)), tenantId: tenantId, type: type, time: time,
            envelopeJSON: envelopeJSON, delivery: delivery,
            revision: item.attributes.valueForExactKey(Name.deliveryRevision)?.intValue ?? 0
        )
    }

    /// The item's attributes (envelope, tenant, type, time, delivery map).
    func attributes(revision: Int?) -> [String: AttributeValue] {
        typealias Name = EventOutboxLayout.Attribute
        var attributes: [String: AttributeValue] = [
            Name.envelope: .string(envelopeJSON),
            Name.eventTenantId: .string(tenantId.rawValue),
            Name.eventType: .string(type.rawValue),
            Name.time: .string(time),
            Name.delivery: deliveryValue,
        ]
        if let revision { attributes[Name.deliveryRevision] = .int(revision) }
        return attributes
    }
}

/// One page of a listing of events (pending or failed), oldest first.
public struct OutboxPage: Sendable, Hashable {
    public var entries: [OutboxEntry]
    /// Pass as `cursor` for the next page; `nil` on the last page.
    public var nextCursor: String?

    public init(entries: [OutboxEntry], nextCursor: String?) {
        self.entries = entries
        self.nextCursor = nextCursor
    }
}

extension EventOutboxLayout.Attribute {
    /// On outbox and failed items: sink id -> ``SinkDelivery`` map.
    public static let delivery = "delivery"
    /// On outbox items: how many times the delivery state was written (optimistic concurrency).
    public static let deliveryRevision = "deliveryRevision"
    /// On a shard's lease item: who holds it.
    public static let leaseOwner = "owner"
    /// On a shard's lease item: until when (Unix epoch milliseconds).
    public static let leaseExpiresAt = "expiresAt"
}

extension EventOutboxLayout {
    /// The sort key of a shard's lease item (`_outbox#h`/`LEASE`; not under ``prefix``, so
    /// reading the shard's events never sees it).
    public static let leaseKey = "LEASE"
}

/// The store side of the outbox: what the dispatcher reads and writes, and what operators list
/// and redeliver (`GET /events?delivery=`, `POST /events/{id}/redeliver`, `onboard events`).
///
/// Every write is conditional, so that two writers (a dispatcher whose lease ran out and the
/// one that took over, a redelivery) never silently overwrite each other: the loser gets
/// `StoreError.conditionFailed` (or `.transactionCanceled`) and reads again.
public struct EventOutbox: Sendable {
    public let store: any TenantStore
    private let clock: any WallClock

    public init(store: any TenantStore, clock: any WallClock = SystemWallClock()) {
        self.store = store
        self.clock = clock
    }

    // MARK: The dispatcher's side

    /// One page of a shard's pending events, in id order (per tenant: recording order).
    /// - Parameters:
    ///   - shard: one of ``EventOutboxLayout/shards``.
    ///   - after: the `lastEvaluatedKey` of the previous page.
    /// - Returns: the entries, the keys of items that are not outbox items this version can read
    ///   (they cannot be delivered; the caller reports them), and where to continue (`nil`: no more).
    /// - Throws: store errors.
    public func pendingPage(
        shard: String, after: ItemKey? = nil, limit: Int = 100
    ) async throws -> (entries: [OutboxEntry], corrupt: [ItemKey], next: ItemKey?) {
        let page = try await store.query(ItemQuery(
            tenantId: shard, prefix: EventOutboxLayout.prefix, limit: min(max(limit, 1), ItemQuery.maxLimit), exclusiveStartKey: after
        ))
        var entries: [OutboxEntry] = []
        var corrupt: [ItemKey] = []
        for item in page.items {
            if let entry = try? OutboxEntry(item: item) { entries.append(entry) } else { corrupt.append(item.key) }
        }
        return (entries, corrupt, page.lastEvaluatedKey)
    }

    /// Writes the entry's delivery state, unless someone else wrote it since it was read.
    /// - Returns: the entry as now stored (its revision one higher).
    /// - Throws: `StoreError.conditionFailed` when the item is gone or was written since.
    public func recordProgress(_ entry: OutboxEntry) async throws -> OutboxEntry {
        var written = entry
        written.revision += 1
        try await store.update(entry.key, set: [
            EventOutboxLayout.Attribute.delivery: entry.deliveryValue,
            EventOutboxLayout.Attribute.deliveryRevision: .int(written.revision),
        ], condition: Self.unchanged(entry))
        return written
    }

    /// Removes an event every sink is done with, in one transaction with the `_outbox-failed`
    /// item when some sink gave up on it (`failed: true`). The failed item carries the revision
    /// this write makes, so that a redelivery puts the event back with a higher one (a stale
    /// writer's revision never matches again).
    /// - Throws: `StoreError` (`.transactionCanceled` / `.conditionFailed`) when the item is gone
    ///   or was written since it was read.
    public func finish(_ entry: OutboxEntry, failed: Bool) async throws {
        let condition = Self.unchanged(entry)
        guard failed else {
            try await store.delete(entry.key, condition: condition)
            return
        }
        let failedItem = Item(
            key: ItemKey(tenantId: EventOutboxLayout.failedPartition, resourceKey: entry.key.resourceKey),
            attributes: entry.attributes(revision: entry.revision + 1)
        )
        try await store.transact([.delete(entry.key, condition: condition), .put(failedItem, condition: nil)])
    }

    /// The condition that the outbox item is as it was read (exists, same revision).
    static func unchanged(_ entry: OutboxEntry) -> WriteCondition {
        let name = EventOutboxLayout.Attribute.deliveryRevision
        return entry.revision == 0
            ? .and(.itemExists, .attributeNotExists(name))
            : .attributeEquals(name, .int(entry.revision))
    }

    // MARK: Leases

    /// Takes (or renews) the shard's lease for `owner` until `duration` from now, if it is free,
    /// expired, or already `owner`'s.
    /// - Returns: whether `owner` holds the lease now.
    /// - Throws: store errors other than a failed condition.
    public func acquireLease(shard: String, owner: String, duration: Duration) async throws -> Bool {
        typealias Name = EventOutboxLayout.Attribute
        let now = Self.epochMilliseconds(clock.now())
        let item = Item(tenantId: shard, resourceKey: EventOutboxLayout.leaseKey, attributes: [
            Name.leaseOwner: .string(owner), Name.leaseExpiresAt: .int(now + Self.milliseconds(duration)),
        ])
        let condition: WriteCondition = .or(
            .itemNotExists, .or(.attributeEquals(Name.leaseOwner, .string(owner)), .attributeLessThan(Name.leaseExpiresAt, now))
        )
        do {
            try await store.put(item, condition: condition)
            return true
        } catch let error as StoreError where error.code == .conditionFailed {
            return false
        }
    }

    /// Gives the shard's lease back if `owner` holds it (nothing when it does not).
    public func releaseLease(shard: String, owner: String) async throws {
        do {
            try await store.delete(
                ItemKey(tenantId: shard, resourceKey: EventOutboxLayout.leaseKey),
                condition: .attributeEquals(EventOutboxLayout.Attribute.leaseOwner, .string(owner))
            )
        } catch let error as StoreError where error.code == .conditionFailed {}
    }

    // MARK: The operator's side

    /// Events some sink gave up on, oldest first.
    /// - Throws: `.invalidCursor` for a cursor not from this listing; store errors.
    public func failed(limit: Int, cursor: String?) async throws -> OutboxPage {
        let limit = min(max(limit, 1), ItemQuery.maxLimit - 1)
        let position = try Self.position(cursor)
        if position == Self.pastTheEnd { return OutboxPage(entries: [], nextCursor: nil) }
        let after = position.map { ItemKey(tenantId: EventOutboxLayout.failedPartition, resourceKey: $0) }
        let page = try await store.query(ItemQuery(
            tenantId: EventOutboxLayout.failedPartition, prefix: EventOutboxLayout.prefix, limit: limit + 1, exclusiveStartKey: after
        ))
        let (items, nextCursor) = ListCursor.page(page, limit: limit)
        return OutboxPage(entries: try items.map { item throws(OnboardingError) in try OutboxEntry(item: item) }, nextCursor: nextCursor)
    }

    /// Events not yet delivered to (or given up on by) every sink, oldest first across the
    /// shards, with their delivery state so far.
    /// - Throws: `.invalidCursor` for a cursor not from this listing; store errors.
    public func pending(limit: Int, cursor: String?) async throws -> OutboxPage {
        let limit = min(max(limit, 1), ItemQuery.maxLimit - 1)
        let after = try Self.position(cursor)
        if after == Self.pastTheEnd { return OutboxPage(entries: [], nextCursor: nil) }
        let store = self.store
        // Each shard's first limit + 1 after the cursor; the merged oldest `limit` are the page.
        let items = try await withThrowingTaskGroup(of: [Item].self) { group in
            for shard in EventOutboxLayout.shards {
                group.addTask {
                    try await store.query(ItemQuery(
                        tenantId: shard, prefix: EventOutboxLayout.prefix, limit: limit + 1,
                        exclusiveStartKey: after.map { ItemKey(tenantId: shard, resourceKey: $0) }
                    )).items
                }
            }
            var all: [Item] = []
            for try await items in group { all += items }
            return all
        }
        let sorted = items.sorted { $0.key.resourceKey.utf8.lexicographicallyPrecedes($1.key.resourceKey.utf8) }
        let shown = sorted.prefix(limit)
        let nextCursor = sorted.count > limit ? shown.last.map { ListCursor.encode($0.key.resourceKey) } : nil
        return OutboxPage(entries: try shown.map { item throws(OnboardingError) in try OutboxEntry(item: item) }, nextCursor: nextCursor)
    }

    /// Queues a failed event again: one transaction deletes its `_outbox-failed` item and puts
    /// it back in the outbox with the failed sinks' state cleared (delivered ones stay delivered),
    /// one revision past the failed item's, never a revision it had before: a dispatcher still
    /// holding a copy read before the give-up cannot write over the redelivery.
    /// - Returns: the entry as put back.
    /// - Throws: `.eventNotFound` when no failed event has this id; store errors.
    @discardableResult
    public func redeliver(eventId: String) async throws -> OutboxEntry {
        let notFound = OnboardingError(.eventNotFound, "no failed event has the id \(eventId)")
        guard !eventId.isEmpty, eventId.utf8.count <= 64, !eventId.contains(StoreRules.prefixRangeEnd) else { throw notFound }
        let failedKey = ItemKey(tenantId: EventOutboxLayout.failedPartition, resourceKey: EventOutboxLayout.prefix + eventId)
        guard let item = try await store.get(failedKey) else { throw notFound }
        var entry = try OutboxEntry(item: item)
        entry.delivery = entry.delivery.filter { $0.value.state == .delivered }
        entry.key = ItemKey(tenantId: EventOutboxLayout.shard(of: entry.tenantId), resourceKey: failedKey.resourceKey)
        // A failed item written before it carried a revision reads as 0: put back as 1, which no
        // revision-0 condition (`deliveryRevision` absent) matches.
        entry.revision += 1
        do {
            try await store.transact([
                .delete(failedKey, condition: .attributeEquals(EventOutboxLayout.Attribute.envelope, .string(entry.envelopeJSON))),
                .put(Item(key: entry.key, attributes: entry.attributes(revision: entry.revision)), condition: .itemNotExists),
            ])
        } catch let error as StoreError where error.code == .transactionCanceled {
            // Redelivered by someone else meanwhile (or, impossibly, still pending).
            throw notFound
        }
        return entry
    }

    /// Queues every failed event again (``redeliver(eventId:)``, one transaction each).
    /// - Returns: how many were queued.
    @discardableResult
    public func redeliverAllFailed() async throws -> Int {
        var count = 0
        var after: ItemKey?
        repeat {
            let page = try await store.query(ItemQuery(
                tenantId: EventOutboxLayout.failedPartition, prefix: EventOutboxLayout.prefix, limit: 100, exclusiveStartKey: after
            ))
            for item in page.items {
                let eventId = String(item.key.resourceKey.dropFirst(EventOutboxLayout.prefix.count))
                do {
                    try await redeliver(eventId: eventId)
                    count += 1
                } catch let error as OnboardingError where error.code == .eventNotFound {}
            }
            after = page.lastEvaluatedKey
        } while after != nil
        return count
    }

    // MARK: Helpers

    /// Where a listing cursor continues: after this sort key (`nil`: from the first event), or
    /// ``pastTheEnd`` (a cursor after every event's key: an empty page).
    private static func position(_ cursor: String?) throws(OnboardingError) -> String? {
        guard let cursor else { return nil }
        let position = try ListCursor.decode(cursor)
        guard !position.contains(StoreRules.prefixRangeEnd) else {
            throw OnboardingError(.invalidCursor, "the cursor does not name a position in this listing")
        }
        if position.hasPrefix(EventOutboxLayout.prefix) { return position }
        // A start key outside the query's range is refused by DynamoDB: clamp it.
        return position.utf8.lexicographicallyPrecedes(EventOutboxLayout.prefix.utf8) ? nil : pastTheEnd
    }

    /// A position after every `EVENT#` key.
    private static let pastTheEnd = EventOutboxLayout.prefix + String(StoreRules.prefixRangeEnd)

    /// Unix epoch milliseconds of a date.
    public static func epochMilliseconds(_ date: Date) -> Int { Int((date.timeIntervalSince1970 * 1000).rounded(.down)) }

    /// A duration in whole milliseconds.
    public static func milliseconds(_ duration: Duration) -> Int {
        Int(duration.components.seconds) * 1000 + Int(duration.components.attoseconds / 1_000_000_000_000_000)
    }
}
