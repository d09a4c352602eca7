import Foundation
import Synchronization

/// A token-bucket limit: `burst` requests at once, refilled at `perSecond`.
public struct RateLimit: Sendable, Hashable, CustomStringConvertible {
    /// Tokens added per second.
    public var perSecond: Double
    /// The bucket's size: how many requests may come at once.
    public var burst: Int

    public init(perSecond: Double, burst: Int) {
        precondition(perSecond > 0 && burst >= 1)
        self.perSecond = perSecond
        self.burst = burst
    }

    /// Parses `<count>/<s|m|h>[:<burst>]`, e.g. `50/s:100`, `60/m` (burst defaults to the count).
    public init?(parsing text: String) {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let rate = parts[0].split(separator: "/", omittingEmptySubsequences: false)
        guard rate.count == 2, let count = Int(rate[0]), count >= 1, count <= 1_000_000 else { return nil }
        let seconds: Double
        switch rate[1] {
        case "s": seconds = 1
        case "m": seconds = 60
        case "h": seconds = 3600
        default: return nil
        }
        var burst = count
        if parts.count == 2 {
            guard let value = Int(parts[1]), value >= 1, value <= 1_000_000 else { return nil }
            burst = value
        }
        self.init(perSecond: Double(count) / seconds, burst: burst)
    }

    public var description: String {
        perSecond >= 1 ? "\(Self.format(perSecond))/s:\(burst)" : "\(Self.format(perSecond * 60))/m:\(burst)"
    }

    private static func format(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(format: "%.2f", value)
    }
}

/// Every limit the server applies, and who is trusted to say who the client is.
public struct RateLimitPolicy: Sendable {
    /// Requests per authenticated principal (a tenant, the admin).
    public var perPrincipal = RateLimit(perSecond: 50, burst: 100)
    /// Requests without credentials (health, the OpenAPI document, sign-up), per client address.
    public var anonymousPerAddress = RateLimit(perSecond: 20, burst: 50)
    /// `POST /onboard` per client address (public sign-up), on top of the other limits.
    public var onboardPerAddress = RateLimit(perSecond: 1, burst: 20)
    /// Refused credentials per client address and claimed key id (``ClaimedCredential``): slows
    /// down guessing one credential. Only refusals use it: a credential that verifies is never
    /// refused, whatever the bucket holds; one that does not is answered `429` instead of `401`
    /// once it is empty.
    public var failedAuthPerCredential = RateLimit(perSecond: 10.0 / 60, burst: 20)
    /// Refused credentials per client address, whatever key they claim: bounds the guessing (and
    /// the buckets) of a client that makes up a new key id for every try. Like
    /// ``failedAuthPerCredential``, it never refuses a credential that verifies.
    public var failedAuthPerAddress = RateLimit(perSecond: 100.0 / 60, burst: 200)
    /// Proxies whose `X-Forwarded-For` is believed; without them the peer is the client.
    public var trustedProxies: [IPNetwork] = []
    /// IPv6 clients share a bucket per network of this many bits (a subscriber usually holds a
    /// whole /64); IPv4 clients have one per address. 128: one per IPv6 address.
    public var ipv6Prefix = 64

    public init() {}
}

/// The outcome of taking a token.
public struct RateLimitDecision: Sendable {
    public let allowed: Bool
    public let limit: RateLimit
    /// Whole tokens left after this request.
    public let remaining: Int
    /// Seconds until the bucket is full again.
    public let resetSeconds: Int
    /// When refused: seconds until a token is available.
    public let retryAfterSeconds: Int
}

