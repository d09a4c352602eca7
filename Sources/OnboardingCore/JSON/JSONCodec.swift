import WireFormat

/// A strict JSON (RFC 8259) reader and writer for ``AttributeValue``.
///
/// Foundation's decoders either stop at the first bad field or turn numbers into `Double`; this one
/// keeps number text exactly (as DynamoDB's `N` does), rejects what RFC 8259 forbids (invalid
/// UTF-8, control characters in strings, lone surrogates, trailing data), rejects duplicate object
/// keys and bounds nesting, and says where the input went wrong.
public enum JSONCodec {
    /// Deepest nesting of arrays and objects accepted; deeper input is rejected, not recursed into.
    public static let maxDepth = 64

    /// Parses one JSON text.
    /// - Throws: ``JSONSyntaxError`` with the byte offset of the problem.
    public static func parse(_ bytes: some Sequence<UInt8>) throws(JSONSyntaxError) -> AttributeValue {
        var work = 0
        return try parse(bytes, streamSafe: false, work: &work)
    }

    /// The most combining characters in a row a string of ``parseUntrusted(_:)`` may hold: the
    /// limit of Unicode's Stream-Safe Text Format (UAX #15), which no real text reaches.
    public static let maxCombiningRun = 30

    /// Parses a client's JSON text (a request body): as ``parse(_:)-(Sequence<UInt8>)``, and every
    /// string, member names included, must be in Unicode's stream-safe form (at most
    /// ``maxCombiningRun`` combining characters in a row). Swift compares and hashes strings by
    /// canonical equivalence, which sorts each run of combining characters: a run of 30,000 took
    /// seconds for every dictionary insert or comparison of the string; capped, it is linear.
    public static func parseUntrusted(_ bytes: some Sequence<UInt8>) throws(JSONSyntaxError) -> AttributeValue {
        var work = 0
        return try parse(bytes, streamSafe: true, work: &work)
    }

    /// The parser with its options, adding to `work` the bytes it scanned, copied and hashed (a
    /// test checks that this grows linearly with the input, without timing anything).
    static func parse(_ bytes: some Sequence<UInt8>, streamSafe: Bool, work: inout Int) throws(JSONSyntaxError) -> AttributeValue {
        let buffer = Array(bytes)
        guard String(validating: buffer, as: UTF8.self) != nil else {
            throw JSONSyntaxError(message: "the body is not valid UTF-8", offset: 0)
        }
        var parser = Parser(bytes: buffer, streamSafe: streamSafe)
        defer { work += buffer.count + parser.work }
        return try parser.parseDocument()
    }

    /// Parses one JSON text given as a string.
    public static func parse(_ text: String) throws(JSONSyntaxError) -> AttributeValue {
        try parse(Array(text.utf8))
    }

    /// Serialises a value as compact JSON; object keys are sorted so equal values give equal text.
    public static func serialize(_ value: AttributeValue) -> String {
        String(decoding: serializeBytes(value), as: UTF8.self)
    }

    /// Serialises a value as compact UTF-8 JSON bytes (what response bodies and the store use),
    /// through WireFormat's ``JSONWriter`` (the project's one JSON writer).
    public static func serializeBytes(_ value: AttributeValue) -> [UInt8] {
        var writer = JSONWriter(reservingCapacity: 256)
        write(value, to: &writer)
        return writer.bytes
    }

    /// Writes a value into a writer (as a member's value, an element, or the whole text).
    public static func write(_ value: AttributeValue, to writer: inout JSONWriter) {
        switch value {
        case .string(let string): writer.string(string)
        case .number(let text): writer.number(text)
        case .bool(let flag): writer.bool(flag)
        case .null: writer.null()
        case .list(let elements):
            writer.beginArray()
            for element in elements { write(element, to: &writer) }
            writer.endArray()
        case .map(let members):
            writer.beginObject()
            // By UTF-8 bytes, as the stores order keys: Swift's `<` on strings orders by canonical
            // equivalence, which is no total order on distinct byte strings (the fuzzer found
            // {"é-":1,"é":2} with NFC and NFD é serialised in either order).
            for member in members.sorted(by: { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }) {
                writer.key(member.key)
                write(member.value, to: &writer)
            }
            writer.endObject()
        }
    }
}

/// Why a JSON text could not be read, and where.
public struct JSONSyntaxError: Error, Sendable, Hashable, CustomStringConvertible {
    public let message: String
    /// Byte offset into the input.
    public let offset: Int

    public var description: String { "\(message) (at byte \(offset))" }
}

