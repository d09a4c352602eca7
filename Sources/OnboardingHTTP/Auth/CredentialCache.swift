import OnboardingCore
import Synchronization

/// What authenticating a request read from the store lately: API keys' look-up items (the
/// owner and the secret's hash) and tenants' statuses, so a tenant's request does not read
/// them again on every use. Verified JWTs are remembered by ``JWTVerifier`` itself.
///
/// The bounds that keep the security properties:
/// - **This process's own changes take effect at once.** Every revocation, suspension,
///   reactivation or offboarding made here records an event once its transaction is durable;
///   ``invalidate(after:)`` (wired to the ``EventRecorder``) then empties the cache before the
///   change's answer is sent, so a revoked key or a suspended tenant is refused on its very
///   next use.
/// - **Other processes' changes** (another Lambda instance, `onboard keys revoke` on the same
///   SQLite file) take effect within ``Configuration/maxAge`` (1 s by default): an entry older
///   than that is read again.
/// - **No stale refill.** A read that began before an invalidation is not kept (each fill carries
///   the generation it was read in), so a request racing a revocation cannot put the old look-up
///   item back.
///
/// Only what the store said is kept: a presented key is still hashed and compared in constant
/// time on every use, and nothing is kept for a key the store did not have.
public final class CredentialCache: Sendable {
    /// How long entries live and how many there may be.
    public struct Configuration: Sendable, Hashable {
        /// How long a read look-up item or status is used; `.zero` switches the cache off
        /// (every request reads the store).
        public var maxAge: Duration
        /// At most this many keys and this many tenants are kept; past it, the oldest half goes.
        public var maxEntries: Int

        public init(maxAge: Duration = .seconds(1), maxEntries: Int = 10_000) {
            self.maxAge = maxAge
            self.maxEntries = maxEntries
        }

        /// Nothing kept: every request reads the store.
        public static let off = Configuration(maxAge: .zero)
    }

    /// When a fill began, so that one begun before an invalidation is not kept.
    public struct Ticket: Sendable {
        fileprivate let generation: UInt64
        fileprivate let readAt: ContinuousClock.Instant
    }

    private struct Entry<Value> {
        var value: Value
        var readAt: ContinuousClock.Instant
    }

    private struct State {
        var generation: UInt64 = 0
        var keys: [String: Entry<ApiKeyLookup>] = [:]
        var statuses: [TenantID: Entry<TenantStatus>] = [:]
    }

    public let configuration: Configuration
    private let now: @Sendable () -> ContinuousClock.Instant
    private let state = Mutex(State())

    /// - Parameter now: the clock entries age on (tests move it).
    public init(configuration: Configuration = Configuration(), now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.configuration = configuration
        self.now = now
    }

    /// Whether anything is kept at all.
    public var isEnabled: Bool { configuration.maxAge > .zero && configuration.maxEntries > 0 }

    /// Take before reading the store; hand to ``keep(_:keyId:ticket:)`` or ``keep(_:tenant:ticket:)``.
    public func ticket() -> Ticket {
        let readAt = now()
        return state.withLock { Ticket(generation: $0.generation, readAt: readAt) }
    }

    /// The key's look-up item, if read less than ``Configuration/maxAge`` ago.
    public func key(_ keyId: String) -> ApiKeyLookup? { fresh(\.keys, keyId) }

    /// Keeps a key's look-up item read with `ticket`, unless the cache was invalidated since.
    public func keep(_ entry: ApiKeyLookup, keyId: String, ticket: Ticket) { keep(\.keys, keyId, entry, ticket) }

    /// The tenant's status, if read less than ``Configuration/maxAge`` ago.
    public func status(_ tenantId: TenantID) -> TenantStatus? { fresh(\.statuses, tenantId) }

    /// Keeps a tenant's status read with `ticket`, unless the cache was invalidated since.
    public func keep(_ status: TenantStatus, tenant tenantId: TenantID, ticket: Ticket) { keep(\.statuses, tenantId, status, ticket) }

    private func fresh<K: Hashable & Sendable, V: Sendable>(_ table: any KeyPath<State, [K: Entry<V>]> & Sendable, _ key: K) -> V? {
        guard isEnabled else { return nil }
        let now = now()
        return state.withLock { state in
            guard let entry = state[keyPath: table][key], now - entry.readAt < configuration.maxAge else { return nil }
            return entry.value
        }
    }

    private func keep<K: Hashable & Sendable, V: Sendable>(
        _ table: any WritableKeyPath<State, [K: Entry<V>]> & Sendable, _ key: K, _ value: V, _ ticket: Ticket
    ) {
        guard isEnabled else { return }
        let maxEntries = configuration.maxEntries
        state.withLock { state in
            guard state.generation == ticket.generation else { return }
            Self.makeRoom(&state[keyPath: table], maxEntries: maxEntries)
            state[keyPath: table][key] = Entry(value: value, readAt: ticket.readAt)
        }
    }

    /// Forgets everything, and every fill begun before now.
    public func invalidateAll() {
        state.withLock { state in
            state.generation &+= 1
            state.keys.removeAll()
            state.statuses.removeAll()
        }
    }

    /// Forgets everything when these events change what a credential may do: a key revoked, a
    /// tenant suspended, reactivated or being offboarded. Other events keep the cache.
    @Sendable public func invalidate(after events: [TenantEvent]) {
        guard events.contains(where: { Self.changesCredentials($0.type) }) else { return }
        invalidateAll()
    }

    /// Whether an event of this type changes which credentials are accepted.
    static func changesCredentials(_ type: TenantEventType) -> Bool {
        switch type {
        case .apiKeyRevoked, .tenantSuspended, .tenantReactivated, .tenantOffboarding, .tenantOffboarded: true
        case .tenantOnboarded, .tenantUpdated, .apiKeyCreated: false
        }
    }

    /// Entries in the cache (keys, statuses), for tests and diagnostics.
    public var counts: (keys: Int, statuses: Int) { state.withLock { ($0.keys.count, $0.statuses.count) } }

    /// Full: the older half goes (entries expire after a second anyway; this bounds memory
    /// against a flood of distinct keys).
    private static func makeRoom<K, V>(_ entries: inout [K: Entry<V>], maxEntries: Int) {
        guard entries.count >= maxEntries else { return }
        let cut = entries.values.map(\.readAt).sorted()[entries.count / 2]
        entries = entries.filter { $0.value.readAt > cut }
    }
}
