import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Synchronization
import WireFormat

/// What an API Gateway event says besides the HTTP request itself.
public struct APIGatewayRequestInfo: Sendable {
    public enum Version: String, Sendable {
        /// REST API proxy integration (payload format 1.0).
        case v1 = "1.0"
        /// HTTP API (payload format 2.0).
        case v2 = "2.0"
    }

    public let version: Version
    /// The stage (`Prod`), whose prefix is taken off the path.
    public let stage: String?
    /// API Gateway's request id.
    public let requestID: String?
    /// Claims of a Cognito/JWT authorizer that already verified the caller (empty without one),
    /// every value but a JSON array as API Gateway passed it: a REST API Cognito authorizer (1.0)
    /// passes each claim as a string, a list comma-joined (`a,b`); an HTTP API JWT authorizer
    /// (2.0) passes a list as `[a b]`.
    public let claims: [String: String]
    /// Claims that arrived as JSON arrays (a REST API JWT authorizer passes each claim with its
    /// JSON type): their string elements, exactly. Such a claim is not in ``claims``.
    public var claimLists: [String: [String]] = [:]
    /// The caller's address as API Gateway saw it (`requestContext.identity.sourceIp` in 1.0,
    /// `requestContext.http.sourceIp` in 2.0); clients cannot set it.
    public var sourceIP: String? = nil
}

/// Turns API Gateway proxy events into requests for a Hummingbird responder (the same router
/// the HTTP server runs) and its responses back into proxy responses. REST API (1.0) and HTTP
/// API (2.0) events are told apart by their `version`.
public struct APIGatewayAdapter<Responder: HTTPResponder>: Sendable where Responder.Context: RequestContext {
    public typealias ContextFactory = @Sendable (APIGatewayRequestInfo, Logger) -> Responder.Context

    private let responder: Responder
    private let makeContext: ContextFactory

    public init(responder: Responder, makeContext: @escaping ContextFactory) {
        self.responder = responder
        self.makeContext = makeContext
    }

