import Foundation
import RequestBudget

/// Removes a tenant: every item of its partition goes, in batches, and the profile stays as a
/// tombstone (``TenantStatus/offboarded``, `offboardedAt`, no name or phone). The tenant's events
/// (`EVENT#…`, its audit record) stay too, unless the offboarding was started with `purgeEvents`.
///
/// Two steps, each safe to repeat and to interrupt anywhere:
/// - ``start(_:purgeEvents:)``: one transaction sets the profile to ``TenantStatus/offboarding``
///   (under the version read), writes a marker item in the reserved partition `_offboarding`
///   (``OffboardingMarker``), so unfinished work is found with one query, never a scan, and
///   records `tenant.offboarding`.
/// - ``finish(_:maxBatches:progress:)``: deletes the partition's items, one transaction per batch
///   (at most ``TransactionLimits/maxWrites`` writes: the deletes and the marker's progress count),
///   an API key always together with its look-up item `_apikey#<keyId>`; then one transaction
///   writes the tombstone, deletes the marker and records `tenant.offboarded` (so that event
///   survives a purge, which deletes the events before it).
///
/// Both run as whoever ``ChangeContext/current`` names (`system` in background work).
///
/// Whatever fails in between, the table is in one of two states: the tenant `OFFBOARDING` with
/// its marker (``resumeAll(maxBatchesPerTenant:)`` or another ``finish(_:maxBatches:progress:)``
/// completes it), or `OFFBOARDED` without one. Nothing can be added to the partition once the
/// tenant is `OFFBOARDING`: every write that creates an item there (resources, API keys) checks
/// ``WriteCondition/tenantAcceptsNewItems`` in its transaction.
///
/// Progress lives on the marker (`itemsDeleted`, added to in each batch's own transaction, so it
/// is exact unless two finishers run at once); the profile carries nothing extra and its
/// `version` is not bumped by batches. ``progress(_:)`` reads it.
public struct Offboarding: Sendable {
    private let store: any TenantStore
    private let clock: any WallClock
    private let batchWrites: Int
    private let events: EventRecorder

    /// Start-over attempts of ``finish(_:maxBatches:progress:)`` when a concurrent writer cancels
    /// one of its transactions (another finisher, a profile change), before it gives up.
    static let maxConflicts = 5

    /// - Parameters:
    ///   - batchWrites: writes per batch transaction (3...100), the marker's count included;
    ///     tests use small batches to get many of them.
    ///   - events: makes and records `tenant.offboarding` and `tenant.offboarded` (default: one on
    ///     `clock` that wakes no dispatcher).
    public init(
        store: any TenantStore, clock: any WallClock = SystemWallClock(), batchWrites: Int = TransactionLimits.maxWrites,
        events: EventRecorder? = nil
    ) {
        precondition((3...TransactionLimits.maxWrites).contains(batchWrites), "a batch holds 3 to \(TransactionLimits.maxWrites) writes")
        self.store = store
        self.clock = clock
        self.batchWrites = batchWrites
        self.events = events ?? EventRecorder(clock: clock)
    }

    // MARK: - Start

