import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import RequestBudget
import SigV4
import Synchronization

/// Calls AWS JSON-protocol APIs (DynamoDB's JSON 1.0, EventBridge's JSON 1.1) and Query-protocol
/// ones (SNS): one signed `POST /` (with `X-Amz-Target`, or a form-encoded `Action`), retried with
/// exponential backoff and full jitter on throttling, 5xx and dropped connections, errors
/// decoded from `__type` and `message` (JSON) or `<Code>` and `<Message>` (XML).
///
/// One client keeps one keep-alive connection pool (async-http-client) for all calls; call
/// ``shutdown()`` when done.
public final class AWSClient: Sendable {
    /// Where the credentials come from; asked before every request (it caches).
    public let credentialProvider: any AWSCredentialProvider
    public let region: String
    public let retryPolicy: RetryPolicy
    /// The most a single HTTP attempt may take.
    public let requestTimeout: TimeAmount
    /// The time a call made outside any request's ``RetryBudget`` may take, retries included
    /// (the CLI, background work, tests).
    public let defaultBudget: Duration
    private let httpClient: HTTPClient
    private let logger: Logger
    /// One signer per service (each keeps its day's signing key; replaced when the credentials
    /// change) and each endpoint parsed once.
    private let signing = Mutex<(signers: [String: SigV4Signer], targets: [String: SigV4Signer.Target])>(([:], [:]))

    /// A client signing with fixed credentials.
    public convenience init(
        credentials: AWSCredentials,
        region: String,
        retryPolicy: RetryPolicy = .standard,
        requestTimeout: TimeAmount = .seconds(10),
        defaultBudget: Duration = RetryBudget.defaultTimeout,
        maxConnections: Int = 64,
        connectTimeout: TimeAmount = .seconds(3),
        logger: Logger = Logger(label: "onboard.aws")
    ) {
        self.init(
            credentialProvider: StaticCredentialProvider(credentials), region: region, retryPolicy: retryPolicy, requestTimeout: requestTimeout,
            defaultBudget: defaultBudget, maxConnections: maxConnections, connectTimeout: connectTimeout, logger: logger
        )
    }

