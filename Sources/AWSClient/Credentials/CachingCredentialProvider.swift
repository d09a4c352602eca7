import Foundation
import Logging
import SigV4
import Synchronization

/// Holds the credentials of a source and fetches new ones only when needed: at first use, when
/// they are within ``refreshBefore`` of their expiry, and after ``invalidate(_:)``.
///
/// One fetch at a time. Inside the refresh window the held credentials, still valid, are used at
/// once while one refresh runs in the background, so no request waits for the credential
/// endpoint (an IMDS that does not answer costs seconds); refreshes are tried at most every
/// ``minimumRefreshGap`` while the held credentials last. Only a caller with no valid credentials
/// (the first, after expiry, after ``invalidate(_:)``) waits, and callers arriving meanwhile wait
/// for the same fetch, so a burst causes one request to the endpoint. If the credentials expire
/// before a refresh succeeds, the refresh's failure is thrown.
public final class CachingCredentialProvider: AWSCredentialProvider {
    public let source: any AWSCredentialSource
    /// How long before their expiry credentials are replaced (the SDKs use 5 to 15 minutes).
    public let refreshBefore: Duration
    private let logger: Logger
    private let now: @Sendable () -> Date

    /// While valid credentials are held, a failed or useless refresh is not tried again sooner.
    public static let minimumRefreshGap: TimeInterval = 10

    private struct State {
        var current: ExpiringCredentials?
        var refresh: Task<ExpiringCredentials, any Error>?
        /// When the last fetch started (the provider's clock).
        var lastFetch: Date?
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
            case wait(Task<ExpiringCredentials, any Error>)
        }
        let next: Next = state.withLock { state in
            if let current = state.current, !current.isExpired(at: date) {
                // Valid: used now. Inside the window, one refresh starts in the background.
                let due = current.isExpired(at: date.addingTimeInterval(window))
                let rested = state.lastFetch.map { date.timeIntervalSince($0) >= Self.minimumRefreshGap } ?? true
                if due, rested, state.refresh == nil {
                    state.lastFetch = date
                    state.refresh = Task { try await self.fetch() }
                }
                return .ready(current)
            }
            if let running = state.refresh { return .wait(running) }
            // The task is stored before the lock is released, and the task takes the lock to
            // finish, so no caller can miss it or see it twice.
            state.lastFetch = date
            let started = Task { try await self.fetch() }
            state.refresh = started
            return .wait(started)
        }
        switch next {
        case .ready(let credentials):
            return credentials
        case .wait(let refresh):
            return try await refresh.value
        }
    }

    /// Waits for the refresh under way, if any (tests; a graceful start).
    public func refreshCompleted() async {
        let running = state.withLock { $0.refresh }
        _ = try? await running?.value
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
            let stillValid = state.withLock { state in
                state.refresh = nil
                return state.current.map { !$0.isExpired(at: now()) } ?? false
            }
            if stillValid {
                logger.warning("refreshing AWS credentials failed; using the current ones until they expire", metadata: ["error": "\(error)"])
            }
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
