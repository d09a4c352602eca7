import Foundation
import Logging
import OnboardingCore
import RequestBudget
import ServiceLifecycle
import Synchronization

/// Delivers the events in the outbox to the configured sinks: at least once, in order per
/// tenant, with exponential backoff and full jitter, giving up on an event for a sink after
/// ``Configuration/failAfter`` (it moves to `_outbox-failed`, from where it can be redelivered).
///
/// The outbox has 16 shards (``EventOutboxLayout/shards``); a tenant's events are all in one.
/// A pass over a shard:
/// 1. takes the shard's lease (``EventOutbox/acquireLease(shard:owner:duration:)``), or skips
///    the shard when another dispatcher holds it: one shard is worked on by one process at a time;
/// 2. reads the shard's pending events in id order (at most ``Configuration/maxEventsPerPass``,
///    and of each tenant its oldest ``Configuration/maxEventsPerTenantPerPass``, so that one
///    tenant's backlog behind a failing event does not hide the other tenants' events; the
///    backlog is read past, up to ``Configuration/maxItemsReadPerPass`` items);
/// 3. in rounds, each after renewing the lease: for each sink, each tenant's oldest event that
///    sink does not have yet is its only eligible one (head of line), and only once its retry is
///    due; the eligible events go out in batches of at most the sink's `maxBatch`, never two of
///    one tenant in a batch, all sinks and batches concurrently; the results are written on the items (or an item every
///    sink is done with is deleted) before the next round, so a tenant's next event is handed to
///    a sink only after its previous one was delivered there and that was recorded;
/// 4. gives the lease back.
/// A pass attempts an event at most once per sink; a failed attempt is retried in a later pass
/// when its backoff is over.
///
/// As a ``Service`` (`onboard serve`): sweeps every shard on start (what a crash left), then
/// passes over the shards ``notify(_:)`` names as soon as it is told, over every shard each
/// ``Configuration/sweepInterval`` (events recorded by other processes), and over a shard when
/// its earliest retry is due. On graceful shutdown it stops between two rounds, then makes one
/// last sweep bounded by ``Configuration/shutdownSweepTimeout``. Inside Lambda the runtime calls
/// ``runPending()`` after each invocation (the shards that invocation recorded into) and
/// ``sweepAll()`` on the scheduled sweep.
public final class EventDispatcher: Service, Sendable {
    /// How the dispatcher paces itself.
    public struct Configuration: Sendable {
        /// How long a sink may keep failing an event before it is given up on (`--event-fail-after`).
        public var failAfter: Duration
        /// How often every shard is looked at, notified or not.
        public var sweepInterval: Duration
        /// The first retry's backoff ceiling; doubled each attempt up to ``backoffCap`` (full jitter).
        public var backoffBase: Duration
        /// The longest backoff.
        public var backoffCap: Duration
        /// How long a shard's lease lasts (renewed during a pass).
        public var leaseDuration: Duration
        /// Shards worked on at once.
        public var concurrency: Int
        /// Sink calls in flight at once within one shard.
        public var deliveriesInFlightPerShard: Int
        /// How long one sink call may take before it counts as failed (well under the lease, so
        /// that no call is still in flight when the lease could pass to another process).
        public var deliveryTimeout: Duration
        /// Events worked on in one shard per pass; the rest wait for the next pass.
        public var maxEventsPerPass: Int
        /// Events of one tenant worked on per pass (its oldest).
        public var maxEventsPerTenantPerPass: Int
        /// Outbox items read from one shard per pass that count towards ending the read: those kept
        /// and unreadable ones. Events set aside (every sink lacking them is behind an earlier
        /// event of the tenant) do not count, so that one tenant's backlog does not keep the
        /// shard's other tenants, recorded after it, unread; ``maxItemsReadPerPass`` bounds those.
        public var maxItemsScannedPerPass: Int
        /// Outbox items read from one shard per pass at most, set aside or not (pages of 100).
        /// A tenant recorded after more than this many set-aside events of others in its shard
        /// waits until that backlog shrinks (each pass reads that far).
        public var maxItemsReadPerPass: Int
        /// How long ``runPending()`` and ``sweepAll()`` may take when the task has no
        /// ``RetryBudget`` (inside Lambda they end with the invocation's budget).
        public var boundedPassTimeout: Duration
        /// How long the last sweep after a graceful shutdown may take.
        public var shutdownSweepTimeout: Duration

