import WireFormat

/// Hex and base64url without Foundation's formatting: `String(format:)` per byte and three
/// `replacingOccurrences` passes cost more than the hashing they surround, on every API-key check.
/// base64url is WireFormat's ``Base64`` (the project's one codec) in its url alphabet.
public enum ByteEncoding {
    private static let hexDigits = Array("0123456789abcdef".utf8)

    /// Lower-case hex, two digits per byte.
    public static func hex(_ bytes: some Sequence<UInt8>) -> String {
        var output: [UInt8] = []
        output.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            output.append(hexDigits[Int(byte >> 4)])
            output.append(hexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// base64url (RFC 4648 §5) without padding.
    public static func base64URL(_ bytes: some Collection<UInt8>) -> String {
        Base64.encode(bytes, alphabet: .url)
    }

    /// The bytes of base64url text, padded or not; `nil` for anything else.
    public static func base64URLDecoded(_ text: some StringProtocol) -> [UInt8]? {
        Base64.decode(text, alphabet: .url)
    }
}

/// Comparing secrets without leaking, through timing, how much of them matched.
public enum ConstantTime {
    /// Whether two byte strings are equal, in time that depends only on their lengths.
    public static func equals(_ lhs: [UInt8], _ rhs: [UInt8]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        var difference: UInt8 = 0
        for (left, right) in zip(lhs, rhs) { difference |= left ^ right }
        return difference == 0
    }
}
