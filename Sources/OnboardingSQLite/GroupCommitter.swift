import GRDB
import Synchronization

/// Group commit: writes that arrive while a transaction is being committed wait, then all commit
/// together in the next transaction, so one fsync acknowledges many writes.
///
/// Under light load a write commits alone and at once (no timer, no added latency); under load
/// the batch grows by itself to whatever arrived during the previous commit. Each write runs in
/// its own savepoint, so one that fails (a condition that does not hold) is undone alone while
/// the others commit. A write's caller resumes only after the COMMIT that made it durable.
///
/// A write of one statement needs no savepoint: SQLite undoes a failed statement by itself and
/// the transaction goes on. Writes of several statements (transactions) ask for one.
final class GroupCommitter: Sendable {
    /// One write: runs on the writer connection inside the batch's transaction.
    typealias Work = @Sendable (Database) throws -> Void

    private struct Pending {
        let work: Work
        let needsSavepoint: Bool
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var queue: [Pending] = []
        var draining = false
    }

    /// An upper bound on one transaction, so a huge backlog still commits in bounded steps.
    static let maxBatch = 256

    private let writer: DatabasePool
    private let state = Mutex(State())

    init(writer: DatabasePool) {
        self.writer = writer
    }

    /// Runs `work` in the next group transaction and returns once that transaction is committed.
    /// - Parameter needsSavepoint: `true` when `work` may fail after a first change (several
    ///   statements): it then runs in a savepoint, rolled back if it throws.
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

    /// Commits batches on the writer's queue until nothing is waiting.
    private func drain(_ db: Database) {
        while true {
            let batch: [Pending] = state.withLock { state in
                guard !state.queue.isEmpty else {
                    state.draining = false
                    return []
                }
                let count = min(state.queue.count, Self.maxBatch)
                let batch = Array(state.queue.prefix(count))
                state.queue.removeFirst(count)
                return batch
            }
            guard !batch.isEmpty else { return }
            commit(batch, db)
        }
    }

    private func commit(_ batch: [Pending], _ db: Database) {
        var results = [Result<Void, any Error>](repeating: .success(()), count: batch.count)
        do {
            try db.inTransaction(.immediate) {
                for (index, pending) in batch.enumerated() {
                    do {
                        if pending.needsSavepoint {
                            try db.inSavepoint {
                                try pending.work(db)
                                return .commit
                            }
                        } else {
                            try pending.work(db)
                        }
                    } catch {
                        results[index] = .failure(error)
                        // Some SQLite errors (disk full, I/O) roll back the whole transaction:
                        // then nothing of this batch can be reported as written.
                        if !db.isInsideTransaction { throw error }
                    }
                }
                return .commit
            }
        } catch {
            // The transaction did not commit: every write of the batch failed with it.
            for index in results.indices {
                if case .success = results[index] { results[index] = .failure(error) }
            }
        }
        for (pending, result) in zip(batch, results) {
            pending.continuation.resume(with: result)
        }
    }
}
