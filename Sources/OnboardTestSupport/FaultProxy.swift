import Foundation

/// A fault-injecting proxy between a DynamoDB client and moto (`scripts/dynamodb_fault_proxy.py`),
/// on 127.0.0.1 and a free port, started by the tests as a child process (python3, standard
/// library only; tests using it need moto anyway: `.requires(.moto)`).
///
/// Unlike a proxy that answers faults itself, it can forward a write to moto and then lose the
/// answer (the write happened, the caller never hears), the fault that exposes retries of
/// conditional writes that do not recognise their own success.
public final class FaultProxy: Sendable {
    /// What the proxy does to the calls it sees.
    public enum Mode: Sendable, Equatable {
        /// Forward every call and return every answer.
        case forward
        /// Forward one write in `every` (PutItem, DeleteItem, UpdateItem, TransactWriteItems,
        /// BatchWriteItem), drawn at random from a seeded generator, then reset the connection
        /// without an answer. (Drawn, not counted: a strict every-Nth can starve one caller
        /// whose resends keep landing on the Nth slot.)
        case dropAnswer(every: Int)
        /// Forward one write in `every`, drawn at random, then answer `500 InternalServerError` instead.
        case failAnswer(every: Int)
        /// Answer a share of all calls `400 ProvisionedThroughputExceededException` or
        /// `ThrottlingException` without forwarding them.
        case throttle(rate: Double)
    }

    /// What a one-shot fault does to the answer of the call it hits.
    public enum OneShot: String, Sendable {
        case drop
        case fail
    }

    /// The proxy's counters, in total and per operation (`PutItem`, `TransactWriteItems`, …).
    public struct Stats: Sendable, Decodable {
        public struct Counters: Sendable, Decodable {
            public var calls: Int
            public var forwarded: Int
            public var dropped: Int
            public var failed: Int
            public var throttled: Int
        }
        public var calls: Int
        public var forwarded: Int
        public var dropped: Int
        public var failed: Int
        public var throttled: Int
        public var byTarget: [String: Counters]

        /// The counters of one operation (zero when it was never called).
        public func target(_ name: String) -> Counters {
            byTarget[name] ?? Counters(calls: 0, forwarded: 0, dropped: 0, failed: 0, throttled: 0)
        }
    }

    /// The port the proxy listens on.
    public var port: Int { server.port }
    /// The proxy's URL, to use as the DynamoDB endpoint.
    public var endpoint: String { server.endpoint }
    private let server: ScriptServer

    /// Starts a proxy in front of `upstream` (moto's endpoint), forwarding everything at first.
    /// - Throws: ``UnavailableInThisEnvironment`` when python3 or the script is missing, or the
    ///   proxy does not start.
    public static func start(upstream: String) async throws -> FaultProxy {
        FaultProxy(server: try await ScriptServer.start(script: "dynamodb_fault_proxy.py", arguments: [upstream], within: .seconds(15)))
    }

    private init(server: ScriptServer) {
        self.server = server
    }

    /// Stops the proxy.
    public func stop() {
        server.stop()
    }

    /// Sets the mode; the write count for "every N-th write" starts again from zero.
    /// - Parameter seed: seeds the choice of throttled calls, so a run can be repeated.
    public func setMode(_ mode: Mode, seed: Int = 1) throws {
        let settings: String
        switch mode {
        case .forward: settings = #"{"mode": "forward"}"#
        case .dropAnswer(let every): settings = #"{"mode": "drop", "every": \#(every)}"#
        case .failAnswer(let every): settings = #"{"mode": "fail", "every": \#(every)}"#
        case .throttle(let rate): settings = #"{"mode": "throttle", "rate": \#(rate), "seed": \#(seed)}"#
        }
        _ = try control("POST", "/_proxy/mode", body: settings)
    }

    /// Arms a one-shot fault: the next call to `target` (an operation name such as `DeleteItem`)
    /// is forwarded, then its answer is dropped or replaced by a 500, whatever the mode.
    public func failNext(_ target: String, _ fault: OneShot = .drop) throws {
        _ = try control("POST", "/_proxy/once", body: #"{"target": "\#(target)", "action": "\#(fault.rawValue)"}"#)
    }

    /// The counters so far.
    public func stats() throws -> Stats {
        try JSONDecoder().decode(Stats.self, from: Data(control("GET", "/_proxy/stats", body: nil)))
    }

    /// Sets every counter to zero (the mode stays).
    public func resetStats() throws {
        _ = try control("POST", "/_proxy/reset", body: "{}")
    }

    /// One request to the proxy's admin path on a connection of its own (`Connection: close`);
    /// returns the body of a `200` answer.
    private func control(_ method: String, _ path: String, body: String?) throws -> [UInt8] {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw FaultProxyError(message: "socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw FaultProxyError(message: "cannot connect to the fault proxy on port \(port)") }
        let payload = Array((body ?? "").utf8)
        var request = Array("\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nConnection: close\r\n".utf8)
        request += Array("Content-Type: application/json\r\nContent-Length: \(payload.count)\r\n\r\n".utf8) + payload
        var sent = 0
        while sent < request.count {
            let written = request[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
            guard written > 0 else { throw FaultProxyError(message: "cannot write to the fault proxy") }
            sent += written
        }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { break }
            answer += buffer[..<count]
        }
        let separator = Array("\r\n\r\n".utf8)
        guard let split = (0..<max(0, answer.count - 3)).first(where: { Array(answer[$0..<$0 + 4]) == separator }) else {
            throw FaultProxyError(message: "the fault proxy sent no HTTP answer")
        }
        let statusLine = String(decoding: answer[..<split], as: UTF8.self).split(separator: "\r\n").first ?? ""
        let content = Array(answer[(split + 4)...])
        guard statusLine.split(separator: " ").dropFirst().first == "200" else {
            throw FaultProxyError(message: "the fault proxy answered \(statusLine): \(String(decoding: content, as: UTF8.self))")
        }
        return content
    }
}

/// The fault proxy refused a control request or could not be reached.
public struct FaultProxyError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}
