import Foundation
import Logging
import RequestBudget
import Synchronization

/// Handles one invocation: its payload in, the response payload out.
public typealias LambdaHandler = @Sendable (LambdaInvocation, Logger) async throws -> [UInt8]

/// The response to post for an invocation whose handler did not finish before the deadline
/// (`nil`: report a `DeadlineExceeded` error to `/error` instead).
public typealias LambdaTimeoutResponse = @Sendable (LambdaInvocation) async -> [UInt8]?

/// The custom runtime's loop: next invocation → handle → post the response, or post the error
/// and go on. A bad event never ends the loop; only cancellation or a Runtime API that stops
/// answering does.
///
/// Each invocation runs with a ``RetryBudget`` (``RetryBudget/current``) that ends
/// ``budgetMargin`` before the invocation's deadline, so retries below it stop in time for the
/// HTTP layer to answer. Should the handler still be running ``answerMargin`` before the
/// deadline (it ignores cancellation, or is stuck), the loop answers without it, the timeout
/// response or a `DeadlineExceeded` error, and goes on to the next invocation.
public struct LambdaRuntimeLoop: Sendable {
    public let client: any LambdaRuntimeClient
    public let logger: Logger
    private let handler: LambdaHandler
    private let timeoutResponse: LambdaTimeoutResponse?
    private let betweenInvocations: (@Sendable () async -> Void)?

    /// How long before the invocation's deadline its retry budget ends.
    public static let budgetMargin: Duration = .milliseconds(300)
    /// How long before the invocation's deadline the loop stops waiting for the handler and
    /// answers itself (Lambda stops the sandbox at the deadline).
    public static let answerMargin: Duration = .milliseconds(100)

    /// - Parameters:
    ///   - timeoutResponse: what to post for an invocation whose handler ran out of time; `nil`
    ///     (or a `nil` answer) posts a `DeadlineExceeded` error.
    ///   - betweenInvocations: run after each invocation is answered and before the next is
    ///     asked for, with a retry budget of its own that ends with the invocation's, and
    ///     cancelled ``answerMargin`` before the invocation's deadline. Lambda freezes the sandbox
    ///     while the runtime waits for the next invocation, so work left running in the
    ///     background would stall: flush it here.
    public init(
        client: any LambdaRuntimeClient, logger: Logger, timeoutResponse: LambdaTimeoutResponse? = nil,
        betweenInvocations: (@Sendable () async -> Void)? = nil, handler: @escaping LambdaHandler
    ) {
        self.client = client
        self.logger = logger
        self.timeoutResponse = timeoutResponse
        self.betweenInvocations = betweenInvocations
        self.handler = handler
    }

    /// Serves invocations until the task is cancelled.
    /// - Parameter maxInvocations: stop after this many (tests); `nil` serves forever.
    public func run(maxInvocations: Int? = nil) async throws {
        var served = 0
        while !Task.isCancelled {
            if let maxInvocations, served >= maxInvocations { return }
            let invocation = try await client.nextInvocation()
            served += 1
            let deadline = Self.instant(of: invocation.deadline)
            await RetryBudget.$current.withValue(RetryBudget(deadline: deadline - Self.budgetMargin)) {
                await handle(invocation, answerBy: deadline - Self.answerMargin)
            }
            if let betweenInvocations {
                // Retries of its own (the request may have spent its own), ending with the invocation.
                await RetryBudget.$current.withValue(RetryBudget(deadline: deadline - Self.budgetMargin)) {
                    await Self.cancelling(at: deadline - Self.answerMargin, betweenInvocations)
                }
            }
        }
    }

    func handle(_ invocation: LambdaInvocation, answerBy cutOff: ContinuousClock.Instant) async {
        var logger = self.logger
        logger[metadataKey: "aws_request_id"] = .string(invocation.requestID)
        if let trace = invocation.traceID { logger[metadataKey: "trace_id"] = .string(trace) }
        let invocationLogger = logger
        switch await Self.race(until: cutOff, { [handler] in try await handler(invocation, invocationLogger) }) {
        case .success(let response):
            await postResponse(response, for: invocation, logger: logger)
        case .failure(let error as DeadlineExceeded):
            logger.error(
                "invocation timed out: answered without its handler, which may still be running",
                metadata: ["deadline": .string("\(invocation.deadline)")]
            )
            if let timeoutResponse, let response = await timeoutResponse(invocation) {
                await postResponse(response, for: invocation, logger: logger)
            } else {
                await postError(Self.report(error), for: invocation, logger: logger)
            }
        case .failure(let error):
            let report = Self.report(error)
            logger.error("invocation failed", metadata: ["error_type": .string(report.errorType), "error": .string(report.errorMessage)])
            await postError(report, for: invocation, logger: logger)
        }
    }

    private func postResponse(_ response: [UInt8], for invocation: LambdaInvocation, logger: Logger) async {
        do {
            try await client.sendResponse(requestID: invocation.requestID, body: response)
        } catch {
            logger.error("the Runtime API did not take the response", metadata: Self.metadata(error, bytes: response.count))
            // Without an answer the caller waits for the function's timeout: report the
            // failure instead (Lambda takes an error after a refused response, e.g. one over 6 MB).
            await postError(
                LambdaErrorReport(errorType: "Runtime.ResponseNotAccepted", errorMessage: "the Runtime API did not take the response: \(error)"),
                for: invocation, logger: logger
            )
        }
    }

