import Foundation

/// A store that deletes expired idempotency records itself, for stores without a time to live:
/// SQLite. (DynamoDB's TTL on `expiresAt` removes them there; until it does, reads treat an
/// expired record as absent, see ``IdempotencyRecords/isExpired(_:at:)``.)
public protocol IdempotencyRecordSweeping: Sendable {
    /// Deletes at most `limit` idempotency records whose `expiresAt` is not after `now`.
    /// - Returns: how many were deleted.
    func deleteExpiredIdempotencyRecords(now: Date, limit: Int) async throws -> Int
}
