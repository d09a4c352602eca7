#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import Logging
import OnboardingCore

/// A lean swift-log handler: one line per event.
///
/// ```
/// 2026-11-27T23:05:47.123Z info onboard: request duration_ms=1.835 hb.request.id=1295ec57 method=POST route=/onboard status=201
/// ```
/// Timestamp (RFC 3339 UTC, milliseconds), level, label, message, then the metadata as sorted
/// `key=value` pairs; values with spaces, quotes, `=` or control characters are quoted and
/// escaped, so no value can forge a line.
///
/// Where the line goes depends on the handler's ``LineWriter``:
/// - with one (``standardOutput(label:level:format:queued:)``'s default, what `serve` uses), `log`
///   only queues the line and a writer thread writes it, so a slow or stalled reader of the pipe
///   never blocks the thread that logs (an event-loop thread answering requests). The queue is
///   bounded: when the reader stops reading, lines are dropped and counted, and a
///   `dropped N log lines` line says so once writing resumes. Lines stay in order and never
///   interleave; a graceful exit writes them all first (``LineWriter/flushShared(giveUpAfter:)``).
/// - without one (`writer: nil`), the line is written with one `write(2)` before `log` returns.
///   The Lambda runtime logs this way: its sandbox may be frozen as soon as an invocation is
///   answered, and a line still queued then would wait, or be lost with the sandbox; Lambda's
///   own log agent reads the pipe, and one invocation runs at a time.
///
/// It exists because swift-log's `StreamLogHandler` (local-time formatting and a locked,
/// flushed stdio stream per line) cost about a third of the onboarding throughput.
public struct LineLogHandler: LogHandler {
    /// How a line looks.
    public enum Format: Sendable {
        /// `2026-… info onboard: message key=value …`, for terminals and files.
        case text
        /// One JSON object per line (`time`, `level`, `logger`, `message`, then the metadata),
        /// as CloudWatch Logs Insights reads them.
        case json
    }

    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    public var logLevel: Logger.Level = .info
    private let label: String
    private let fileDescriptor: Int32
    private let format: Format
    private let writer: LineWriter?

    /// A handler writing to standard output.
    /// - Parameter queued: `true` (the default): through the process's shared ``LineWriter`` for
    ///   standard output, never blocking the caller; `false`: one `write(2)` per line, in `log`.
    public static func standardOutput(label: String, level: Logger.Level, format: Format = .text, queued: Bool = true) -> LineLogHandler {
        var handler = LineLogHandler(
            label: label, fileDescriptor: 1, format: format, writer: queued ? LineWriter.shared(fileDescriptor: 1, format: format) : nil
        )
        handler.logLevel = level
        return handler
    }

    /// - Parameter writer: where lines are queued; `nil` writes each line to `fileDescriptor`
    ///   in `log` (blocking while the pipe is full). A writer's own descriptor wins over `fileDescriptor`.
    public init(label: String, fileDescriptor: Int32, format: Format = .text, writer: LineWriter? = nil) {
        self.label = label
        self.fileDescriptor = writer?.fileDescriptor ?? fileDescriptor
        self.format = format
        self.writer = writer
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get(), !provided.isEmpty {
            merged.merge(provided) { _, new in new }
        }
        if let explicit = event.metadata, !explicit.isEmpty {
            merged.merge(explicit) { _, new in new }
        }
        if format == .json {
            var object: [String: AttributeValue] = [
                "time": .string(Timestamp.format(.now)), "level": .string(event.level.rawValue),
                "logger": .string(label), "message": .string(event.message.description),
            ]
            for (key, value) in merged where object[key] == nil { object[key] = .string(value.description) }
            var line = JSONCodec.serializeBytes(.map(object))
            line.append(UInt8(ascii: "\n"))
            emit(line)
            return
        }
        var line = Array(Timestamp.format(.now).utf8)
        line.reserveCapacity(160)
        line.append(UInt8(ascii: " "))
        line.append(contentsOf: event.level.rawValue.utf8)
        line.append(UInt8(ascii: " "))
        line.append(contentsOf: label.utf8)
        line.append(contentsOf: ": ".utf8)
        Self.appendEscaped(event.message.description, to: &line, quoteIfNeeded: false)
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            line.append(UInt8(ascii: " "))
            line.append(contentsOf: key.utf8)
            line.append(UInt8(ascii: "="))
            Self.appendEscaped(value.description, to: &line, quoteIfNeeded: true)
        }
        line.append(UInt8(ascii: "\n"))
        emit(line)
    }

    private func emit(_ line: [UInt8]) {
        if let writer {
            writer.enqueue(line)
        } else {
            LineWriter.writeAll(line, to: fileDescriptor)
        }
    }

    /// The line that reports `count` lines dropped by a ``LineWriter`` whose queue was full.
    static func droppedLinesLine(_ count: Int, format: Format) -> [UInt8] {
        let message = "dropped \(count) log lines"
        var line: [UInt8]
        switch format {
        case .json:
            line = JSONCodec.serializeBytes(.map([
                "time": .string(Timestamp.format(.now)), "level": .string(Logger.Level.warning.rawValue), "logger": .string("onboard"),
                "message": .string(message), "dropped": .string(String(count)),
            ]))
        case .text:
            line = Array("\(Timestamp.format(.now)) warning onboard: \(message) dropped=\(count)".utf8)
        }
        line.append(UInt8(ascii: "\n"))
        return line
    }

    /// Appends `text`, escaping control characters (and quoting when asked and needed).
    static func appendEscaped(_ text: String, to line: inout [UInt8], quoteIfNeeded: Bool) {
        let needsQuotes = quoteIfNeeded && (text.isEmpty || text.utf8.contains { $0 <= 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "=") || $0 == 0x7F })
        if needsQuotes { line.append(UInt8(ascii: "\"")) }
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\"") where needsQuotes: line.append(contentsOf: "\\\"".utf8)
            case UInt8(ascii: "\\") where needsQuotes: line.append(contentsOf: "\\\\".utf8)
            case 0x0A: line.append(contentsOf: "\\n".utf8)
            case 0x0D: line.append(contentsOf: "\\r".utf8)
            case 0x09: line.append(contentsOf: "\\t".utf8)
            case 0x00..<0x20, 0x7F: line.append(contentsOf: "\\x".utf8 + [hexDigit(byte >> 4), hexDigit(byte & 0x0F)])
            default: line.append(byte)
            }
        }
        if needsQuotes { line.append(UInt8(ascii: "\"")) }
    }

    private static func hexDigit(_ value: UInt8) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : UInt8(ascii: "a") + value - 10
    }
}
