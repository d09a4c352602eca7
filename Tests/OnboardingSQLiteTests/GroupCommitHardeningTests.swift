import Foundation
import GRDB
import OnboardingCore
@testable import OnboardingSQLite
import Synchronization
import Testing
import OnboardTestSupport

/// A store on a fresh file in a fresh folder, with the committer's limits of the test.
struct FreshStore: Sendable {
    let store: SQLiteTenantStore
    let path: String
    let directory: URL

    init(limits: GroupCommitter.Limits = GroupCommitter.Limits()) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("onboard-commit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        path = directory.appendingPathComponent("onboarding.sqlite").path
        store = try SQLiteTenantStore(path: path, logger: .init(label: "test"), limits: limits)
    }

    func remove() { try? FileManager.default.removeItem(at: directory) }

    /// The size of the `-wal` file (0 when there is none).
    var walSize: Int {
        ((try? FileManager.default.attributesOfItem(atPath: path + "-wal"))?[.size] as? Int) ?? 0
    }

    /// Runs `writes` (each started in its own task) as one batch: the writer queue is held until
    /// all of them wait in the committer's queue. Returns each write's outcome, in order.
    func inOneBatch(_ writes: [@Sendable () async throws -> Void]) async throws -> [Bool] {
        let release = DispatchSemaphore(value: 0)
        let held = DispatchSemaphore(value: 0)
        store.pool.asyncWriteWithoutTransaction { _ in
            held.signal()
            release.wait()
        }
        held.wait()
        let batchesBefore = store.commitStatistics.batches
        return try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
            for (index, write) in writes.enumerated() {
                group.addTask {
                    do {
                        try await write()
                        return (index, true)
                    } catch {
                        return (index, false)
                    }
                }
            }
            while store.commitStatistics.queued < writes.count { try await Task.sleep(for: .milliseconds(5)) }
            release.signal()
            var outcomes = [Bool](repeating: false, count: writes.count)
            for try await (index, succeeded) in group { outcomes[index] = succeeded }
            #expect(store.commitStatistics.batches == batchesBefore + 1, "the writes shared one transaction")
            return outcomes
        }
    }

    func rows() throws -> [String: String] {
        try DatabaseQueue(path: path).read { db in
            Dictionary(uniqueKeysWithValues: try Row.fetchAll(db, sql: "SELECT tenantId, resourceKey, attributes FROM items").map {
                ("\($0["tenantId"] as String)/\($0["resourceKey"] as String)", $0["attributes"] as String)
            })
        }
    }

    /// Adds a trigger to the file through a connection of its own, as a fault an operator (or a
    /// bug) could leave there.
    func inject(_ sql: String) throws {
        let queue = try DatabaseQueue(path: path)
        try queue.write { db in try db.execute(sql: sql) }
        try queue.close()
    }
}

/// An atomic shared by the tasks of a test.
final class Shared<Value: AtomicRepresentable & Sendable>: Sendable {
    let atomic: Atomic<Value>
    init(_ value: Value) { atomic = Atomic(value) }
}

@Suite("Group commit: isolation, a bounded hold of the writer, a capped WAL")
struct GroupCommitHardeningTests {
    static let mates = (0..<20).map { Item(tenantId: "mate", resourceKey: "ITEM#\($0)", attributes: ["n": .int($0)]) }