private struct Parser {
    let bytes: [UInt8]
    var index = 0
    var depth = 0
    /// Whether strings must be stream-safe (``JSONCodec/parseUntrusted(_:)``).
    let streamSafe: Bool
    /// Bytes copied into strings and numbers, and hashed for duplicate keys (the scan itself is
    /// `index`): every step costs at most a constant per input byte.
    var work = 0

    init(bytes: [UInt8], streamSafe: Bool = false) {
        self.bytes = bytes
        self.streamSafe = streamSafe
    }

    mutating func parseDocument() throws(JSONSyntaxError) -> AttributeValue {
        skipWhitespace()
        guard index < bytes.count else { throw error("the body is empty") }
        let value = try parseValue()
        skipWhitespace()
        guard index == bytes.count else { throw error("unexpected data after the JSON value") }
        return value
    }

    func error(_ message: String) -> JSONSyntaxError { JSONSyntaxError(message: message, offset: index) }

    mutating func skipWhitespace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    mutating func parseValue() throws(JSONSyntaxError) -> AttributeValue {
        guard index < bytes.count else { throw error("unexpected end of JSON") }
        switch bytes[index] {
        case UInt8(ascii: "{"): return try parseObject()
        case UInt8(ascii: "["): return try parseArray()
        case UInt8(ascii: "\""): return .string(try parseString())
        case UInt8(ascii: "t"): try expectLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try expectLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try expectLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try parseNumber())
        default: throw error("unexpected character '\(Character(Unicode.Scalar(bytes[index])))'")
        }
    }

    mutating func expectLiteral(_ literal: StaticString) throws(JSONSyntaxError) {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count else { throw error("unexpected end of JSON") }
        let matches = literal.withUTF8Buffer { expected in
            expected.elementsEqual(bytes[index..<(index + count)])
        }
        guard matches else { throw error("invalid literal") }
        index += count
    }

    mutating func enter() throws(JSONSyntaxError) {
        depth += 1
        guard depth <= JSONCodec.maxDepth else { throw error("nesting deeper than \(JSONCodec.maxDepth) levels") }
    }

    mutating func parseObject() throws(JSONSyntaxError) -> AttributeValue {
        try enter()
        index += 1  // {
        var members: [String: AttributeValue] = [:]
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "}") {
            index += 1
            depth -= 1
            return .map(members)
        }
        while true {
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw error("expected a string key") }
            let keyOffset = index
            let key = try parseString()
            skipWhitespace()
            guard index < bytes.count, bytes[index] == UInt8(ascii: ":") else { throw error("expected ':' after a key") }
            index += 1
            skipWhitespace()
            let value = try parseValue()
            // Hashing the key reads it once (and, stream-safe, its normalisation is linear too).
            work += index - keyOffset
            guard members.updateValue(value, forKey: key) == nil else {
                // The key is quoted at most 100 characters long: an error never echoes a whole body.
                let quoted = key.unicodeScalars.count <= 100 ? key : String(String.UnicodeScalarView(key.unicodeScalars.prefix(100))) + "…"
                throw JSONSyntaxError(message: "duplicate key \"\(quoted)\"", offset: keyOffset)
            }
            skipWhitespace()
            guard index < bytes.count else { throw error("unexpected end of JSON") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            guard bytes[index] == UInt8(ascii: "}") else { throw error("expected ',' or '}'") }
            index += 1
            depth -= 1
            return .map(members)
        }
    }

    mutating func parseArray() throws(JSONSyntaxError) -> AttributeValue {
        try enter()
        index += 1  // [
        var elements: [AttributeValue] = []
        skipWhitespace()
        if index < bytes.count, bytes[index] == UInt8(ascii: "]") {
            index += 1
            depth -= 1
            return .list(elements)
        }
        while true {
            skipWhitespace()
            elements.append(try parseValue())
            skipWhitespace()
            guard index < bytes.count else { throw error("unexpected end of JSON") }
            if bytes[index] == UInt8(ascii: ",") {
                index += 1
                continue
            }
            guard bytes[index] == UInt8(ascii: "]") else { throw error("expected ',' or ']'") }
            index += 1
            depth -= 1
            return .list(elements)
        }
    }

    mutating func parseString() throws(JSONSyntaxError) -> String {
        index += 1  // opening quote
        var utf8: [UInt8] = []
        var combiningRun = 0  // combining characters in a row so far (checked when streamSafe)
        while true {
            guard index < bytes.count else { throw error("unterminated string") }
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                work += 2 * utf8.count  // copied, then decoded into the String
                // The input was validated as UTF-8 and escapes append whole scalars.
                return String(decoding: utf8, as: UTF8.self)
            case UInt8(ascii: "\\"):
                index += 1
                guard index < bytes.count else { throw error("unterminated string") }
                let escaped = bytes[index]
                index += 1
                switch escaped {
                case UInt8(ascii: "\""): utf8.append(0x22)
                case UInt8(ascii: "\\"): utf8.append(0x5C)
                case UInt8(ascii: "/"): utf8.append(0x2F)
                case UInt8(ascii: "b"): utf8.append(0x08)
                case UInt8(ascii: "f"): utf8.append(0x0C)
                case UInt8(ascii: "n"): utf8.append(0x0A)
                case UInt8(ascii: "r"): utf8.append(0x0D)
                case UInt8(ascii: "t"): utf8.append(0x09)
                case UInt8(ascii: "u"):
                    let escapeOffset = index - 2
                    let scalar = try parseUnicodeEscape()
                    if streamSafe { try countCombining(scalar, run: &combiningRun, offset: escapeOffset) }
                    UTF8.encode(scalar) { utf8.append($0) }
                    continue
                default:
                    index -= 1
                    throw error("invalid escape sequence")
                }
                combiningRun = 0  // every other escape is an ASCII character
            case 0x00..<0x20:
                throw error("control character in a string (escape it)")
            case 0x80...:
                // A lead byte (the input is valid UTF-8): copy the whole scalar.
                let length = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : 2
                if streamSafe { try countCombining(decodeScalar(length), run: &combiningRun, offset: index) }
                utf8.append(contentsOf: bytes[index..<(index + length)])
                index += length
            default:
                combiningRun = 0
                utf8.append(byte)
                index += 1
            }
        }
    }

    /// The scalar of the `length`-byte UTF-8 sequence at `index` (already validated).
    func decodeScalar(_ length: Int) -> Unicode.Scalar {
        var value = UInt32(bytes[index]) & (length == 2 ? 0x1F : length == 3 ? 0x0F : 0x07)
        for offset in 1..<length { value = value << 6 | (UInt32(bytes[index + offset]) & 0x3F) }
        return Unicode.Scalar(value)!
    }

    /// Counts `scalar` into the run of combining characters (non-starters, UAX #15) it extends or
    /// ends; a run longer than ``JSONCodec/maxCombiningRun`` is refused.
    func countCombining(_ scalar: Unicode.Scalar, run: inout Int, offset: Int) throws(JSONSyntaxError) {
        switch scalar.value {
        case 0x0F73, 0x0F75, 0x0F81:
            // Starters whose canonical decomposition is two non-starters.
            run += 2
        case 0x0344:
            run += 2  // a non-starter decomposing into two
        default:
            if scalar.properties.canonicalCombiningClass == .notReordered {
                run = 0
                return
            }
            run += 1
        }
        guard run <= JSONCodec.maxCombiningRun else {
            throw JSONSyntaxError(
                message: "a string holds more than \(JSONCodec.maxCombiningRun) combining characters in a row (Unicode's stream-safe limit, UAX #15)",
                offset: offset
            )
        }
    }

    mutating func parseHex4() throws(JSONSyntaxError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw error("incomplete \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[index]
            let digit: UInt32
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = UInt32(byte - UInt8(ascii: "0"))
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = UInt32(byte - UInt8(ascii: "a") + 10)
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = UInt32(byte - UInt8(ascii: "A") + 10)
            default: throw error("invalid hex digit in a \\u escape")
            }
            value = value << 4 | digit
            index += 1
        }
        return value
    }

    mutating func parseUnicodeEscape() throws(JSONSyntaxError) -> Unicode.Scalar {
        let first = try parseHex4()
        switch first {
        case 0xD800...0xDBFF:
            guard index + 2 <= bytes.count, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                throw error("a high surrogate must be followed by a low surrogate")
            }
            index += 2
            let second = try parseHex4()
            guard (0xDC00...0xDFFF).contains(second) else { throw error("a high surrogate must be followed by a low surrogate") }
            return Unicode.Scalar(0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))!
        case 0xDC00...0xDFFF:
            throw error("lone low surrogate")
        default:
            return Unicode.Scalar(first)!
        }
    }

    mutating func parseNumber() throws(JSONSyntaxError) -> String {
        let start = index
        if bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard index < bytes.count, isDigit(bytes[index]) else { throw error("invalid number") }
        if bytes[index] == UInt8(ascii: "0") {
            index += 1
            if index < bytes.count, isDigit(bytes[index]) { throw error("numbers cannot have leading zeros") }
        } else {
            skipDigits()
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
            index += 1
            guard index < bytes.count, isDigit(bytes[index]) else { throw error("invalid number") }
            skipDigits()
        }
        if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
            index += 1
            if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, isDigit(bytes[index]) else { throw error("invalid number") }
            skipDigits()
        }
        work += index - start
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    mutating func skipDigits() {
        while index < bytes.count, isDigit(bytes[index]) { index += 1 }
    }
}
