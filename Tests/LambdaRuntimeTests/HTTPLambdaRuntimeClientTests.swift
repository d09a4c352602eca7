import Foundation
import HTTPTypes
import Hummingbird
import LambdaRuntime
import Logging
import NIOCore
import Synchronization
import Testing
import ServiceLifecycle

/// A Runtime API on 127.0.0.1 that hands out one invocation and refuses its response with
/// `responseStatus`, as Lambda does with a response over 6 MB (413) or one posted too late (400).
final class RefusingRuntimeAPI: Sendable {
    struct Post: Sendable {
        let path: String
        let errorType: String?
        let body: String
    }

    let responseStatus: HTTPResponse.Status
    let responseAnswer: String
    let posts = Mutex<[Post]>([])

    init(responseStatus: HTTPResponse.Status, responseAnswer: String) {
        self.responseStatus = responseStatus
        self.responseAnswer = responseAnswer
    }

    /// Runs the API while `body` runs, passing it `host:port`.
    func serve(_ body: @Sendable (String) async throws -> Void) async throws {
        let router = Router()
        let prefix = "/2018-06-01/runtime/invocation"
        router.get("\(prefix)/next") { _, _ -> Response in
            let deadline = Int64((Date().timeIntervalSince1970 + 30) * 1000)
            return Response(
                status: .ok,
                headers: [
                    HTTPField.Name(AmazonHeaders.requestID)!: "too-big", HTTPField.Name(AmazonHeaders.deadline)!: String(deadline),
                    HTTPField.Name(AmazonHeaders.invokedFunctionARN)!: "arn:aws:lambda:us-east-1:123456789012:function:onboard",
                ],
                body: ResponseBody(byteBuffer: ByteBuffer(string: "{}"))
            )
        }
        let (status, answer) = (responseStatus, responseAnswer)
        router.post("\(prefix)/{id}/{kind}") { request, context -> Response in
            let bytes = try await request.body.collect(upTo: 1 << 24)
            let kind = context.parameters.get("kind") ?? ""
            self.posts.withLock {
                $0.append(Post(
                    path: "\(context.parameters.get("id") ?? "")/\(kind)", errorType: request.headers[HTTPField.Name(AmazonHeaders.functionErrorType)!],
                    body: String(buffer: bytes)
                ))
            }
            if kind == "response" { return Response(status: status, body: ResponseBody(byteBuffer: ByteBuffer(string: answer))) }
            return Response(status: .accepted, body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"status":"OK"}"#)))
        }
        let port = Mutex<Int?>(nil)
        let app = Application(
            router: router, configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in port.withLock { $0 = channel.localAddress?.port } }
        )
        try await withThrowingTaskGroup(of: Void.self) { group in
            // Stopped gracefully (see stopGracefully in LambdaEventsTests.swift): cancelling a
            // server while it listens can leave an accepted connection unserved, which NIO traps on.
            let services = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: app.logger))
            group.addTask { try await services.run() }
            var bound: Int?
            while bound == nil {
                try await Task.sleep(for: .milliseconds(10))
                bound = port.withLock { $0 }
            }
            do {
                try await body("127.0.0.1:\(bound!)")
            } catch {
                await stopGracefully(services, &group)
                throw error
            }
            await stopGracefully(services, &group)
        }
    }
}

@Suite("The Runtime API client over HTTP")
struct HTTPLambdaRuntimeClientTests {
    @Test("a response the Runtime API refuses (413) is logged at error level with its status and answer, and reported to /error", arguments: [
        (HTTPResponse.Status.contentTooLarge, #"{"errorMessage":"Exceeded maximum allowed payload size (6291556 bytes).","errorType":"RequestEntityTooLarge"}"#),
        (HTTPResponse.Status.badRequest, #"{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}"#),
    ])
    func refusedResponse(status: HTTPResponse.Status, answer: String) async throws {
        let api = RefusingRuntimeAPI(responseStatus: status, responseAnswer: answer)
        let (logger, logs) = RecordingLogHandler.logger()
        try await api.serve { address in
            let client = try HTTPLambdaRuntimeClient(runtimeAPI: address)
            let loop = LambdaRuntimeLoop(client: client, logger: logger) { _, _ in Array(repeating: UInt8(ascii: "x"), count: 1000) }
            try await loop.run(maxInvocations: 1)
            try await client.shutdown()
        }
        let refused = try #require(logs.all.withLock { $0 }.first { $0.message == "the Runtime API did not take the response" })
        #expect(refused.level == .error)
        #expect(refused.metadata["status"] == String(status.code))
        #expect(refused.metadata["body"] == answer)
        #expect(refused.metadata["aws_request_id"] == "too-big")
        let posts = api.posts.withLock { $0 }
        #expect(posts.map(\.path) == ["too-big/response", "too-big/error"], "the caller gets an error rather than waiting for the timeout")
        #expect(posts.last?.errorType == "Runtime.ResponseNotAccepted")
    }
}