    /// Starts offboarding: the tenant becomes ``TenantStatus/offboarding`` (`version` + 1,
    /// `offboardingStartedAt`, `updatedAt`), its marker is written and `tenant.offboarding` is
    /// recorded, in one transaction.
    ///
    /// Idempotent: a tenant already `OFFBOARDING` is returned as it is (no second event); asked
    /// again with `purgeEvents`, its unfinished offboarding purges the events too.
    /// - Parameter purgeEvents: delete the tenant's events as well (kept by default: its audit
    ///   record); only `tenant.offboarded` is left then. Stored on the marker.
    /// - Returns: the tenant in `OFFBOARDING`.
    /// - Throws: `.tenantNotFound`; `.invalidTransition` naming the state when the tenant is
    ///   `OFFBOARDED`; `.conflict` when concurrent changes kept winning until the request's retry
    ///   budget ran out.
    public func start(_ id: TenantID, purgeEvents: Bool = false) async throws -> Tenant {
        try await RetryBudget.withCurrent { budget in
            var attempt = 0
            while true {
                attempt += 1
                guard let item = try await store.get(Tenant.key(id)) else { throw OnboardingError.tenantNotFound(id.rawValue) }
                let tenant = try Tenant(item: item)
                if tenant.status == .offboarding {
                    if purgeEvents {
                        do {
                            try await store.update(
                                OffboardingMarker.key(id), set: [OffboardingMarker.purgeEventsAttribute: .bool(true)], condition: nil
                            )
                        } catch let error as StoreError where error.code == .conditionFailed {
                            // No marker: finished in between (or a finisher puts a new one, which keeps the events).
                        }
                    }
                    return tenant
                }
                guard tenant.status.canTransition(to: .offboarding) else {
                    throw OnboardingError.invalidTransition(tenant, "be offboarded")
                }
                let now = Timestamp.format(clock.now())
                var next = tenant
                next.status = .offboarding
                next.offboardingStartedAt = now
                next.updatedAt = now
                next.version = tenant.version + 1
                // Made after the read, above the tenant's latest id: ids follow commit order.
                let lastEventId = Tenant.lastEventId(of: item)
                let event = events.event(.tenantOffboarding, tenantId: id, data: [
                    "tenant": .map(APIRepresentation.tenant(next)),
                    "changed": .list([Tenant.Attribute.offboardingStartedAt, Tenant.Attribute.status].map { .string($0) }),
                    "purgeEvents": .bool(purgeEvents),
                ], after: lastEventId)
                do {
                    try await store.transact([
                        .update(
                            Tenant.key(id),
                            set: [
                                Tenant.Attribute.status: .string(next.status.rawValue),
                                Tenant.Attribute.offboardingStartedAt: .string(now),
                                Tenant.Attribute.updatedAt: .string(now),
                                Tenant.Attribute.version: .int(next.version),
                                Tenant.Attribute.lastEventId: .string(event.id),
                            ],
                            condition: .and(
                                .attributeEquals(Tenant.Attribute.version, .int(tenant.version)), Tenant.lastEventIdUnchanged(lastEventId)
                            )
                        ),
                        .put(OffboardingMarker.item(id, startedAt: now, purgeEvents: purgeEvents), condition: nil),
                    ] + events.writes(for: event))
                    events.recorded(event)
                    return next
                } catch let error as StoreError where error.code == .transactionCanceled {
                    // Changed in between (a suspension, an edit): read it again.
                }
                try await budget.pauseAfterLostRace(attempt: attempt, conflict: "the tenant kept changing while its offboarding was started; retry")
            }
        }
    }

    // MARK: - Finish

    /// What one ``finish(_:maxBatches:progress:)`` call achieved.
    public struct Run: Sendable, Hashable {
        public enum Outcome: Sendable, Hashable {
            /// The tenant is ``TenantStatus/offboarded`` (now or already): its tombstone.
            case finished(Tenant)
            /// `maxBatches` were done (or the task was cancelled) with items left: still
            /// `OFFBOARDING`, marker in place.
            case unfinished
            /// There is no offboarding to finish: the tenant is absent, `ACTIVE` or `SUSPENDED`
            /// (a marker left without an `OFFBOARDING` tenant was removed).
            case notOffboarding
        }

        public var outcome: Outcome
        /// Items of the partition deleted so far, this offboarding's earlier runs included (an
        /// API key and its look-up item count as one).
        public var itemsDeleted: Int
        /// Batch transactions this call made.
        public var batches: Int
    }

