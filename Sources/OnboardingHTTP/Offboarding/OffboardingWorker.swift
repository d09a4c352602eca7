import Foundation
import Logging
import OnboardingCore
import ServiceLifecycle
import Synchronization

/// Finishes offboardings in the background: those `DELETE /tenants/{tenantId}` starts
/// (``enqueue(_:)``), and every one a crash, an outage or a shutdown left unfinished (their
/// markers, ``Offboarding/pending()``).
///
/// As a ``Service`` (`onboard serve`): on start it finishes every marked offboarding, then
/// finishes each enqueued one within ``Configuration/pollInterval``, and looks at the markers again
/// every ``Configuration/rescanInterval`` (offboardings started by the CLI or another process, and
/// ones a store error interrupted). On graceful shutdown it stops between two batches; the marker
/// lets the next start resume.
///
/// Inside Lambda nothing runs between invocations on its own, so the runtime calls
/// ``runPending()`` after each response: one bounded step of at most
/// ``Configuration/batchesPerStep`` batches (the markers are read on the first step and then every
/// ``Configuration/rescanInterval``, not on every invocation).
public final class OffboardingWorker: Service, Sendable {
    /// How the worker paces itself.
    public struct Configuration: Sendable {
        /// How often the service looks for enqueued offboardings (an in-memory check).
        public var pollInterval: Duration
        /// How often the markers are read again.
        public var rescanInterval: Duration
        /// How soon the markers are read again after a store error interrupted an offboarding.
        public var retryInterval: Duration
        /// Batches per ``OffboardingWorker/runPending()`` step (Lambda).
        public var batchesPerStep: Int

        public init(
            pollInterval: Duration = .milliseconds(250), rescanInterval: Duration = .seconds(60), retryInterval: Duration = .seconds(2),
            batchesPerStep: Int = 10
        ) {
            self.pollInterval = pollInterval
            self.rescanInterval = rescanInterval
            self.retryInterval = retryInterval
            self.batchesPerStep = batchesPerStep
        }
    }

    private struct State {
        /// Tenants to finish, in the order they were enqueued or found.
        var queue: [TenantID] = []
        /// When the markers are to be read next; `nil`: now.
        var nextScan: ContinuousClock.Instant?
        /// A step is running (``runPending()`` and ``run()`` never overlap).
        var busy = false
    }

    /// The engine (start, finish, markers) this worker drives.
    public let offboarding: Offboarding
    private let configuration: Configuration
    private let logger: Logger
    private let state = Mutex(State())

    /// - Parameter events: records the offboardings' events (default: one on `clock` that wakes no
    ///   dispatcher).
    public init(
        store: any TenantStore, clock: any WallClock = SystemWallClock(), configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "onboard.offboarding"), events: EventRecorder? = nil
    ) {
        self.offboarding = Offboarding(store: store, clock: clock, events: events)
        self.configuration = configuration
        self.logger = logger
    }

    /// Asks for an offboarding (already started) to be finished soon. Never waits for the store.
    public func enqueue(_ id: TenantID) {
        state.withLock { state in
            if !state.queue.contains(id) { state.queue.append(id) }
        }
    }

    /// How many offboardings wait in the queue.
    public var queuedCount: Int { state.withLock { $0.queue.count } }

    /// One bounded step: the markers when due, then at most ``Configuration/batchesPerStep``
    /// batches over the queued tenants. Never throws; a failure is logged and retried later.
    public func runPending() async {
        _ = await step(maxBatches: configuration.batchesPerStep)
    }

    /// Finishes every marked and enqueued offboarding, then keeps finishing new ones until a
    /// graceful shutdown.
    public func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            // Cancelled on graceful shutdown: the finish in progress stops between two batches.
            await cancelWhenGracefulShutdown { _ = await self.step(maxBatches: .max) }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.configuration.pollInterval) }
        }
    }

    /// Reads the markers when due, then finishes queued tenants within `maxBatches` batches.
    /// - Returns: the batches made.
    @discardableResult
    func step(maxBatches: Int) async -> Int {
        let now = ContinuousClock.now
        let scanDue: Bool? = state.withLock { state in
            guard !state.busy else { return nil }
            state.busy = true
            return state.nextScan.map { now >= $0 } ?? true
        }
        guard let scanDue else { return 0 }
        defer { state.withLock { $0.busy = false } }
        if scanDue {
            do {
                let marked = try await offboarding.pending()
                state.withLock { state in
                    state.nextScan = now + configuration.rescanInterval
                    for id in marked where !state.queue.contains(id) { state.queue.append(id) }
                }
                if !marked.isEmpty { logger.info("resuming unfinished offboardings", metadata: ["count": "\(marked.count)"]) }
            } catch {
                logger.warning("could not read the unfinished offboardings; tried again later", metadata: ["error": "\(error)"])
                retrySoon()
            }
        }
        var batches = 0
        while batches < maxBatches, !Task.isCancelled, let id = state.withLock({ $0.queue.first }) {
            let done: Bool
            do {
                let run = try await offboarding.finish(id, maxBatches: maxBatches - batches)
                batches += run.batches
                switch run.outcome {
                case .finished:
                    done = true
                    logger.info("tenant offboarded", metadata: ["tenantId": .string(id.rawValue), "itemsDeleted": "\(run.itemsDeleted)"])
                case .notOffboarding:
                    done = true
                case .unfinished:
                    done = false
                }
            } catch {
                // Left OFFBOARDING with its marker: the next scan finds it again.
                logger.warning(
                    "offboarding interrupted; resumed later", metadata: ["tenantId": .string(id.rawValue), "error": "\(error)"]
                )
                done = true
                retrySoon()
            }
            guard done else { break }
            state.withLock { state in state.queue.removeAll { $0 == id } }
        }
        return batches
    }

    /// Reads the markers again after ``Configuration/retryInterval`` (an interrupted offboarding
    /// is found there again), unless they are due sooner.
    private func retrySoon() {
        let soon = ContinuousClock.now + configuration.retryInterval
        state.withLock { state in state.nextScan = min(state.nextScan ?? soon, soon) }
    }
}