    @Test("a one-statement DELETE that fails half-way (a trigger's fault on its sixth row) leaves every row, its batch-mates commit")
    func multiRowDeleteFailsWhole() async throws {
        let fresh = try FreshStore()
        defer { fresh.remove() }
        // Ten expired idempotency records: the sweep's one DELETE would remove them all.
        let records = (0..<10).map {
            Item(key: ItemKey(tenantId: IdempotencyRecords.partitionPrefix + "r\($0)", resourceKey: "R"), attributes: [
                IdempotencyRecords.Attribute.expiresAt: .int(1),
            ])
        }
        for record in records { try await fresh.store.put(record) }
        try fresh.inject("""
            CREATE TRIGGER fault BEFORE DELETE ON items WHEN old.tenantId = '\(IdempotencyRecords.partitionPrefix)r5'
            BEGIN SELECT RAISE(ABORT, 'injected fault'); END
            """)
        let before = try fresh.rows()
        let deleted = Shared(-1)
        let outcomes = try await fresh.inOneBatch(
            [{ deleted.atomic.store(try await fresh.store.deleteExpiredIdempotencyRecords(now: Date(), limit: 100), ordering: .relaxed) }]
                + Self.mates.map { item in { try await fresh.store.put(item) } }
        )
        #expect(outcomes == [false] + Array(repeating: true, count: Self.mates.count))
        let after = try fresh.rows()
        for record in records {
            #expect(after["\(record.key.tenantId)/R"] == before["\(record.key.tenantId)/R"], "\(record.key.tenantId) is still there")
        }
        for mate in Self.mates { #expect(after["mate/\(mate.key.resourceKey)"] != nil) }
    }

    @Test("a put that replaces an item and then fails (a trigger after the insert) leaves the old item; so does an update")
    func replacingPutFailsWhole() async throws {
        let fresh = try FreshStore()
        defer { fresh.remove() }
        let existing = Item(tenantId: "t", resourceKey: "TENANT#t", attributes: ["clientName": .string("Old"), "version": .int(1)])
        try await fresh.store.put(existing)
        try fresh.inject("CREATE TRIGGER fault AFTER INSERT ON items WHEN new.clientName = 'boom' BEGIN SELECT RAISE(ABORT, 'injected fault'); END")
        let outcomes = try await fresh.inOneBatch(
            [
                { try await fresh.store.put(Item(key: existing.key, attributes: ["clientName": .string("boom")])) },
                { try await fresh.store.update(existing.key, set: ["clientName": .string("boom")], condition: .itemExists) },
            ] + Self.mates.map { item in { try await fresh.store.put(item) } }
        )
        #expect(outcomes == [false, false] + Array(repeating: true, count: Self.mates.count))
        #expect(try await fresh.store.get(existing.key) == existing)
        for mate in Self.mates { #expect(try await fresh.store.get(mate.key) == mate) }
    }

    @Test("a write declared as one statement that fails after a first statement changed a row commits nothing of it; its batch-mates commit")
    func undeclaredSecondStatementIsUndone() async throws {
        let fresh = try FreshStore()
        defer { fresh.remove() }
        let taken = Item(tenantId: "t", resourceKey: "TAKEN", attributes: [:])
        try await fresh.store.put(taken)
        let halfApplied: @Sendable () async throws -> Void = {
            try await fresh.store.write(needsSavepoint: false) { db in
                try db.execute(sql: "INSERT INTO items (tenantId, resourceKey) VALUES ('t', 'FIRST')")
                // Fails (primary key): the first INSERT must not stay.
                try db.execute(sql: "INSERT INTO items (tenantId, resourceKey) VALUES ('t', 'TAKEN')")
            }
        }
        let outcomes = try await fresh.inOneBatch([halfApplied] + Self.mates.map { item in { try await fresh.store.put(item) } })
        #expect(outcomes == [false] + Array(repeating: true, count: Self.mates.count))
        #expect(try await fresh.store.get(ItemKey(tenantId: "t", resourceKey: "FIRST")) == nil, "nothing of the failed write")
        for mate in Self.mates { #expect(try await fresh.store.get(mate.key) == mate) }
    }

    @Test("under constant load a write outside the committer waits for at most two batches, not for the load to stop", .heavyLoad)
    func outsideWriterIsNotStarved() async throws {
        let fresh = try FreshStore()
        defer { fresh.remove() }
        // More writers than a batch holds: the committer's queue is never empty while they run.
        let writers = 600, total = 6_000
        let committed = Shared(0)
        let started = Shared(0)
        let outcome = try await withThrowingTaskGroup(of: (Int, Int)?.self) { group in
            for writer in 0..<writers {
                group.addTask {
                    var index = writer
                    while started.atomic.add(1, ordering: .relaxed).newValue <= total {
                        try await fresh.store.put(Item(tenantId: "load", resourceKey: "ITEM#\(index)", attributes: [:]))
                        committed.atomic.add(1, ordering: .relaxed)
                        index += writers
                    }
                    return nil
                }
            }
            group.addTask {
                while committed.atomic.load(ordering: .relaxed) < 1_000 { try await Task.sleep(for: .milliseconds(1)) }
                // Batches committed, counted by the committer itself (a caller counts its write only
                // once it resumes, which on a loaded machine can be long after the commit).
                let queuedAt = fresh.store.commitStatistics.batches
                // A GRDB write of its own, as a migration or a maintenance job would do.
                let ranAt = try await fresh.store.pool.write { db in
                    try db.execute(sql: "INSERT INTO items (tenantId, resourceKey) VALUES ('outside', 'X')")
                    return fresh.store.commitStatistics.batches
                }
                return (queuedAt, ranAt)
            }
            var outcome: (Int, Int)?
            for try await result in group { if let result { outcome = result } }
            return try #require(outcome)
        }
        #expect(committed.atomic.load(ordering: .relaxed) == total)
        // Batches committed after the outside write was queued and before it ran: the batch then
        // running and at most one more; without the bound, every batch of the rest of the load.
        #expect(outcome.1 - outcome.0 <= 2, "queued after \(outcome.0) batches, ran after \(outcome.1)")
    }

    @Test("a batch takes no further write once it has run maxBatchDuration (zero: one write per batch)")
    func batchTimeBound() async throws {
        var limits = GroupCommitter.Limits()
        limits.maxBatchDuration = .zero
        let fresh = try FreshStore(limits: limits)
        defer { fresh.remove() }
        let release = DispatchSemaphore(value: 0)
        let held = DispatchSemaphore(value: 0)
        fresh.store.pool.asyncWriteWithoutTransaction { _ in
            held.signal()
            release.wait()
        }
        held.wait()
        let before = fresh.store.commitStatistics.batches
        try await withThrowingTaskGroup(of: Void.self) { group in
            for item in Self.mates.prefix(10) { group.addTask { try await fresh.store.put(item) } }
            while fresh.store.commitStatistics.queued < 10 { try await Task.sleep(for: .milliseconds(5)) }
            release.signal()
            try await group.waitForAll()
        }
        #expect(fresh.store.commitStatistics.batches - before == 10)
        for item in Self.mates.prefix(10) { #expect(try await fresh.store.get(item.key) == item) }
    }
}
