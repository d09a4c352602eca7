import Foundation
import RequestBudget

/// A tenant's API key as the service keeps it: never the secret, only what identifies it.
public struct ApiKey: Sendable, Hashable {
    /// 16 hex digits, random; part of the key text (`onb_<keyId>_<secret>`).
    public var keyId: String
    public var tenantId: TenantID
    /// What may be shown later: `onb_<keyId>_` and the secret's first four characters.
    public var prefix: String
    public var createdAt: String
    public var lastUsedAt: String?

    /// The item in the tenant's partition: `APIKEY#<keyId>`.
    var item: Item {
        var attributes: [String: AttributeValue] = [
            "keyId": .string(keyId), "prefix": .string(prefix), "createdAt": .string(createdAt),
        ]
        if let lastUsedAt { attributes["lastUsedAt"] = .string(lastUsedAt) }
        return Item(key: Self.key(tenantId, keyId), attributes: attributes)
    }

    static func key(_ tenantId: TenantID, _ keyId: String) -> ItemKey {
        ItemKey(tenantId: tenantId.rawValue, resourceKey: "\(ApiKeys.resourceType)#\(keyId)")
    }

    init(item: Item, tenantId: TenantID) throws(OnboardingError) {
        guard let keyId = item["keyId"]?.stringValue, let prefix = item["prefix"]?.stringValue,
            let createdAt = item["createdAt"]?.stringValue
        else { throw .corruptItem(item.key, attribute: "keyId/prefix/createdAt") }
        self.init(keyId: keyId, tenantId: tenantId, prefix: prefix, createdAt: createdAt, lastUsedAt: item["lastUsedAt"]?.stringValue)
    }

    init(keyId: String, tenantId: TenantID, prefix: String, createdAt: String, lastUsedAt: String?) {
        self.keyId = keyId
        self.tenantId = tenantId
        self.prefix = prefix
        self.createdAt = createdAt
        self.lastUsedAt = lastUsedAt
    }
}

/// What a live key's look-up item says: who owns the key, and the hash its text must have.
public struct ApiKeyLookup: Sendable, Hashable {
    public var owner: TenantID
    /// `sha256:<hex>` of the key's text.
    public var keyHash: String

    public init(owner: TenantID, keyHash: String) {
        self.owner = owner
        self.keyHash = keyHash
    }
}

/// One page of a tenant's API keys.
public struct ApiKeyPage: Sendable, Hashable {
    public var keys: [ApiKey]
    /// Pass back to get the next page; `nil` on the last page.
    public var nextCursor: String?
}

/// A key just issued: the only moment its text exists on the server.
public struct IssuedApiKey: Sendable {
    /// `onb_<keyId>_<secret>`: shown once, then only its hash remains.
    public let text: String
    public let key: ApiKey
}

/// Tenant API keys: issued with 256 random bits, stored only as SHA-256, checked in constant time.
///
/// Two items per key, written and deleted together: `APIKEY#<keyId>` in the tenant's partition
/// (prefix and dates, for listing) and a look-up item in the reserved partition
/// `_apikey#<keyId>` (the owning tenant and the secret's hash), which a presented key is checked
/// against. A revoked key has no look-up item, so it is refused on its next use.
///
/// Issuing and revoking record `apikey.created` / `apikey.revoked` in the same transaction.
public struct ApiKeys: Sendable {
    public static let resourceType = "APIKEY"
    /// The most live keys a tenant may hold.
    public static let maxKeysPerTenant = 20
    /// `lastUsedAt` is written at most this often per key.
    public static let lastUsedResolution: TimeInterval = 60

    private let store: any TenantStore
    private let hasher: any SecretHasher
    private let clock: any WallClock
    private let events: EventRecorder

    /// - Parameter events: makes and records the keys' events (default: one on `clock` that
    ///   wakes no dispatcher).
    public init(store: any TenantStore, hasher: any SecretHasher, clock: any WallClock = SystemWallClock(), events: EventRecorder? = nil) {
        self.store = store
        self.hasher = hasher
        self.clock = clock
        self.events = events ?? EventRecorder(clock: clock)
    }

    /// A key as events carry it (`apiKey` of `apikey.created`, `apikey.revoked` and
    /// `tenant.onboarded`): keyId, prefix and createdAt, never the secret.
    static func eventData(_ key: ApiKey) -> [String: AttributeValue] {
        ["keyId": .string(key.keyId), "prefix": .string(key.prefix), "createdAt": .string(key.createdAt)]
    }

