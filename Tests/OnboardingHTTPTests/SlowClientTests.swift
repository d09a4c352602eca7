#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import InMemoryLogging
import Logging
import OnboardingApp
import OnboardingHTTP
import Synchronization
import Testing
import OnboardTestSupport

/// Slow and idle clients against the real server (`buildApplication`'s HTTP server on
/// 127.0.0.1, short configured timeouts), through raw sockets: a connection whose client is too
/// slow is closed, and everyone else is still answered. The bounds are generous (a loaded CI):
/// what is asserted is that a connection is closed, and by which timeout, never how fast.
@Suite("Slow clients: header, body and idle timeouts, connection cap", .serialized)
struct SlowClientTests {
    /// A head that never ends within the test's bound (no blank line), sent a byte at a time.
    static let endlessHead = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + String(repeating: "a", count: 200)

    @Test("The settings: defaults; flags and variables; values out of range refused, naming the flag or variable")
    func settings() throws {
        let defaults = try ServeConfiguration.resolve(flags: [:], environment: [:]).connectionLimits
        #expect(defaults.headerTimeout == .seconds(10) && defaults.bodyTimeout == .seconds(30) && defaults.idleTimeout == .seconds(75))
        #expect((16...4096).contains(defaults.maxConnections))
        let set = try ServeConfiguration.resolve(
            flags: ["header_timeout": "2s", "max_connections": "8"],
            environment: ["ONBOARD_BODY_TIMEOUT": "1500ms", "ONBOARD_IDLE_TIMEOUT": "3", "ONBOARD_HEADER_TIMEOUT": "7s"]
        ).connectionLimits
        #expect(set.headerTimeout == .seconds(2) && set.bodyTimeout == .milliseconds(1500) && set.idleTimeout == .seconds(3) && set.maxConnections == 8)
        for (flags, environment, named) in [
            (["idle_timeout": "50ms"], [:], "--idle-timeout"), (["header_timeout": "301s"], [:], "--header-timeout"),
            ([:], ["ONBOARD_BODY_TIMEOUT": "soon"], "ONBOARD_BODY_TIMEOUT"), ([:], ["ONBOARD_MAX_CONNECTIONS": "0"], "ONBOARD_MAX_CONNECTIONS"),
        ] as [([String: String], [String: String], String)] {
            #expect {
                _ = try ServeConfiguration.resolve(flags: flags, environment: environment)
            } throws: { error in
                (error as? ConfigurationError)?.description.contains(named) == true
            }
        }
    }

    @Test("A client trickling a header byte a second is cut off; 50 of them do not stop the server answering others", .heavyLoad)
    func headerTrickle() async throws {
        var limits = ConnectionLimits()
        limits.headerTimeout = .seconds(2)
        try await SlowClientServer.run(limits) { server in
            // 50 slow clients hold connections; each sends a byte of its head a second.
            let tricklers = try (0..<50).map { _ in try RawConnection(port: server.port) }
            try await withThrowingTaskGroup(of: (closed: Bool, sent: Int)?.self) { group in
                for connection in tricklers {
                    group.addTask { try await connection.trickle(Self.endlessHead, every: .seconds(1), atMost: 60) }
                }
                // Meanwhile ordinary requests, each on a connection of its own, are all answered.
                group.addTask {
                    for round in 0..<3 {
                        try await withThrowingTaskGroup(of: Int?.self) { requests in
                            for index in 0..<10 {
                                requests.addTask {
                                    let connection = try RawConnection(port: server.port)
                                    if (round + index) % 2 == 0 {
                                        return try await connection.request("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")?.status
                                    }
                                    let body = #"{"clientName":"Acme \#(round)-\#(index)","clientPhone":"+1234567890"}"#
                                    return try await connection.request(
                                        "POST /onboard HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
                                    )?.status
                                }
                            }
                            for try await status in requests {
                                #expect(status == 200 || status == 201, "an ordinary request was not answered while slow clients trickled")
                            }
                        }
                    }
                    return nil
                }
                for try await result in group {
                    guard let result else { continue }
                    #expect(result.closed, "a client trickling its head a byte a second was still connected after 60 s")
                    #expect(result.sent < 60)
                }
            }
            #expect(server.closes(phase: "head") >= 50)
        }
    }

    @Test("A connection that sends nothing is closed by the header timeout")
    func silentConnection() async throws {
        var limits = ConnectionLimits()
        limits.headerTimeout = .seconds(2)
        try await SlowClientServer.run(limits) { server in
            let connection = try RawConnection(port: server.port)
            #expect(try await connection.waitUntilClosed(bound: .seconds(60)))
            #expect(server.closes(phase: "head") == 1)
        }
    }

    @Test("The next request on a keep-alive connection is timed from its first byte: trickled, it is cut off by the header timeout")
    func keepAliveHeaderTrickle() async throws {
        var limits = ConnectionLimits()
        limits.headerTimeout = .seconds(2)
        limits.idleTimeout = .seconds(600)
        try await SlowClientServer.run(limits) { server in
            let connection = try RawConnection(port: server.port)
            #expect(try await connection.request("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")?.status == 200)
            let result = try await connection.trickle(Self.endlessHead, every: .seconds(1), atMost: 60)
            #expect(result.closed, "a trickled second request was not cut off")
            #expect(server.closes(phase: "head") == 1)
            #expect(server.closes(phase: "idle") == 0)
        }
    }

    @Test("An idle keep-alive connection is closed after the idle timeout; a client within the limits is served")
    func idleKeepAlive() async throws {
        var limits = ConnectionLimits()
        limits.idleTimeout = .seconds(2)
        try await SlowClientServer.run(limits) { server in
            let connection = try RawConnection(port: server.port)
            #expect(try await connection.request("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")?.status == 200)
            // A next request well within the idle timeout is answered on the same connection.
            try await Task.sleep(for: .milliseconds(200))
            #expect(try await connection.request("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")?.status == 200)
            #expect(try await connection.waitUntilClosed(bound: .seconds(60)), "an idle keep-alive connection was still open after 60 s")
            #expect(server.closes(phase: "idle") == 1)
        }
    }

    @Test("A body that stalls (Content-Length 100, 10 bytes sent) is cut off by the body timeout")
    func stalledBody() async throws {
        var limits = ConnectionLimits()
        limits.bodyTimeout = .seconds(2)
        try await SlowClientServer.run(limits) { server in
            let connection = try RawConnection(port: server.port)
            #expect(connection.send("POST /onboard HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"clientNa"))
            #expect(try await connection.waitUntilClosed(bound: .seconds(60)), "a stalled body kept its connection for 60 s")
            #expect(!connection.received.hasPrefix("HTTP/1.1 2"))
            #expect(server.closes(phase: "body") == 1)
        }
    }

    @Test("A body trickled a byte a second is cut off: the body timeout is a total, not a no-progress timer")
    func trickledBody() async throws {
        var limits = ConnectionLimits()
        limits.bodyTimeout = .seconds(3)
        try await SlowClientServer.run(limits) { server in
            let connection = try RawConnection(port: server.port)
            #expect(connection.send("POST /onboard HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"))
            let result = try await connection.trickle(String(repeating: " ", count: 100), every: .seconds(1), atMost: 60)
            #expect(result.closed, "a body trickled a byte a second kept its connection for 60 s")
            #expect(server.closes(phase: "body") == 1)
        }
    }

    @Test("At the connection cap new connections wait, the open ones are still served, and a freed slot takes the next")
    func connectionCap() async throws {
        var limits = ConnectionLimits()
        limits.maxConnections = 4
        limits.headerTimeout = .seconds(600)
        limits.idleTimeout = .seconds(600)
        try await SlowClientServer.run(limits) { server in
            // Four connections, each answered once: all four accepted, the cap reached.
            var held: [RawConnection] = []
            for _ in 0..<4 {
                let connection = try RawConnection(port: server.port)
                #expect(try await connection.request("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")?.status == 200)
                held.append(connection)
            }
            // A fifth: the kernel completes the handshake (the listen backlog), the server does not accept it.
            let waiting = try RawConnection(port: server.port)
            #expect(waiting.send("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"))
            try await Task.sleep(for: .seconds(1))
            #expect(waiting.received.isEmpty && !waiting.isClosed(), "a connection above the cap was served or refused")
            // The open connections are still served.
            for connection in held {
                #expect(try await connection.request("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")?.status == 200)
            }
            #expect(server.logText.contains("connection cap reached"))
            // One closes: the waiting connection is accepted and answered.
            held.removeFirst().closeNow()
            #expect(try await waiting.readResponse(bound: .seconds(60))?.status == 200, "the waiting connection was not served after a slot freed")
        }
    }
}