    /// Finishes an offboarding: deletes every item of the tenant's partition but the profile and the
    /// events (those too when the marker says `purgeEvents`), a batch per transaction, then
    /// writes the tombstone, deletes the marker and records `tenant.offboarded`.
    ///
    /// Resumable and harmless to repeat: the partition is read from its start for each batch
    /// (deleting an absent item is fine; kept events are stepped over with one more read), and a
    /// call for a tenant already `OFFBOARDED` only returns its tombstone.
    /// - Parameters:
    ///   - maxBatches: stop after this many batches (one bounded step), leaving it `OFFBOARDING`.
    ///   - progress: called after each batch with the items deleted so far.
    public func finish(
        _ id: TenantID, maxBatches: Int = .max, progress: @Sendable (_ itemsDeleted: Int) -> Void = { _ in }
    ) async throws -> Run {
        var batches = 0
        var conflicts = 0
        while true {
            let marker = try await store.get(OffboardingMarker.key(id))
            let profile = try await store.get(Tenant.key(id))
            let current = try profile.map { item throws(OnboardingError) in try Tenant(item: item) }
            guard let tenant = current, tenant.status == .offboarding else {
                // Nothing to finish: a marker without an OFFBOARDING tenant is just removed.
                if marker != nil { try await store.delete(OffboardingMarker.key(id)) }
                if let tenant = current, tenant.status == .offboarded {
                    return Run(outcome: .finished(tenant), itemsDeleted: OffboardingMarker.itemsDeleted(marker), batches: batches)
                }
                return Run(outcome: .notOffboarding, itemsDeleted: 0, batches: batches)
            }
            var deleted = OffboardingMarker.itemsDeleted(marker)
            let keepEvents = !OffboardingMarker.purgesEvents(marker)
            do {
                if marker == nil {
                    // Only by hand could it be gone; without it the batches' counts cannot be kept.
                    try await store.put(OffboardingMarker.item(id, startedAt: tenant.offboardingStartedAt ?? tenant.updatedAt))
                }
                while true {
                    let (writes, items) = try await nextBatch(id, keepEvents: keepEvents)
                    guard items > 0 else { break }
                    if batches >= maxBatches || Task.isCancelled {
                        return Run(outcome: .unfinished, itemsDeleted: deleted, batches: batches)
                    }
                    try await store.transact(
                        writes + [.update(OffboardingMarker.key(id), set: [:], add: [OffboardingMarker.itemsDeletedAttribute: items], condition: nil)]
                    )
                    batches += 1
                    deleted += items
                    progress(deleted)
                }
                let now = Timestamp.format(clock.now())
                let tombstone = Tenant(
                    id: id, clientName: nil, clientPhone: nil, status: .offboarded, createdAt: tenant.createdAt, updatedAt: now,
                    version: tenant.version + 1, offboardingStartedAt: tenant.offboardingStartedAt, offboardedAt: now, apiKeyCount: 0
                )
                // The profile as read at the top (no key can be issued while offboarding, but a
                // revocation may have recorded its event since: then the condition fails and
                // this starts over).
                let lastEventId = profile.flatMap(Tenant.lastEventId(of:))
                let event = events.event(
                    .tenantOffboarded, tenantId: id, data: ["tenant": .map(APIRepresentation.tenant(tombstone))], after: lastEventId
                )
                var tombstoneItem = tombstone.item
                tombstoneItem.attributes[Tenant.Attribute.lastEventId] = .string(event.id)
                // The profile is replaced whole: name, phone and suspension reason are erased.
                try await store.transact([
                    .put(
                        tombstoneItem,
                        condition: .and(
                            .and(
                                .attributeEquals(Tenant.Attribute.status, .string(TenantStatus.offboarding.rawValue)),
                                .attributeEquals(Tenant.Attribute.version, .int(tenant.version))
                            ),
                            Tenant.lastEventIdUnchanged(lastEventId)
                        )
                    ),
                    .delete(OffboardingMarker.key(id), condition: nil),
                ] + events.writes(for: event))
                events.recorded(event)
                return Run(outcome: .finished(tombstone), itemsDeleted: deleted, batches: batches)
            } catch let error as StoreError where error.code == .transactionCanceled || error.code == .conditionFailed {
                // Another finisher, or a change of the profile: start over from what is stored.
                conflicts += 1
                if conflicts > Self.maxConflicts { throw error }
            }
        }
    }

    /// The deletes of the next batch and how many partition items they remove: the partition's
    /// first items but the profile (and the events, when kept), each API key with its look-up
    /// item, within ``batchWrites`` minus one (the marker's count).
    ///
    /// Kept events are never read: on reaching the first, the read continues after the last
    /// (`EVENT$`, which sorts after every `EVENT#…` key and is no key itself: every key of a
    /// partition holds a `#`), so a partition with thousands of events costs one more read per
    /// batch, not thousands.
    private func nextBatch(_ id: TenantID, keepEvents: Bool) async throws -> (writes: [TransactionWrite], items: Int) {
        let room = batchWrites - 1
        let profile = Tenant.key(id)
        let apiKeyPrefix = ApiKeys.resourceType + "#"
        let pastTheEvents = ItemKey(tenantId: id.rawValue, resourceKey: Self.pastTheEvents)
        var writes: [TransactionWrite] = []
        var items = 0
        var start: ItemKey?
        reading: while true {
            let page = try await store.query(ItemQuery(tenantId: id.rawValue, prefix: "", limit: room + 1, exclusiveStartKey: start))
            for item in page.items where item.key != profile {
                if keepEvents, item.key.resourceKey.hasPrefix(EventOutboxLayout.prefix) {
                    start = pastTheEvents
                    continue reading
                }
                if item.key.resourceKey.hasPrefix(apiKeyPrefix) {
                    guard writes.count + 2 <= room else { break reading }
                    let keyId = String(item.key.resourceKey.dropFirst(apiKeyPrefix.count))
                    writes.append(.delete(item.key, condition: nil))
                    // Only this tenant's look-up item (key ids are unique, so it always is).
                    writes.append(.delete(
                        ApiKeys.lookupKey(keyId),
                        condition: .or(.itemNotExists, .attributeEquals("ownerTenantId", .string(id.rawValue)))
                    ))
                } else {
                    guard writes.count + 1 <= room else { break reading }
                    writes.append(.delete(item.key, condition: nil))
                }
                items += 1
            }
            // A page short of the room (the profile was in it, or the store stopped early): read on.
            guard let next = page.lastEvaluatedKey else { break }
            start = next
        }
        return (writes, items)
    }

