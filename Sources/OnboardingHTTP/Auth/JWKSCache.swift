import AsyncHTTPClient
import Foundation
import JWTKit
import Logging
import NIOCore
import NIOHTTP1
import OnboardingCore

/// The issuer's signing keys: fetched on first use, cached, fetched again when a token names an
/// unknown `kid` (key rotation) or the keys are older than the maximum age, but never more often
/// than the rate limit allows; concurrent fetches are one fetch.
///
/// Stale-while-revalidate: keys older than the maximum age are still used while the refetch runs
/// in the background (a slow or hanging issuer stalls no request whose key is known). When
/// refetches keep failing, the keys stop being trusted once they are older than the maximum age
/// plus the grace period: then only a successful fetch lets JWTs in again. Only a token naming an
/// unknown `kid` (or arriving when no set is trusted) waits for a fetch.
actor JWKSCache {
    /// A key of the set, ready to verify with.
    struct Key: Sendable {
        /// A jwt-kit collection holding this set's keys (the `kid` is known to be in it).
        let collection: JWTKeyCollection
        /// `RSA` or `EC`.
        let keyType: String
        /// The JWK's `alg`, when it names one.
        let algorithm: String?
        /// The JWK's `crv` (EC keys).
        let curve: String?

        /// Whether a token signed with `algorithm` may be verified with this key.
        func accepts(algorithm tokenAlgorithm: String) -> Bool {
            if let algorithm, algorithm != tokenAlgorithm { return false }
            switch tokenAlgorithm {
            case "RS256": return keyType == "RSA"
            case "ES256": return keyType == "EC" && curve == "P-256"
            default: return false
            }
        }
    }

    private struct KeySet {
        let keys: [String: Key]
        let fetchedAt: Date
    }

    enum LookupError: Error {
        /// The set (fresh enough, or as fresh as the rate limit allows) has no such key.
        case unknownKey
        /// No key set could be fetched.
        case unavailable
    }

    struct FetchError: Error, CustomStringConvertible {
        let description: String
    }

    private let minimumRefetchInterval: TimeInterval
    private let failedFetchRetryInterval: TimeInterval
    private let maximumKeyAge: TimeInterval
    private let gracePeriod: TimeInterval
    private let logger: Logger
    private let fetch: @Sendable () async throws -> [UInt8]

    private var current: KeySet?
    private var lastAttempt: (at: Date, failed: Bool)?
    private var inFlight: Task<Void, Never>?
    /// How many fetches have been started.
    private(set) var fetchCount = 0

    init(
        minimumRefetchInterval: Duration,
        failedFetchRetryInterval: Duration,
        maximumKeyAge: Duration,
        gracePeriod: Duration,
        logger: Logger,
        fetch: @escaping @Sendable () async throws -> [UInt8]
    ) {
        self.minimumRefetchInterval = Self.seconds(minimumRefetchInterval)
        self.failedFetchRetryInterval = Self.seconds(failedFetchRetryInterval)
        self.maximumKeyAge = Self.seconds(maximumKeyAge)
        self.gracePeriod = Self.seconds(gracePeriod)
        self.logger = logger
        self.fetch = fetch
    }

    private static func seconds(_ duration: Duration) -> TimeInterval {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// The key named `kid`. A known key of a set younger than the maximum age is returned at once;
    /// one of an older set still trusted (within the grace period) too, while a refetch starts in
    /// the background when the rate limit allows. An unknown `kid`, or a set no longer trusted,
    /// waits for a fetch (the one running, or a new one when the rate limit allows).
    func key(for kid: String, now: Date) async throws(LookupError) -> Key {
        if let current, let key = current.keys[kid] {
            let age = now.timeIntervalSince(current.fetchedAt)
            if age < maximumKeyAge { return key }
            if age < maximumKeyAge + gracePeriod {
                _ = startFetch(now: now)
                return key
            }
        }
        if let inFlight {
            await inFlight.value
        } else if let task = startFetch(now: now) {
            await task.value
        }
        guard let current, now.timeIntervalSince(current.fetchedAt) < maximumKeyAge + gracePeriod else { throw .unavailable }
        guard let key = current.keys[kid] else { throw .unknownKey }
        return key
    }

    /// Starts a fetch unless one is running or the rate limit forbids it; the fetch started.
    private func startFetch(now: Date) -> Task<Void, Never>? {
        guard inFlight == nil, mayFetch(now: now) else { return nil }
        let task = Task { await self.refresh(now: now) }
        inFlight = task
        return task
    }

    private func mayFetch(now: Date) -> Bool {
        guard let lastAttempt else { return true }
        let interval = lastAttempt.failed ? failedFetchRetryInterval : minimumRefetchInterval
        let elapsed = now.timeIntervalSince(lastAttempt.at)
        // A clock set back must not block fetching until it catches up again.
        return elapsed >= interval || elapsed < 0
    }

    private func refresh(now: Date) async {
        fetchCount += 1
        defer { inFlight = nil }
        do {
            let keys = try await Self.parse(try await fetch())
            current = KeySet(keys: keys, fetchedAt: now)
            lastAttempt = (now, false)
            logger.debug("JWKS fetched", metadata: ["keys": "\(keys.count)"])
        } catch {
            lastAttempt = (now, true)
            // Cached keys are trusted until the maximum age plus the grace period; after that
            // (or for a key not cached) JWTs are refused until a fetch succeeds.
            let trustedUntil = current.map { $0.fetchedAt.addingTimeInterval(maximumKeyAge + gracePeriod) }
            logger.error(
                "cannot fetch the OIDC issuer's JWKS; JWTs whose key is not cached (or no longer trusted) are refused",
                metadata: [
                    "error": "\(error)", "cachedKeys": "\(current?.keys.count ?? 0)",
                    "cachedKeysTrustedUntil": "\(trustedUntil.map { Timestamp.format($0) } ?? "-")",
                ]
            )
        }
    }

    /// GET `url`, expecting `200` and at most 1 MiB within `timeout`.
    static func download(_ url: String, httpClient: HTTPClient, timeout: Duration) async throws -> [UInt8] {
        var request = HTTPClientRequest(url: url)
        request.method = .GET
        request.headers.add(name: "Accept", value: "application/json")
        let response = try await httpClient.execute(request, timeout: .init(timeout))
        let body = try await response.body.collect(upTo: 1024 * 1024)
        guard response.status.code == 200 else {
            throw FetchError(description: "GET \(url) answered HTTP \(response.status.code)")
        }
        return Array(body.readableBytesView)
    }

    /// The usable signing keys of a JWKS document: RSA and EC keys with a `kid`, for signatures.
    /// Other keys (encryption keys, other types) are skipped; a set with none is an error.
    static func parse(_ bytes: [UInt8]) async throws -> [String: Key] {
        guard let document = try? JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any],
            let entries = document["keys"] as? [[String: Any]]
        else {
            throw FetchError(description: "the JWKS is not a JSON object with a keys array")
        }
        let collection = JWTKeyCollection()
        var pending: [(kid: String, keyType: String, algorithm: String?, curve: String?)] = []
        for entry in entries {
            guard let kid = entry["kid"] as? String, !kid.isEmpty,
                let keyType = entry["kty"] as? String, keyType == "RSA" || keyType == "EC",
                (entry["use"] as? String).map({ $0 == "sig" }) ?? true
            else { continue }
            do {
                let jwk = try JSONDecoder().decode(JWK.self, from: JSONSerialization.data(withJSONObject: entry))
                try await collection.add(jwk: jwk)
                pending.append((kid, keyType, entry["alg"] as? String, entry["crv"] as? String))
            } catch {
                continue
            }
        }
        guard !pending.isEmpty else { throw FetchError(description: "the JWKS has no usable RSA or EC signing key") }
        var keys: [String: Key] = [:]
        for key in pending {
            keys[key.kid] = Key(collection: collection, keyType: key.keyType, algorithm: key.algorithm, curve: key.curve)
        }
        return keys
    }
}
