import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import OnboardingApp
import OnboardingHTTP
import OnboardingSQLite
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
import OnboardTestSupport
#endif

/// The read end of a pipe, read on a thread of its own (a blocking `read(2)` must not take a
/// thread of the concurrency pool).
private final class PipeReader: @unchecked Sendable {
    private let fileDescriptor: Int32
    private let condition = NSCondition()
    private var data: [UInt8] = []

    init(_ fileDescriptor: Int32) { self.fileDescriptor = fileDescriptor }

    /// Reads until `done` holds for what was read (or the pipe ends); returns the text.
    func read(until done: @escaping @Sendable (String) -> Bool) async -> String {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread { [self] in
                var buffer = [UInt8](repeating: 0, count: 65_536)
                while true {
                    let count = readBytes(fileDescriptor, &buffer, buffer.count)
                    if count <= 0 { break }
                    data.append(contentsOf: buffer[0..<count])
                    if done(String(decoding: data, as: UTF8.self)) { break }
                }
                continuation.resume(returning: String(decoding: data, as: UTF8.self))
            }
        }
    }
}

private func readBytes(_ fileDescriptor: Int32, _ buffer: UnsafeMutableRawPointer, _ count: Int) -> Int {
    #if canImport(Glibc)
    Glibc.read(fileDescriptor, buffer, count)
    #else
    Darwin.read(fileDescriptor, buffer, count)
    #endif
}

@Suite("Logging never blocks request handling")
struct LogWriterTests {
    /// Runs the application `serve` runs, logging through `writer` on a pipe, and answers
    /// `requests` sequential `GET /health` while nobody reads the pipe.
    func serveWithUnreadLog(writer: LineWriter?, pipe: [Int32], requests: Int) async throws -> (answered: Int, statuses: Set<Int>) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("onboard-log-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SQLiteTenantStore(path: directory.appendingPathComponent("onboarding.sqlite").path)
        let logger = Logger(label: "onboard") { label in
            var handler = LineLogHandler(label: label, fileDescriptor: pipe[1], writer: writer)
            handler.logLevel = .info
            return handler
        }
        var configuration = ServeConfiguration()
        configuration.host = "127.0.0.1"
        configuration.port = 0
        configuration.adminToken = "test-admin-token-0123456789abcdef"
        configuration.rateLimits = nil
        let app = try await buildApplication(configuration, overrides: AppOverrides(store: store, logger: logger))
        return try await PatientLiveServer.run(app) { _, port in
            var clientConfiguration = HTTPClient.Configuration()
            // Generous: a request that waits this long is one the server stopped answering.
            clientConfiguration.timeout = .init(connect: .seconds(60), read: .seconds(60))
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: clientConfiguration)
            var answered = 0
            var statuses: Set<Int> = []
            do {
                for _ in 0..<requests {
                    let response = try await client.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/health"), timeout: .seconds(60))
                    _ = try await response.body.collect(upTo: 1 << 20)
                    statuses.insert(Int(response.status.code))
                    answered += 1
                }
            } catch {
                // Not answered: reported through `answered`. Read the pipe from now on, so that
                // a server blocked on it can shut down and the test end.
                _ = Task { await PipeReader(pipe[0]).read { _ in false } }
            }
            try await client.shutdown()
            return (answered, statuses)
        }
    }

    @Test("a server whose log pipe nobody reads answers 1,500 requests; once the pipe is read, the log says how many lines it dropped", .heavyLoad)
    func stalledPipe() async throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        var writeEndOpen = true
        defer {
            close(fds[0])
            if writeEndOpen { close(fds[1]) }
        }
        // 1,500 request lines are about 225 KB: far more than the pipe (64 KiB) and the queue hold.
        let writer = LineWriter(fileDescriptor: fds[1], capacityBytes: 32 * 1024)
        defer { writer.stop(giveUpAfter: .seconds(1)) }
        let requests = 1_500
        let result = try await serveWithUnreadLog(writer: writer, pipe: fds, requests: requests)
        #expect(result.answered == requests)
        #expect(result.statuses == [200])
        let dropped = writer.droppedLines
        #expect(dropped > 0, "the queue was full, so lines were dropped")

        // Reading the pipe lets the writer write again: what it held, then the count (in one
        // report or several: a short line may still fit while longer ones are dropped). All of
        // it is read: the writer is stopped (which flushes), the write end closed, the pipe read
        // to its end.
        let readEnd = fds[0]
        let reading = Task { await PipeReader(readEnd).read { _ in false } }
        writer.stop(giveUpAfter: .seconds(60))
        close(fds[1])
        writeEndOpen = false
        let text = await reading.value
        let lines = text.split(separator: "\n").map(String.init)
        let reports = lines.filter { $0.contains(" warning onboard: dropped ") }
        let reported = reports.compactMap { $0.split(separator: "dropped=").last.flatMap { Int($0) } }.reduce(0, +)
        #expect(reported == dropped, "\(reports)")
        // Whole lines only, in order: every line starts with its timestamp; request lines and
        // dropped ones account for every request.
        #expect(lines.allSatisfy { $0.hasPrefix("20") && ($0.contains(" info ") || $0.contains(" warning ")) })
        let requestLines = lines.filter { $0.contains(" info onboard: request ") }.count
        #expect(requestLines + dropped >= requests)
        #expect(requestLines < requests)
    }

    @Test("lines written through a writer arrive whole and in order, and flush waits for them")
    func orderAndFlush() async throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer {
            close(fds[0])
            close(fds[1])
        }
        let writer = LineWriter(fileDescriptor: fds[1])
        defer { writer.stop(giveUpAfter: .seconds(1)) }
        let readEnd = fds[0]
        let reading = Task { await PipeReader(readEnd).read { $0.reduce(0) { $1 == "\n" ? $0 + 1 : $0 } >= 5_000 } }
        await withTaskGroup(of: Void.self) { group in
            // Several producers, each in order: their lines must keep their own order.
            for producer in 0..<5 {
                group.addTask {
                    for index in stride(from: producer, to: 5_000, by: 5) {
                        writer.enqueue(Array("line \(index) \(String(repeating: "x", count: index % 300)) end\n".utf8))
                    }
                }
            }
        }
        #expect(writer.flush())
        let lines = await reading.value.split(separator: "\n")
        #expect(lines.count == 5_000)
        #expect(writer.droppedLines == 0)
        var lastOfProducer = [Int](repeating: -1, count: 5)
        for line in lines {
            let parts = line.split(separator: " ")
            let index = try #require(Int(parts[1]))
            #expect(parts.last == "end" && parts.count <= 4, "whole line")
            #expect(index > lastOfProducer[index % 5], "in order")
            lastOfProducer[index % 5] = index
        }
    }
}
