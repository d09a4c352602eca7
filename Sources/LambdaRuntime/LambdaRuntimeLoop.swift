#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Logging

/// Handles one invocation: its payload in, the response payload out.
public typealias LambdaHandler = @Sendable (LambdaInvocation, Logger) async throws -> [UInt8]

/// The custom runtime's loop: next invocation → handle → post the response, or post the error
/// and go on. A bad event never ends the loop; only cancellation or a Runtime API that stops
/// answering does.
public struct LambdaRuntimeLoop: Sendable {
    public let client: any LambdaRuntimeClient
    public let logger: Logger
    private let handler: LambdaHandler

    public init(client: any LambdaRuntimeClient, logger: Logger, handler: @escaping LambdaHandler) {
        self.client = client
        self.logger = logger
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
            await handle(invocation)
        }
    }

    func handle(_ invocation: LambdaInvocation) async {
        var logger = self.logger
        logger[metadataKey: "aws_request_id"] = .string(invocation.requestID)
        if let trace = invocation.traceID {
            logger[metadataKey: "trace_id"] = .string(trace)
            // Lambda's contract: the trace header of the current invocation is in the environment.
            setenv("_X_AMZN_TRACE_ID", trace, 1)
        } else {
            unsetenv("_X_AMZN_TRACE_ID")
        }
        do {
            let invocationLogger = logger
            let response = try await withDeadline(invocation.deadline) { try await handler(invocation, invocationLogger) }
            try await client.sendResponse(requestID: invocation.requestID, body: response)
        } catch {
            let report = Self.report(error)
            logger.error("invocation failed", metadata: ["error_type": .string(report.errorType), "error": .string(report.errorMessage)])
            do {
                try await client.sendError(requestID: invocation.requestID, error: report)
            } catch {
                logger.error("could not report the failure to the Runtime API", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Runs `body`, giving up shortly before the deadline so the error can still be reported
    /// (Lambda stops the sandbox at the deadline itself).
    func withDeadline(_ deadline: Date, _ body: @escaping @Sendable () async throws -> [UInt8]) async throws -> [UInt8] {
        let remaining = deadline.timeIntervalSinceNow - 0.05
        guard remaining > 0 else { throw DeadlineExceeded(deadline: deadline) }
        return try await withThrowingTaskGroup(of: [UInt8].self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: .milliseconds(Int64(remaining * 1000)))
                throw DeadlineExceeded(deadline: deadline)
            }
            defer { group.cancelAll() }
            return try await group.next()!
        }
    }

    /// The invocation ran out of time.
    struct DeadlineExceeded: Error, CustomStringConvertible {
        let deadline: Date
        var description: String { "the invocation's deadline (\(deadline)) has passed" }
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
            logger.error("could not report the initialisation failure", metadata: ["error": "\(error)"])
        }
    }
}
