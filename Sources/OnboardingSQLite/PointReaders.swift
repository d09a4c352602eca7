import GRDB
import Synchronization

/// Read-only connections of their own for point reads on the calling thread, taken without ever
/// waiting.
///
/// A point read (one indexed `SELECT`) takes microseconds: less than the hops to a GRDB reader
/// queue and back. But a synchronous read from `DatabasePool` may wait, for a free reader or
/// behind a barrier, and a pool reader used by an async read is released only when that read's
/// task resumes: with the cooperative threads blocked in such waits, nothing releases it. So
/// these connections are separate from the pool, and ``read(_:)`` only ever *tries*: when none is
/// free (or checkpoints asked for a pause) it returns `nil` and the caller reads through the pool.
final class PointReaders: Sendable {
    private struct State {
        var free: [DatabaseQueue]
        /// While set, no point read starts (a `TRUNCATE` checkpoint waits for the readers).
        var paused = false
    }

    private let state: Mutex<State>

    /// Opens `count` read-only connections to the database at `path` (already created and migrated).
    init(path: String, count: Int) throws {
        var configuration = Configuration()
        configuration.readonly = true
        configuration.label = "onboard.point-read"
        // A reader in WAL mode waits only in rare moments (a checkpoint resetting the WAL index).
        configuration.busyMode = .timeout(5)
        state = Mutex(State(free: try (0..<count).map { _ in try DatabaseQueue(path: path, configuration: configuration) }))
    }

    /// The result of `body` on a free connection, on this thread; `nil` when none is free.
    func read<T>(_ body: (Database) throws -> T) throws -> T? {
        guard let connection = state.withLock({ state -> DatabaseQueue? in state.paused ? nil : state.free.popLast() }) else { return nil }
        defer { state.withLock { $0.free.append(connection) } }
        return try connection.unsafeRead(body)
    }

    /// Stops new point reads (they go through the pool, which its barrier holds back) or lets them go on.
    func pause(_ paused: Bool) {
        state.withLock { $0.paused = paused }
    }
}
