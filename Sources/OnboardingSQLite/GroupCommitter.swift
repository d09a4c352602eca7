import Foundation
import GRDB
import Synchronization

/// Group commit: writes that arrive while a transaction is being committed wait, then all commit
/// together in the next transaction, so one fsync acknowledges many writes.
///
/// Under light load a write commits alone and at once (no timer, no added latency); under load
/// the batch grows by itself to whatever arrived during the previous commit. A write's caller
/// resumes only after the COMMIT that made it durable.
///
/// **Isolation.** A write that fails (a condition that does not hold) is undone alone while the
/// others of its batch commit:
/// - a write of several statements (a transaction) runs in its own savepoint, rolled back if it throws;
/// - a write of one modifying statement (a put, an update, a delete, the idempotency sweep's
///   one `DELETE`; reads before it change nothing) needs none: SQLite undoes a statement that
///   fails, every row it had changed included (its statement journal), and the transaction
///   goes on. The tests inject a trigger that fails such a statement half-way through.
///   Should a write declared as one statement ever fail after changing rows (a second statement
///   added later), SQLite's change counter shows it: the batch is rolled back and run again
///   with a savepoint for every write, so a half-applied write is never committed.
///
/// **Bounded hold of the writer.** One batch takes at most ``Limits/maxBatch`` writes and stops
/// taking more once it has run for ``Limits/maxBatchDuration`` (the write running then finishes
/// first), then commits; the next batch is queued behind whatever else waits for GRDB's writer
/// queue (a write outside the committer, a migration), so under constant load those wait for
/// at most one batch, not until the load stops.
///
/// **A capped WAL.** SQLite checkpoints the WAL by itself after commits (passively, at 1,000
/// pages), but a passive checkpoint cannot reset the WAL while readers still use it: under
/// constant overlapping reads the file grows without bound. After a batch, when the `-wal` file
/// is larger than ``Limits/walCheckpointBytes``, the writer runs a `TRUNCATE` checkpoint, which
/// waits (up to ``Limits/walCheckpointWait``) for the readers of older snapshots to finish,
/// copies the WAL into the database and empties it. If readers outlast the wait (reads that
/// overlap without a pause: a new one always starts on the WAL before the last ends), the
/// checkpoint runs again behind a barrier of the pool: GRDB holds new reads of this process
/// back until the ones running have finished, then the `TRUNCATE` checkpoint runs alone and the
/// reads go on (a pause of at most the longest read in progress); the store's point reads
/// (``PointReaders``, outside the pool) go through the pool meanwhile, so the barrier holds them too. Only readers in other
/// processes (an `sqlite3` shell, a backup) can still keep it from emptying the WAL; it is then
/// tried again once the WAL has grown by another ``Limits/walCheckpointBytes``.
final class GroupCommitter: Sendable {
    /// One write: runs on the writer connection inside the batch's transaction.
    typealias Work = @Sendable (Database) throws -> Void

    /// How long a batch may hold the writer, and when the WAL is checkpointed.
    struct Limits: Sendable {
        /// Writes per transaction.
        var maxBatch = 256
        /// A batch takes no further write once it has run this long: about ten times a typical
        /// batch of small writes on the reference machine, so it bounds only unusual batches
        /// (large transactions), not the common case.
        var maxBatchDuration: Duration = .milliseconds(50)
        /// The `-wal` size above which the writer checkpoints with `TRUNCATE`: eight times the
        /// size at which SQLite's automatic checkpoint starts (1,000 pages of 4 KiB), so it is
        /// reached only when readers keep automatic checkpoints from resetting the WAL.
        var walCheckpointBytes: Int64 = 32 << 20
        /// How long that checkpoint may wait for readers (the writer waits with it).
        var walCheckpointWait: Duration = .seconds(1)
    }

    private struct Pending {
        let work: Work
        let needsSavepoint: Bool
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var queue: [Pending] = []
        var draining = false
        /// The `-wal` size at which the next checkpoint is tried.
        var nextCheckpointAt: Int64 = 0
        var batches = 0
        var checkpoints = 0
        /// A checkpoint behind a read barrier is queued (at most one at a time).
        var barrierPending = false
    }

    let limits: Limits
    private let writer: DatabasePool
    /// The `-wal` file of `writer`'s database.
    private let walPath: String
    private let state = Mutex(State())

    /// Point reads outside the pool, paused while a checkpoint waits behind the pool's barrier.
    private let pointReaders: PointReaders?

    init(writer: DatabasePool, limits: Limits = Limits(), pointReaders: PointReaders? = nil) {
        self.writer = writer
        self.limits = limits
        self.pointReaders = pointReaders
        walPath = writer.path + "-wal"
        state.withLock { $0.nextCheckpointAt = limits.walCheckpointBytes }
    }

    /// What the tests look at.
    struct Statistics: Sendable {
        /// Batches committed (or failed as a whole) so far.
        var batches: Int
        /// `TRUNCATE` checkpoints that emptied the WAL.
        var checkpoints: Int
        /// Writes waiting for a batch.
        var queued: Int
    }

    var statistics: Statistics {
        state.withLock { Statistics(batches: $0.batches, checkpoints: $0.checkpoints, queued: $0.queue.count) }
    }