        public init(
            failAfter: Duration = .seconds(24 * 3600), sweepInterval: Duration = .seconds(5), backoffBase: Duration = .seconds(1),
            backoffCap: Duration = .seconds(300), leaseDuration: Duration = .seconds(30), concurrency: Int = 4,
            deliveriesInFlightPerShard: Int = 8, deliveryTimeout: Duration = .seconds(20), maxEventsPerPass: Int = 1000,
            maxEventsPerTenantPerPass: Int = 20, maxItemsScannedPerPass: Int = 10_000, maxItemsReadPerPass: Int = 100_000,
            boundedPassTimeout: Duration = .seconds(10), shutdownSweepTimeout: Duration = .seconds(10)
        ) {
            self.failAfter = failAfter
            self.sweepInterval = sweepInterval
            self.backoffBase = backoffBase
            self.backoffCap = backoffCap
            self.leaseDuration = leaseDuration
            self.concurrency = max(1, concurrency)
            self.deliveriesInFlightPerShard = max(1, deliveriesInFlightPerShard)
            self.deliveryTimeout = deliveryTimeout
            self.maxEventsPerPass = max(1, maxEventsPerPass)
            self.maxEventsPerTenantPerPass = max(1, maxEventsPerTenantPerPass)
            self.maxItemsScannedPerPass = max(1, maxItemsScannedPerPass)
            self.maxItemsReadPerPass = max(1, maxItemsReadPerPass)
            self.boundedPassTimeout = boundedPassTimeout
            self.shutdownSweepTimeout = shutdownSweepTimeout
        }
    }

    private struct State {
        /// Shards told of new events (or with more to read) and not yet passed over.
        var notified: Set<String> = []
        /// Shards a pass is working on now.
        var busy: Set<String> = []
        /// Sinks that answered `.disable`, and why.
        var disabled: [String: String] = [:]
        /// Per shard, when its earliest retry is due (Unix epoch milliseconds).
        var retryDue: [String: Int] = [:]
        /// Unreadable outbox items already reported.
        var corruptReported: Set<ItemKey> = []
        /// Sweeps of every shard ``run()`` has finished.
        var sweepsCompleted = 0
    }

    /// How many sweeps of every shard ``run()`` has finished (the start-up sweep is the first):
    /// for health checks and for tests that must know the start-up sweep is over.
    public var sweepsCompleted: Int { state.withLock { $0.sweepsCompleted } }

    /// The store side of the outbox.
    public let outbox: EventOutbox
    /// The sinks every event is delivered to.
    public let sinks: [any EventSink]
    /// The pacing.
    public let configuration: Configuration
    private let clock: any WallClock
    private let logger: Logger
    /// This dispatcher's name on the shard leases.
    private let owner = "dispatcher-" + UUID().uuidString
    private let state = Mutex(State())
    private let wakeup = Wakeup()

    /// - Parameters:
    ///   - sinks: where events go (at least one; with none nothing is delivered and nothing leaves the outbox).
    ///   - clock: the time of attempts, backoffs, `failAfter` and leases.
    public init(
        store: any TenantStore, sinks: [any EventSink], clock: any WallClock = SystemWallClock(), configuration: Configuration = Configuration(),
        logger: Logger = Logger(label: "onboard.events")
    ) {
        self.outbox = EventOutbox(store: store, clock: clock)
        self.sinks = sinks
        self.clock = clock
        self.configuration = configuration
        self.logger = logger
    }

    // MARK: Public operations

    /// Tells the dispatcher that these events are recorded (``EventRecorder``'s `onRecorded`):
    /// their shards are passed over soon. Never waits; many calls before the next pass make one.
    public func notify(_ events: [TenantEvent]) {
        guard !events.isEmpty else { return }
        state.withLock { state in
            for event in events { state.notified.insert(EventOutboxLayout.shard(of: event.tenantId)) }
        }
        wakeup.signal()
    }

    /// Whether a sink answered `.disable` (it gets nothing more in this process).
    public func isDisabled(sinkId: String) -> Bool { state.withLock { $0.disabled[sinkId] != nil } }

