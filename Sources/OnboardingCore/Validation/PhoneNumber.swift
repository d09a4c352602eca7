/// A phone number in E.164 form: `+`, a country code that does not start with 0, 8–15 digits in all.
///
/// Input may group digits with spaces, dashes, dots and parentheses (`+1 (415) 555-0123`); they
/// are removed and the number is stored normalised (`+14155550123`).
public struct PhoneNumber: Sendable, Hashable, CustomStringConvertible {
    /// The normalised number, `+` and digits only.
    public let e164: String

    public static let minDigits = 8
    public static let maxDigits = 15

    /// Validates field `field` of a request.
    public static func validate(_ raw: RawField, field: String = "clientPhone") -> Result<PhoneNumber, FieldError> {
        let text: String
        switch raw.string(field: field) {
        case .failure(let error): return .failure(error)
        case .success(let string): text = string
        }
        let format = "an E.164 number: + then \(minDigits) to \(maxDigits) digits, e.g. +14155550123"
        let compact = String(String.UnicodeScalarView(text.unicodeScalars.filter { !isSeparator($0) }))
        if compact.isEmpty {
            return .failure(FieldError(field: field, code: .empty, detail: "\(field) must not be empty"))
        }
        guard compact.hasPrefix("+") else {
            return .failure(FieldError(field: field, code: .invalidFormat, detail: "\(field) must start with + and the country code: \(format)"))
        }
        let digits = compact.utf8.dropFirst()
        guard digits.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else {
            return .failure(FieldError(
                field: field, code: .invalidFormat,
                detail: "\(field) may hold only digits after the + (spaces, dashes, dots and parentheses are ignored): \(format)"
            ))
        }
        guard (minDigits...maxDigits).contains(digits.count) else {
            return .failure(FieldError(field: field, code: .invalidFormat, detail: "\(field) has \(digits.count) digits; it must be \(format)"))
        }
        guard digits.first != UInt8(ascii: "0") else {
            return .failure(FieldError(field: field, code: .invalidFormat, detail: "\(field) country codes never start with 0: \(format)"))
        }
        return .success(PhoneNumber(e164: compact))
    }

    private init(e164: String) { self.e164 = e164 }

    /// Rebuilds a number read back from the store, where it was validated on the way in.
    public init(stored e164: String) { self.e164 = e164 }

    /// The number with all but the first two and last two digits hidden (`+12*******90`), for logs.
    public var masked: String { Self.mask(e164) }

    /// Masks any phone-like text for logs: keeps `+`, the first two and the last two digits.
    public static func mask(_ text: String) -> String {
        let characters = Array(text)
        guard characters.count > 5 else { return String(repeating: "*", count: characters.count) }
        let keepStart = characters.first == "+" ? 3 : 2
        return String(characters.prefix(keepStart)) + String(repeating: "*", count: characters.count - keepStart - 2)
            + String(characters.suffix(2))
    }

    public var description: String { masked }

    /// Dashes, dots, parentheses and the Unicode space separators (category Zs), listed out as
    /// the pattern in openapi.yaml lists them.
    private static func isSeparator(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x2D, 0x2E, 0x28, 0x29, 0x20, 0xA0, 0x1680, 0x2000...0x200A, 0x202F, 0x205F, 0x3000: true
        default: false
        }
    }
}