/// The application `serve` runs, on a SQLite file in a fresh folder, with the given limits.
struct SlowClientServer: Sendable {
    let port: Int
    let logs: InMemoryLogHandler

    var logText: String { TestFixture.text(of: logs) }

    /// How many connections the server closed in this phase (`head`, `body`, `idle`).
    func closes(phase: String) -> Int {
        logs.entries.filter { $0.message.description.hasPrefix("closing a connection") && $0.metadata["phase"]?.description == phase }.count
    }

    static func run(_ limits: ConnectionLimits, _ body: @Sendable (SlowClientServer) async throws -> Void) async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        var logs = InMemoryLogHandler()
        logs.logLevel = .debug
        let handler = logs
        let logger = Logger(label: "onboard-test", factory: { _ in handler })
        var configuration = ServeConfiguration()
        configuration.host = "127.0.0.1"
        configuration.port = 0
        configuration.adminToken = TestServer.adminToken
        configuration.rateLimits = nil
        configuration.store.databasePath = directory.path("onboarding.sqlite")
        configuration.connectionLimits = limits
        let app = try await buildApplication(configuration, overrides: AppOverrides(logger: logger))
        do {
            try await PatientLiveServer.run(app) { _, port in
                try await body(SlowClientServer(port: port, logs: handler))
            }
        } catch {
            await app.close()
            throw error
        }
        await app.close()
    }
}