    /// Delivers what is pending in the shards ``notify(_:)`` named since the last pass: one
    /// bounded pass (the task's ``RetryBudget`` deadline, else ``Configuration/boundedPassTimeout``).
    /// Never throws; a failure is logged and left for a later pass or sweep.
    public func runPending() async {
        let shards = state.withLock { state in
            defer { state.notified.removeAll() }
            return state.notified
        }
        guard !shards.isEmpty else { return }
        await pass(over: EventOutboxLayout.shards.filter(shards.contains), limit: PassLimit(deadline: boundedDeadline(), stopOnShutdown: false))
    }

    /// Delivers what is pending in every shard: one bounded pass (the task's ``RetryBudget``
    /// deadline, else ``Configuration/boundedPassTimeout``). Never throws.
    public func sweepAll() async {
        state.withLock { $0.notified.removeAll() }
        await pass(over: EventOutboxLayout.shards, limit: PassLimit(deadline: boundedDeadline(), stopOnShutdown: false))
    }

    /// Sweeps every shard, then delivers as events are notified, every
    /// ``Configuration/sweepInterval`` and when retries are due, until a graceful shutdown;
    /// then one last sweep (at most ``Configuration/shutdownSweepTimeout``).
    public func run() async throws {
        guard !sinks.isEmpty else {
            logger.warning("no event sink is configured: events stay in the outbox")
            try? await gracefulShutdown()
            return
        }
        logger.info("event dispatcher started", metadata: ["sinks": .array(sinks.map { .string($0.id) })])
        var nextSweep = ContinuousClock.now
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let now = ContinuousClock.now
            let nowMilliseconds = EventOutbox.epochMilliseconds(clock.now())
            let sweep = now >= nextSweep
            if sweep { nextSweep = now + configuration.sweepInterval }
            let shards = state.withLock { state -> Set<String> in
                var shards = state.notified
                state.notified.removeAll()
                for (shard, due) in state.retryDue where due <= nowMilliseconds { shards.insert(shard) }
                if sweep { shards = Set(EventOutboxLayout.shards) }
                for shard in shards { state.retryDue[shard] = nil }
                return shards
            }
            if !shards.isEmpty {
                await pass(over: EventOutboxLayout.shards.filter(shards.contains), limit: PassLimit(deadline: nil, stopOnShutdown: true))
            }
            if sweep { state.withLock { $0.sweepsCompleted += 1 } }
            // Sleep until the next sweep or the earliest retry, unless notified sooner.
            var timeout = max(.zero, nextSweep - ContinuousClock.now)
            if let due = state.withLock({ $0.retryDue.values.min() }) {
                let untilDue = Duration.milliseconds(max(0, due - EventOutbox.epochMilliseconds(clock.now())))
                timeout = min(timeout, untilDue)
            }
            let wakeup = self.wakeup
            let sleep = timeout
            await cancelWhenGracefulShutdown { await wakeup.wait(timeout: sleep) }
        }
        guard Task.isShuttingDownGracefully, !Task.isCancelled else { return }
        // The last sweep: what the last requests recorded, as far as the time allows.
        await pass(
            over: EventOutboxLayout.shards, limit: PassLimit(deadline: .now + configuration.shutdownSweepTimeout, stopOnShutdown: false)
        )
        logger.info("event dispatcher stopped")
    }

    // MARK: Passes

    /// When a pass stops starting new rounds.
    struct PassLimit: Sendable {
        /// No round starts after this instant.
        var deadline: ContinuousClock.Instant?
        /// No round starts once a graceful shutdown began.
        var stopOnShutdown: Bool

        var isReached: Bool {
            if stopOnShutdown && Task.isShuttingDownGracefully { return true }
            if let deadline, ContinuousClock.now >= deadline { return true }
            return Task.isCancelled
        }
    }

    private func boundedDeadline() -> ContinuousClock.Instant {
        RetryBudget.current?.deadline ?? .now + configuration.boundedPassTimeout
    }

    /// Passes over the shards, ``Configuration/concurrency`` at a time.
    func pass(over shards: [String], limit: PassLimit) async {
        guard !sinks.isEmpty else { return }
        await withTaskGroup(of: Void.self) { group in
            var running = 0
            for shard in shards {
                if running >= configuration.concurrency {
                    await group.next()
                    running -= 1
                }
                group.addTask { await self.pass(shard: shard, limit: limit) }
                running += 1
            }
        }
    }

    /// One pass over one shard (see the type's documentation).
    private func pass(shard: String, limit: PassLimit) async {
        let claimed = state.withLock { state in state.busy.insert(shard).inserted }
        guard claimed else {
            // Another pass has it; look again after it.
            state.withLock { _ = $0.notified.insert(shard) }
            return
        }
        defer { state.withLock { _ = $0.busy.remove(shard) } }
        do {
            // An empty shard costs one read and no lease write (most shards, most of the time).
            let peek = try await outbox.pendingPage(shard: shard, limit: 1)
            guard !peek.entries.isEmpty || !peek.corrupt.isEmpty else { return }
            guard try await outbox.acquireLease(shard: shard, owner: owner, duration: configuration.leaseDuration) else {
                logger.debug("another dispatcher holds the shard's lease", metadata: ["shard": .string(shard)])
                // Its pass may have read the shard before the events this one was told of:
                // look again shortly rather than at the next sweep.
                let soon = EventOutbox.epochMilliseconds(clock.now()) + 250
                state.withLock { state in state.retryDue[shard] = min(state.retryDue[shard] ?? soon, soon) }
                return
            }
        } catch {
            logger.warning("could not read a shard or take its lease; tried again later", metadata: ["shard": .string(shard), "error": "\(error)"])
            return
        }
        do {
            if try await deliver(shard: shard, limit: limit) {
                // More than one pass takes: the rest in the next one.
                state.withLock { _ = $0.notified.insert(shard) }
                wakeup.signal()
            }
        } catch {
            logger.warning(
                "delivering a shard's events was interrupted; resumed later", metadata: ["shard": .string(shard), "error": "\(error)"]
            )
        }
        // Given back even when the pass was cancelled (a fresh task is not).
        let outbox = self.outbox
        let owner = self.owner
        await Task { try? await outbox.releaseLease(shard: shard, owner: owner) }.value
    }

    /// The rounds of a shard's pass.
    /// - Returns: whether events were left unread or set aside while this pass made progress
    ///   (another pass is due at once); without progress the retries' times and the sweeps
    ///   decide, so a tenant stuck behind a failing event is not read over and over.
    private func deliver(shard: String, limit: PassLimit) async throws -> Bool {
        var entries: [OutboxEntry] = []
        // Per tenant and sink: events kept that the sink does not have yet.
        var window: [String: [String: Int]] = [:]
        // Per tenant: the sinks one of its events was set aside for in this scan. Its later
        // events are not that sink's in this pass either: they would reach it before the one
        // set aside (a sink far behind another must not skip ahead when it recovers mid-pass).
        var blocked: [String: Set<String>] = [:]
        // Per event id: the sinks it is not kept for (it is kept because another sink needs it).
        var notFor: [String: Set<String>] = [:]
        let sinkIds = sinks.map(\.id)
        // Items kept or unreadable (towards maxItemsScannedPerPass), and all items read.
        var scanned = 0
        var read = 0
        var setAside = false
        var after: ItemKey?
        repeat {
            let page = try await outbox.pendingPage(shard: shard, after: after, limit: 100)
            read += page.entries.count + page.corrupt.count
            scanned += page.corrupt.count
            for entry in page.entries {
                // Per sink, a tenant's oldest events only: its later ones cannot go before them.
                let tenant = entry.tenantId.rawValue
                let open = sinkIds.filter { entry.delivery[$0]?.isSettled != true }
                let keptFor = open.filter { sinkId in
                    blocked[tenant]?.contains(sinkId) != true
                        && window[tenant]?[sinkId, default: 0] ?? 0 < configuration.maxEventsPerTenantPerPass
                }
                let kept = entries.count < configuration.maxEventsPerPass && (open.isEmpty || !keptFor.isEmpty)
                let setAsideFor = kept ? open.filter { !keptFor.contains($0) } : open
                if !setAsideFor.isEmpty {
                    blocked[tenant, default: []].formUnion(setAsideFor)
                    setAside = true
                }
                guard kept else { continue }
                scanned += 1
                if !setAsideFor.isEmpty { notFor[entry.eventId] = Set(setAsideFor) }
                for sinkId in keptFor { window[tenant, default: [:]][sinkId, default: 0] += 1 }
                entries.append(entry)
            }
            let unreported = state.withLock { state in page.corrupt.filter { state.corruptReported.insert($0).inserted } }
            for key in unreported {
                // Left where it is (an operator can look at it); it cannot be delivered.
                logger.error("an outbox item is not an event this version can read; skipped", metadata: ["item": "\(key)"])
            }
            after = page.next
        } while after != nil && scanned < configuration.maxItemsScannedPerPass && read < configuration.maxItemsReadPerPass
            && entries.count < configuration.maxEventsPerPass
        let more = setAside || after != nil
        var progress = false
        guard !entries.isEmpty else { return false }

        // (entry id, sink id) attempted and failed in this pass: not again before the next pass.
        var failedThisPass: Set<Attempt> = []
        var firstRound = true
        while !limit.isReached {
            // Renewed before every round, the first too (reading the shard may have taken longer
            // than the lease): a round's calls end within the delivery timeout, well before the
            // lease could pass to another dispatcher, which then could send a tenant's next event
            // first. Lost: another dispatcher has the shard; nothing more is sent from this pass.
            guard try await outbox.acquireLease(shard: shard, owner: owner, duration: configuration.leaseDuration) else {
                logger.warning("lost a shard's lease during a pass", metadata: ["shard": .string(shard)])
                return false
            }
            let now = EventOutbox.epochMilliseconds(clock.now())
            var changed = Set<Int>()
            let disabled = state.withLock { $0.disabled }
            if firstRound {
                // Done for every configured sink already (a sink was removed from the
                // configuration): finished without a delivery.
                let sinkIds = configuredSinkIds
                for index in entries.indices where sinkIds.allSatisfy({ entries[index].delivery[$0]?.isSettled == true }) {
                    changed.insert(index)
                }
            }

            // A disabled sink gives up on every event it does not have.
            for (sinkId, reason) in disabled {
                for index in entries.indices where entries[index].delivery[sinkId]?.isSettled != true {
                    var delivery = entries[index].delivery[sinkId] ?? SinkDelivery()
                    delivery.state = .failed
                    delivery.lastError = "the sink is disabled: \(reason)"
                    delivery.nextAttemptAt = nil
                    entries[index].delivery[sinkId] = delivery
                    changed.insert(index)
                    progress = true
                    logGiveUp(entries[index], sinkId: sinkId, delivery: delivery)
                }
            }

            // Per sink: each tenant's head of line, when due, in batches.
            var batches: [(sink: any EventSink, indices: [Int])] = []
            var earliestRetry: Int?
            for sink in sinks where disabled[sink.id] == nil {
                var heads = Set<String>()
                var eligible: [Int] = []
                for index in entries.indices {
                    let entry = entries[index]
                    let delivery = entry.delivery[sink.id]
                    guard delivery?.isSettled != true, heads.insert(entry.tenantId.rawValue).inserted else { continue }
                    // Kept for another sink; for this one an earlier event of the tenant was set aside.
                    if notFor[entry.eventId]?.contains(sink.id) == true { continue }
                    if failedThisPass.contains(Attempt(eventId: entry.eventId, sinkId: sink.id)) {
                        if let next = delivery?.nextAttemptAt { earliestRetry = min(earliestRetry ?? next, next) }
                        continue
                    }
                    if let next = delivery?.nextAttemptAt, next > now {
                        earliestRetry = min(earliestRetry ?? next, next)
                        continue
                    }
                    eligible.append(index)
                }
                let size = max(1, sink.maxBatch)
                for start in stride(from: 0, to: eligible.count, by: size) {
                    batches.append((sink, Array(eligible[start..<min(start + size, eligible.count)])))
                }
            }
            state.withLock { state in
                if let earliestRetry { state.retryDue[shard] = min(state.retryDue[shard] ?? earliestRetry, earliestRetry) }
            }
            if batches.isEmpty && changed.isEmpty { return more && progress }
            firstRound = false

            // Deliver.
            let results = await deliverBatches(batches.map { batch in (batch.sink, batch.indices.map { OutboxEvent(entries[$0]) }) })
            let answeredAt = EventOutbox.epochMilliseconds(clock.now())
            for (batch, answers) in zip(batches, results) {
                guard let answers else { continue }  // cancelled: nothing is known, nothing recorded
                for (index, result) in zip(batch.indices, answers) {
                    apply(result, sink: batch.sink, to: &entries[index], now: answeredAt)
                    changed.insert(index)
                    if entries[index].delivery[batch.sink.id]?.isSettled == true { progress = true }
                    if entries[index].delivery[batch.sink.id]?.isSettled != true {
                        failedThisPass.insert(Attempt(eventId: entries[index].eventId, sinkId: batch.sink.id))
                    }
                }
            }

            // Record before the next round, so no tenant's later event goes out first.
            let written = try await write(changed.sorted().map { entries[$0] })
            for (index, entry) in zip(changed.sorted(), written) {
                if let entry { entries[index] = entry }
            }
            let finished = Set(zip(changed.sorted(), written).compactMap { $0.1 == nil ? $0.0 : nil })
            entries = entries.indices.filter { !finished.contains($0) }.map { entries[$0] }
            progress = progress || !finished.isEmpty
            if entries.isEmpty { return more && progress }
        }
        return more && progress
    }

    /// An attempt of one event at one sink.
    private struct Attempt: Hashable {
        var eventId: String
        var sinkId: String
    }

    private var configuredSinkIds: Set<String> { Set(sinks.map(\.id)) }

    /// Calls the sinks, at most ``Configuration/deliveriesInFlightPerShard`` at once.
    /// - Returns: per batch, the results (`nil`: the pass was cancelled before an answer).
    private func deliverBatches(_ batches: [(sink: any EventSink, events: [OutboxEvent])]) async -> [[DeliveryResult]?] {
        // Never longer than two thirds of the lease (see the renewal in `deliver(shard:limit:)`).
        let timeout = min(configuration.deliveryTimeout, configuration.leaseDuration * 2 / 3)
        return await withTaskGroup(of: (Int, [DeliveryResult]?).self) { group in
            var results = [[DeliveryResult]?](repeating: nil, count: batches.count)
            var running = 0
            func collect(_ done: (Int, [DeliveryResult]?)?) {
                if let done { results[done.0] = done.1 }
                running -= 1
            }
            for (position, batch) in batches.enumerated() {
                if running >= configuration.deliveriesInFlightPerShard { collect(await group.next()) }
                running += 1
                group.addTask { (position, await Self.call(batch.sink, batch.events, timeout: timeout)) }
            }
            while running > 0 { collect(await group.next()) }
            return results
        }
    }

    /// One sink call, answered within `timeout` (else every event is to be retried).
    /// - Returns: `nil` when the task was cancelled and the sink did not answer.
    private static func call(_ sink: any EventSink, _ events: [OutboxEvent], timeout: Duration) async -> [DeliveryResult]? {
        let answer: [DeliveryResult]?? = await withTaskGroup(of: [DeliveryResult]?.self) { group in
            group.addTask { await sink.deliver(events) }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return nil
            }
            let first = await group.next()
            group.cancelAll()
            return first
        }
        if let results = answer ?? nil {
            guard results.count == events.count else {
                return events.map { _ in .retry("the sink answered \(results.count) results for \(events.count) events") }
            }
            return results
        }
        if Task.isCancelled { return nil }
        return events.map { _ in .retry("no answer within \(timeout)") }
    }

    /// Records one result on the event's delivery state.
    private func apply(_ result: DeliveryResult, sink: any EventSink, to entry: inout OutboxEntry, now: Int) {
        var delivery = entry.delivery[sink.id] ?? SinkDelivery()
        switch result {
        case .delivered:
            delivery.state = .delivered
            delivery.nextAttemptAt = nil
        case .disable(let reason):
            delivery.attempts += 1
            delivery.firstFailedAt = delivery.firstFailedAt ?? now
            delivery.lastError = reason
            delivery.state = .failed
            delivery.nextAttemptAt = nil
            let first = state.withLock { state in
                guard state.disabled[sink.id] == nil else { return false }
                state.disabled[sink.id] = reason
                return true
            }
            if first {
                logger.error(
                    "an event sink asked for no more events: disabled until the process restarts; its pending events are marked failed",
                    metadata: ["sink": .string(sink.id), "reason": .string(reason)]
                )
            }
            logGiveUp(entry, sinkId: sink.id, delivery: delivery)
        case .retry(let reason):
            delivery.attempts += 1
            let firstFailedAt = delivery.firstFailedAt ?? now
            delivery.firstFailedAt = firstFailedAt
            delivery.lastError = reason
            if now - firstFailedAt >= EventOutbox.milliseconds(configuration.failAfter) {
                delivery.state = .failed
                delivery.nextAttemptAt = nil
                logGiveUp(entry, sinkId: sink.id, delivery: delivery)
            } else {
                delivery.nextAttemptAt = now + backoff(attempt: delivery.attempts)
                let metadata: Logger.Metadata = [
                    "eventId": .string(entry.eventId), "type": .string(entry.type.rawValue), "tenantId": .string(entry.tenantId.rawValue),
                    "sink": .string(sink.id), "attempts": "\(delivery.attempts)", "error": .string(reason),
                    "retryInMs": "\(delivery.nextAttemptAt! - now)",
                ]
                if delivery.attempts == 1 {
                    logger.warning("an event was not delivered; retried with backoff", metadata: metadata)
                } else {
                    logger.debug("an event was not delivered again; retried with backoff", metadata: metadata)
                }
            }
        }
        entry.delivery[sink.id] = delivery
    }

    /// Full jitter: random(0, min(cap, base × 2^(attempt - 1))) milliseconds.
    private func backoff(attempt: Int) -> Int {
        let base = EventOutbox.milliseconds(configuration.backoffBase)
        let cap = EventOutbox.milliseconds(configuration.backoffCap)
        let shift = min(max(attempt - 1, 0), 30)
        let ceiling = min(cap, base.multipliedReportingOverflow(by: 1 << shift).overflow ? cap : base << shift)
        return Int.random(in: 0...max(0, ceiling))
    }

    private func logGiveUp(_ entry: OutboxEntry, sinkId: String, delivery: SinkDelivery) {
        logger.error(
            "gave up delivering an event to a sink: listed as failed until redelivered",
            metadata: [
                "eventId": .string(entry.eventId), "type": .string(entry.type.rawValue), "tenantId": .string(entry.tenantId.rawValue),
                "sink": .string(sinkId), "attempts": "\(delivery.attempts)", "error": .string(delivery.lastError ?? ""),
            ]
        )
    }

    /// Writes the entries' delivery states: an entry every configured sink is done with is
    /// removed from the outbox (into `_outbox-failed` when one gave up on it).
    /// - Returns: per entry, as now stored, or `nil` when it left the outbox.
    /// - Throws: the first failed write (after all of them were tried).
    private func write(_ entries: [OutboxEntry]) async throws -> [OutboxEntry?] {
        let sinkIds = configuredSinkIds
        let outbox = self.outbox
        return try await withThrowingTaskGroup(of: (Int, OutboxEntry?).self) { group in
            for (position, entry) in entries.enumerated() {
                group.addTask {
                    let settled = sinkIds.allSatisfy { entry.delivery[$0]?.isSettled == true }
                    guard settled else { return (position, try await outbox.recordProgress(entry)) }
                    let failed = sinkIds.contains { entry.delivery[$0]?.state == .failed }
                    try await outbox.finish(entry, failed: failed)
                    return (position, nil)
                }
            }
            var written = [OutboxEntry?](repeating: nil, count: entries.count)
            var firstError: (any Error)?
            while let next = await group.nextResult() {
                switch next {
                case .success(let (position, entry)): written[position] = entry
                case .failure(let error): firstError = firstError ?? error
                }
            }
            if let firstError { throw firstError }
            return written
        }
    }
}

extension OutboxEvent {
    /// The event of an outbox entry, as sinks get it.
    public init(_ entry: OutboxEntry) {
        self.init(id: entry.eventId, tenantId: entry.tenantId, type: entry.type, time: entry.time, envelopeJSON: entry.envelopeJSON)
    }
}

/// Wakes one waiting task; a signal with nobody waiting is kept for the next wait (signals
/// coalesce).
final class Wakeup: Sendable {
    private struct State {
        var signaled = false
        var waiter: CheckedContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    func signal() {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard let waiter = state.waiter else {
                state.signaled = true
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume()
    }

    /// Returns when signalled (or a signal was kept), after `timeout`, or when cancelled.
    func wait(timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(for: timeout) }
            group.addTask { await self.waitForSignal() }
            await group.next()
            group.cancelAll()
        }
    }

    private func waitForSignal() async {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.signaled {
                        state.signaled = false
                        return true
                    }
                    // Cancelled before the waiter was stored: the handler found nothing to resume.
                    if Task.isCancelled { return true }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }
    }
}