    /// A client signing with the credentials `credentialProvider` gives at each request (for
    /// example a ``CachingCredentialProvider`` over ``AWSCredentialChain/standard(environment:region:)``).
    public init(
        credentialProvider: any AWSCredentialProvider,
        region: String,
        retryPolicy: RetryPolicy = .standard,
        requestTimeout: TimeAmount = .seconds(10),
        defaultBudget: Duration = RetryBudget.defaultTimeout,
        maxConnections: Int = 64,
        connectTimeout: TimeAmount = .seconds(3),
        logger: Logger = Logger(label: "onboard.aws")
    ) {
        self.credentialProvider = credentialProvider
        self.region = region
        self.retryPolicy = retryPolicy
        self.requestTimeout = requestTimeout
        self.defaultBudget = defaultBudget
        self.logger = logger
        var configuration = HTTPClient.Configuration(
            // `connect` also bounds the wait for a free connection when all `maxConnections` are busy.
            timeout: .init(connect: connectTimeout, read: requestTimeout),
            connectionPool: .init(idleTimeout: .seconds(50), concurrentHTTP1ConnectionsPerHostSoftLimit: maxConnections)
        )
        configuration.decompression = .disabled
        self.httpClient = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// Closes the connection pool. The client cannot be used afterwards.
    public func shutdown() async throws {
        try await httpClient.shutdown()
    }

    /// One JSON-protocol call.
    /// - Parameters:
    ///   - endpoint: the service's base URL (`https://dynamodb.eu-west-1.amazonaws.com`, a moto URL, …).
    ///   - signingName: the service name in the signature scope (`dynamodb`, `events`).
    ///   - target: the `X-Amz-Target` value (`DynamoDB_20120810.PutItem`).
    ///   - contentType: `application/x-amz-json-1.0` or `-1.1`.
    /// - Returns: the response body of a 2xx answer.
    /// - Throws: ``AWSServiceError`` for an error answer (after retries for retryable ones),
    ///   ``AWSTransportError`` when no answer came.
    public func jsonCall(endpoint: String, signingName: String, target: String, contentType: String, body: [UInt8]) async throws -> [UInt8] {
        try await call(
            endpoint: endpoint, signingName: signingName, operation: target, headers: [("Content-Type", contentType), ("X-Amz-Target", target)],
            body: body
        )
    }

    /// One signed `POST /` of any protocol (JSON, Query), with the retries described on the
    /// type: what ``jsonCall(endpoint:signingName:target:contentType:body:)`` and
    /// ``queryCall(endpoint:signingName:action:version:parameters:)`` share.
    /// - Parameters:
    ///   - operation: the operation's name in errors and logs (`X-Amz-Target`, a Query `Action`).
    ///   - headers: the protocol's headers (content type, target), signed; `User-Agent` is added.
    func call(endpoint: String, signingName: String, operation target: String, headers: [SigV4Signer.Header], body: [UInt8]) async throws -> [UInt8] {
        let url = endpoint.hasSuffix("/") ? endpoint : endpoint + "/"
        let destination = try signing.withLock { cache in
            let destination = try cache.targets[url] ?? SigV4Signer.Target(url: url)
            cache.targets[url] = destination
            return destination
        }
        return try await RetryBudget.withCurrent(orNew: RetryBudget(timeout: defaultBudget, maxRetries: retryPolicy.maxAttempts - 1)) { budget in
            var attempt = 0
            // Whether an earlier attempt may have been applied although its answer never came
            // (no answer, or a 5xx): a conditional write that then fails its own condition may
            // be looking at its own earlier success, which its caller must recognise.
            var answerLost = false
            while true {
                attempt += 1
                guard let timeout = budget.attemptTimeout(atMost: .nanoseconds(requestTimeout.nanoseconds)) else {
                    throw AWSTransportError(message: "\(target): the request's deadline passed before an answer", answerLost: answerLost)
                }
                do {
                    return try await send(
                        url: url, signingName: signingName, destination: destination, target: target, headers: headers, body: body, timeout: timeout
                    )
                } catch var error as AWSServiceError {
                    error.answerLost = answerLost
                    guard error.isRetryable else { throw error }
                    guard let delay = budget.nextRetryDelay(attempt: attempt, base: retryPolicy.base(throttled: error.isThrottling), cap: retryPolicy.cap) else {
                        giveUp(target: target, attempt: attempt, budget: budget, reason: error.type)
                        throw error
                    }
                    answerLost = answerLost || !error.isThrottling
                    try await backOff(delay, attempt: attempt, reason: error.type, target: target)
                } catch var error as AWSTransportError {
                    answerLost = true
                    error.answerLost = true
                    guard let delay = budget.nextRetryDelay(attempt: attempt, base: retryPolicy.base, cap: retryPolicy.cap) else {
                        giveUp(target: target, attempt: attempt, budget: budget, reason: error.message)
                        throw error
                    }
                    try await backOff(delay, attempt: attempt, reason: error.message, target: target)
                }
            }
        }
    }

    /// A retryable failure with no retry left in the request's budget: said once, with what was
    /// spent, so that an operator can tell a budget too small from a service that is down.
    private func giveUp(target: String, attempt: Int, budget: RetryBudget, reason: String) {
        logger.warning(
            "AWS call failed and the request's retry budget is spent",
            metadata: [
                "target": "\(target)", "attempts": "\(attempt)", "retriesTakenByRequest": "\(budget.retries)",
                "maxRetries": "\(budget.maxRetries)", "timeLeft": "\(budget.remaining)", "reason": "\(reason)",
            ]
        )
    }

    private func backOff(_ delay: Duration, attempt: Int, reason: String, target: String) async throws {
        logger.debug("retrying AWS call", metadata: ["target": "\(target)", "attempt": "\(attempt)", "reason": "\(reason)", "delay": "\(delay)"])
        try await Task.sleep(for: delay)
    }

    /// One attempt, signed with the provider's current credentials. When AWS answers that they
    /// expired (`ExpiredToken*`), they are invalidated, fresh ones fetched, and the request is
    /// sent once more with those (within the same `timeout`'s budget, as one attempt).
    private func send(
        url: String, signingName: String, destination: SigV4Signer.Target, target: String, headers: [SigV4Signer.Header], body: [UInt8],
        timeout: Duration
    ) async throws -> [UInt8] {
        let credentials = try await currentCredentials()
        do {
            return try await send(
                url: url, signer: signer(for: signingName, credentials), destination: destination, headers: headers, body: body, timeout: timeout
            )
        } catch let error as AWSServiceError where error.isExpiredCredentials {
            logger.info("AWS credentials expired; refreshing and sending again", metadata: ["target": "\(target)", "accessKeyId": "\(credentials.accessKeyId)"])
            credentialProvider.invalidate(credentials)
            let fresh = try await currentCredentials()
            return try await send(
                url: url, signer: signer(for: signingName, fresh), destination: destination, headers: headers, body: body, timeout: timeout
            )
        }
    }

    /// The provider's credentials; a failure to get any is "no answer" (nothing was sent, and a
    /// credential endpoint may recover within the request's budget).
    private func currentCredentials() async throws -> AWSCredentials {
        do {
            return try await credentialProvider.credentials()
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw AWSTransportError(message: "cannot get AWS credentials: \(error)", answerLost: false)
        }
    }

    /// The cached signer of `service`, re-created when the credentials changed.
    private func signer(for service: String, _ credentials: AWSCredentials) -> SigV4Signer {
        signing.withLock { cache in
            if let cached = cache.signers[service], cached.credentials == credentials { return cached }
            let signer = SigV4Signer(credentials: credentials, region: region, service: service)
            cache.signers[service] = signer
            return signer
        }
    }

    private func send(
        url: String, signer: SigV4Signer, destination: SigV4Signer.Target, headers: [SigV4Signer.Header], body: [UInt8], timeout: Duration
    ) async throws -> [UInt8] {
        let signed = try signer.sign(method: "POST", target: destination, headers: headers + [("User-Agent", "onboard/0.1")], body: body, date: Date())
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        for header in signed { request.headers.add(name: header.name, value: header.value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        let response: HTTPClientResponse
        let payload: ByteBuffer
        do {
            response = try await httpClient.execute(request, timeout: .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000))
            payload = try await response.body.collect(upTo: 16 * 1024 * 1024)
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            // Connection refused, reset, timed out: no answer (the request may or may not have
            // been applied; callers of non-idempotent writes must allow for that).
            throw AWSTransportError(message: "\(error)")
        }
        let bytes = Array(payload.readableBytesView)
        guard (200..<300).contains(response.status.code) else {
            throw AWSServiceError(status: Int(response.status.code), body: bytes, requestID: response.headers.first(name: "x-amzn-RequestId"))
        }
        return bytes
    }
}

/// How to pause between retries: exponential backoff with full jitter
/// (sleep = random(0, min(cap, base × 2^attempt))), a longer base for throttling.
///
/// How many retries a call may make and until when is the request's ``RetryBudget`` (shared by
/// every layer that retries for that request); `maxAttempts` only sizes the budget a call makes
/// for itself when it runs outside any request.
public struct RetryPolicy: Sendable {
    public var maxAttempts: Int
    public var base: Duration
    public var throttlingBase: Duration
    public var cap: Duration

    public init(maxAttempts: Int, base: Duration, throttlingBase: Duration, cap: Duration) {
        self.maxAttempts = maxAttempts
        self.base = base
        self.throttlingBase = throttlingBase
        self.cap = cap
    }

    /// 8 attempts; 25 ms base (100 ms when throttled), at most 2 s between attempts.
    public static let standard = RetryPolicy(maxAttempts: 8, base: .milliseconds(25), throttlingBase: .milliseconds(100), cap: .seconds(2))

    /// The base of the backoff: longer when the service said it is throttling.
    public func base(throttled: Bool) -> Duration { throttled ? throttlingBase : base }
}

/// An error answer from an AWS service.
public struct AWSServiceError: Error, Sendable, CustomStringConvertible {
    /// The error type without its namespace (`ConditionalCheckFailedException`).
    public let type: String
    public let message: String
    public let status: Int
    public let requestID: String?
    /// The whole error body, for error-specific fields (`CancellationReasons`).
    public let body: [UInt8]
    /// Whether an earlier attempt of the same call got no answer (or a 5xx) and so may have been
    /// applied: a condition failing now may be failing on the call's own earlier success.
    public var answerLost = false

    init(status: Int, body: [UInt8], requestID: String?) {
        self.status = status
        self.body = body
        let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any]
        // Query-protocol services (SNS) answer errors in XML,
        // `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`, and so
        // do AWS's front ends and moto for signature errors on any protocol.
        let text = String(decoding: body, as: UTF8.self)
        self.requestID = requestID ?? QueryXML.text(of: "RequestId", in: text)
        let rawType = (object?["__type"] as? String) ?? (object?["code"] as? String) ?? QueryXML.text(of: "Code", in: text) ?? "HTTP\(status)"
        self.type = rawType.split(separator: "#").last.map(String.init) ?? rawType
        self.message = (object?["message"] as? String) ?? (object?["Message"] as? String) ?? QueryXML.text(of: "Message", in: text) ?? ""
    }

    /// The text of the first `<name>…</name>` element, if any.
    static func xmlElement(_ name: String, in text: String) -> String? {
        guard let start = text.range(of: "<\(name)>"), let end = text.range(of: "</\(name)>", range: start.upperBound..<text.endIndex) else {
            return nil
        }
        return String(text[start.upperBound..<end.lowerBound])
    }

    /// Throttling, retried with the longer base.
    public var isThrottling: Bool {
        [
            "ThrottlingException", "Throttling", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
            "TooManyRequestsException", "ThrottledException", "RequestThrottledException",
        ].contains(type)
    }

    /// Worth another attempt: throttling, server faults, and DynamoDB's transaction conflicts.
    public var isRetryable: Bool {
        isThrottling || status >= 500 || ["InternalServerError", "ServiceUnavailable", "TransactionInProgressException"].contains(type)
    }

    public var description: String { "\(type) (HTTP \(status))\(message.isEmpty ? "" : ": \(message)")" }
}

/// No answer: the connection failed, was dropped, or timed out.
public struct AWSTransportError: Error, Sendable, CustomStringConvertible {
    public let message: String
    /// Whether some attempt may have reached the service (always, unless the deadline passed
    /// before any attempt left): then the call may have been applied.
    public var answerLost: Bool

    public init(message: String, answerLost: Bool = true) {
        self.message = message
        self.answerLost = answerLost
    }
    public var description: String { "no answer from AWS: \(message)" }
}