    /// The event of a key issued or revoked.
    private func event(_ type: TenantEventType, _ key: ApiKey, after lastEventId: String?) -> TenantEvent {
        events.event(
            type, tenantId: key.tenantId, data: ["tenantId": .string(key.tenantId.rawValue), "apiKey": .map(Self.eventData(key))],
            after: lastEventId
        )
    }

    /// A new key for a tenant and the two writes that store it (for the caller's transaction).
    public func newKey(for tenantId: TenantID, at now: String) -> (IssuedApiKey, [TransactionWrite]) {
        // 40 bytes from the system CSPRNG, 8 at a time (one getrandom call each, not one per byte).
        var generator = SystemRandomNumberGenerator()
        var random: [UInt8] = []
        random.reserveCapacity(40)
        for _ in 0..<5 { withUnsafeBytes(of: generator.next() as UInt64) { random.append(contentsOf: $0) } }
        let keyId = ByteEncoding.hex(random[0..<8])
        let secret = ByteEncoding.base64URL(random[8..<40])
        let text = "onb_\(keyId)_\(secret)"
        let key = ApiKey(keyId: keyId, tenantId: tenantId, prefix: "onb_\(keyId)_\(secret.prefix(4))…", createdAt: now, lastUsedAt: nil)
        let lookup = Item(key: Self.lookupKey(keyId), attributes: [
            "ownerTenantId": .string(tenantId.rawValue),
            "keyHash": .string("sha256:" + hasher.sha256Hex(text)),
            "createdAt": .string(now),
        ])
        return (IssuedApiKey(text: text, key: key), [.put(key.item, condition: .itemNotExists), .put(lookup, condition: .itemNotExists)])
    }

    /// Issues another key for an existing tenant, in one transaction: the key's two items and
    /// the profile's ``Tenant/apiKeyCount`` raised by one, on the condition that the count is
    /// below ``maxKeysPerTenant`` and the tenant is `ACTIVE` or `SUSPENDED`. So concurrent
    /// requests can never create more than the limit, and no key is created once offboarding
    /// has started (it could be left behind). The transaction also records `apikey.created`.
    ///
    /// A tenant stored before counts existed has no `apiKeyCount`: its keys are counted once and
    /// the count is stored (only if it is still absent), then the key is issued. That is exact,
    /// because every write that adds or removes a key requires the count to exist.
    /// - Parameter alsoWrite: one more write for the key's transaction, made from the issued key
    ///   (an idempotency record's completion): written with the key or not at all.
    /// - Throws: `.tenantNotFound`; `.limitReached` when the tenant holds the maximum already;
    ///   `.invalidTransition` when the tenant is offboarding or offboarded.
    public func issue(
        for tenantId: TenantID, alsoWrite: (IssuedApiKey) throws -> TransactionWrite? = { _ in nil }
    ) async throws -> IssuedApiKey {
        try await KeyChangeQueue.shared.serialised(tenantId) { try await issueOnce(for: tenantId, alsoWrite: alsoWrite) }
    }

    private func issueOnce(for tenantId: TenantID, alsoWrite: (IssuedApiKey) throws -> TransactionWrite?) async throws -> IssuedApiKey {
        try await RetryBudget.withCurrent { budget in
            var attempt = 0
            var idsTaken = 0
            while true {
                attempt += 1
                // The profile first: the event's id must follow the tenant's latest one.
                guard let profile = try await store.get(Tenant.key(tenantId)) else { throw OnboardingError.tenantNotFound(tenantId.rawValue) }
                guard try await mayIssue(Tenant(item: profile), tenantId) else { continue }
                let lastEventId = Tenant.lastEventId(of: profile)
                let (issued, keyWrites) = newKey(for: tenantId, at: Timestamp.format(clock.now()))
                let extra = try alsoWrite(issued).map { [$0] } ?? []
                let event = event(.apiKeyCreated, issued.key, after: lastEventId)
                let countChange = TransactionWrite.update(
                    Tenant.key(tenantId), set: [Tenant.Attribute.lastEventId: .string(event.id)], add: [Tenant.Attribute.apiKeyCount: 1],
                    condition: .and(Self.issueCondition, Tenant.lastEventIdUnchanged(lastEventId))
                )
                // The extra write stays last: its refusal is told by the last cancellation reason.
                let writes = [countChange] + keyWrites + events.writes(for: event) + extra
                do {
                    try await store.transact(writes)
                    events.recorded(event)
                    return issued
                } catch let error as StoreError where error.code == .transactionCanceled {
                    let reasons = error.cancellationReasons
                    guard reasons.first == .conditionFailed else {
                        // The key id was taken: another id. The extra write's own condition: its caller's.
                        if reasons.count == writes.count, !extra.isEmpty, reasons.last == .conditionFailed { throw error }
                        idsTaken += 1
                        if idsTaken > 2 { throw error }
                        continue
                    }
                    // Another change of the tenant came first (the next read tells which).
                }
                try await Self.pauseAfterLostRace(
                    budget, attempt: attempt, conflict: "the key could not be issued while other requests kept changing the tenant; retry"
                )
            }
        }
    }