    /// A start key after every `EVENT#…` key of a partition (`#` + 1 is `$`).
    static let pastTheEvents = "EVENT$"

    // MARK: - Pending work

    /// The tenants whose offboarding was started and not finished (their markers), oldest id first.
    public func pending() async throws -> [TenantID] {
        var ids: [TenantID] = []
        var start: ItemKey?
        repeat {
            let page = try await store.query(ItemQuery(
                tenantId: OffboardingMarker.partition, prefix: OffboardingMarker.prefix, limit: ItemQuery.maxLimit, exclusiveStartKey: start
            ))
            ids += page.items.compactMap { OffboardingMarker.tenantID(of: $0.key) }
            start = page.lastEvaluatedKey
        } while start != nil
        return ids
    }

    /// Items deleted so far by an unfinished offboarding (its marker's count); `nil` when none is
    /// in progress.
    public func progress(_ id: TenantID) async throws -> Int? {
        try await store.get(OffboardingMarker.key(id)).map { OffboardingMarker.itemsDeleted($0) }
    }

    /// Finishes every marked offboarding (what a restart resumes), each tenant on its own: one
    /// failing does not stop the others.
    /// - Parameter maxBatchesPerTenant: a bound per tenant for one step (Lambda).
    /// - Returns: each marked tenant's run, or the error that stopped it.
    /// - Throws: when the markers cannot be read.
    public func resumeAll(maxBatchesPerTenant: Int = .max) async throws -> [(TenantID, Result<Run, any Error>)] {
        var results: [(TenantID, Result<Run, any Error>)] = []
        for id in try await pending() {
            if Task.isCancelled { break }
            do {
                results.append((id, .success(try await finish(id, maxBatches: maxBatchesPerTenant))))
            } catch {
                results.append((id, .failure(error)))
            }
        }
        return results
    }
}

/// The markers of unfinished offboardings: the item `TENANT#<tenantId>` in the reserved partition
/// `_offboarding` (not a UUID, so no tenant's), with `startedAt` and the progress count
/// `itemsDeleted`.
public enum OffboardingMarker {
    public static let partition = "_offboarding"
    static let prefix = "TENANT#"
    static let itemsDeletedAttribute = "itemsDeleted"
    /// `true` when the offboarding deletes the tenant's events too.
    static let purgeEventsAttribute = "purgeEvents"

    /// The marker's key.
    public static func key(_ id: TenantID) -> ItemKey {
        ItemKey(tenantId: partition, resourceKey: ResourceKey.tenantProfile(id))
    }

    static func item(_ id: TenantID, startedAt: String, purgeEvents: Bool = false) -> Item {
        var attributes: [String: AttributeValue] = [
            "offboardedTenantId": .string(id.rawValue), "startedAt": .string(startedAt), itemsDeletedAttribute: .int(0),
        ]
        if purgeEvents { attributes[purgeEventsAttribute] = .bool(true) }
        return Item(key: key(id), attributes: attributes)
    }

    static func purgesEvents(_ marker: Item?) -> Bool { marker?[purgeEventsAttribute] == .bool(true) }

    static func tenantID(of key: ItemKey) -> TenantID? {
        guard key.resourceKey.hasPrefix(prefix) else { return nil }
        return TenantID(String(key.resourceKey.dropFirst(prefix.count)))
    }

    static func itemsDeleted(_ marker: Item?) -> Int { marker?[itemsDeletedAttribute]?.intValue ?? 0 }
}

extension WriteCondition {
    /// The condition on a tenant's profile under which an item may be added to its partition
    /// (an API key, a resource): the tenant is ``TenantStatus/acceptsNewItems`` (`ACTIVE` or
    /// `SUSPENDED`), so nothing can be added once offboarding started, and never to an absent
    /// tenant. Checked in the same transaction as the write (a `conditionCheck` on the profile).
    public static let tenantAcceptsNewItems: WriteCondition = {
        let statuses = TenantStatus.allCases.filter(\.acceptsNewItems)
        let each = statuses.map { WriteCondition.attributeEquals(Tenant.Attribute.status, .string($0.rawValue)) }
        return each.dropFirst().reduce(each[0]) { .or($0, $1) }
    }()
}
