import RequestBudget

extension RetryBudget {
    /// The pause before another try after losing a race: full jitter from 5 ms, doubling up to 200 ms.
    static let lostRaceBackoff: (base: Duration, cap: Duration) = (.milliseconds(5), .milliseconds(200))

    /// Waits before another try after a write lost a race to a concurrent change, or gives up
    /// with `409 conflict` (`detail`) when the request's budget has no retry left.
    /// - Parameter attempt: the attempt that just failed (1-based).
    func pauseAfterLostRace(attempt: Int, conflict detail: @autoclosure () -> String) async throws {
        guard let delay = nextRetryDelay(attempt: attempt, base: Self.lostRaceBackoff.base, cap: Self.lostRaceBackoff.cap) else {
            throw OnboardingError(.conflict, detail())
        }
        try await Task.sleep(for: delay)
    }
}
