import Foundation
import LambdaRuntime
import Logging
import RequestBudget
import Synchronization
import Testing

/// A Runtime API client that hands out queued invocations and records what the loop posts, and
/// in which order (`timeline`: `next`, `response <id>`, `error <id>`, and what tests add).
final class RecordingRuntimeClient: LambdaRuntimeClient {
    struct Recorded: Sendable {
        var queue: [LambdaInvocation]
        var responses: [(String, [UInt8])] = []
        var errors: [(String, LambdaErrorReport)] = []
        var initErrors: [LambdaErrorReport] = []
        var timeline: [String] = []
    }

    let recorded: Mutex<Recorded>

    init(_ invocations: [LambdaInvocation]) {
        recorded = Mutex(Recorded(queue: invocations))
    }

    func note(_ event: String) { recorded.withLock { $0.timeline.append(event) } }

    func nextInvocation() async throws -> LambdaInvocation {
        try recorded.withLock { recorded in
            guard !recorded.queue.isEmpty else { throw CancellationError() }
            recorded.timeline.append("next")
            return recorded.queue.removeFirst()
        }
    }

    func sendResponse(requestID: String, body: [UInt8]) async throws {
        recorded.withLock {
            $0.responses.append((requestID, body))
            $0.timeline.append("response \(requestID)")
        }
    }

    func sendError(requestID: String, error: LambdaErrorReport) async throws {
        recorded.withLock {
            $0.errors.append((requestID, error))
            $0.timeline.append("error \(requestID)")
        }
    }

    func sendInitError(_ error: LambdaErrorReport) async throws { recorded.withLock { $0.initErrors.append(error) } }
}

struct HandlerFailure: Error, CustomStringConvertible {
    var description: String { "the handler failed on purpose" }
}

/// Waits without ever looking at cancellation, as a handler stuck in a blocking call does.
func sleepIgnoringCancellation(seconds: Double) async {
    await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
        DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { continuation.resume() }
    }
}

/// A log handler that keeps every record, for tests that check what was logged.
struct RecordingLogHandler: LogHandler {
    struct Record: Sendable {
        let level: Logger.Level
        let message: String
        let metadata: [String: String]
    }

    final class Records: Sendable {
        let all = Mutex<[Record]>([])
    }

    let records: Records
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        records.all.withLock { $0.append(Record(level: event.level, message: event.message.description, metadata: merged.mapValues(\.description))) }
    }

    /// A logger whose records land in the returned store.
    static func logger() -> (Logger, Records) {
        let records = Records()
        return (Logger(label: "test") { _ in RecordingLogHandler(records: records) }, records)
    }
}

@Suite("The runtime loop")
struct LambdaRuntimeLoopTests {
    func invocation(_ id: String, payload: String, deadline: TimeInterval = 300, trace: String? = nil) -> LambdaInvocation {
        LambdaInvocation(requestID: id, deadline: Date() + deadline, invokedFunctionARN: "arn", traceID: trace, payload: Array(payload.utf8))
    }

    @Test("responses are posted; a failing invocation is reported to /error and the loop goes on")
    func keepsServing() async throws {
        let client = RecordingRuntimeClient([
            invocation("1", payload: "ok"), invocation("2", payload: "fail"), invocation("3", payload: "ok", trace: "Root=1-abc"),
        ])
        let loop = LambdaRuntimeLoop(client: client, logger: Logger(label: "test")) { invocation, _ in
            if invocation.payload == Array("fail".utf8) { throw HandlerFailure() }
            return Array("done \(invocation.requestID)".utf8)
        }
        try await loop.run(maxInvocations: 3)
        let recorded = client.recorded.withLock { $0 }
        #expect(recorded.responses.map(\.0) == ["1", "3"])
        #expect(recorded.responses.map { String(decoding: $0.1, as: UTF8.self) } == ["done 1", "done 3"])
        #expect(recorded.errors.map(\.0) == ["2"])
        #expect(recorded.errors.first?.1.errorType == "HandlerFailure")
        #expect(recorded.errors.first?.1.errorMessage == "the handler failed on purpose")
    }

    @Test("the trace header reaches the handler with its invocation and in its log metadata, never through the environment")
    func traceID() async throws {
        unsetenv("_X_AMZN_TRACE_ID")
        let client = RecordingRuntimeClient([invocation("1", payload: "a", trace: "Root=1-abc"), invocation("2", payload: "b", trace: "Root=1-def")])
        let seen = Mutex<[String]>([])
        let loop = LambdaRuntimeLoop(client: client, logger: Logger(label: "test")) { invocation, logger in
            seen.withLock { $0.append("\(invocation.traceID ?? "-") \(logger[metadataKey: "trace_id"]?.description ?? "-")") }
            return []
        }
        try await loop.run(maxInvocations: 2)
        #expect(seen.withLock { $0 } == ["Root=1-abc Root=1-abc", "Root=1-def Root=1-def"])
        #expect(ProcessInfo.processInfo.environment["_X_AMZN_TRACE_ID"] == nil, "the process environment is left alone")
    }

    @Test("a handler that honours cancellation is stopped at the deadline and reported")
    func deadline() async throws {
        let client = RecordingRuntimeClient([invocation("slow", payload: "x", deadline: 0.3), invocation("late", payload: "x", deadline: -1)])
        let loop = LambdaRuntimeLoop(client: client, logger: Logger(label: "test")) { _, _ in
            try await Task.sleep(for: .seconds(30))
            return []
        }
        try await loop.run(maxInvocations: 2)
        let errors = client.recorded.withLock { $0.errors }
        #expect(errors.map(\.0) == ["slow", "late"])
        #expect(errors.allSatisfy { $0.1.errorType == "DeadlineExceeded" })
    }

