/// The project's one JSON writer: request bodies to AWS, response bodies, stored documents, log
/// lines and CLI output all come out of it (``JSONCodec`` writes its values through it).
///
/// It appends to a byte array and never goes through Foundation (`JSONEncoder` cost more than the
/// whole rest of a DynamoDB request's preparation). The caller writes a well-formed sequence
/// (`beginObject`, `key`, value, …, `endObject`); commas are placed for it. Strings are escaped
/// as RFC 8259 requires (the quote, the backslash and the control characters; `\n`, `\t` and the
/// other short forms where JSON has them) and otherwise copied as UTF-8.
public struct JSONWriter: Sendable {
    /// The text written so far (UTF-8).
    public private(set) var bytes: [UInt8] = []
    private var needsComma = false

    /// A writer whose buffer first holds `capacity` bytes (it grows as needed).
    public init(reservingCapacity capacity: Int = 512) {
        bytes.reserveCapacity(capacity)
    }

    public mutating func beginObject() {
        separateValue()
        bytes.append(UInt8(ascii: "{"))
        needsComma = false
    }

    public mutating func endObject() {
        bytes.append(UInt8(ascii: "}"))
        needsComma = true
    }

    public mutating func beginArray() {
        separateValue()
        bytes.append(UInt8(ascii: "["))
        needsComma = false
    }

    public mutating func endArray() {
        bytes.append(UInt8(ascii: "]"))
        needsComma = true
    }

    /// An object member's name; the value written next belongs to it.
    public mutating func key(_ name: String) {
        separateValue()
        appendString(name)
        bytes.append(UInt8(ascii: ":"))
        needsComma = false
    }

    public mutating func string(_ value: String) {
        separateValue()
        appendString(value)
        needsComma = true
    }

    public mutating func bool(_ value: Bool) {
        separateValue()
        bytes.append(contentsOf: value ? "true".utf8 : "false".utf8)
        needsComma = true
    }

    public mutating func null() {
        separateValue()
        bytes.append(contentsOf: "null".utf8)
        needsComma = true
    }

    public mutating func int(_ value: Int) {
        separateValue()
        bytes.append(contentsOf: String(value).utf8)
        needsComma = true
    }

    /// A number given as its JSON text (`-12.5e3`), written as it is: the caller vouches for its
    /// syntax (``JSONCodec`` keeps number text exactly as parsed or made).
    public mutating func number(_ text: String) {
        separateValue()
        bytes.append(contentsOf: text.utf8)
        needsComma = true
    }

    /// A member whose value is a string, skipped when `nil`.
    public mutating func field(_ name: String, _ value: String?) {
        guard let value else { return }
        key(name)
        string(value)
    }

    public mutating func field(_ name: String, _ value: Bool?) {
        guard let value else { return }
        key(name)
        bool(value)
    }

    public mutating func field(_ name: String, _ value: Int?) {
        guard let value else { return }
        key(name)
        int(value)
    }

    /// A member whose value is an object of strings, skipped when `nil`.
    public mutating func field(_ name: String, _ value: [String: String]?) {
        guard let value else { return }
        key(name)
        beginObject()
        for (member, text) in value {
            key(member)
            string(text)
        }
        endObject()
    }

    private mutating func separateValue() {
        if needsComma { bytes.append(UInt8(ascii: ",")) }
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    private mutating func appendString(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        let needsEscaping = text.utf8.withContiguousStorageIfAvailable { buffer in
            buffer.contains { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }
        } ?? true
        if !needsEscaping {
            bytes.append(contentsOf: text.utf8)  // nothing to escape: copied in bulk
            bytes.append(UInt8(ascii: "\""))
            return
        }
        // Multi-byte UTF-8 sequences never contain bytes below 0x80: copying byte by byte is safe.
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x08: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x0C: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case 0x00..<0x20:
                bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                bytes.append(Self.hexDigits[Int(byte >> 4)])
                bytes.append(Self.hexDigits[Int(byte & 0x0F)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