/// A TCP connection to 127.0.0.1 through BSD sockets: bytes go out exactly as the test writes
/// them, and a close by the server is seen (end of stream or reset).
final class RawConnection: Sendable {
    private let descriptor: Int32
    /// What arrived, whether the server closed the connection, whether this side closed its descriptor.
    private let state = Mutex<(received: [UInt8], closed: Bool, released: Bool)>(([], false, false))

    init(port: Int) throws {
        #if canImport(Glibc)
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #else
        descriptor = socket(AF_INET, SOCK_STREAM, 0)
        var one: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
        #endif
        guard descriptor >= 0 else { throw RawConnectionError(description: "socket: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else {
            let code = errno
            close(descriptor)
            throw RawConnectionError(description: "connect: errno \(code)")
        }
    }

    deinit { closeNow() }

    /// Closes the connection from this side (idempotent).
    func closeNow() {
        let release = state.withLock { state in
            defer { state.released = true }
            return !state.released
        }
        if release { close(descriptor) }
    }

    /// What the server sent so far, as text.
    var received: String { state.withLock { String(decoding: $0.received, as: UTF8.self) } }

    /// Sends all of `text`; `false` when the connection is closed.
    func send(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        #if canImport(Glibc)
        let flags = Int32(MSG_NOSIGNAL)
        #else
        let flags: Int32 = 0
        #endif
        let sent = bytes.withUnsafeBytes { Glibc_send(descriptor, $0.baseAddress, $0.count, flags) }
        return sent == bytes.count
    }

    /// Reads what is there without waiting; notes the server's close.
    @discardableResult
    func isClosed() -> Bool {
        if state.withLock({ $0.closed || $0.released }) { return true }
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count > 0 {
                state.withLock { $0.received += buffer[0..<count] }
                continue
            }
            if count == 0 || (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                state.withLock { $0.closed = true }
                return true
            }
            return false
        }
    }

    /// Polls until the server closes the connection, at most `bound`; whether it did.
    func waitUntilClosed(bound: Duration) async throws -> Bool {
        let deadline = ContinuousClock.now + bound
        while ContinuousClock.now < deadline {
            if isClosed() { return true }
            try await Task.sleep(for: .milliseconds(50))
        }
        return isClosed()
    }

    /// Sends `text` a byte every `every`, at most `atMost` bytes, until the server closes the
    /// connection: whether it did, and how many bytes were sent.
    func trickle(_ text: String, every: Duration, atMost: Int) async throws -> (closed: Bool, sent: Int) {
        let bytes = Array(text.utf8.prefix(atMost))
        for (index, byte) in bytes.enumerated() {
            if isClosed() || !send(String(decoding: [byte], as: UTF8.self)) { return (true, index) }
            try await Task.sleep(for: every)
        }
        return (isClosed(), bytes.count)
    }

    /// Sends a request and reads its response (status and body; `Content-Length` framing).
    func request(_ text: String, bound: Duration = .seconds(120)) async throws -> (status: Int, body: String)? {
        state.withLock { $0.received = [] }
        guard send(text) else { return nil }
        return try await readResponse(bound: bound)
    }

    /// Waits for one whole response (at most `bound`) and removes it from what was received.
    func readResponse(bound: Duration) async throws -> (status: Int, body: String)? {
        let deadline = ContinuousClock.now + bound
        while ContinuousClock.now < deadline {
            let closed = isClosed()
            if let response = takeResponse() { return response }
            if closed { return nil }
            try await Task.sleep(for: .milliseconds(20))
        }
        return nil
    }

    private func takeResponse() -> (status: Int, body: String)? {
        state.withLock { state in
            let separator: [UInt8] = Array("\r\n\r\n".utf8)
            guard let end = state.received.indices.first(where: { state.received[$0...].starts(with: separator) }) else { return nil }
            let head = String(decoding: state.received[..<end], as: UTF8.self)
            let lines = head.split(separator: "\r\n")
            guard let statusLine = lines.first, let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") else { return nil }
            let length = lines.dropFirst().compactMap { line -> Int? in
                let parts = line.split(separator: ":", maxSplits: 1)
                guard parts.count == 2, parts[0].lowercased() == "content-length" else { return nil }
                return Int(parts[1].trimmingCharacters(in: .whitespaces))
            }.first ?? 0
            let bodyStart = end + separator.count
            guard state.received.count >= bodyStart + length else { return nil }
            let body = String(decoding: state.received[bodyStart..<(bodyStart + length)], as: UTF8.self)
            state.received.removeFirst(bodyStart + length)
            return (status, body)
        }
    }
}

struct RawConnectionError: Error, CustomStringConvertible {
    let description: String
}

/// The C `send` (the method of the same name hides it).
private func Glibc_send(_ descriptor: Int32, _ buffer: UnsafeRawPointer?, _ count: Int, _ flags: Int32) -> Int {
    #if canImport(Glibc)
    Glibc.send(descriptor, buffer, count, flags)
    #else
    Darwin.send(descriptor, buffer, count, flags)
    #endif
}
