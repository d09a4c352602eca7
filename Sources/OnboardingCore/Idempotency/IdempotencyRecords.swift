import Foundation

/// The idempotency records of the single table (Stripe's `Idempotency-Key` contract), as the
/// store keeps them: one item per (scope, key) in the reserved partition `_idem#<hex>`.
///
/// The caller (the HTTP layer, which has the crypto library) names a record by an opaque id (the
/// SHA-256 of scope and key, hex), and hands over a fingerprint of the request and the sealed
/// response: this type never sees the Idempotency-Key, the request or the response in clear.
///
/// A request first ``claim(id:fingerprint:leaseDuration:)``s the record: a conditional put of an
/// `IN_PROGRESS` record with a random lease token and a lease expiry. The operation then adds
/// ``completion(_:response:)`` to its own transaction: a put that holds only while the lease token
/// is still ours, so the created data and the completed record are written together or not at
/// all. A claim whose holder crashed is taken over once its lease has expired; the old holder's
/// transaction can then no longer commit (its token is gone).
///
/// Records expire ``retention`` after the claim (`expiresAt`, Unix seconds, a number: DynamoDB's
/// TTL attribute); an expired record is treated as absent, whether or not the store removed it.
public struct IdempotencyRecords: Sendable {
    /// Partitions of idempotency records start with this (never a UUID).
    public static let partitionPrefix = "_idem#"
    /// The sort key of the one item of a record's partition.
    public static let resourceKey = "IDEMPOTENCY"
    /// How long a record is kept: 24 hours.
    public static let retention: TimeInterval = 24 * 60 * 60

    /// The item's attribute names.
    public enum Attribute {
        public static let state = "state"
        /// The request's fingerprint (the caller's keyed hash of method, path and body).
        public static let fingerprint = "fingerprint"
        /// Random; changes with every claim, so a completion write can tell whether it still owns the record.
        public static let leaseToken = "leaseToken"
        /// Unix milliseconds after which an `IN_PROGRESS` claim may be taken over.
        public static let leaseExpiresAt = "leaseExpiresAt"
        /// Unix seconds after which the record is absent (DynamoDB TTL).
        public static let expiresAt = "expiresAt"
        /// The sealed response (base64url), only on `COMPLETED` records.
        public static let response = "response"
        public static let createdAt = "createdAt"
    }

    /// `IN_PROGRESS` while a request holds the record, `COMPLETED` once its response is stored.
    public enum State: String, Sendable {
        case inProgress = "IN_PROGRESS"
        case completed = "COMPLETED"
    }

    /// A claim this request holds.
    public struct Lease: Sendable, Hashable {
        public let key: ItemKey
        public let token: String
        public let fingerprint: String
        /// Unix seconds: when the record expires.
        public let expiresAt: Int
        public let createdAt: String
    }

    /// What ``claim(id:fingerprint:leaseDuration:)`` found.
    public enum Claim: Sendable, Hashable {
        /// The record is this request's: run the operation, then complete or release it.
        case claimed(Lease)
        /// The same request already completed: replay this sealed response.
        case completed(response: String)
        /// The same request is being served right now; try again after this many seconds.
        case inProgress(retryAfter: Int)
        /// The key was used for a different request.
        case mismatch
    }

    /// What ``release(_:)`` found.
    public enum Release: Sendable, Hashable {
        /// The claim is gone; a retry starts afresh.
        case released
        /// Our own transaction did commit (its answer was lost): this is the stored response.
        case completed(response: String)
        /// Another request took the record over.
        case lost
    }

    private let store: any TenantStore
    private let clock: any WallClock

    public init(store: any TenantStore, clock: any WallClock = SystemWallClock()) {
        self.store = store
        self.clock = clock
    }

    /// The key of the record named `id` (lower-case hex of SHA-256(scope, key)).
    public static func key(id: String) -> ItemKey {
        ItemKey(tenantId: partitionPrefix + id, resourceKey: resourceKey)
    }

