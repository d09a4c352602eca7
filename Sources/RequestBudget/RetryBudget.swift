import Synchronization

/// The time and the retries one request may spend, shared by every layer that retries.
///
/// Retries used to nest (the AWS client, a transaction's conflict loop and a resource write each
/// had their own loop); now each of them asks the one budget of the request it serves. A budget
/// has a deadline (the Lambda invocation's, or the server's request deadline) and a number of
/// retries; a layer that wants to retry asks ``nextRetryDelay(attempt:base:cap:)`` and gives up
/// when the answer is `nil`. Every attempt's timeout comes from ``attemptTimeout(atMost:)``, so
/// no attempt runs past the deadline.
///
/// The budget of the running task is ``current`` (a task-local value, set per request by the
/// HTTP layer and per invocation by the Lambda runtime); code that runs outside any request
/// (the CLI, background services) gets a fresh budget from ``withCurrent(orNew:_:)``.
public final class RetryBudget: Sendable {
    /// The instant after which nothing more may be attempted.
    public let deadline: ContinuousClock.Instant
    /// How many retries (attempts after a first one, across all layers) the request may make.
    public let maxRetries: Int
    private let retriesTaken = Atomic<Int>(0)

    /// The least time an attempt is worth starting with: with less left, the request gives up.
    public static let minimumAttemptTime: Duration = .milliseconds(50)

    /// A budget ending at `deadline`.
    public init(deadline: ContinuousClock.Instant, maxRetries: Int = RetryBudget.defaultMaxRetries) {
        self.deadline = deadline
        self.maxRetries = maxRetries
    }

    /// A budget ending `timeout` from now.
    public convenience init(timeout: Duration, maxRetries: Int = RetryBudget.defaultMaxRetries) {
        self.init(deadline: .now + timeout, maxRetries: maxRetries)
    }

    /// Retries a request may make when nobody said otherwise.
    public static let defaultMaxRetries = 8
    /// The time a budget made outside any request has (the CLI, background work).
    public static let defaultTimeout: Duration = .seconds(30)

    /// The budget of the request the running task serves, if any.
    @TaskLocal public static var current: RetryBudget?

    /// Runs `body` with the current budget, or with `make()` bound as the current one when the
    /// task has none, so that every layer under `body` shares one budget.
    public static func withCurrent<T>(
        orNew make: @autoclosure () -> RetryBudget = RetryBudget(timeout: RetryBudget.defaultTimeout),
        _ body: (RetryBudget) async throws -> T
    ) async rethrows -> T {
        if let current { return try await body(current) }
        let budget = make()
        return try await $current.withValue(budget) { try await body(budget) }
    }

    /// Time left until the deadline (zero once it passed).
    public var remaining: Duration { max(.zero, deadline - .now) }

    /// Whether the deadline has passed.
    public var isExpired: Bool { ContinuousClock.now >= deadline }

    /// Retries taken so far, by every layer.
    public var retries: Int { retriesTaken.load(ordering: .relaxed) }

    /// The timeout of the next attempt: `limit`, or less when the deadline is closer; `nil` when
    /// too little time is left to start one (``minimumAttemptTime``).
    public func attemptTimeout(atMost limit: Duration) -> Duration? {
        let left = remaining
        guard left >= Self.minimumAttemptTime else { return nil }
        return min(limit, left)
    }

    /// Takes one retry from the budget and returns the pause before it: full jitter,
    /// random(0, min(cap, base × 2^attempt)). `nil` when no retry is left, or when the pause and
    /// a minimal attempt after it would not fit before the deadline; then the caller gives up.
    /// - Parameter attempt: the attempt that just failed (1-based) in the caller's own loop.
    public func nextRetryDelay(attempt: Int, base: Duration, cap: Duration) -> Duration? {
        let ceiling = min(cap, base * (1 << min(max(attempt, 0), 20)))
        let nanoseconds = ceiling.components.seconds * 1_000_000_000 + ceiling.components.attoseconds / 1_000_000_000
        let delay = Duration.nanoseconds(Int64.random(in: 0...max(0, nanoseconds)))
        guard delay + Self.minimumAttemptTime <= remaining else { return nil }
        guard retriesTaken.add(1, ordering: .relaxed).newValue <= maxRetries else { return nil }
        return delay
    }
}
