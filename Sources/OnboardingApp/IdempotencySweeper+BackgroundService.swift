import OnboardingHTTP

/// The idempotency sweeper deletes expired records beside the server (SQLite only: DynamoDB's
/// TTL does it there), and between Lambda invocations its ``IdempotencySweeper/runPending()``
/// sweeps once.
extension IdempotencySweeper: BackgroundService {}
