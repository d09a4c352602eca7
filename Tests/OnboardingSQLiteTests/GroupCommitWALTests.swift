import Foundation
import GRDB
import OnboardingCore
@testable import OnboardingSQLite
import Testing

@Suite("Group commit: the WAL stays bounded under constant reads")
struct GroupCommitWALTests {
    /// Writes `count` items of 16 KB (16 at a time) while four readers keep overlapping long
    /// read transactions open on the store's own pool (so a new one always starts on the WAL
    /// before the last ends); returns the largest `-wal` size seen.
    static func writeUnderConstantReads(_ fresh: FreshStore, count: Int) async throws -> Int {
        let readers = fresh.store.pool
        let done = Shared(false)
        let largest = Shared(0)
        let next = Shared(0)
        let padding = String(repeating: "x", count: 16 * 1024)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    while !done.atomic.load(ordering: .relaxed) {
                        try await readers.read { db in
                            // A long read transaction (a report, a backup): a thousand queries.
                            for _ in 0..<1_000 { _ = try Row.fetchAll(db, sql: "SELECT resourceKey FROM items WHERE tenantId = 'wal' LIMIT 20") }
                        }
                    }
                }
            }
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
            done.atomic.store(true, ordering: .relaxed)
            try await group.waitForAll()
        }
        return largest.atomic.load(ordering: .relaxed)
    }

    static let walWrites = 6_000

    @Test("under constant overlapping long read transactions, 6,000 writes of 16 KB (about 100 MB) keep the WAL under the checkpoint size plus 16 MiB")
    func walStaysBounded() async throws {
        let fresh = try FreshStore()
        defer { fresh.remove() }
        let largest = try await Self.writeUnderConstantReads(fresh, count: Self.walWrites)
        let bound = Int(GroupCommitter.Limits().walCheckpointBytes) + 16 << 20
        #expect(largest < bound, "the WAL reached \(largest) bytes")
        #expect(fresh.store.commitStatistics.checkpoints >= 1)
        let stored = try await DatabaseQueue(path: fresh.path).read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM items WHERE tenantId = 'wal'") }
        #expect(stored == Self.walWrites)
    }

    @Test("the scenario is real: without the writer's checkpoint the same load grows the WAL past that bound")
    func walGrowsWithoutTheCheckpoint() async throws {
        var limits = GroupCommitter.Limits()
        limits.walCheckpointBytes = .max
        let fresh = try FreshStore(limits: limits)
        defer { fresh.remove() }
        let largest = try await Self.writeUnderConstantReads(fresh, count: Self.walWrites)
        #expect(largest >= Int(GroupCommitter.Limits().walCheckpointBytes) + 16 << 20, "the WAL reached only \(largest) bytes")
    }
}
