/// One attribute of a stored item: the document types both stores share.
///
/// The cases mirror DynamoDB's document types (`S`, `N`, `BOOL`, `NULL`, `L`, `M`) and JSON's
/// values, so an item moves between SQLite, DynamoDB and an HTTP body without losing anything.
/// Numbers keep their decimal text, as DynamoDB's `N` does, so a 20-digit integer or a precise
/// decimal survives the round trip.
public enum AttributeValue: Sendable, Hashable {
    case string(String)
    /// A number as its decimal text (JSON number syntax), e.g. `"42"`, `"-1.5"`, `"1e3"`.
    case number(String)
    case bool(Bool)
    case null
    case list([AttributeValue])
    case map([String: AttributeValue])

    /// A number attribute from an integer.
    public static func int(_ value: Int) -> AttributeValue { .number(String(value)) }

    /// The string, if this is a string attribute.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The number as an integer, if this is a number attribute holding an integer that fits `Int`.
    public var intValue: Int? {
        if case .number(let text) = self { return Int(text) }
        return nil
    }

    /// The map, if this is a map attribute.
    public var mapValue: [String: AttributeValue]? {
        if case .map(let value) = self { return value }
        return nil
    }

    /// A short name of the value's type, for error messages ("a string", "a number", …).
    public var typeDescription: String {
        switch self {
        case .string: "a string"
        case .number: "a number"
        case .bool: "a boolean"
        case .null: "null"
        case .list: "an array"
        case .map: "an object"
        }
    }
}
