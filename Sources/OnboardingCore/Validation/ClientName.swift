import Foundation

/// A client's display name: trimmed, NFC-normalised, 1–200 characters, no control characters.
///
/// Any script is welcome ("Société Générale", "株式会社", "Ελληνικά"); what is refused is what
/// breaks logs, terminals and HTML or spoofs text direction: C0/C1 control characters, line and
/// paragraph separators, Unicode noncharacters, and the bidirectional embedding, override and
/// isolate controls (U+202A–U+202E, U+2066–U+2069).
public struct ClientName: Sendable, Hashable, CustomStringConvertible {
    public let value: String

    /// Most characters (grapheme clusters) a name may have.
    public static let maxCharacters = 200
    /// Most UTF-8 bytes a name may have, so a few characters carrying hundreds of combining
    /// marks cannot grow an item without bound.
    public static let maxBytes = 800

    /// Validates field `field` of a request.
    public static func validate(_ raw: RawField, field: String = "clientName") -> Result<ClientName, FieldError> {
        let text: String
        switch raw.string(field: field) {
        case .failure(let error): return .failure(error)
        case .success(let string): text = string
        }
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines).precomposedStringWithCanonicalMapping
        if trimmed.isEmpty {
            return .failure(FieldError(field: field, code: .empty, detail: "\(field) must not be empty"))
        }
        if let bad = trimmed.unicodeScalars.first(where: isForbidden) {
            let code = "U+" + String(bad.value, radix: 16, uppercase: true).leftPadded(to: 4)
            return .failure(FieldError(
                field: field, code: .invalidCharacters,
                detail: "\(field) must not contain control or text-direction characters (found \(code))"
            ))
        }
        if trimmed.count > maxCharacters || trimmed.utf8.count > maxBytes {
            return .failure(FieldError(
                field: field, code: .tooLong,
                detail: "\(field) must have at most \(maxCharacters) characters (\(maxBytes) bytes in UTF-8)"
            ))
        }
        return .success(ClientName(value: trimmed))
    }

    private init(value: String) { self.value = value }

    /// Rebuilds a name read back from the store, where it was validated on the way in.
    public init(stored value: String) { self.value = value }

    public var description: String { value }

    private static func isForbidden(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.properties.generalCategory {
        case .control, .lineSeparator, .paragraphSeparator, .surrogate: return true
        default: break
        }
        if scalar.properties.isNoncharacterCodePoint { return true }
        switch scalar.value {
        case 0x202A...0x202E, 0x2066...0x2069: return true
        default: return false
        }
    }
}

extension String {
    func leftPadded(to width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}
