import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import WireFormat

/// The Lambda Runtime API's paths and headers, in one place.
public enum LambdaConsts {
    public static let apiVersion = "2018-06-01"
    public static let nextInvocation = "/\(apiVersion)/runtime/invocation/next"
    public static func response(_ requestID: String) -> String { "/\(apiVersion)/runtime/invocation/\(requestID)/response" }
    public static func error(_ requestID: String) -> String { "/\(apiVersion)/runtime/invocation/\(requestID)/error" }
    public static let initError = "/\(apiVersion)/runtime/init/error"
}

/// The headers the Runtime API sends with an invocation, and the one a runtime sends with errors.
public enum AmazonHeaders {
    public static let requestID = "Lambda-Runtime-Aws-Request-Id"
    public static let deadline = "Lambda-Runtime-Deadline-Ms"
    public static let invokedFunctionARN = "Lambda-Runtime-Invoked-Function-Arn"
    public static let traceID = "Lambda-Runtime-Trace-Id"
    public static let functionErrorType = "Lambda-Runtime-Function-Error-Type"
}

/// One invocation: what the Runtime API handed over.
public struct LambdaInvocation: Sendable {
    public let requestID: String
    /// When Lambda will stop the function (from `Lambda-Runtime-Deadline-Ms`).
    public let deadline: Date
    public let invokedFunctionARN: String
    /// The X-Ray trace header (`Root=…;Parent=…;Sampled=…`). Passed down with the invocation
    /// (the API Gateway adapter puts it in the request as `X-Amzn-Trace-Id`), never put in the
    /// process environment: that would be one value shared by every task.
    public let traceID: String?
    public let payload: [UInt8]

    public init(requestID: String, deadline: Date, invokedFunctionARN: String, traceID: String?, payload: [UInt8]) {
        self.requestID = requestID
        self.deadline = deadline
        self.invokedFunctionARN = invokedFunctionARN
        self.traceID = traceID
        self.payload = payload
    }
}

/// What the loop needs of the Runtime API, behind a protocol so tests can drive the loop.
public protocol LambdaRuntimeClient: Sendable {
    func nextInvocation() async throws -> LambdaInvocation
    func sendResponse(requestID: String, body: [UInt8]) async throws
    func sendError(requestID: String, error: LambdaErrorReport) async throws
    func sendInitError(_ error: LambdaErrorReport) async throws
}

/// The body of an error report: `{"errorType": …, "errorMessage": …}`.
public struct LambdaErrorReport: Sendable, Encodable {
    public let errorType: String
    public let errorMessage: String

    public init(errorType: String, errorMessage: String) {
        self.errorType = errorType
        self.errorMessage = errorMessage
    }

    /// The report as the Runtime API takes it (written by WireFormat's ``JSONWriter``).
    public var jsonBytes: [UInt8] {
        var writer = JSONWriter(reservingCapacity: 64 + errorMessage.utf8.count)
        writer.beginObject()
        writer.field("errorType", errorType)
        writer.field("errorMessage", errorMessage)
        writer.endObject()
        return writer.bytes
    }
}

/// A runtime failure. A struct with a code, so new codes do not break callers.
public struct LambdaRuntimeError: Error, Sendable, CustomStringConvertible {
    public struct Code: RawRepresentable, Sendable, Hashable {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        /// `AWS_LAMBDA_RUNTIME_API` is missing or not `host:port`.
        public static let noRuntimeAPI = Code(rawValue: "NoRuntimeAPI")
        /// The Runtime API answered with a status the runtime cannot continue from (5xx).
        public static let unexpectedStatus = Code(rawValue: "UnexpectedStatus")
        /// The Runtime API refused a post (4xx): a response over the payload limit (413), an
        /// invocation already answered or timed out (400), a malformed request.
        public static let rejected = Code(rawValue: "Rejected")
        /// An invocation without its request id header.
        public static let missingRequestID = Code(rawValue: "MissingRequestID")
    }

    public let code: Code
    public let message: String
    /// The error underneath, if any.
    public let underlying: (any Error)?
    /// The Runtime API's status code, when it answered with one the runtime did not expect.
    public let status: Int?
    /// The start of the Runtime API's answer to a refused post (its `errorType`/`errorMessage`).
    public let body: String?

