import Foundation
import Logging
import OnboardingCore
import ServiceLifecycle
import Synchronization

/// Records when tenant API keys are used (`lastUsedAt`), off the request path and without losing
/// uses at shutdown.
///
/// A request only notes the use in memory (``record(keyId:tenantId:)``): at most once per key per
/// ``Configuration/resolution``, coalesced per key, and bounded (``Configuration/maxPending``).
/// ``flush()`` writes what was noted, one `UpdateItem`-style ``TenantStore/update(_:set:condition:)``
/// per key, conditioned on the key's existence so a revoked key is never brought back.
///
/// As a ``Service`` it flushes every ``Configuration/flushInterval`` and once more on graceful
/// shutdown (after the HTTP server, which is shut down first, has answered its last request).
/// Inside Lambda, where nothing runs between invocations, the runtime calls ``flush()`` after
/// each response instead.
public final class KeyUsageRecorder: Service {
    /// How often and how much the recorder writes.
    public struct Configuration: Sendable {
        /// Pending uses are written this often.
        public var flushInterval: Duration
        /// A key's use is noted at most this often (`lastUsedAt` is this precise).
        public var resolution: Duration
        /// At most this many keys wait to be written; uses of further keys are dropped (and
        /// counted in a warning) until the next flush.
        public var maxPending: Int
        /// Writes in flight at once during a flush.
        public var concurrentWrites: Int

        public init(
            flushInterval: Duration = .seconds(5), resolution: Duration = .seconds(ApiKeys.lastUsedResolution),
            maxPending: Int = 10_000, concurrentWrites: Int = 8
        ) {
            self.flushInterval = flushInterval
            self.resolution = resolution
            self.maxPending = maxPending
            self.concurrentWrites = concurrentWrites
        }
    }

    private struct Use: Sendable {
        var tenantId: TenantID
        var at: Date
    }

    private struct State {
        /// Uses waiting to be written, by key id.
        var pending: [String: Use] = [:]
        /// When each key's use was last noted (for the resolution).
        var lastNoted: [String: ContinuousClock.Instant] = [:]
        /// Uses dropped because `pending` was full, since the last flush.
        var dropped = 0
    }

    private let apiKeys: ApiKeys
    private let clock: any WallClock
    private let configuration: Configuration
    private let logger: Logger
    private let state = Mutex(State())

    /// - Parameter clock: what `lastUsedAt` is read from, at the moment of use.
    public init(
        store: any TenantStore, clock: any WallClock = SystemWallClock(), configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "onboard.apikeys")
    ) {
        self.apiKeys = ApiKeys(store: store, hasher: CryptoSecretHasher(), clock: clock)
        self.clock = clock
        self.configuration = configuration
        self.logger = logger
    }

    /// Notes that a verified key was used now. Never waits for the store.
    public func record(keyId: String, tenantId: TenantID) {
        let now = ContinuousClock.now
        let usedAt = clock.now()
        let resolution = configuration.resolution
        let maxPending = configuration.maxPending
        state.withLock { state in
            if let last = state.lastNoted[keyId], now - last < resolution { return }
            guard state.pending[keyId] != nil || state.pending.count < maxPending else {
                state.dropped += 1
                return
            }
            // Bounded: a forgotten key is simply noted once more.
            if state.lastNoted.count >= maxPending { state.lastNoted.removeAll(keepingCapacity: true) }
            state.lastNoted[keyId] = now
            state.pending[keyId] = Use(tenantId: tenantId, at: usedAt)
        }
    }

    /// How many keys wait to be written.
    public var pendingCount: Int { state.withLock { $0.pending.count } }

    /// Writes every pending use now: one store write per key, a few at a time. A write the store
    /// could not take (`unavailable`) waits for the next flush, unless a newer use of the same
    /// key is pending by then.
    public func flush() async {
        let (batch, dropped) = state.withLock { state in
            defer {
                state.pending.removeAll(keepingCapacity: true)
                state.dropped = 0
            }
            return (state.pending, state.dropped)
        }
        if dropped > 0 {
            logger.warning("too many API keys waiting to be recorded; some uses were not", metadata: ["dropped": "\(dropped)"])
        }
        guard !batch.isEmpty else { return }
        let apiKeys = self.apiKeys
        var failed: [(keyId: String, use: Use, error: any Error)] = []
        await withTaskGroup(of: (String, Use, (any Error)?).self) { group in
            var uses = batch.makeIterator()
            func addNext() -> Bool {
                guard let (keyId, use) = uses.next() else { return false }
                group.addTask {
                    do {
                        try await apiKeys.touch(keyId, of: use.tenantId, at: use.at)
                        return (keyId, use, nil)
                    } catch {
                        return (keyId, use, error)
                    }
                }
                return true
            }
            var started = 0
            while started < max(1, configuration.concurrentWrites), addNext() { started += 1 }
            while let (keyId, use, error) = await group.next() {
                if let error { failed.append((keyId, use, error)) }
                _ = addNext()
            }
        }
        guard !failed.isEmpty else { return }
        let maxPending = configuration.maxPending
        state.withLock { state in
            for (keyId, use, error) in failed {
                guard let storeError = error as? StoreError, storeError.code == .unavailable else { continue }
                if state.pending[keyId] == nil && state.pending.count < maxPending { state.pending[keyId] = use }
            }
        }
        for (keyId, _, error) in failed {
            logger.warning("could not record an API key's use", metadata: ["keyId": .string(keyId), "error": "\(error)"])
        }
    }

    /// Flushes every ``Configuration/flushInterval`` until a graceful shutdown (or cancellation),
    /// then flushes what is left.
    public func run() async throws {
        let interval = configuration.flushInterval
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
            await flush()
        }
        await flush()
    }
}