    /// Runs `work` in the next group transaction and returns once that transaction is committed.
    /// - Parameter needsSavepoint: `true` when `work` may fail after a first change (several
    ///   statements): it then runs in a savepoint, rolled back if it throws. `false` promises
    ///   at most one modifying statement (see the type's discussion for what guards the promise).
    /// - Throws: what `work` threw (its changes are rolled back), or the error of the commit.
    func write(needsSavepoint: Bool, _ work: @escaping Work) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let startDraining = state.withLock { state in
                state.queue.append(Pending(work: work, needsSavepoint: needsSavepoint, continuation: continuation))
                guard !state.draining else { return false }
                state.draining = true
                return true
            }
            if startDraining {
                writer.asyncWriteWithoutTransaction { db in self.drain(db) }
            }
        }
    }

    /// Commits one batch, then leaves the writer queue: if more writes wait, the next batch is
    /// queued behind whatever else waits for the writer.
    private func drain(_ db: Database) {
        let batch: [Pending] = state.withLock { state in
            let count = min(state.queue.count, limits.maxBatch)
            let batch = Array(state.queue.prefix(count))
            state.queue.removeFirst(count)
            return batch
        }
        var deferred: [Pending] = []
        if !batch.isEmpty {
            deferred = commit(batch, db)
            checkpointIfNeeded(db)
        }
        let more = state.withLock { state in
            // Writes the time bound left out go first in the next batch.
            state.queue.insert(contentsOf: deferred, at: 0)
            if state.queue.isEmpty {
                state.draining = false
                return false
            }
            return true
        }
        if more {
            writer.asyncWriteWithoutTransaction { db in self.drain(db) }
        }
    }

    /// Commits the writes of `batch` it gets to within ``Limits/maxBatchDuration`` in one
    /// transaction and resumes their callers; returns the writes it left for the next batch.
    private func commit(_ batch: [Pending], _ db: Database, savepointEach: Bool = false) -> [Pending] {
        var results: [Result<Void, any Error>] = []
        results.reserveCapacity(batch.count)
        var halfApplied = false
        let start = ContinuousClock.now
        do {
            try db.inTransaction(.immediate) {
                for pending in batch {
                    if !results.isEmpty && ContinuousClock.now - start >= limits.maxBatchDuration { break }
                    let changesBefore = db.totalChangesCount
                    do {
                        if pending.needsSavepoint || savepointEach {
                            try db.inSavepoint {
                                try pending.work(db)
                                return .commit
                            }
                        } else {
                            try pending.work(db)
                        }
                        results.append(.success(()))
                    } catch {
                        results.append(.failure(error))
                        // Some SQLite errors (disk full, I/O) roll back the whole transaction:
                        // then nothing of this batch can be reported as written.
                        if !db.isInsideTransaction { throw error }
                        // A failed statement's changes are undone and not counted; a count that
                        // moved means an earlier statement of this write stays applied.
                        if !(pending.needsSavepoint || savepointEach) && db.totalChangesCount != changesBefore {
                            halfApplied = true
                            return .rollback
                        }
                    }
                }
                return .commit
            }
        } catch {
            // The transaction did not commit: every write of the batch it ran failed with it.
            for index in results.indices {
                if case .success = results[index] { results[index] = .failure(error) }
            }
        }
        if halfApplied {
            // Nothing of this batch was committed; again, each write isolated this time.
            return commit(batch, db, savepointEach: true)
        }
        state.withLock { $0.batches += 1 }
        for (pending, result) in zip(batch, results) {
            pending.continuation.resume(with: result)
        }
        return Array(batch.dropFirst(results.count))
    }

    /// Empties the WAL with a `TRUNCATE` checkpoint when it grew past ``Limits/walCheckpointBytes``;
    /// when readers outlast the wait, queues the same checkpoint behind a read barrier.
    private func checkpointIfNeeded(_ db: Database) {
        var info = stat()
        guard stat(walPath, &info) == 0 else { return }
        let size = Int64(info.st_size)
        guard size > state.withLock({ $0.nextCheckpointAt }) else { return }
        if truncate(db) {
            state.withLock { state in
                state.checkpoints += 1
                state.nextCheckpointAt = limits.walCheckpointBytes
            }
            return
        }
        let queue = state.withLock { state in
            guard !state.barrierPending else { return false }
            state.barrierPending = true
            return true
        }
        guard queue else { return }
        // Not from this writer-queue block (the barrier needs the writer itself): queued behind it.
        // Point reads (outside the pool) pause too, until the checkpoint is done.
        pointReaders?.pause(true)
        writer.asyncBarrierWriteWithoutTransaction { result in
            let emptied = (try? result.get()).map { self.truncate($0) } ?? false
            self.pointReaders?.pause(false)
            self.state.withLock { state in
                state.barrierPending = false
                if emptied {
                    state.checkpoints += 1
                    state.nextCheckpointAt = self.limits.walCheckpointBytes
                } else {
                    state.nextCheckpointAt = size + self.limits.walCheckpointBytes
                }
            }
        }
    }

    /// A `TRUNCATE` checkpoint waiting at most ``Limits/walCheckpointWait`` for readers of older
    /// snapshots; `false` when one outlasted it (SQLITE_BUSY: the WAL keeps its frames, nothing
    /// is lost).
    private func truncate(_ db: Database) -> Bool {
        do {
            let busyTimeout = try Int.fetchOne(db, sql: "PRAGMA busy_timeout") ?? 0
            let wait = limits.walCheckpointWait.components
            try db.execute(sql: "PRAGMA busy_timeout = \(wait.seconds * 1000 + wait.attoseconds / 1_000_000_000_000_000)")
            defer { try? db.execute(sql: "PRAGMA busy_timeout = \(busyTimeout)") }
            _ = try db.checkpoint(.truncate)
            return true
        } catch {
            return false
        }
    }
}
