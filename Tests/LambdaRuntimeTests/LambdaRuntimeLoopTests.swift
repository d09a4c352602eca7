import Foundation
import LambdaRuntime
import Logging
import Synchronization
import Testing

/// A Runtime API client that hands out queued invocations and records what the loop posts.
final class RecordingRuntimeClient: LambdaRuntimeClient {
    struct Recorded: Sendable {
        var queue: [LambdaInvocation]
        var responses: [(String, [UInt8])] = []
        var errors: [(String, LambdaErrorReport)] = []
        var initErrors: [LambdaErrorReport] = []
    }

    let recorded: Mutex<Recorded>

    init(_ invocations: [LambdaInvocation]) {
        recorded = Mutex(Recorded(queue: invocations))
    }

    func nextInvocation() async throws -> LambdaInvocation {
        try recorded.withLock { recorded in
            guard !recorded.queue.isEmpty else { throw CancellationError() }
            return recorded.queue.removeFirst()
        }
    }

    func sendResponse(requestID: String, body: [UInt8]) async throws { recorded.withLock { $0.responses.append((requestID, body)) } }
    func sendError(requestID: String, error: LambdaErrorReport) async throws { recorded.withLock { $0.errors.append((requestID, error)) } }
    func sendInitError(_ error: LambdaErrorReport) async throws { recorded.withLock { $0.initErrors.append(error) } }
}

struct HandlerFailure: Error, CustomStringConvertible {
    var description: String { "the handler failed on purpose" }
}

@Suite("The runtime loop", .serialized)  // the loop sets the process-wide _X_AMZN_TRACE_ID
struct LambdaRuntimeLoopTests {
    func invocation(_ id: String, payload: String, deadline: TimeInterval = 30, trace: String? = nil) -> LambdaInvocation {
        LambdaInvocation(requestID: id, deadline: Date() + deadline, invokedFunctionARN: "arn", traceID: trace, payload: Array(payload.utf8))
    }

    @Test("responses are posted; a failing invocation is reported to /error and the loop goes on")
    func keepsServing() async throws {
        let client = RecordingRuntimeClient([
            invocation("1", payload: "ok"), invocation("2", payload: "fail"), invocation("3", payload: "ok", trace: "Root=1-abc"),
        ])
        let traces = Mutex<[String?]>([])
        let loop = LambdaRuntimeLoop(client: client, logger: Logger(label: "test")) { invocation, _ in
            traces.withLock { $0.append(ProcessInfo.processInfo.environment["_X_AMZN_TRACE_ID"]) }
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
        #expect(traces.withLock { $0 }.last == "Root=1-abc", "the trace header is in _X_AMZN_TRACE_ID while the invocation runs")
    }

    @Test("an invocation that outlives its deadline is reported before Lambda stops the sandbox")
    func deadline() async throws {
        let client = RecordingRuntimeClient([invocation("slow", payload: "x", deadline: 0.3), invocation("late", payload: "x", deadline: -1)])
        let loop = LambdaRuntimeLoop(client: client, logger: Logger(label: "test")) { _, _ in
            try await Task.sleep(for: .seconds(5))
            return []
        }
        let start = ContinuousClock.now
        try await loop.run(maxInvocations: 2)
        #expect(ContinuousClock.now - start < .seconds(3))
        let errors = client.recorded.withLock { $0.errors }
        #expect(errors.map(\.0) == ["slow", "late"])
        #expect(errors.allSatisfy { $0.1.errorType == "DeadlineExceeded" })
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
