import AsyncHTTPClient
import Foundation
import HTTPTypes
import NIOCore
import Testing

/// One request of a batch sent by ``APIClient/sendConcurrently(_:port:connections:timeout:sourceLocation:)``.
struct ConcurrentRequest: Sendable {
    var method: HTTPRequest.Method
    var path: String
    var headers: HTTPFields = [:]
    var body: String?

    /// A request with `Authorization: Bearer <token>` (and `Content-Type: application/json` when there is a body).
    static func call(_ method: HTTPRequest.Method, _ path: String, token: String?, json: String? = nil, headers: HTTPFields = [:]) -> Self {
        var headers = headers
        if let token { headers[.authorization] = "Bearer \(token)" }
        if json != nil, headers[.contentType] == nil { headers[.contentType] = "application/json" }
        return Self(method: method, path: path, headers: headers, body: json)
    }
}

extension APIClient {
    /// Sends `requests` all at once, each on a connection of a pooled AsyncHTTPClient to
    /// 127.0.0.1:`port` (the fixture's port), and returns their answers in the order of `requests`,
    /// validated against openapi.yaml and recorded in the ``SecretLedger`` as `send`'s are.
    ///
    /// Tests of races must use this, not `send`/`call`: those go through HummingbirdTesting's
    /// client, one pipelined connection that Hummingbird serves one request after another, so
    /// their requests never overlap in the server however many tasks send them.
    func sendConcurrently(
        _ requests: [ConcurrentRequest], port: Int, connections: Int = 64, timeout: TimeAmount = .seconds(300),
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> [APIResponse] {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: connections)
        // Requests beyond the pool's connections wait for one; on a busy machine (CI runs every suite at
        // once on 2 cores) that wait can pass AsyncHTTPClient's default 10 s, which is not what is tested.
        configuration.timeout = .init(connect: .seconds(120), read: .seconds(300))
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        let answers: [APIResponse]
        do {
            answers = try await withThrowingTaskGroup(of: (Int, APIResponse).self) { group in
                for (index, request) in requests.enumerated() {
                    recordSent(request.headers)
                    group.addTask {
                        var outgoing = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(request.path)")
                        outgoing.method = .init(rawValue: request.method.rawValue)
                        for field in request.headers { outgoing.headers.add(name: field.name.rawName, value: field.value) }
                        if let body = request.body { outgoing.body = .bytes(ByteBuffer(string: body)) }
                        let response = try await client.execute(outgoing, timeout: timeout)
                        let body = try await response.body.collect(upTo: 1 << 20)
                        var headers = HTTPFields()
                        for (name, value) in response.headers {
                            if let name = HTTPField.Name(name) { headers.append(HTTPField(name: name, value: value)) }
                        }
                        return (index, APIResponse(status: Int(response.status.code), headers: headers, body: Array(body.readableBytesView)))
                    }
                }
                var answers = [APIResponse?](repeating: nil, count: requests.count)
                for try await (index, answer) in group { answers[index] = answer }
                return answers.compactMap { $0 }
            }
        } catch {
            try await client.shutdown()
            throw error
        }
        try await client.shutdown()
        for (request, answer) in zip(requests, answers) {
            checkReceived(request.method, request.path, answer, sourceLocation: sourceLocation)
        }
        return answers
    }
}