/// Token buckets by key (`tenant:<id>`, `address:<ip>`, …), in memory.
///
/// One process, one set of buckets: behind a load balancer or in Lambda each instance limits on
/// its own (put API Gateway throttling in front for a global limit).
public final class RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: ContinuousClock.Instant
    }

    private struct State {
        var buckets: [String: Bucket] = [:]
        var insertionsSincePrune = 0
    }

    public let policy: RateLimitPolicy
    private let state = Mutex(State())
    private let warnedAboutForwardedFor = Atomic(false)
    private let now: @Sendable () -> ContinuousClock.Instant

    /// Buckets kept before idle (full) ones are dropped.
    static let pruneThreshold = 10_000

    public init(policy: RateLimitPolicy, now: @escaping @Sendable () -> ContinuousClock.Instant = { .now }) {
        self.policy = policy
        self.now = now
    }

    /// Takes `cost` tokens from the bucket `key` if it has them.
    public func take(_ key: String, limit: RateLimit, cost: Double = 1) -> RateLimitDecision {
        let instant = now()
        return state.withLock { state in
            var bucket = state.buckets[key] ?? {
                state.insertionsSincePrune += 1
                return Bucket(tokens: Double(limit.burst), updated: instant)
            }()
            bucket.tokens = refilled(bucket, limit: limit, at: instant)
            bucket.updated = instant
            let allowed = bucket.tokens >= cost
            if allowed { bucket.tokens -= cost }
            state.buckets[key] = bucket
            if state.insertionsSincePrune >= Self.pruneThreshold { prune(&state, at: instant) }
            return decision(allowed: allowed, tokens: bucket.tokens, limit: limit, cost: cost)
        }
    }

    /// Whether the bucket has `cost` tokens, without taking them.
    public func peek(_ key: String, limit: RateLimit, cost: Double = 1) -> RateLimitDecision {
        let instant = now()
        return state.withLock { state in
            guard let bucket = state.buckets[key] else {
                return decision(allowed: true, tokens: Double(limit.burst), limit: limit, cost: cost)
            }
            let tokens = refilled(bucket, limit: limit, at: instant)
            return decision(allowed: tokens >= cost, tokens: tokens, limit: limit, cost: cost)
        }
    }

    /// `true` the first time only: the one warning about `X-Forwarded-For` from a peer that is
    /// not a trusted proxy (one limiter per process: the server's).
    func firstUntrustedForwardedFor() -> Bool {
        warnedAboutForwardedFor.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged
    }

    /// How many buckets are held (for tests of the pruning).
    var bucketCount: Int { state.withLock { $0.buckets.count } }

    private func refilled(_ bucket: Bucket, limit: RateLimit, at instant: ContinuousClock.Instant) -> Double {
        let elapsed = instant - bucket.updated
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return min(Double(limit.burst), bucket.tokens + max(0, seconds) * limit.perSecond)
    }

    private func decision(allowed: Bool, tokens: Double, limit: RateLimit, cost: Double) -> RateLimitDecision {
        RateLimitDecision(
            allowed: allowed,
            limit: limit,
            remaining: max(0, Int(tokens.rounded(.down))),
            resetSeconds: Int(((Double(limit.burst) - tokens) / limit.perSecond).rounded(.up)),
            retryAfterSeconds: allowed ? 0 : max(1, Int(((cost - tokens) / limit.perSecond).rounded(.up)))
        )
    }

    /// Drops buckets that have refilled completely: they hold nothing a new bucket would not.
    private func prune(_ state: inout State, at instant: ContinuousClock.Instant) {
        state.insertionsSincePrune = 0
        state.buckets = state.buckets.filter { key, bucket in
            let limit = self.limit(forKey: key)
            return refilled(bucket, limit: limit, at: instant) < Double(limit.burst)
        }
    }

    /// The limit a key's bucket uses, from the key's kind.
    func limit(forKey key: String) -> RateLimit {
        if key.hasPrefix(Keys.onboard) { return policy.onboardPerAddress }
        if key.hasPrefix(Keys.failedAuth) { return policy.failedAuthPerCredential }
        if key.hasPrefix(Keys.failedAuthAddress) { return policy.failedAuthPerAddress }
        if key.hasPrefix(Keys.anonymous) { return policy.anonymousPerAddress }
        return policy.perPrincipal
    }

    /// Bucket key prefixes.
    enum Keys {
        static let principal = "principal:"
        static let anonymous = "anonymous:"
        static let onboard = "onboard:"
        /// `failed-auth:<address bucket> <claimed key id>`.
        static let failedAuth = "failed-auth:"
        static let failedAuthAddress = "failed-auth-address:"
    }
}