    /// The pause after a key's transaction lost the race for the tenant's latest event id, or
    /// `409 conflict` when the request's deadline is too close. Unlike other lost races it
    /// takes no retry of the request's budget: each loss is another change of the tenant
    /// committed (progress), and many keys asked for at once (up to the limit) must all be
    /// served one after another rather than fail after a few losses.
    private static func pauseAfterLostRace(_ budget: RetryBudget, attempt: Int, conflict detail: @autoclosure () -> String) async throws {
        // Up to 1 s rather than 200 ms: a hundred requests for keys of one tenant at once would
        // otherwise keep the store busy with transactions that can only lose.
        let (base, cap) = (RetryBudget.lostRaceBackoff.base, Duration.seconds(1))
        let ceiling = min(cap, base * (1 << min(max(attempt, 0), 20)))
        let delay = Duration.nanoseconds(Int64.random(in: 0...(ceiling.components.seconds * 1_000_000_000 + ceiling.components.attoseconds / 1_000_000_000)))
        guard delay + RetryBudget.minimumAttemptTime <= budget.remaining else { throw OnboardingError(.conflict, detail()) }
        try await Task.sleep(for: delay)
    }

    /// Whether the tenant may get one more key now: throws when it may not; `false` after
    /// storing an old tenant's key count (read the profile again).
    private func mayIssue(_ tenant: Tenant, _ tenantId: TenantID) async throws -> Bool {
        guard tenant.status.acceptsNewItems else {
            throw OnboardingError.invalidTransition(tenant, "get a new API key")
        }
        guard let count = tenant.apiKeyCount else {
            try await storeKeyCount(of: tenantId)
            return false
        }
        guard count < Self.maxKeysPerTenant else {
            throw OnboardingError(.limitReached, "a tenant holds at most \(Self.maxKeysPerTenant) API keys; revoke one first")
        }
        return true
    }

    /// The condition on the profile for one more key: fewer keys than the limit, and a tenant
    /// that is not being offboarded.
    static let issueCondition = WriteCondition.and(
        .attributeLessThan(Tenant.Attribute.apiKeyCount, maxKeysPerTenant), .tenantAcceptsNewItems
    )

    /// Counts the keys of a tenant stored before counts existed and stores the count, only if
    /// the profile still has none (another request may have stored it first: then nothing is
    /// written, and that count is as exact as this one).
    private func storeKeyCount(of tenantId: TenantID) async throws {
        var count = 0
        var start: ItemKey?
        repeat {
            let page = try await store.query(ItemQuery(
                tenantId: tenantId.rawValue, prefix: "\(Self.resourceType)#", limit: ItemQuery.maxLimit, exclusiveStartKey: start
            ))
            count += page.items.count
            start = page.lastEvaluatedKey
        } while start != nil
        do {
            try await store.update(
                Tenant.key(tenantId), set: [Tenant.Attribute.apiKeyCount: .int(count)],
                condition: .attributeNotExists(Tenant.Attribute.apiKeyCount)
            )
        } catch let error as StoreError where error.code == .conditionFailed {
            // Counted by another request, or the profile is gone: the next attempt finds out.
        }
    }

    /// The largest page of ``list(_:limit:cursor:)``.
    public static let maxPageSize = 100

