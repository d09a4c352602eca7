import Foundation

/// One page of a tenant's audit trail.
public struct TenantEventPage: Sendable, Hashable {
    /// Newest first.
    public var events: [TenantEvent]
    /// Pass back to get the next (older) page; `nil` on the last page.
    public var nextCursor: String?

    public init(events: [TenantEvent], nextCursor: String?) {
        self.events = events
        self.nextCursor = nextCursor
    }
}

/// A tenant's audit trail: the events recorded in its partition (`EVENT#<id>`, see
/// ``EventOutboxLayout``), newest first. They outlive the tenant's offboarding unless it purged
/// them (then only `tenant.offboarded` is left).
public struct TenantEventLog: Sendable {
    /// The largest page of ``list(_:limit:cursor:type:)``.
    public static let maxPageSize = 100

    private let store: any TenantStore

    public init(store: any TenantStore) {
        self.store = store
    }

    /// The tenant's events, newest first, a page at a time, optionally only those of one type.
    ///
    /// The filter is applied while reading: the partition's events are read in batches until the
    /// page is full (and one more match shows a next page exists) or none are left, so a page is
    /// short only when it is the last. The cursor is opaque, like the other listings' (the last
    /// event's sort key, base64url; any cursor is a position: see `ListCursor`).
    /// - Parameters:
    ///   - limit: events per page, 1 to ``maxPageSize`` (clamped).
    ///   - type: only events of this type (`nil`: every event).
    /// - Throws: `.tenantNotFound` when there is neither a profile nor a tombstone;
    ///   `.invalidCursor`; `.corruptItem` for a stored event that is no envelope.
    public func list(_ tenantId: TenantID, limit: Int, cursor: String?, type: TenantEventType? = nil) async throws -> TenantEventPage {
        let limit = min(max(limit, 1), Self.maxPageSize)
        let prefix = EventOutboxLayout.prefix
        let position = try ListCursor.descendingPosition(cursor, prefix: prefix, in: tenantId)
        // A tombstone is the profile item too: an offboarded tenant's trail stays readable.
        guard try await store.get(Tenant.key(tenantId)) != nil else { throw OnboardingError.tenantNotFound(tenantId.rawValue) }
        guard case .after(var start) = position else { return TenantEventPage(events: [], nextCursor: nil) }
        var matching: [(key: ItemKey, event: TenantEvent)] = []
        // Unfiltered, one more than the page tells whether another follows; filtered, bigger
        // batches, since most events read may not match.
        let batch = type == nil ? limit + 1 : Self.maxPageSize
        while true {
            let page = try await store.query(ItemQuery(
                tenantId: tenantId.rawValue, prefix: prefix, limit: batch, exclusiveStartKey: start, ascending: false
            ))
            for item in page.items {
                if let type, let stored = item[EventOutboxLayout.Attribute.eventType]?.stringValue, stored != type.rawValue { continue }
                guard let envelope = item[EventOutboxLayout.Attribute.envelope]?.stringValue else {
                    throw OnboardingError.corruptItem(item.key, attribute: EventOutboxLayout.Attribute.envelope)
                }
                let event = try TenantEvent(envelopeJSON: envelope)
                if let type, event.type != type { continue }
                matching.append((item.key, event))
                if matching.count > limit {
                    // A full page, and proof that another one follows.
                    let shown = matching.prefix(limit)
                    return TenantEventPage(events: shown.map(\.event), nextCursor: shown.last.map { ListCursor.encode($0.key.resourceKey) })
                }
            }
            guard let next = page.lastEvaluatedKey else { return TenantEventPage(events: matching.map(\.event), nextCursor: nil) }
            start = next
        }
    }
}

extension ListCursor {
    /// The position a `cursor` names in a newest-first (descending) listing of `prefix` in the
    /// tenant's partition: ``position(_:prefix:in:)`` mirrored. A cursor after the prefix's range
    /// starts from the newest item, one before it gives an empty page.
    /// - Throws: `.invalidCursor` for a cursor that is no key a partition can hold.
    static func descendingPosition(_ cursor: String?, prefix: String, in tenantId: TenantID) throws(OnboardingError) -> PartitionPosition {
        guard let cursor else { return .after(nil) }
        let position = try decode(cursor)
        guard !position.contains(StoreRules.prefixRangeEnd), position.utf8.count <= StoreRules.maxSortKeyBytes else {
            throw OnboardingError(.invalidCursor, "the cursor does not name a position in this listing")
        }
        // Byte order, as the stores sort keys.
        if position.utf8.starts(with: prefix.utf8) { return .after(ItemKey(tenantId: tenantId.rawValue, resourceKey: position)) }
        return position.utf8.lexicographicallyPrecedes(prefix.utf8) ? .pastTheEnd : .after(nil)
    }
}
