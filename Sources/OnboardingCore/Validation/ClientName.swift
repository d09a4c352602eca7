import Foundation

/// A client's display name: at most 200 characters as sent, trimmed, not blank, no control
/// characters, NFC-normalised.
///
/// Any script is welcome ("Société Générale", "株式会社", "Ελληνικά"); what is refused is what
/// breaks logs, terminals and HTML or spoofs text direction: C0/C1 control characters, line and
/// paragraph separators, and the bidirectional embedding, override and isolate controls
/// (U+202A–U+202E, U+2066–U+2069).
///
/// The rules are exactly those `openapi.yaml` states as JSON Schema (`maxLength` counts code
/// points, white space is listed code point by code point), so a client validating against the document and
/// the server always agree; schemathesis checks both directions in CI.
public struct ClientName: Sendable, Hashable, CustomStringConvertible {
    public let value: String

    /// Most characters (Unicode code points, as JSON Schema counts them) a name may be sent with.
    public static let maxCharacters = 200

    /// Validates field `field` of a request.
    public static func validate(_ raw: RawField, field: String = "clientName") -> Result<ClientName, FieldError> {
        let text: String
        switch raw.string(field: field) {
        case .failure(let error): return .failure(error)
        case .success(let string): text = string
        }
        if text.unicodeScalars.count > maxCharacters {
            return .failure(FieldError(field: field, code: .tooLong, detail: "\(field) must have at most \(maxCharacters) characters"))
        }
        let scalars = text.unicodeScalars
        guard let first = scalars.firstIndex(where: { !isWhiteSpace($0) }),
            let last = scalars.lastIndex(where: { !isWhiteSpace($0) })
        else {
            return .failure(FieldError(field: field, code: .empty, detail: "\(field) must not be empty"))
        }
        let trimmed = String(scalars[first...last])
        if let bad = trimmed.unicodeScalars.first(where: isForbidden) {
            let code = "U+" + String(bad.value, radix: 16, uppercase: true).leftPadded(to: 4)
            return .failure(FieldError(
                field: field, code: .invalidCharacters,
                detail: "\(field) must not contain control or text-direction characters (found \(code))"
            ))
        }
        // ASCII text is already in NFC; only other text pays for normalisation.
        let normalised = trimmed.utf8.allSatisfy { $0 < 0x80 } ? trimmed : trimmed.precomposedStringWithCanonicalMapping
        return .success(ClientName(value: normalised))
    }

    private init(value: String) { self.value = value }

    /// Rebuilds a name read back from the store, where it was validated on the way in.
    public init(stored value: String) { self.value = value }

    public var description: String { value }

    /// ECMAScript's `\s` (WhiteSpace and LineTerminator, ECMA-262 §12.2-12.3), listed out so the
    /// pattern in openapi.yaml can list exactly the same code points.
    static func isWhiteSpace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09...0x0D, 0x20, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000, 0xFEFF: true
        default: false
        }
    }

    /// C0 and C1 controls, DEL, line/paragraph separators, bidi embedding/override/isolate.
    static func isForbidden(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F, 0x2028, 0x2029, 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }
}

extension String {
    func leftPadded(to width: Int, with pad: Character = "0") -> String {
        count >= width ? self : String(repeating: pad, count: width - count) + self
    }
}
