import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The bad-input corpus (issue 12, item 9): the `onboard` binary on 127.0.0.1 gets huge, deep,
/// invalid-UTF-8 and NUL-carrying bodies, NUL bytes in headers and paths, 1 MB headers, 10 KB
/// paths, `Content-Length` lies and chunked oddities, each on a raw socket of its own. Each must
/// end in a `4xx` (an RFC 9457 problem where the router answers) or a closed connection; and the
/// server must be correct afterwards: a normal onboarding and read succeed, the tenant onboarded
/// before the corpus is intact, and no bad input stored a tenant.
///
/// The "declared, then silence" cases are cut off by the server's body and header timeouts
/// (`ONBOARD_BODY_TIMEOUT`, `ONBOARD_HEADER_TIMEOUT`, set short here); a server without them
/// never answers, which this test reports after its generous bound of ``RawConnection/bound``.
@Suite("Bad input corpus", .serialized)
struct BadInputCorpusTests {
    @Test("every bad input gets a 4xx or a closed connection, and the server stays correct")
    func corpus() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let adminToken = "bad-input-corpus-admin-token-0123456789"
        let server = try OnboardProcess(
            ["serve", "--port", "0", "--database", folder.appendingPathComponent("corpus.sqlite").path, "--rate-limits", "off"],
            environment: [
                "ONBOARD_ADMIN_TOKEN": adminToken,
                // Short timeouts, so a client that declares more than it sends is cut off soon.
                "ONBOARD_HEADER_TIMEOUT": "2s", "ONBOARD_BODY_TIMEOUT": "2s", "ONBOARD_IDLE_TIMEOUT": "2s",
            ]
        )
        defer { server.process.kill() }
        let base = try await server.waitUntilListening()
        let portText = try #require(base.split(separator: ":").last)
        let port = try #require(UInt16(portText))

        // A tenant from before the corpus, to check afterwards.
        let before = try await HTTP.with(base) { http in
            let reply = try await http.onboard(name: "Before Corpus Ltd", phone: "+14155550100")
            try #require(reply.status == 201, "\(reply.body)")
            return (id: try #require(jsonField("tenantId", in: reply.body)), key: try #require(jsonField("apiKey", in: reply.body)))
        }

        for badInput in BadInput.corpus(port: port, adminToken: adminToken, tenant: before) {
            let outcomes = try await RawConnection.exchange(port: port, badInput)
            for (index, outcome) in outcomes.enumerated() {
                #expect(outcome.isRefusal, "\(badInput.name): \(outcome)")
                if case .answered(let answer) = outcome, !answer.body.isEmpty || (badInput.routerAnswers && index == 0) {
                    // The HTTP parser's own 400 has no body; the router's answers are problems.
                    #expect(answer.isProblem, "\(badInput.name): \(answer.status) \(answer.contentType ?? "-"), not a problem: \(answer.bodyText)")
                }
            }
            #expect(server.process.isRunning, "the server died on: \(badInput.name); stderr: \(server.stderr.text.suffix(2000))")
            guard server.process.isRunning else { return }
        }

        // Still correct: a normal onboarding and read; the earlier tenant intact; nothing stored.
        try await HTTP.with(base) { http in
            let admin = adminToken
            let created = try await http.onboard(name: "After Corpus Ltd", phone: "+14155550101")
            #expect(created.status == 201, "\(created.body)")
            let id = try #require(jsonField("tenantId", in: created.body))
            let read = try await http.tenant(id, token: admin)
            #expect(read.status == 200)
            #expect(jsonField("clientName", in: read.body) == "After Corpus Ltd")
            for token in [admin, before.key] {
                let earlier = try await http.tenant(before.id, token: token)
                #expect(earlier.status == 200)
                #expect(jsonField("clientName", in: earlier.body) == "Before Corpus Ltd")
                #expect(jsonField("clientPhone", in: earlier.body) == "+14155550100")
                #expect(jsonField("status", in: earlier.body) == "ACTIVE")
            }
            let listing = try await http.send(.GET, "/tenants?limit=100", headers: [("Authorization", "Bearer \(admin)")])
            #expect(listing.status == 200)
            #expect(listing.body.components(separatedBy: "\"tenantId\"").count - 1 == 2, "only the two good tenants are stored: \(listing.body.prefix(2000))")
            let resources = try await http.send(.GET, "/tenants/\(before.id)/resources/doc", headers: [("Authorization", "Bearer \(before.key)")])
            #expect(resources.status == 200)
            #expect(resources.body.contains("\"resources\":[]"), "no bad document was stored: \(resources.body.prefix(2000))")
        }
        #expect(try await server.terminate() == 0)
    }
}