    /// Claims the record for this request, or says why not.
    /// - Parameter leaseDuration: how long the claim holds against duplicates (about the request's deadline).
    public func claim(id: String, fingerprint: String, leaseDuration: Duration) async throws -> Claim {
        let key = Self.key(id: id)
        // Each round reads, then writes only if the record is still what was read; a lost race
        // means another request moved first, so look again.
        for _ in 0..<4 {
            let now = clock.now()
            let current = try await store.get(key)
            if let current, !Self.isExpired(current, at: now) {
                guard current[Attribute.fingerprint]?.stringValue == fingerprint else { return .mismatch }
                switch current[Attribute.state]?.stringValue.flatMap(State.init(rawValue:)) {
                case .completed?:
                    guard let response = current[Attribute.response]?.stringValue else {
                        throw StoreError(.unavailable, "the idempotency record \(key) is completed but holds no response")
                    }
                    return .completed(response: response)
                case .inProgress?:
                    let leaseEnd = current[Attribute.leaseExpiresAt]?.intValue ?? 0
                    let nowMilliseconds = Self.milliseconds(now)
                    if leaseEnd > nowMilliseconds { return .inProgress(retryAfter: 1) }
                case nil:
                    break  // unreadable: taken over like an abandoned claim
                }
            }
            // Absent, expired, or a claim whose holder did not finish in time: take it.
            let lease = Lease(
                key: key, token: Self.newToken(), fingerprint: fingerprint,
                expiresAt: Int(now.timeIntervalSince1970 + Self.retention), createdAt: Timestamp.format(now)
            )
            var attributes = Self.attributes(of: lease, state: .inProgress)
            attributes[Attribute.leaseExpiresAt] = .int(Self.milliseconds(now) + Int(leaseDuration.components.seconds) * 1000 + Int(leaseDuration.components.attoseconds / 1_000_000_000_000_000))
            let condition: WriteCondition
            if let current {
                // Replace exactly the record that was read (a token changes with every claim).
                condition = current[Attribute.leaseToken].map { .attributeEquals(Attribute.leaseToken, $0) } ?? .itemExists
            } else {
                condition = .itemNotExists
            }
            do {
                try await store.put(Item(key: key, attributes: attributes), condition: condition)
                return .claimed(lease)
            } catch let error as StoreError where error.code == .conditionFailed {
                continue
            }
        }
        return .inProgress(retryAfter: 1)
    }

    /// The write that completes a claim with its sealed response, for the operation's own
    /// transaction: it holds only while the claim is still this request's.
    public func completion(_ lease: Lease, response: String) -> TransactionWrite {
        var attributes = Self.attributes(of: lease, state: .completed)
        attributes[Attribute.response] = .string(response)
        return .put(Item(key: lease.key, attributes: attributes), condition: Self.stillClaimed(lease))
    }

    /// Gives up a claim whose operation failed (nothing was created), so that a retry with the
    /// same key runs afresh.
    public func release(_ lease: Lease) async throws -> Release {
        do {
            try await store.delete(lease.key, condition: Self.stillClaimed(lease))
            return .released
        } catch let error as StoreError where error.code == .conditionFailed {
            let current = try await store.get(lease.key)
            if let current, current[Attribute.leaseToken]?.stringValue == lease.token,
                current[Attribute.state]?.stringValue == State.completed.rawValue,
                let response = current[Attribute.response]?.stringValue
            {
                return .completed(response: response)
            }
            return .lost
        }
    }

    /// Whether a record is past its `expiresAt` (then it is treated as absent).
    public static func isExpired(_ item: Item, at now: Date) -> Bool {
        guard let expiresAt = item[Attribute.expiresAt]?.intValue else { return true }
        return Double(expiresAt) <= now.timeIntervalSince1970
    }

    /// Whether an item is an idempotency record (its partition is reserved for them).
    public static func isRecord(_ key: ItemKey) -> Bool {
        key.tenantId.hasPrefix(partitionPrefix)
    }

    private static func stillClaimed(_ lease: Lease) -> WriteCondition {
        .and(
            .attributeEquals(Attribute.leaseToken, .string(lease.token)),
            .attributeEquals(Attribute.state, .string(State.inProgress.rawValue))
        )
    }

    private static func attributes(of lease: Lease, state: State) -> [String: AttributeValue] {
        [
            Attribute.state: .string(state.rawValue),
            Attribute.fingerprint: .string(lease.fingerprint),
            Attribute.leaseToken: .string(lease.token),
            Attribute.expiresAt: .int(lease.expiresAt),
            Attribute.createdAt: .string(lease.createdAt),
        ]
    }

    private static func milliseconds(_ date: Date) -> Int {
        Int((date.timeIntervalSince1970 * 1000).rounded(.down))
    }

    private static func newToken() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        for _ in 0..<2 { withUnsafeBytes(of: generator.next() as UInt64) { bytes.append(contentsOf: $0) } }
        return ByteEncoding.hex(bytes)
    }
}
