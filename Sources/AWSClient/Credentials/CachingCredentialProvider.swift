import Foundation
import Logging
import SigV4
import Synchronization

/// Holds the credentials of a source and fetches new ones only when needed: at first use, when
/// they are within ``refreshBefore`` of their expiry, and after ``invalidate(_:)``.
///
/// One fetch at a time: callers arriving while a fetch runs wait for that fetch, so a burst of
/// requests at expiry causes one request to the credential endpoint. If a refresh fails while the
/// held credentials are still valid, they are used until they expire (and the next call tries
/// again); after their expiry, or after an invalidation, the failure is thrown.
public final class CachingCredentialProvider: AWSCredentialProvider {
    public let source: any AWSCredentialSource
    /// How long before their expiry credentials are replaced (the SDKs use 5 to 15 minutes).
    public let refreshBefore: Duration
    private let logger: Logger
    private let now: @Sendable () -> Date

    private struct State {
        var current: ExpiringCredentials?
        var refresh: Task<ExpiringCredentials, any Error>?
    }
    private let state = Mutex(State())

    /// - Parameters:
    ///   - now: the clock (tests move it forward).
    public init(
        _ source: any AWSCredentialSource, refreshBefore: Duration = .seconds(300), logger: Logger = Logger(label: "onboard.aws.credentials"),
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.source = source
        self.refreshBefore = refreshBefore
        self.logger = logger
        self.now = now
    }

    /// The credentials to sign with, fetched first if needed.
    /// - Throws: ``AWSCredentialsError`` when none can be had.
    public func credentials() async throws -> AWSCredentials {
        try await current().credentials
    }

    /// The held credentials with their expiry, fetched first if needed.
    public func current() async throws -> ExpiringCredentials {
        let date = now()
        let window = Double(refreshBefore.components.seconds) + Double(refreshBefore.components.attoseconds) / 1e18
        enum Next {
            case ready(ExpiringCredentials)
            /// Wait for the refresh; `fallback` (still valid) is used if it fails.
            case wait(Task<ExpiringCredentials, any Error>, fallback: ExpiringCredentials?)
        }
        let next: Next = state.withLock { state in
            if let current = state.current, !current.isExpired(at: date.addingTimeInterval(window)) {
                return .ready(current)
            }
            let fallback = state.current.flatMap { $0.isExpired(at: date) ? nil : $0 }
            if let running = state.refresh { return .wait(running, fallback: fallback) }
            // The task is stored before the lock is released, and the task takes the lock to
            // finish, so no caller can miss it or see it twice.
            let started = Task { try await self.fetch() }
            state.refresh = started
            return .wait(started, fallback: fallback)
        }
        switch next {
        case .ready(let credentials):
            return credentials
        case .wait(let refresh, let fallback):
            do {
                return try await refresh.value
            } catch let error where !(error is CancellationError) {
                guard let fallback else { throw error }
                logger.warning(
                    "refreshing AWS credentials failed; using the current ones until they expire",
                    metadata: ["error": "\(error)", "accessKeyId": "\(fallback.credentials.accessKeyId)"]
                )
                return fallback
            }
        }
    }

    private func fetch() async throws -> ExpiringCredentials {
        do {
            guard let fetched = try await source.fetch() else {
                throw AWSCredentialsError(message: "no AWS credentials: \(source.lookedAt)")
            }
            state.withLock {
                $0.current = fetched
                $0.refresh = nil
            }
            logger.debug(
                "fetched AWS credentials",
                metadata: ["accessKeyId": "\(fetched.credentials.accessKeyId)", "expiration": "\(fetched.expiration.map { "\($0)" } ?? "none")"]
            )
            return fetched
        } catch {
            state.withLock { $0.refresh = nil }
            throw error
        }
    }

    public func invalidate(_ rejected: AWSCredentials) {
        state.withLock { state in
            if state.current?.credentials == rejected { state.current = nil }
        }
    }
}

extension AWSServiceError {
    /// AWS said the credentials have expired (`ExpiredToken`, `ExpiredTokenException`): worth a
    /// refresh and one resend. (`InvalidClientTokenId`, unknown keys, is not: refreshing would
    /// not help.)
    public var isExpiredCredentials: Bool { type.hasPrefix("ExpiredToken") }
}
