import Foundation
import Logging
import OnboardingCore
import ServiceLifecycle

/// Deletes expired idempotency records on stores without a time to live (SQLite), in the
/// background; on DynamoDB (TTL on `expiresAt`) and on any other store it does nothing.
///
/// Correctness never waits for it: a read treats an expired record as absent. The sweep only
/// keeps the file from growing with records nobody can use any more.
///
/// As a ``Service`` it sweeps every ``interval`` until graceful shutdown; ``runPending()`` is one
/// bounded step for a runtime that runs nothing between requests (the Lambda entry).
public struct IdempotencySweeper: Service {
    private let sweeping: (any IdempotencyRecordSweeping)?
    private let clock: any WallClock
    private let logger: Logger
    /// Time between sweeps.
    public let interval: Duration
    /// Records deleted per transaction (a sweep deletes in batches until none are left).
    public let batchSize: Int

    /// - Parameter store: the served store; a sweep happens only if it is ``IdempotencyRecordSweeping``.
    public init(
        store: any TenantStore, clock: any WallClock = SystemWallClock(), interval: Duration = .seconds(600),
        batchSize: Int = 500, logger: Logger = Logger(label: "onboard.idempotency")
    ) {
        self.sweeping = store as? any IdempotencyRecordSweeping
        self.clock = clock
        self.logger = logger
        self.interval = interval
        self.batchSize = batchSize
    }

    /// One bounded step: ``sweep()``.
    public func runPending() async {
        await sweep()
    }

    /// Deletes every record expired by now, a batch per transaction; a failure is logged and
    /// left for the next sweep.
    /// - Returns: how many records were deleted.
    @discardableResult
    public func sweep() async -> Int {
        guard let sweeping else { return 0 }
        var total = 0
        do {
            while !Task.isCancelled {
                let deleted = try await sweeping.deleteExpiredIdempotencyRecords(now: clock.now(), limit: batchSize)
                total += deleted
                if deleted < batchSize { break }
            }
        } catch {
            logger.warning("idempotency sweep failed; retried at the next one", metadata: ["error": "\(error)"])
        }
        if total > 0 { logger.debug("expired idempotency records deleted", metadata: ["count": "\(total)"]) }
        return total
    }

    public func run() async throws {
        // Nothing to sweep (DynamoDB's TTL does it): wait for the shutdown all the same, since a
        // service that returns early makes the service group stop the whole server.
        guard sweeping != nil else {
            try? await gracefulShutdown()
            return
        }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            await runPending()
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
