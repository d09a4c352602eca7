import Synchronization

/// A value read from somewhere slow (the store), kept for `maxAge`, and read again by one caller
/// at a time: when it is due, the first caller starts the read and every concurrent caller awaits
/// that same read, so a flood of requests at expiry makes one read, not one each. No lock is held
/// across the read.
///
/// A read that throws is not kept: the callers that awaited it get the error, the next caller
/// reads again. The read runs in a task of its own, so cancelling the caller that started it
/// cancels nobody's read (the others still get its value).
final class SingleFlightCache<Value: Sendable>: Sendable {
    typealias Instant = ContinuousClock.Instant

    private struct State {
        var value: Value?
        var readAt: Instant?
        var inFlight: Task<Value, any Error>?
        var reads = 0
    }

    private enum Lookup {
        case cached(Value)
        case wait(Task<Value, any Error>)
    }

    private let maxAge: Duration
    private let now: @Sendable () -> Instant
    private let state: Mutex<State>

    /// - Parameters:
    ///   - initial: a value already read (kept for `maxAge` from now); `nil`: read on first use.
    ///   - now: the clock deciding when the value is due (tests move it).
    init(maxAge: Duration, initial: Value? = nil, now: @escaping @Sendable () -> Instant = { .now }) {
        self.maxAge = maxAge
        self.now = now
        self.state = Mutex(State(value: initial, readAt: initial == nil ? nil : now()))
    }

    /// How many reads have been started.
    var reads: Int { state.withLock { $0.reads } }

    /// The kept value while it is younger than `maxAge`; otherwise the result of `read` (started
    /// now, or already running for another caller).
    func value(orRead read: @escaping @Sendable () async throws -> Value) async throws -> Value {
        let lookup = state.withLock { state -> Lookup in
            if let value = state.value, let readAt = state.readAt, now() - readAt < maxAge { return .cached(value) }
            if let inFlight = state.inFlight { return .wait(inFlight) }
            state.reads += 1
            // The task takes this lock to clear `inFlight`, so it cannot do so before it is set here.
            let task = Task { try await self.readAndKeep(read) }
            state.inFlight = task
            return .wait(task)
        }
        switch lookup {
        case .cached(let value): return value
        case .wait(let task): return try await task.value
        }
    }

    private func readAndKeep(_ read: @Sendable () async throws -> Value) async throws -> Value {
        do {
            let value = try await read()
            // Stamped when the read ends: the value is known to be current then.
            state.withLock { $0 = State(value: value, readAt: now(), inFlight: nil, reads: $0.reads) }
            return value
        } catch {
            state.withLock { $0.inFlight = nil }
            throw error
        }
    }
}