    public init(_ code: Code, _ message: String, underlying: (any Error)? = nil, status: Int? = nil, body: String? = nil) {
        self.code = code
        self.message = message
        self.underlying = underlying
        self.status = status
        self.body = body
    }

    public var description: String { "\(code.rawValue): \(message)" }
}

/// The Runtime API over HTTP, on one kept-alive connection (async-http-client, one connection
/// per host), as the API expects of a runtime.
public final class HTTPLambdaRuntimeClient: LambdaRuntimeClient {
    private let base: String
    private let httpClient: HTTPClient

    /// - Parameter runtimeAPI: `AWS_LAMBDA_RUNTIME_API`, `host:port`.
    public init(runtimeAPI: String) throws {
        guard !runtimeAPI.isEmpty, !runtimeAPI.contains("/"), runtimeAPI.contains(":") else {
            throw LambdaRuntimeError(.noRuntimeAPI, "AWS_LAMBDA_RUNTIME_API must be host:port, not '\(runtimeAPI)'")
        }
        self.base = "http://\(runtimeAPI)"
        // No read timeout: `next` blocks until an invocation arrives, which may take minutes.
        self.httpClient = HTTPClient(
            eventLoopGroupProvider: .singleton,
            configuration: .init(timeout: .init(connect: .seconds(5)), connectionPool: .init(idleTimeout: .hours(24), concurrentHTTP1ConnectionsPerHostSoftLimit: 1))
        )
    }

    public func shutdown() async throws {
        try await httpClient.shutdown()
    }

    public func nextInvocation() async throws -> LambdaInvocation {
        let response = try await httpClient.execute(HTTPClientRequest(url: base + LambdaConsts.nextInvocation), timeout: .hours(24))
        let body = try await response.body.collect(upTo: 6 * 1024 * 1024 + 1024)
        guard response.status == .ok else {
            throw LambdaRuntimeError(.unexpectedStatus, "GET next answered \(response.status.code)")
        }
        guard let requestID = response.headers.first(name: AmazonHeaders.requestID), !requestID.isEmpty else {
            throw LambdaRuntimeError(.missingRequestID, "an invocation without \(AmazonHeaders.requestID)")
        }
        let deadlineMilliseconds = response.headers.first(name: AmazonHeaders.deadline).flatMap(Double.init) ?? (Date().timeIntervalSince1970 + 900) * 1000
        return LambdaInvocation(
            requestID: requestID,
            deadline: Date(timeIntervalSince1970: deadlineMilliseconds / 1000),
            invokedFunctionARN: response.headers.first(name: AmazonHeaders.invokedFunctionARN) ?? "",
            traceID: response.headers.first(name: AmazonHeaders.traceID),
            payload: Array(body.readableBytesView)
        )
    }

    public func sendResponse(requestID: String, body: [UInt8]) async throws {
        try await post(LambdaConsts.response(requestID), body: body, errorType: nil)
    }

    public func sendError(requestID: String, error: LambdaErrorReport) async throws {
        try await post(LambdaConsts.error(requestID), body: error.jsonBytes, errorType: error.errorType)
    }

    public func sendInitError(_ error: LambdaErrorReport) async throws {
        try await post(LambdaConsts.initError, body: error.jsonBytes, errorType: error.errorType)
    }

    private func post(_ path: String, body: [UInt8], errorType: String?) async throws {
        var request = HTTPClientRequest(url: base + path)
        request.method = .POST
        request.body = .bytes(ByteBuffer(bytes: body))
        if let errorType {
            request.headers.add(name: AmazonHeaders.functionErrorType, value: errorType)
            request.headers.add(name: "Content-Type", value: "application/json")
        }
        let response = try await httpClient.execute(request, timeout: .seconds(30))
        let answer = try await response.body.collect(upTo: 1 << 20)
        // 202: accepted. Anything else is thrown with its status and body, for the loop to log:
        // a 4xx means this invocation cannot be answered so (too late, too large), a 5xx that
        // the Runtime API itself is in trouble.
        let status = Int(response.status.code)
        guard (200..<300).contains(status) else {
            throw LambdaRuntimeError(
                status < 500 ? .rejected : .unexpectedStatus, "POST \(path) answered \(status)",
                status: status, body: String(String(decoding: answer.readableBytesView, as: UTF8.self).prefix(1024))
            )
        }
    }
}
