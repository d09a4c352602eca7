#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import OnboardingCore
import Synchronization

/// What the operator commands print: tables and readable dates for people, JSON for scripts
/// (through the project's one JSON writer, ``JSONCodec``).
enum CLIOutput {
    /// Prints one JSON document (or one JSON line of a list) on standard output.
    static func json(_ value: [String: AttributeValue]) {
        Console.line(JSONCodec.serialize(.map(value)))
    }

    /// A stored RFC 3339 timestamp (`2026-12-02T03:50:54.123Z`) as people read it:
    /// `2026-12-02 03:50 UTC`. Text in another shape is shown as it is.
    static func readableDate(_ timestamp: String?) -> String {
        guard let timestamp else { return "-" }
        let characters = Array(timestamp)
        guard characters.count >= 17, characters[10] == "T", characters[13] == ":", timestamp.hasSuffix("Z") else { return timestamp }
        return String(characters[0..<10]) + " " + String(characters[11..<16]) + " UTC"
    }

    /// Rows under a header, each column as wide as its widest cell, two spaces apart; the last
    /// column is not padded (no trailing blanks).
    static func table(header: [String], rows: [[String]]) -> [String] {
        let all = [header] + rows
        var widths = [Int](repeating: 0, count: header.count)
        for row in all {
            for (column, cell) in row.enumerated() where column < widths.count {
                widths[column] = max(widths[column], displayWidth(cell))
            }
        }
        return all.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[column] - displayWidth(cell))
            }.joined(separator: "  ")
        }
    }

    /// Label/value lines for one record (`show`), the labels padded to one width.
    static func record(_ fields: [(String, String)]) -> [String] {
        let width = fields.map { displayWidth($0.0) }.max() ?? 0
        return fields.map { label, value in label + String(repeating: " ", count: width - displayWidth(label)) + "  " + value }
    }

    /// Prints lines on standard output.
    static func print(_ lines: [String]) {
        for line in lines { Console.line(line) }
    }

    /// Columns a text takes in a terminal: one per character (grapheme cluster), two for the wide
    /// East Asian ranges and emoji, none for control characters.
    static func displayWidth(_ text: String) -> Int {
        text.reduce(0) { width, character in
            guard let scalar = character.unicodeScalars.first else { return width }
            switch scalar.value {
            case 0..<0x20, 0x7F..<0xA0: return width
            case 0x1100...0x115F, 0x2E80...0xA4CF, 0xAC00...0xD7A3, 0xF900...0xFAFF, 0xFE30...0xFE4F, 0xFF00...0xFF60, 0xFFE0...0xFFE6,
                0x1F300...0x1F64F, 0x1F900...0x1F9FF, 0x20000...0x3FFFD:
                return width + 2
            default: return width + 1
            }
        }
    }
}

/// A progress bar on standard error, drawn only when standard error is a terminal: scripts and
/// logs that capture standard error get no bar and no carriage returns.
///
/// With a known total it draws `[#######-------]  45%  4,500/10,000 items`; without one, a
/// running count. Redrawn at most every 100 ms; ``finish()`` erases it.
final class ProgressBar: Sendable {
    /// Whether a bar would be drawn at all (standard error is a terminal).
    static var isEnabled: Bool { isatty(STDERR_FILENO) == 1 }

    private struct State {
        var done = 0
        var total: Int?
        var lastDrawn: ContinuousClock.Instant?
        var drawn = false
    }

    private let label: String
    private let unit: String
    private let enabled: Bool
    private let state = Mutex(State())

    /// - Parameters:
    ///   - label: what is being done (`offboarding 0195…`).
    ///   - unit: what is counted (`items`, `tenants`).
    ///   - enabled: draw it; by default only when standard error is a terminal.
    init(_ label: String, unit: String, total: Int? = nil, enabled: Bool = ProgressBar.isEnabled) {
        self.label = label
        self.unit = unit
        self.enabled = enabled
        state.withLock { $0.total = total }
    }

    /// Sets how much is done (and the total, once it is known).
    func update(done: Int, total: Int? = nil) {
        guard enabled else { return }
        let line: String? = state.withLock { state in
            state.done = done
            if let total { state.total = total }
            let now = ContinuousClock.now
            if let last = state.lastDrawn, now - last < .milliseconds(100), done != state.total { return nil }
            state.lastDrawn = now
            state.drawn = true
            return Self.render(label: label, unit: unit, done: state.done, total: state.total)
        }
        if let line { write("\r\u{1B}[2K" + line) }
    }

    /// Erases the bar (the result follows on standard output).
    func finish() {
        guard enabled, state.withLock({ $0.drawn }) else { return }
        write("\r\u{1B}[2K")
    }

    /// One line of the bar, 30 cells wide when the total is known.
    static func render(label: String, unit: String, done: Int, total: Int?) -> String {
        guard let total, total > 0 else { return "\(label): \(grouped(done)) \(unit)" }
        let fraction = min(max(Double(done) / Double(total), 0), 1)
        let cells = 30
        let filled = Int((fraction * Double(cells)).rounded(.down))
        let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: cells - filled)
        let percent = Int((fraction * 100).rounded(.down))
        return "\(label) [\(bar)] \(String(repeating: " ", count: 3 - String(percent).count))\(percent)%  \(grouped(done))/\(grouped(total)) \(unit)"
    }

    /// `12345` → `12,345`.
    static func grouped(_ value: Int) -> String {
        let digits = String(value.magnitude)
        var result = ""
        for (index, digit) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { result.append(",") }
            result.append(digit)
        }
        return (value < 0 ? "-" : "") + result
    }

    private func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}