    private func postError(_ report: LambdaErrorReport, for invocation: LambdaInvocation, logger: Logger) async {
        do {
            try await client.sendError(requestID: invocation.requestID, error: report)
        } catch {
            logger.error("could not report the failure to the Runtime API", metadata: Self.metadata(error, bytes: nil))
        }
    }

    /// Log metadata for a failed post: the error, and the Runtime API's status and answer.
    static func metadata(_ error: any Error, bytes: Int?) -> Logger.Metadata {
        var metadata: Logger.Metadata = ["error": "\(error)"]
        if let bytes { metadata["response_bytes"] = .stringConvertible(bytes) }
        if let error = error as? LambdaRuntimeError {
            if let status = error.status { metadata["status"] = .stringConvertible(status) }
            if let body = error.body { metadata["body"] = .string(body) }
        }
        return metadata
    }

    /// `deadline` on the continuous clock (what `RetryBudget` and `Task.sleep` use).
    static func instant(of deadline: Date) -> ContinuousClock.Instant {
        let milliseconds = (deadline.timeIntervalSinceNow * 1000).rounded()
        return .now + .milliseconds(Int64(max(-86_400_000, min(milliseconds, 86_400_000))))
    }

    /// Runs `body` in a task of its own and returns its result, or ``DeadlineExceeded`` at
    /// `cutOff`, whichever comes first. A task group would wait for a child that ignores
    /// cancellation; here the body is cancelled when the deadline wins but never awaited, so it
    /// cannot hold up the answer. The body's task inherits task-local values (the retry budget).
    static func race(
        until cutOff: ContinuousClock.Instant, _ body: @escaping @Sendable () async throws -> [UInt8]
    ) async -> Result<[UInt8], any Error> {
        guard cutOff > .now else { return .failure(DeadlineExceeded()) }
        let race = Race()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                race.start(
                    continuation,
                    work: Task {
                        do { race.finish(.success(try await body())) } catch { race.finish(.failure(error)) }
                    },
                    timer: Task {
                        try? await Task.sleep(until: cutOff, clock: .continuous)
                        race.finish(.failure(Task.isCancelled ? CancellationError() : DeadlineExceeded()))
                    }
                )
            }
        } onCancel: {
            race.cancel()
        }
    }

    /// Runs `body` and cancels it at `cutOff`, then waits for it to stop. The invocation lasts
    /// until the runtime asks for the next event, so the step after the answer must end before
    /// the deadline too (past it Lambda ends the sandbox and records a timeout), however long
    /// what it waits for (a slow webhook) would take; its work is left for later.
    static func cancelling(at cutOff: ContinuousClock.Instant, _ body: @escaping @Sendable () async -> Void) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await body() }
            group.addTask { try? await Task.sleep(until: cutOff, clock: .continuous) }
            await group.next()
            group.cancelAll()
        }
    }

    /// The invocation ran out of time.
    struct DeadlineExceeded: Error, CustomStringConvertible {
        var description: String { "the invocation did not finish before its deadline" }
    }

    /// The report for an error: its type's name and its description.
    static func report(_ error: any Error) -> LambdaErrorReport {
        LambdaErrorReport(errorType: String(describing: type(of: error)), errorMessage: "\(error)")
    }

    /// Reports a start-up failure (`/runtime/init/error`), after which Lambda ends the sandbox.
    public static func reportInitError(_ error: any Error, client: any LambdaRuntimeClient, logger: Logger) async {
        let report = report(error)
        logger.critical("initialisation failed", metadata: ["error_type": .string(report.errorType), "error": .string(report.errorMessage)])
        do {
            try await client.sendInitError(report)
        } catch {
            logger.error("could not report the initialisation failure", metadata: Self.metadata(error, bytes: nil))
        }
    }
}

/// The handler and the deadline of one ``LambdaRuntimeLoop/race(until:_:)``: the first to
/// finish resumes the continuation and cancels the other.
private final class Race: Sendable {
    private struct State {
        var continuation: CheckedContinuation<Result<[UInt8], any Error>, Never>?
        var result: Result<[UInt8], any Error>?
        var tasks: [Task<Void, Never>] = []
        var cancelled = false
    }

    private let state = Mutex(State())

    func start(_ continuation: CheckedContinuation<Result<[UInt8], any Error>, Never>, work: Task<Void, Never>, timer: Task<Void, Never>) {
        let (finished, cancelled) = state.withLock { state -> (Result<[UInt8], any Error>?, Bool) in
            state.tasks = [work, timer]
            if state.result == nil { state.continuation = continuation }
            return (state.result, state.cancelled)
        }
        if cancelled {
            work.cancel()
            timer.cancel()
        }
        if let finished {
            work.cancel()
            timer.cancel()
            continuation.resume(returning: finished)
        }
    }

    func finish(_ result: Result<[UInt8], any Error>) {
        let (continuation, tasks) = state.withLock { state -> (CheckedContinuation<Result<[UInt8], any Error>, Never>?, [Task<Void, Never>]) in
            guard state.result == nil else { return (nil, []) }
            state.result = result
            defer { state.continuation = nil }
            return (state.continuation, state.tasks)
        }
        // The loser is cancelled: the handler is asked to stop (it may not), the timer stops.
        for task in tasks { task.cancel() }
        continuation?.resume(returning: result)
    }

    func cancel() {
        let tasks = state.withLock { state in
            state.cancelled = true
            return state.tasks
        }
        for task in tasks { task.cancel() }
    }
}