    @Test("a handler that ignores cancellation cannot hold up the answer: the timeout is reported and the next invocation served while it still runs")
    func handlerIgnoringCancellation() async throws {
        let client = RecordingRuntimeClient([invocation("stuck", payload: "stuck", deadline: 0.5), invocation("next", payload: "ok")])
        let stuckFinished = Atomic(false)
        let (logger, logs) = RecordingLogHandler.logger()
        let loop = LambdaRuntimeLoop(client: client, logger: logger) { invocation, _ in
            if invocation.requestID == "stuck" {
                await sleepIgnoringCancellation(seconds: 120)
                stuckFinished.store(true, ordering: .relaxed)
            }
            return Array("done \(invocation.requestID)".utf8)
        }
        try await loop.run(maxInvocations: 2)
        let finishedBeforeTheAnswers = stuckFinished.load(ordering: .relaxed)
        #expect(!finishedBeforeTheAnswers, "the loop answered both invocations while the stuck handler still ran")
        let recorded = client.recorded.withLock { $0 }
        #expect(recorded.timeline == ["next", "error stuck", "next", "response next"])
        #expect(recorded.errors.first?.1.errorType == "DeadlineExceeded")
        #expect(logs.all.withLock { $0 }.contains { $0.level == .error && $0.message.hasPrefix("invocation timed out") && $0.metadata["aws_request_id"] == "stuck" })
    }

    @Test("with a timeout response, a stuck invocation is answered with it instead of an error")
    func timeoutResponse() async throws {
        let client = RecordingRuntimeClient([invocation("stuck", payload: "stuck", deadline: 0.5)])
        let loop = LambdaRuntimeLoop(
            client: client, logger: Logger(label: "test"), timeoutResponse: { Array("503 for \($0.requestID)".utf8) }
        ) { _, _ in
            await sleepIgnoringCancellation(seconds: 20)
            return []
        }
        try await loop.run(maxInvocations: 1)
        let recorded = client.recorded.withLock { $0 }
        #expect(recorded.errors.isEmpty)
        #expect(recorded.responses.map { String(decoding: $0.1, as: UTF8.self) } == ["503 for stuck"])
    }

    @Test("each invocation runs with a retry budget ending before its deadline, shared by the tasks under it")
    func retryBudget() async throws {
        // Deadlines far enough away that a busy test process still runs both handlers first.
        let client = RecordingRuntimeClient([invocation("1", payload: "a", deadline: 300), invocation("2", payload: "b", deadline: 600)])
        let seen = Mutex<[(ContinuousClock.Instant, Bool)]>([])
        let loop = LambdaRuntimeLoop(client: client, logger: Logger(label: "test")) { invocation, _ in
            let budget = try #require(RetryBudget.current)
            // A child task sees the same budget (retries under it count against one total).
            let shared = await Task { RetryBudget.current === budget }.value
            seen.withLock { $0.append((budget.deadline, shared)) }
            return []
        }
        let start = ContinuousClock.now
        try await loop.run(maxInvocations: 2)
        let budgets = seen.withLock { $0 }
        try #require(budgets.count == 2)
        // Deadlines 300 s and 600 s after the invocations were made (just before `start`), less
        // the 300 ms margin (give or take the time the test took to get here, and the
        // millisecond the wall clock's deadline is rounded to).
        #expect(budgets[0].0 <= start + .seconds(300) - LambdaRuntimeLoop.budgetMargin + .milliseconds(2))
        #expect(budgets[0].0 > start + .seconds(240))
        #expect(budgets[1].0 > budgets[0].0 + .seconds(240), "each invocation has its own budget")
        #expect(budgets.allSatisfy { $0.1 }, "a child task of the handler shares its budget")
        #expect(RetryBudget.current == nil, "the budget is bound to the invocation only")
    }

    @Test("betweenInvocations runs after the response is posted and before the next invocation is asked for")
    func betweenInvocations() async throws {
        let client = RecordingRuntimeClient([invocation("1", payload: "a"), invocation("2", payload: "fail")])
        let loop = LambdaRuntimeLoop(
            client: client, logger: Logger(label: "test"),
            betweenInvocations: { client.note(RetryBudget.current == nil ? "hook without budget" : "hook") }
        ) { invocation, _ in
            if invocation.payload == Array("fail".utf8) { throw HandlerFailure() }
            return []
        }
        try await loop.run(maxInvocations: 2)
        #expect(client.recorded.withLock { $0.timeline } == ["next", "response 1", "hook", "next", "error 2", "hook"])
    }

    @Test("a start-up failure goes to /runtime/init/error")
    func initError() async {
        let client = RecordingRuntimeClient([])
        await LambdaRuntimeLoop.reportInitError(HandlerFailure(), client: client, logger: Logger(label: "test"))
        #expect(client.recorded.withLock { $0.initErrors }.map(\.errorType) == ["HandlerFailure"])
    }

    @Test("AWS_LAMBDA_RUNTIME_API must be host:port")
    func runtimeAPIAddress() {
        #expect(throws: LambdaRuntimeError.self) { try HTTPLambdaRuntimeClient(runtimeAPI: "") }
        #expect(throws: LambdaRuntimeError.self) { try HTTPLambdaRuntimeClient(runtimeAPI: "http://x/") }
    }
}
