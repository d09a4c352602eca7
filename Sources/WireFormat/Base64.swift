/// The project's one base64 codec (RFC 4648), with both alphabets: standard base64 (`+` `/`,
/// padded; DynamoDB's `B` values, webhook secrets and signatures, Lambda bodies) and base64url
/// (`-` `_`, unpadded; tokens, API keys, cursors, JWT parts). Table-driven, without Foundation.
public enum Base64 {
    /// Which 64 characters, and whether encoding pads with `=`.
    public enum Alphabet: Sendable {
        /// RFC 4648 §4: `A-Z a-z 0-9 + /`, padded with `=` to a multiple of 4 characters.
        case standard
        /// RFC 4648 §5: `A-Z a-z 0-9 - _`, without padding.
        case url

        var characters: [UInt8] {
            switch self {
            case .standard: Base64.standardCharacters
            case .url: Base64.urlCharacters
            }
        }
    }

    private static let standardCharacters = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let urlCharacters = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    /// Character → 6-bit value, 0xFF for a character outside the alphabet.
    private static let standardValues = values(of: standardCharacters)
    private static let urlValues = values(of: urlCharacters)

    private static func values(of characters: [UInt8]) -> [UInt8] {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (value, character) in characters.enumerated() { table[Int(character)] = UInt8(value) }
        return table
    }

    /// The base64 text of `bytes`: padded in the standard alphabet, unpadded in the url one.
    public static func encode(_ bytes: some Collection<UInt8>, alphabet: Alphabet = .standard) -> String {
        String(decoding: encodedBytes(bytes, alphabet: alphabet), as: UTF8.self)
    }

    /// ``encode(_:alphabet:)`` as UTF-8 bytes.
    public static func encodedBytes(_ bytes: some Collection<UInt8>, alphabet: Alphabet = .standard) -> [UInt8] {
        let characters = alphabet.characters
        let pads = alphabet == .standard
        var output: [UInt8] = []
        output.reserveCapacity((bytes.count + 2) / 3 * 4)
        var iterator = bytes.makeIterator()
        while let first = iterator.next() {
            let second = iterator.next()
            let third = second == nil ? nil : iterator.next()
            let chunk = UInt32(first) << 16 | UInt32(second ?? 0) << 8 | UInt32(third ?? 0)
            output.append(characters[Int(chunk >> 18 & 0x3F)])
            output.append(characters[Int(chunk >> 12 & 0x3F)])
            if second != nil {
                output.append(characters[Int(chunk >> 6 & 0x3F)])
            } else if pads {
                output.append(UInt8(ascii: "="))
            }
            if third != nil {
                output.append(characters[Int(chunk & 0x3F)])
            } else if pads {
                output.append(UInt8(ascii: "="))
            }
        }
        return output
    }

    /// The bytes of base64 text in `alphabet`; `nil` for a character outside it, a final group
    /// of one character (6 bits, no whole byte), or wrong padding. `=` padding is optional in
    /// both alphabets, but when present it must complete the last group of 4.
    ///
    /// With `lenient`, padding is refused too, every length decodes, and bits short of a byte at
    /// the end are dropped: any text over the alphabet is some bytes (list cursors, whose every
    /// spelling is a position).
    public static func decode(_ text: some StringProtocol, alphabet: Alphabet, lenient: Bool = false) -> [UInt8]? {
        var utf8 = Array(text.utf8)
        if !lenient {
            // At most two `=`, only where they complete a group of 4.
            var padding = 0
            while utf8.last == UInt8(ascii: "="), padding < 2 {
                utf8.removeLast()
                padding += 1
            }
            guard padding == 0 || (utf8.count + padding) % 4 == 0 else { return nil }
            guard utf8.count % 4 != 1 else { return nil }
        }
        let values = alphabet == .standard ? standardValues : urlValues
        var output: [UInt8] = []
        output.reserveCapacity(utf8.count * 3 / 4)
        var bits: UInt32 = 0
        var bitCount = 0
        for character in utf8 {
            let value = values[Int(character)]
            guard value != 0xFF else { return nil }
            bits = bits << 6 | UInt32(value)
            bitCount += 6
            if bitCount >= 8 {
                bitCount -= 8
                output.append(UInt8(truncatingIfNeeded: bits >> UInt32(bitCount)))
            }
        }
        return output
    }
}