    /// The tenant's keys (prefix and dates only) in key-id order, a page at a time; the cursor
    /// is opaque, like the other listings' (any cursor is a position: see `ListCursor`).
    /// - Throws: `.tenantNotFound` when there is no such tenant; `.invalidCursor`.
    public func list(_ tenantId: TenantID, limit: Int, cursor: String?) async throws -> ApiKeyPage {
        precondition((1...Self.maxPageSize).contains(limit), "the caller checks the page size")
        let prefix = "\(Self.resourceType)#"
        let position = try ListCursor.position(cursor, prefix: prefix, in: tenantId)
        guard try await store.get(Tenant.key(tenantId)) != nil else { throw OnboardingError.tenantNotFound(tenantId.rawValue) }
        guard case .after(let start) = position else { return ApiKeyPage(keys: [], nextCursor: nil) }
        let page = try await store.query(ItemQuery(tenantId: tenantId.rawValue, prefix: prefix, limit: limit + 1, exclusiveStartKey: start))
        let (items, next) = ListCursor.page(page, limit: limit)
        let keys = try items.map { item throws(OnboardingError) in try ApiKey(item: item, tenantId: tenantId) }
        return ApiKeyPage(keys: keys, nextCursor: next)
    }

    /// Every key of the tenant (prefix and dates only), oldest first, read page by page.
    /// - Throws: `.tenantNotFound` when there is no such tenant.
    public func list(_ tenantId: TenantID) async throws -> [ApiKey] {
        var keys: [ApiKey] = []
        var cursor: String?
        repeat {
            let page = try await list(tenantId, limit: Self.maxPageSize, cursor: cursor)
            keys += page.keys
            cursor = page.nextCursor
        } while cursor != nil
        return keys.sorted { ($0.createdAt, $0.keyId) < ($1.createdAt, $1.keyId) }
    }

    /// Revokes a key: both items go and the tenant's key count goes down by one, in one
    /// transaction that also records `apikey.revoked`; the key is refused from then on.
    /// - Throws: `.apiKeyNotFound` when the tenant has no such key.
    public func revoke(_ keyId: String, of tenantId: TenantID) async throws {
        try await KeyChangeQueue.shared.serialised(tenantId) { try await revokeOnce(keyId, of: tenantId) }
    }

    private func revokeOnce(_ keyId: String, of tenantId: TenantID) async throws {
        let notFound = OnboardingError(.apiKeyNotFound, "the tenant has no API key \(keyId)")
        try await RetryBudget.withCurrent { budget in
            var attempt = 0
            while true {
                attempt += 1
                // The event names the key's prefix and creation date: read it first. Its delete
                // stays conditional on its existence, so a revocation in between still cancels this one.
                let key: ApiKey
                do {
                    guard let item = try await store.get(ApiKey.key(tenantId, keyId)) else { throw notFound }
                    key = try ApiKey(item: item, tenantId: tenantId)
                } catch let error as StoreError where error.code == .invalidRequest {
                    throw notFound  // not a key id a store can hold: no such key
                }
                // Then the profile: the event's id must follow the tenant's latest one.
                guard let profile = try await store.get(Tenant.key(tenantId)) else { throw notFound }
                let tenant = try Tenant(item: profile)
                var withCount = true
                if tenant.apiKeyCount == nil {
                    // Stored before counts existed.
                    guard !tenant.status.acceptsNewItems else {
                        try await storeKeyCount(of: tenantId)
                        continue
                    }
                    // Being offboarded: no key can be added any more, and the count is moot.
                    withCount = false
                }
                let lastEventId = Tenant.lastEventId(of: profile)
                let event = event(.apiKeyRevoked, key, after: lastEventId)
                let profileChange = TransactionWrite.update(
                    Tenant.key(tenantId), set: [Tenant.Attribute.lastEventId: .string(event.id)],
                    add: withCount ? [Tenant.Attribute.apiKeyCount: -1] : [:],
                    condition: .and(
                        withCount ? .attributeExists(Tenant.Attribute.apiKeyCount) : .itemExists, Tenant.lastEventIdUnchanged(lastEventId)
                    )
                )
                let writes: [TransactionWrite] = [
                    profileChange,
                    .delete(ApiKey.key(tenantId, keyId), condition: .itemExists),
                    .delete(Self.lookupKey(keyId), condition: .attributeEquals("ownerTenantId", .string(tenantId.rawValue))),
                ] + events.writes(for: event)
                do {
                    try await store.transact(writes)
                    events.recorded(event)
                    return
                } catch let error as StoreError where error.code == .transactionCanceled || error.code == .invalidRequest {
                    // Only the profile's refusal is a lost race (another change of the tenant
                    // came first: the next read tells which); the key's is a revocation in between.
                    guard error.code == .transactionCanceled, error.cancellationReasons.first == .conditionFailed else { throw notFound }
                }
                try await Self.pauseAfterLostRace(
                    budget, attempt: attempt, conflict: "the key could not be revoked while other requests kept changing the tenant; retry"
                )
            }
        }
    }

