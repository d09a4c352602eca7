import OnboardingCore
import Synchronization

/// A real store behind a fault injector that fails the N-th operation, to prove that work made
/// of several store calls (an onboarding, an offboarding batch) never leaves a half behind.
///
/// Every call counts (reads too, unless ``Counting/writesOnly``); the call numbered
/// ``failAt`` (1-based) throws `StoreError(.unavailable)` without reaching the real store, or,
/// with ``Mode/afterForwarding``, reaches it and then throws: the write happened and the caller
/// was told it failed, as when an answer is lost. Calls before and after it go through.
/// ``setFailure(at:)`` re-arms it; ``operations`` tells how many calls were made so far, so a
/// test can first count a clean run and then fail each N from 1 to that count.
public final class FailingStore: TenantStore {
    /// Which calls are counted.
    public enum Counting: Sendable {
        /// Every call, reads included.
        case all
        /// Only put, delete, update and transact.
        case writesOnly
    }

    /// When the injected failure strikes.
    public enum Mode: Sendable {
        /// Before the call reaches the store: nothing of it happens.
        case beforeForwarding
        /// After the store carried the call out: it happened, the caller hears a failure.
        case afterForwarding
    }

    public let base: any TenantStore
    public let counting: Counting
    public let mode: Mode
    private let state: Mutex<(count: Int, failAt: Int?, failures: Int)>

    /// - Parameter failAt: the 1-based number of the call that fails; `nil`: none fails.
    public init(base: any TenantStore, failAt: Int?, counting: Counting = .all, mode: Mode = .beforeForwarding) {
        self.base = base
        self.counting = counting
        self.mode = mode
        self.state = Mutex((0, failAt, 0))
    }

    /// The number of counted calls so far.
    public var operations: Int { state.withLock { $0.count } }

    /// How many calls were failed so far.
    public var failuresInjected: Int { state.withLock { $0.failures } }

    /// Restarts the count at zero and fails call number `failAt` from now on (`nil`: none).
    public func setFailure(at failAt: Int?) {
        state.withLock { $0 = (0, failAt, 0) }
    }

    private func call<T>(write: Bool, _ name: String, _ body: () async throws -> T) async throws -> T {
        guard write || counting == .all else { return try await body() }
        let fails = state.withLock { state -> Bool in
            state.count += 1
            guard state.count == state.failAt else { return false }
            state.failures += 1
            return true
        }
        guard fails else { return try await body() }
        if mode == .afterForwarding { _ = try await body() }
        throw StoreError(.unavailable, "injected failure of operation \(name)")
    }

    public func get(_ key: ItemKey) async throws -> Item? {
        try await call(write: false, "get") { try await base.get(key) }
    }

    public func put(_ item: Item, condition: WriteCondition?) async throws {
        try await call(write: true, "put") { try await base.put(item, condition: condition) }
    }

    public func delete(_ key: ItemKey, condition: WriteCondition?) async throws {
        try await call(write: true, "delete") { try await base.delete(key, condition: condition) }
    }

    public func update(_ key: ItemKey, set: [String: AttributeValue], condition: WriteCondition?) async throws {
        try await call(write: true, "update") { try await base.update(key, set: set, condition: condition) }
    }

    public func transact(_ writes: [TransactionWrite]) async throws {
        try await call(write: true, "transact") { try await base.transact(writes) }
    }

    public func query(_ query: ItemQuery) async throws -> ItemPage {
        try await call(write: false, "query") { try await base.query(query) }
    }

    public func queryListIndex(_ query: ListIndexQuery) async throws -> [Item] {
        try await call(write: false, "queryListIndex") { try await base.queryListIndex(query) }
    }

    public func checkHealth() async throws {
        try await base.checkHealth()
    }
}
