import Foundation
import GRDB
import OnboardingCore
import Synchronization

extension SQLiteTenantStore: IdempotencyRecordSweeping {
    /// Deletes expired idempotency records (partitions `_idem#…`, `expiresAt` in the past), at
    /// most `limit` in one transaction of the one writer: a range of the primary key, so the
    /// sweep never reads a tenant's items.
    public func deleteExpiredIdempotencyRecords(now: Date, limit: Int) async throws -> Int {
        let cutoff = Int64(now.timeIntervalSince1970.rounded(.down))
        let deleted = Atomic<Int>(0)
        // `#` is 0x23 and `$` 0x24: every partition starting with `_idem#` sorts in between.
        let lower = IdempotencyRecords.partitionPrefix
        let upper = String(lower.dropLast()) + "$"
        try await write(needsSavepoint: false) { db in
            try db.execute(
                sql: """
                    DELETE FROM items WHERE (tenantId, resourceKey) IN (
                        SELECT tenantId, resourceKey FROM items
                        WHERE tenantId >= ? AND tenantId < ? AND json_extract(attributes, '$.\(IdempotencyRecords.Attribute.expiresAt)') <= ?
                        LIMIT ?)
                    """,
                arguments: [lower, upper, cutoff, max(1, limit)]
            )
            deleted.store(db.changesCount, ordering: .relaxed)
        }
        return deleted.load(ordering: .relaxed)
    }
}
