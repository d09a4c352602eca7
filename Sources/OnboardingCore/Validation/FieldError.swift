/// What is wrong with one field of a request: the field, a stable code and a sentence.
public struct FieldError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable, machine-readable reason.
    public struct Code: RawRepresentable, Sendable, Hashable {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }

        /// The field is absent (or `null`).
        public static let missing = Code(rawValue: "missing")
        /// The field has the wrong JSON type.
        public static let wrongType = Code(rawValue: "wrong-type")
        /// The field is empty after trimming.
        public static let empty = Code(rawValue: "empty")
        /// The field is longer than allowed.
        public static let tooLong = Code(rawValue: "too-long")
        /// The field holds characters it may not hold.
        public static let invalidCharacters = Code(rawValue: "invalid-characters")
        /// The field does not have the required format.
        public static let invalidFormat = Code(rawValue: "invalid-format")
        /// The field is not one this request accepts.
        public static let unknownField = Code(rawValue: "unknown-field")
    }

    /// The field's name as the client sent it (`clientName`).
    public let field: String
    public let code: Code
    /// A sentence saying what is wrong and what is accepted. Never echoes the value itself.
    public let detail: String

    public init(field: String, code: Code, detail: String) {
        self.field = field
        self.code = code
        self.detail = detail
    }

    public var description: String { "\(field): \(detail)" }
}

/// A request whose fields break the rules; every bad field is listed, not just the first.
public struct ValidationError: Error, Sendable, Hashable, CustomStringConvertible {
    public let errors: [FieldError]

    public init(_ errors: [FieldError]) {
        precondition(!errors.isEmpty, "a validation error names at least one field")
        self.errors = errors
    }

    public var description: String { errors.map(\.description).joined(separator: "; ") }
}

/// A field of a JSON request before validation: absent, of the wrong type, or present.
public enum RawField: Sendable, Hashable {
    case missing
    /// Present with another JSON type; the associated value describes it ("a number").
    case wrongType(String)
    case string(String)

    /// The string, or the error for a field that is missing or not a string.
    public func string(field: String) -> Result<String, FieldError> {
        switch self {
        case .missing: .failure(FieldError(field: field, code: .missing, detail: "\(field) is required"))
        case .wrongType(let type): .failure(FieldError(field: field, code: .wrongType, detail: "\(field) must be a string, not \(type)"))
        case .string(let value): .success(value)
        }
    }

    /// Reads field `name` of a JSON object.
    public init(_ object: [String: AttributeValue], _ name: String) {
        switch object[name] {
        case nil, .null?: self = .missing
        case .string(let value)?: self = .string(value)
        case let other?: self = .wrongType(other.typeDescription)
        }
    }
}