    /// The Lambda handler: event JSON in, proxy response JSON out.
    /// - Throws: ``APIGatewayEventError`` for an event that is not an API Gateway proxy event
    ///   (the runtime loop reports it to `/error`).
    public func handle(_ invocation: LambdaInvocation, logger: Logger) async throws -> [UInt8] {
        let (request, info) = try Self.request(from: invocation.payload, traceID: invocation.traceID)
        var logger = logger
        if let requestID = info.requestID { logger[metadataKey: "hb.request.id"] = .string(requestID) }
        let response: Response
        do {
            response = try await responder.respond(to: request, context: makeContext(info, logger))
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: makeContext(info, logger))
        }
        return try await Self.proxyResponse(response, version: info.version)
    }

    /// The proxy response to post for an invocation whose handler ran out of time (the runtime
    /// loop's ``LambdaTimeoutResponse``): `makeResponse`'s answer to the event's request, in the
    /// event's format; `nil` for an event that is not an API Gateway proxy event.
    public func timeoutResponse(
        for invocation: LambdaInvocation, _ makeResponse: @Sendable (Request, APIGatewayRequestInfo) -> Response
    ) async -> [UInt8]? {
        guard let event = try? Self.request(from: invocation.payload, traceID: invocation.traceID) else { return nil }
        return try? await Self.proxyResponse(makeResponse(event.0, event.1), version: event.1.version)
    }

    // MARK: - Events

    /// The request an event stands for. `traceID`, the invocation's trace header, replaces the
    /// event's `X-Amzn-Trace-Id` (Lambda's header names the function's own segment).
    static func request(from payload: [UInt8], traceID: String? = nil) throws -> (Request, APIGatewayRequestInfo) {
        guard let event = (try? JSONSerialization.jsonObject(with: Data(payload))) as? [String: Any] else {
            throw APIGatewayEventError("the event is not a JSON object")
        }
        let context = event["requestContext"] as? [String: Any] ?? [:]
        let stage = context["stage"] as? String
        let requestID = context["requestId"] as? String
        if event["version"] as? String == "2.0" {
            guard let http = context["http"] as? [String: Any], let method = http["method"] as? String,
                let rawPath = event["rawPath"] as? String
            else {
                throw APIGatewayEventError("an HTTP API (2.0) event without requestContext.http.method or rawPath")
            }
            var headers = HTTPFields()
            for (name, value) in event["headers"] as? [String: String] ?? [:] {
                if let field = HTTPField.Name(name) { headers.append(HTTPField(name: field, value: value)) }
            }
            if let cookies = event["cookies"] as? [String], !cookies.isEmpty {
                headers[.cookie] = cookies.joined(separator: "; ")
            }
            let query = (event["rawQueryString"] as? String).flatMap { $0.isEmpty ? nil : $0 }
            let jwt = (context["authorizer"] as? [String: Any])?["jwt"] as? [String: Any]
            let claims = claimValues(jwt?["claims"])
            let info = APIGatewayRequestInfo(
                version: .v2, stage: stage, requestID: requestID, claims: claims.strings, claimLists: claims.lists, sourceIP: http["sourceIp"] as? String
            )
            return (try makeRequest(method: method, path: strip(stage: stage, from: rawPath), query: query, headers: headers, traceID: traceID, event: event), info)
        }
        guard let method = event["httpMethod"] as? String, let path = event["path"] as? String else {
            throw APIGatewayEventError("not an API Gateway proxy event (no httpMethod and path, no version 2.0)")
        }
        var headers = HTTPFields()
        if let multiValue = event["multiValueHeaders"] as? [String: [String]] {
            for (name, values) in multiValue {
                guard let field = HTTPField.Name(name) else { continue }
                for value in values { headers.append(HTTPField(name: field, value: value)) }
            }
        } else {
            for (name, value) in event["headers"] as? [String: String] ?? [:] {
                if let field = HTTPField.Name(name) { headers.append(HTTPField(name: field, value: value)) }
            }
        }
        var queryItems: [(String, String)] = []
        if let multiValue = event["multiValueQueryStringParameters"] as? [String: [String]] {
            for (name, values) in multiValue.sorted(by: { $0.key < $1.key }) {
                for value in values { queryItems.append((name, value)) }
            }
        } else if let single = event["queryStringParameters"] as? [String: String] {
            queryItems = single.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        }
        let query = queryItems.isEmpty ? nil : queryItems.map { "\(percentEncode($0.0))=\(percentEncode($0.1))" }.joined(separator: "&")
        let authorizer = context["authorizer"] as? [String: Any]
        let claims = claimValues(authorizer?["claims"])
        let info = APIGatewayRequestInfo(
            version: .v1, stage: stage, requestID: requestID, claims: claims.strings, claimLists: claims.lists,
            sourceIP: (context["identity"] as? [String: Any])?["sourceIp"] as? String
        )
        return (try makeRequest(method: method, path: strip(stage: stage, from: path), query: query, headers: headers, traceID: traceID, event: event), info)
    }

    private static func makeRequest(
        method: String, path: String, query: String?, headers: HTTPFields, traceID: String?, event: [String: Any]
    ) throws -> Request {
        guard let method = HTTPRequest.Method(method) else { throw APIGatewayEventError("invalid HTTP method '\(method)'") }
        var body: [UInt8] = []
        if let text = event["body"] as? String {
            if event["isBase64Encoded"] as? Bool == true {
                guard let decoded = Base64.decode(text, alphabet: .standard) else { throw APIGatewayEventError("isBase64Encoded, but the body is not base64") }
                body = decoded
            } else {
                body = Array(text.utf8)
            }
        }
        var fields = headers
        if let traceID { fields[.xAmznTraceID] = traceID }
        if !body.isEmpty, fields[.contentLength] == nil { fields[.contentLength] = String(body.count) }
        let head = HTTPRequest(
            method: method, scheme: "https", authority: headers[HTTPField.Name("Host")!] ?? "lambda",
            path: (path.isEmpty ? "/" : path) + (query.map { "?\($0)" } ?? ""), headerFields: fields
        )
        return Request(head: head, body: RequestBody(buffer: ByteBuffer(bytes: body)))
    }

    /// `/Prod/onboard/` → `/onboard/` for stage `Prod` (REST API events usually come without it,
    /// HTTP API ones with it unless the stage is `$default`).
    static func strip(stage: String?, from path: String) -> String {
        guard let stage, !stage.isEmpty, stage != "$default" else { return path }
        let prefix = "/\(stage)"
        if path == prefix { return "/" }
        if path.hasPrefix(prefix + "/") { return String(path.dropFirst(prefix.count)) }
        return path
    }

    /// An authorizer's claims: strings (and other scalars, rendered) as passed, JSON arrays kept
    /// as lists of their string elements. A list is never joined into a string: a joined
    /// `["x,admin"]` would read as the groups `x` and `admin`.
    private static func claimValues(_ value: Any?) -> (strings: [String: String], lists: [String: [String]]) {
        guard let claims = value as? [String: Any] else { return ([:], [:]) }
        var strings: [String: String] = [:]
        var lists: [String: [String]] = [:]
        for (name, value) in claims {
            switch value {
            case let text as String: strings[name] = text
            case let list as [Any]: lists[name] = list.compactMap { $0 as? String }
            case is NSNull: continue
            default: strings[name] = "\(value)"
            }
        }
        return (strings, lists)
    }

    private static func percentEncode(_ text: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
    }

    // MARK: - Responses

    static func proxyResponse(_ response: Response, version: APIGatewayRequestInfo.Version) async throws -> [UInt8] {
        let collected = CollectedBytes()
        try await response.body.write(CollectingBodyWriter(collected: collected))
        let bytes = collected.bytes.withLock { $0 }
        let contentType = response.headers[.contentType]?.lowercased() ?? ""
        let isText = bytes.isEmpty || contentType.hasPrefix("text/") || contentType.contains("json") || contentType.contains("yaml")
            || contentType.contains("xml")
        // WireFormat's JSONWriter, members in byte order (as JSONSerialization's .sortedKeys did).
        var writer = JSONWriter(reservingCapacity: bytes.count + 256)
        writer.beginObject()
        writer.field("body", isText ? String(decoding: bytes, as: UTF8.self) : Base64.encode(bytes))
        switch version {
        case .v1:
            var multiValue: [String: [String]] = [:]
            for field in response.headers { multiValue[field.name.rawName, default: []].append(field.value) }
            writer.key("headers")
            writeObject(multiValue.mapValues { $0.last ?? "" }, to: &writer)
            writer.field("isBase64Encoded", !isText)
            writer.key("multiValueHeaders")
            writer.beginObject()
            for (name, values) in multiValue.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) {
                writer.key(name)
                writer.beginArray()
                for value in values { writer.string(value) }
                writer.endArray()
            }
            writer.endObject()
        case .v2:
            var headers: [String: String] = [:]
            var cookies: [String] = []
            for field in response.headers {
                if field.name == .setCookie {
                    cookies.append(field.value)
                } else {
                    headers[field.name.rawName] = headers[field.name.rawName].map { "\($0),\(field.value)" } ?? field.value
                }
            }
            if !cookies.isEmpty {
                writer.key("cookies")
                writer.beginArray()
                for cookie in cookies { writer.string(cookie) }
                writer.endArray()
            }
            writer.key("headers")
            writeObject(headers, to: &writer)
            writer.field("isBase64Encoded", !isText)
        }
        writer.field("statusCode", Int(response.status.code))
        writer.endObject()
        return writer.bytes
    }

    /// An object of strings, members in byte order.
    private static func writeObject(_ members: [String: String], to writer: inout JSONWriter) {
        writer.beginObject()
        for (name, value) in members.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) {
            writer.key(name)
            writer.string(value)
        }
        writer.endObject()
    }
}

/// An event that is not an API Gateway proxy event (or a broken one).
public struct APIGatewayEventError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Where `CollectingBodyWriter` puts the bytes (the writer itself is consumed by `write`).
final class CollectedBytes: Sendable {
    let bytes = Mutex<[UInt8]>([])
}

/// Collects a response body in memory (API Gateway responses are at most 6 MB).
struct CollectingBodyWriter: ResponseBodyWriter {
    let collected: CollectedBytes

    mutating func write(_ buffer: ByteBuffer) async throws {
        collected.bytes.withLock { $0.append(contentsOf: buffer.readableBytesView) }
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
}

extension HTTPField.Name {
    /// The X-Ray trace header.
    static let xAmznTraceID = HTTPField.Name("X-Amzn-Trace-Id")!
}
