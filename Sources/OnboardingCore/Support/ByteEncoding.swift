import Foundation

/// Hex and base64url without Foundation's formatting: `String(format:)` per byte and three
/// `replacingOccurrences` passes cost more than the hashing they surround, on every API-key check.
public enum ByteEncoding {
    private static let hexDigits = Array("0123456789abcdef".utf8)
    private static let base64URLAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

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
        let input = Array(bytes)
        var output: [UInt8] = []
        output.reserveCapacity((input.count * 4 + 2) / 3)
        var index = 0
        while index + 2 < input.count {
            let chunk = UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8 | UInt32(input[index + 2])
            output.append(base64URLAlphabet[Int(chunk >> 18 & 63)])
            output.append(base64URLAlphabet[Int(chunk >> 12 & 63)])
            output.append(base64URLAlphabet[Int(chunk >> 6 & 63)])
            output.append(base64URLAlphabet[Int(chunk & 63)])
            index += 3
        }
        let rest = input.count - index
        if rest == 1 {
            let chunk = UInt32(input[index]) << 16
            output.append(base64URLAlphabet[Int(chunk >> 18 & 63)])
            output.append(base64URLAlphabet[Int(chunk >> 12 & 63)])
        } else if rest == 2 {
            let chunk = UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8
            output.append(base64URLAlphabet[Int(chunk >> 18 & 63)])
            output.append(base64URLAlphabet[Int(chunk >> 12 & 63)])
            output.append(base64URLAlphabet[Int(chunk >> 6 & 63)])
        }
        return String(decoding: output, as: UTF8.self)
    }

    /// The bytes of base64url text, padded or not (the standard alphabet's `+` and `/` are read
    /// too); `nil` for anything else.
    public static func base64URLDecoded(_ text: some StringProtocol) -> [UInt8]? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64).map { Array($0) }
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
