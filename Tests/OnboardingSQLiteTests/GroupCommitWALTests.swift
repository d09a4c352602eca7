import Foundation
import GRDB
import OnboardingCore
@testable import OnboardingSQLite
import Testing
import OnboardTestSupport

@Suite("Group commit: the WAL stays bounded under constant reads")
struct GroupCommitWALTests {
    /// Writes `count` items of 16 KB (16 at a time) while four readers keep overlapping long
    /// read transactions open on the store's own pool (so a new one always starts on the WAL
    /// before the last ends); returns the largest `-wal` size seen and the number of reads that
    /// failed.
    ///
    /// Each reader is a thread of its own calling the pool's synchronous `read`: it holds its
    /// snapshot for 50 ms, mostly idle, and starts the next at once. Readers on the concurrency
    /// pool left gaps whenever the test process was busy, and in a gap SQLite's own checkpoint
    /// resets the WAL: the load this test needs was not there.
    static func writeUnderConstantReads(_ fresh: FreshStore, count: Int) async throws -> (largest: Int, failedReads: Int) {
        let done = Shared(false)
        let readersEnded = Shared(0)
        let failedReads = Shared(0)
        let largest = Shared(0)
        let next = Shared(0)
        let padding = String(repeating: "x", count: 16 * 1024)
        let readers = fresh.store.pool
        for reader in 0..<4 {
            Thread.detachNewThread {
                defer { readersEnded.atomic.add(1, ordering: .relaxed) }
                usleep(UInt32(12_000 * reader))  // staggered: one ends while three hold
                do {
                    while !done.atomic.load(ordering: .relaxed) {
                        try readers.read { db in
                            _ = try Row.fetchAll(db, sql: "SELECT resourceKey FROM items WHERE tenantId = 'wal' LIMIT 20")
                            usleep(50_000)
                        }
                    }
                } catch {
                    failedReads.atomic.add(1, ordering: .relaxed)
                }
            }
        }
        do {
            try await withThrowingTaskGroup(of: Void.self) { writers in
                for _ in 0..<16 {
                    writers.addTask {
                        while case let index = next.atomic.add(1, ordering: .relaxed).oldValue, index < count {
                            try await fresh.store.put(Item(tenantId: "wal", resourceKey: "ITEM#\(index)", attributes: ["pad": .string(padding)]))
                            let size = fresh.walSize
                            largest.atomic.max(size, ordering: .relaxed)
                        }
                    }
                }
                try await writers.waitForAll()
            }
        } catch {
            done.atomic.store(true, ordering: .relaxed)
            throw error
        }
        done.atomic.store(true, ordering: .relaxed)
        while readersEnded.atomic.load(ordering: .relaxed) < 4 { try await Task.sleep(for: .milliseconds(20)) }
        return (largest.atomic.load(ordering: .relaxed), failedReads.atomic.load(ordering: .relaxed))
    }

    static let walWrites = 2_000

    /// Without the barrier (the checkpoint only waiting for readers), this load grew the WAL to
    /// 143 MB at 6,000 writes: overlapping readers outlast every wait.
    @Test("under constant overlapping long read transactions, 2,000 writes of 16 KB (about 32 MB) keep the WAL under the checkpoint size (8 MiB here) plus 16 MiB", .heavyLoad)
    func walStaysBounded() async throws {
        var limits = GroupCommitter.Limits()
        limits.walCheckpointBytes = 8 << 20
        let fresh = try FreshStore(limits: limits)
        defer { fresh.remove() }
        let (largest, failedReads) = try await Self.writeUnderConstantReads(fresh, count: Self.walWrites)
        #expect(failedReads == 0)
        let bound = Int(limits.walCheckpointBytes) + 16 << 20
        #expect(largest < bound, "the WAL reached \(largest) bytes")
        #expect(fresh.store.commitStatistics.checkpoints >= 1)
        let stored = try await DatabaseQueue(path: fresh.path).read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM items WHERE tenantId = 'wal'") }
        #expect(stored == Self.walWrites)
    }
}