    /// The tenant a presented key belongs to, or `nil` when it is not a live key.
    ///
    /// The hash is compared in constant time; the key id only selects the look-up item.
    public func verify(_ text: String) async throws -> (TenantID, keyId: String)? {
        guard let keyId = Self.keyId(of: text), let lookup = try await lookup(keyId: keyId), matches(text, lookup) else { return nil }
        return (lookup.owner, keyId)
    }

    /// A live key's look-up item (its owner and its hash); `nil` when there is no such key.
    public func lookup(keyId: String) async throws -> ApiKeyLookup? {
        guard let item = try await store.get(Self.lookupKey(keyId)),
            let stored = item["keyHash"]?.stringValue, let owner = item["ownerTenantId"]?.stringValue.flatMap(TenantID.init)
        else { return nil }
        return ApiKeyLookup(owner: owner, keyHash: stored)
    }

    /// Whether `text` is the key whose look-up item this is: its SHA-256 compared in constant time.
    public func matches(_ text: String, _ lookup: ApiKeyLookup) -> Bool {
        let presented = "sha256:" + hasher.sha256Hex(text)
        return ConstantTime.equals(Array(presented.utf8), Array(lookup.keyHash.utf8))
    }

    /// Records that a key was used at `usedAt` (default: now) in one write, only if the key still
    /// exists: a revoked key is not brought back (callers throttle this to ``lastUsedResolution``).
    public func touch(_ keyId: String, of tenantId: TenantID, at usedAt: Date? = nil) async throws {
        do {
            try await store.update(ApiKey.key(tenantId, keyId), set: ["lastUsedAt": .string(Timestamp.format(usedAt ?? clock.now()))], condition: nil)
        } catch let error as StoreError where error.code == .conditionFailed {
            // Revoked in between: nothing to record.
        }
    }

    /// `onb_<16 hex>_<43 base64url>` → the key id; `nil` for any other text.
    /// (Read byte by byte: it runs on every request made with a bearer token.)
    public static func keyId(of text: String) -> String? {
        let bytes = text.utf8
        // "onb_" + 16 lowercase hex digits + "_" + 43 characters of the secret.
        guard bytes.count == 64, bytes.starts(with: "onb_".utf8) else { return nil }
        let id = bytes.dropFirst(4).prefix(16)
        guard id.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0) }),
            bytes.dropFirst(20).first == UInt8(ascii: "_"), bytes.dropFirst(21).allSatisfy({ $0 < 0x80 })
        else { return nil }
        return String(Substring(id))
    }

    static func lookupKey(_ keyId: String) -> ItemKey {
        ItemKey(tenantId: "_apikey#\(keyId)", resourceKey: resourceType)
    }

}

/// One key change (issue or revoke) of a tenant at a time in this process, in arrival order.
///
/// Every change that records an event of a tenant requires the profile's `lastEventId` it read,
/// so concurrent changes of one tenant can only commit one after another; without this queue a
/// hundred key requests for one tenant at once would mostly lose races (each a read and a
/// transaction for nothing) until their deadlines. Other processes' changes still race (and
/// are retried).
actor KeyChangeQueue {
    static let shared = KeyChangeQueue()

    /// Per tenant with a change running: the changes waiting for it, oldest first.
    private var waiting: [TenantID: [CheckedContinuation<Void, Never>]] = [:]

    nonisolated func serialised<T: Sendable>(_ tenantId: TenantID, _ body: () async throws -> T) async throws -> T {
        await acquire(tenantId)
        do {
            let value = try await body()
            await release(tenantId)
            return value
        } catch {
            await release(tenantId)
            throw error
        }
    }

    private func acquire(_ tenantId: TenantID) async {
        guard waiting[tenantId] != nil else {
            waiting[tenantId] = []
            return
        }
        await withCheckedContinuation { waiting[tenantId, default: []].append($0) }
    }

    private func release(_ tenantId: TenantID) {
        guard var queue = waiting[tenantId], !queue.isEmpty else {
            waiting[tenantId] = nil
            return
        }
        let first = queue.removeFirst()
        waiting[tenantId] = queue
        first.resume()
    }
}