/// One entry of the corpus: the bytes sent (in parts, a moment apart), and what is expected.
struct BadInput: Sendable {
    let name: String
    let parts: [[UInt8]]
    /// The router (not the HTTP parser) sees this request, so its answer must be a problem.
    var routerAnswers = false
    /// More bytes than the first request follow on the connection: read a second answer too.
    var thenMore = false

    static func corpus(port: UInt16, adminToken: String, tenant: (id: String, key: String)) -> [BadInput] {
        let host = "Host: 127.0.0.1:\(port)\r\n"
        let json = "Content-Type: application/json\r\n"
        let admin = "Authorization: Bearer \(adminToken)\r\n"
        let key = "Authorization: Bearer \(tenant.key)\r\n"
        let document = "/tenants/\(tenant.id)/resources/doc/one"
        let good = Array(#"{"clientName": "Good Name Ltd", "clientPhone": "+14155550199"}"#.utf8)

        func head(_ method: String, _ path: String, _ headers: String) -> [UInt8] {
            Array("\(method) \(path) HTTP/1.1\r\n\(host)\(headers)\r\n".utf8)
        }
        /// A request with a truthful `Content-Length`.
        func request(_ method: String, _ path: String, _ headers: String, body: [UInt8]) -> [UInt8] {
            head(method, path, headers + "Content-Length: \(body.count)\r\n") + body
        }
        func onboarding(_ body: [UInt8]) -> [UInt8] { request("POST", "/onboard", json, body: body) }
        func onboardingBody(name: [UInt8]) -> [UInt8] {
            Array(#"{"clientName": ""#.utf8) + name + Array(#"", "clientPhone": "+14155550123"}"#.utf8)
        }
        let tenMB = [UInt8](repeating: UInt8(ascii: "a"), count: 10 << 20)
        let deepArrays = Array(String(repeating: "[", count: 30_000).utf8) + Array(String(repeating: "]", count: 30_000).utf8)
        let deepObjects = Array((String(repeating: #"{"a":"#, count: 10_000) + "1" + String(repeating: "}", count: 10_000)).utf8)
        let megabyte = String(repeating: "x", count: 1 << 20)

        return [
            // Huge bodies.
            BadInput(name: "10 MB body to POST /onboard", parts: [onboarding(Array(#"{"clientName": ""#.utf8) + tenMB)]),
            BadInput(name: "10 MB document PUT with the tenant's key", parts: [request("PUT", document, json + key, body: Array(#"{"a": ""#.utf8) + tenMB)]),
            BadInput(name: "10 MB chunked body, no Content-Length", parts: [
                head("POST", "/onboard", json + "Transfer-Encoding: chunked\r\n")
                    + (0..<10).flatMap { _ in Array("100000\r\n".utf8) + [UInt8](repeating: UInt8(ascii: "a"), count: 1 << 20) + Array("\r\n".utf8) }
                    + Array("0\r\n\r\n".utf8),
            ]),
            BadInput(name: "Content-Length of 10 GB declared, 1 KB sent", parts: [
                head("POST", "/onboard", json + "Content-Length: 10737418240\r\n") + [UInt8](repeating: UInt8(ascii: "{"), count: 1024),
            ]),
            // Deep nesting.
            BadInput(name: "30,000 nested arrays as the onboarding body", parts: [onboarding(deepArrays)], routerAnswers: true),
            BadInput(name: "30,000 nested arrays as a document", parts: [request("PUT", document, json + key, body: deepArrays)], routerAnswers: true),
            BadInput(name: "10,000 nested objects as a document", parts: [request("PUT", document, json + key, body: deepObjects)], routerAnswers: true),
            BadInput(name: "10,000 nested objects as a tenant patch", parts: [
                request("PATCH", "/tenants/\(tenant.id)", "Content-Type: application/merge-patch+json\r\n" + key, body: deepObjects),
            ], routerAnswers: true),
            // Invalid UTF-8.
            BadInput(name: "0xFF in the client name", parts: [onboarding(onboardingBody(name: [0x41, 0xFF, 0x42]))], routerAnswers: true),
            BadInput(name: "overlong UTF-8 (C0 AF) in the client name", parts: [onboarding(onboardingBody(name: [0xC0, 0xAF]))], routerAnswers: true),
            BadInput(name: "a UTF-8-encoded surrogate (ED A0 80) in the client name", parts: [onboarding(onboardingBody(name: [0xED, 0xA0, 0x80]))], routerAnswers: true),
            BadInput(name: "a truncated UTF-8 sequence (E2 82) in the client name", parts: [onboarding(onboardingBody(name: [0xE2, 0x82]))], routerAnswers: true),
            BadInput(name: "invalid UTF-8 in a document's key", parts: [
                request("PUT", document, json + key, body: [UInt8(ascii: "{"), UInt8(ascii: "\""), 0xFE, UInt8(ascii: "\"")] + Array(": 1}".utf8)),
            ], routerAnswers: true),
            BadInput(name: "a Latin-1 body declared as UTF-8 JSON", parts: [
                request("POST", "/onboard", "Content-Type: application/json; charset=utf-8\r\n", body: onboardingBody(name: [0x53, 0x6F, 0x63, 0x69, 0xE9, 0x74, 0xE9])),
            ], routerAnswers: true),
            // NUL bytes.
            BadInput(name: "a raw NUL byte inside the client name", parts: [onboarding(onboardingBody(name: [0x41, 0x00, 0x42]))], routerAnswers: true),
            BadInput(name: "an escaped \\u0000 in the client name", parts: [onboarding(onboardingBody(name: Array(#"A\u0000B"#.utf8)))], routerAnswers: true),
            BadInput(name: "a NUL byte between JSON tokens", parts: [onboarding(Array(#"{"clientName": "A", "#.utf8) + [0x00] + Array(#""clientPhone": "+14155550123"}"#.utf8))], routerAnswers: true),
            BadInput(name: "a NUL byte in a header value", parts: [
                Array("POST /onboard HTTP/1.1\r\n\(host)\(json)X-Note: a".utf8) + [0x00] + Array("b\r\nContent-Length: \(good.count)\r\n\r\n".utf8) + good,
            ]),
            BadInput(name: "a NUL byte in a header name", parts: [
                Array("POST /onboard HTTP/1.1\r\n\(host)\(json)X-No".utf8) + [0x00] + Array("te: b\r\nContent-Length: \(good.count)\r\n\r\n".utf8) + good,
            ]),
            BadInput(name: "a NUL byte in the Authorization header", parts: [
                Array("GET /tenants/\(tenant.id) HTTP/1.1\r\n\(host)Authorization: Bearer \(tenant.key)".utf8) + [0x00] + Array("\r\n\r\n".utf8),
            ]),
            BadInput(name: "a raw NUL byte in the path", parts: [Array("GET /tenants/".utf8) + [0x00] + Array("x HTTP/1.1\r\n\(host)\(admin)\r\n".utf8)]),
            BadInput(name: "%00 in the path", parts: [head("GET", "/tenants/%00", admin)], routerAnswers: true),
            BadInput(name: "%00 in a document's id", parts: [request("PUT", "/tenants/\(tenant.id)/resources/doc/a%00b", json + key, body: Array("{}".utf8))], routerAnswers: true),
            BadInput(name: "%00 in the query", parts: [head("GET", "/tenants?cursor=A%00B", admin)], routerAnswers: true),
            // 1 MB headers.
            BadInput(name: "one header of 1 MB", parts: [head("GET", "/health", "X-Big: \(megabyte)\r\n")]),
            BadInput(name: "1 MB of headers (10,000 of 100 bytes)", parts: [
                head("GET", "/health", (0..<10_000).map { "X-H\($0): \(String(repeating: "y", count: 90))\r\n" }.joined()),
            ]),
            BadInput(name: "a 1 MB Authorization header", parts: [head("GET", "/tenants", "Authorization: Bearer \(megabyte)\r\n")]),
            BadInput(name: "a 1 MB Idempotency-Key", parts: [request("POST", "/onboard", json + "Idempotency-Key: \(megabyte)\r\n", body: good)]),
            // 10 KB paths.
            BadInput(name: "a 10 KB tenant id", parts: [head("GET", "/tenants/" + String(repeating: "a", count: 10_240), admin)], routerAnswers: true),
            BadInput(name: "a 10 KB unknown path", parts: [head("GET", "/" + String(repeating: "b/", count: 5_120), "")], routerAnswers: true),
            BadInput(name: "a 10 KB document id", parts: [
                request("PUT", "/tenants/\(tenant.id)/resources/doc/" + String(repeating: "c", count: 10_240), json + key, body: Array("{}".utf8)),
            ], routerAnswers: true),
            BadInput(name: "a 10 KB cursor", parts: [head("GET", "/tenants?cursor=" + String(repeating: "A", count: 10_240), admin)], routerAnswers: true),
            BadInput(name: "10 KB of percent-encoded slashes", parts: [head("GET", "/tenants/" + String(repeating: "%2F", count: 3_414), admin)], routerAnswers: true),
            // Content-Length lies.
            BadInput(name: "Content-Length 100, 10 bytes sent, then silence", parts: [
                head("POST", "/onboard", json + "Content-Length: 100\r\n") + Array(#"{"clientNa"#.utf8),
            ]),
            BadInput(name: "Content-Length 100 on a document PUT, 10 bytes sent, then silence", parts: [
                head("PUT", document, json + key + "Content-Length: 100\r\n") + Array(#"{"aaaaaaaa"#.utf8),
            ]),
            BadInput(name: "Content-Length smaller than the body sent", parts: [
                head("POST", "/onboard", json + "Content-Length: 5\r\n") + good + Array(" trailing garbage\r\n\r\n".utf8),
            ], routerAnswers: true, thenMore: true),
            BadInput(name: "two different Content-Lengths", parts: [
                head("POST", "/onboard", json + "Content-Length: \(good.count)\r\nContent-Length: 5\r\n") + good,
            ]),
            BadInput(name: "two Content-Lengths in one header", parts: [
                head("POST", "/onboard", json + "Content-Length: \(good.count), 5\r\n") + good,
            ]),
            BadInput(name: "a negative Content-Length", parts: [head("POST", "/onboard", json + "Content-Length: -1\r\n") + good]),
            BadInput(name: "a Content-Length that is not a number", parts: [head("POST", "/onboard", json + "Content-Length: abc\r\n") + good]),
            BadInput(name: "a Content-Length beyond 64 bits", parts: [head("POST", "/onboard", json + "Content-Length: 99999999999999999999999\r\n") + good]),
            BadInput(name: "Content-Length and Transfer-Encoding: chunked together", parts: [
                head("POST", "/onboard", json + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n") + Array("3e\r\n".utf8) + good + Array("\r\n0\r\n\r\n".utf8),
            ]),
            // Chunked oddities.
            BadInput(name: "a chunk size that is not hexadecimal", parts: [head("POST", "/onboard", json + "Transfer-Encoding: chunked\r\n") + Array("zz\r\nabc\r\n0\r\n\r\n".utf8)]),
            BadInput(name: "a chunk size beyond 64 bits", parts: [head("POST", "/onboard", json + "Transfer-Encoding: chunked\r\n") + Array("fffffffffffffffffffffff\r\nabc\r\n".utf8)]),
            BadInput(name: "a negative chunk size", parts: [head("POST", "/onboard", json + "Transfer-Encoding: chunked\r\n") + Array("-5\r\nabc\r\n".utf8)]),
            BadInput(name: "a chunk longer than its size", parts: [head("POST", "/onboard", json + "Transfer-Encoding: chunked\r\n") + Array("3\r\nabcdef\r\n0\r\n\r\n".utf8)]),
            BadInput(name: "a 100 KB chunk extension", parts: [
                head("POST", "/onboard", json + "Transfer-Encoding: chunked\r\n") + Array("3;\(String(repeating: "e", count: 100_000))\r\nabc\r\n0\r\n\r\n".utf8),
            ]),
            BadInput(name: "chunked, no last chunk, then silence", parts: [head("POST", "/onboard", json + "Transfer-Encoding: chunked\r\n") + Array("5\r\n{\"cli\r\n".utf8)]),
            BadInput(name: "a chunk declared 100 bytes, 10 sent, then silence", parts: [head("POST", "/onboard", json + "Transfer-Encoding: chunked\r\n") + Array("64\r\n{\"clientNa".utf8)]),
            BadInput(name: "Transfer-Encoding: gzip (chunked not last)", parts: [head("POST", "/onboard", json + "Transfer-Encoding: gzip\r\n") + good]),
            BadInput(name: "Transfer-Encoding: chunked twice", parts: [
                head("POST", "/onboard", json + "Transfer-Encoding: chunked, chunked\r\n") + Array("3e\r\n".utf8) + good + Array("\r\n0\r\n\r\n".utf8),
            ]),
            // Broken heads.
            BadInput(name: "a head that never ends (silence after a header)", parts: [Array("GET /health HTTP/1.1\r\n\(host)X-Partial: yes".utf8)]),
            BadInput(name: "binary garbage as the request line", parts: [(0..<256).map { UInt8($0) } + Array("\r\n\r\n".utf8)]),
            BadInput(name: "a header line without a colon", parts: [head("GET", "/health", "NoColonHere\r\n")]),
            BadInput(name: "an obsolete folded header line", parts: [head("GET", "/health", "X-Fold: a\r\n  b\r\n")]),
            BadInput(name: "a bare LF inside a header value", parts: [Array("GET /health HTTP/1.1\r\n\(host)X-Lf: a\nb\r\n\r\n".utf8)]),
            BadInput(name: "HTTP/9.9", parts: [Array("GET /health HTTP/9.9\r\n\(host)\r\n".utf8)]),
        ]
    }
}

/// One raw TCP connection to the server, with a generous bound on every read and write. Its
/// calls block: ``exchange(port:_:)`` runs them on a thread of its own, off the concurrency pool.
final class RawConnection {
    /// Sends `badInput` on a new connection and reads its answer (and a second one when more
    /// bytes followed the first request and the first answer did not close the connection).
    static func exchange(port: UInt16, _ badInput: BadInput) async throws -> [RawOutcome] {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread {
                do {
                    let connection = try RawConnection(port: port)
                    defer { connection.close() }
                    for (index, part) in badInput.parts.enumerated() {
                        if index > 0 { usleep(50_000) }
                        // A server that refuses early may close (or reset) before the rest is sent.
                        guard connection.send(part) else { break }
                    }
                    var outcomes = [connection.readAnswer()]
                    if badInput.thenMore, case .answered(let first) = outcomes[0], !first.closes {
                        outcomes.append(connection.readAnswer())
                    }
                    continuation.resume(returning: outcomes)
                } catch {
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    /// How long one read or write may wait: generous (a loaded 2-core CI), never asserted.
    static let bound = 60

    private let fd: Int32

    init(port: UInt16) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw ProcessError(description: "socket() failed: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(port.bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            Glibc.close(fd)
            throw ProcessError(description: "cannot connect to 127.0.0.1:\(port): errno \(errno)")
        }
        var limit = timeval(tv_sec: Self.bound, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        // A server that refuses a huge body may stop reading it: a write gives up after a while
        // and the answer is read instead.
        var sendLimit = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &sendLimit, socklen_t(MemoryLayout<timeval>.size))
    }

    func close() { Glibc.close(fd) }

    /// Sends every byte; false when the server closed, reset or stopped reading first.
    func send(_ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let written = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard written > 0 else { return false }
            sent += written
        }
        return true
    }

    private var buffered: [UInt8] = []

    /// Reads one answer: a response, or the connection's end, or nothing within ``bound``.
    func readAnswer() -> RawOutcome {
        // The head.
        var headEnd: Int?
        while true {
            if let end = buffered.firstRange(of: [13, 10, 13, 10]) { headEnd = end.upperBound; break }
            switch fill() {
            case .data: continue
            case .end: return buffered.isEmpty ? .closed : .garbled(String(decoding: buffered.prefix(200), as: UTF8.self))
            case .timedOut: return .noAnswer
            }
        }
        let head = String(decoding: buffered[..<headEnd!], as: UTF8.self)
        buffered.removeFirst(headEnd!)
        let lines = head.components(separatedBy: "\r\n")
        guard let statusLine = lines.first, statusLine.hasPrefix("HTTP/1."), let status = Int(statusLine.split(separator: " ").dropFirst().first ?? "") else {
            return .garbled(head)
        }
        var headers: [(String, String)] = []
        for line in lines.dropFirst() where line.contains(":") {
            let split = line.firstIndex(of: ":")!
            headers.append((line[..<split].lowercased(), line[line.index(after: split)...].trimmingCharacters(in: .whitespaces)))
        }
        func header(_ name: String) -> String? { headers.first { $0.0 == name }?.1 }
        // The body: by Content-Length, chunked, or to the end.
        var body: [UInt8] = []
        if let length = header("content-length").flatMap(Int.init) {
            while buffered.count < length {
                guard case .data = fill() else { break }
            }
            body = Array(buffered.prefix(length))
            buffered.removeFirst(min(length, buffered.count))
        } else if header("transfer-encoding")?.lowercased() == "chunked" {
            while true {
                while buffered.firstRange(of: [13, 10]) == nil {
                    guard case .data = fill() else { return .answered(RawAnswer(status: status, headers: headers, body: body)) }
                }
                let lineEnd = buffered.firstRange(of: [13, 10])!
                let size = Int(String(decoding: buffered[..<lineEnd.lowerBound], as: UTF8.self).split(separator: ";").first ?? "", radix: 16) ?? 0
                buffered.removeFirst(lineEnd.upperBound)
                while buffered.count < size + 2 {
                    guard case .data = fill() else { break }
                }
                body += buffered.prefix(size)
                buffered.removeFirst(min(size + 2, buffered.count))
                if size == 0 { break }
            }
        } else if status >= 200, status != 204, status != 304 {
            while case .data = fill() {}
            body = buffered
            buffered = []
        }
        return .answered(RawAnswer(status: status, headers: headers, body: body))
    }

    private enum Fill { case data, end, timedOut }

    private func fill() -> Fill {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let count = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count > 0 {
            buffered += chunk[..<count]
            return .data
        }
        if count < 0, errno == EAGAIN || errno == EWOULDBLOCK { return .timedOut }
        return .end  // 0: closed; -1 ECONNRESET and the like: reset
    }
}

/// A response read off a raw connection.
struct RawAnswer: Sendable, CustomStringConvertible {
    let status: Int
    let headers: [(String, String)]
    let body: [UInt8]

    var contentType: String? { headers.first { $0.0 == "content-type" }?.1 }
    var bodyText: String { String(decoding: body.prefix(500), as: UTF8.self) }
    /// `Connection: close`: nothing more will be read on this connection.
    var closes: Bool { headers.contains { $0.0 == "connection" && $0.1.lowercased() == "close" } }
    /// An RFC 9457 problem whose `status` is the response's.
    var isProblem: Bool {
        let text = String(decoding: body, as: UTF8.self)
        return contentType?.hasPrefix("application/problem+json") == true && jsonField("type", in: text) != nil
            && text.contains("\"status\":\(status)")
    }
    var description: String { "\(status) \(contentType ?? "-") \(bodyText)" }
}

/// How a raw exchange ended.
enum RawOutcome: Sendable, CustomStringConvertible {
    case answered(RawAnswer)
    /// Closed (or reset) before any byte of an answer.
    case closed
    /// Bytes that are not an HTTP/1 response.
    case garbled(String)
    /// Neither an answer nor a close within ``RawConnection/bound``.
    case noAnswer

    /// A `4xx`, or a closed connection.
    var isRefusal: Bool {
        switch self {
        case .answered(let answer): (400..<500).contains(answer.status)
        case .closed: true
        case .garbled, .noAnswer: false
        }
    }

    var description: String {
        switch self {
        case .answered(let answer): "answered \(answer)"
        case .closed: "closed"
        case .garbled(let text): "garbled: \(text)"
        case .noAnswer: "no answer and no close within \(RawConnection.bound) s"
        }
    }
}
