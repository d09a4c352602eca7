import Foundation
import WireFormat

/// A DynamoDB attribute value in the JSON protocol's typed form (`{"S": "x"}`, `{"N": "1"}`, …).
public indirect enum DynamoDBValue: Sendable, Hashable, Codable {
    case s(String)
    /// A number as its decimal text, as DynamoDB sends it.
    case n(String)
    case b([UInt8])
    case bool(Bool)
    case null
    case l([DynamoDBValue])
    case m([String: DynamoDBValue])
    case ss([String])
    case ns([String])
    case bs([[UInt8]])

    private enum Tag: String, CodingKey {
        case s = "S", n = "N", b = "B", bool = "BOOL", null = "NULL", l = "L", m = "M", ss = "SS", ns = "NS", bs = "BS"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Tag.self)
        guard let tag = container.allKeys.first, container.allKeys.count == 1 else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "an attribute value has exactly one type tag"))
        }
        switch tag {
        case .s: self = .s(try container.decode(String.self, forKey: tag))
        case .n: self = .n(try container.decode(String.self, forKey: tag))
        case .b: self = .b(try Self.bytes(container.decode(String.self, forKey: tag), decoder))
        case .bool: self = .bool(try container.decode(Bool.self, forKey: tag))
        case .null: self = .null
        case .l: self = .l(try container.decode([DynamoDBValue].self, forKey: tag))
        case .m: self = .m(try container.decode([String: DynamoDBValue].self, forKey: tag))
        case .ss: self = .ss(try container.decode([String].self, forKey: tag))
        case .ns: self = .ns(try container.decode([String].self, forKey: tag))
        case .bs: self = .bs(try container.decode([String].self, forKey: tag).map { try Self.bytes($0, decoder) })
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Tag.self)
        switch self {
        case .s(let value): try container.encode(value, forKey: .s)
        case .n(let value): try container.encode(value, forKey: .n)
        case .b(let value): try container.encode(Base64.encode(value), forKey: .b)
        case .bool(let value): try container.encode(value, forKey: .bool)
        case .null: try container.encode(true, forKey: .null)
        case .l(let value): try container.encode(value, forKey: .l)
        case .m(let value): try container.encode(value, forKey: .m)
        case .ss(let value): try container.encode(value, forKey: .ss)
        case .ns(let value): try container.encode(value, forKey: .ns)
        case .bs(let value): try container.encode(value.map { Base64.encode($0) }, forKey: .bs)
        }
    }

    private static func bytes(_ base64: String, _ decoder: any Decoder) throws -> [UInt8] {
        guard let bytes = Base64.decode(base64, alphabet: .standard) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "binary attribute is not base64"))
        }
        return bytes
    }
}

/// An item: attribute name → value.
public typealias DynamoDBItem = [String: DynamoDBValue]

/// Builds condition and key expressions with every name escaped (`#n0`) and every value a
/// placeholder (`:v0`), so reserved words (`status`, `name`, `size`) never break an expression.
public struct ExpressionBuilder: Sendable {
    public private(set) var names: [String: String] = [:]
    public private(set) var values: [String: DynamoDBValue] = [:]
    /// Keyed by UTF-8 bytes: names that differ only by Unicode normalisation are two attributes.
    private var nameIndex: [[UInt8]: String] = [:]

    public init() {}

    /// The placeholder for an attribute name.
    public mutating func name(_ attribute: String) -> String {
        let bytes = Array(attribute.utf8)
        if let placeholder = nameIndex[bytes] { return placeholder }
        let placeholder = "#n\(nameIndex.count)"
        nameIndex[bytes] = placeholder
        names[placeholder] = attribute
        return placeholder
    }

    /// A new placeholder for a value.
    public mutating func value(_ value: DynamoDBValue) -> String {
        let placeholder = ":v\(values.count)"
        values[placeholder] = value
        return placeholder
    }

    /// `nil` when empty, as DynamoDB rejects empty maps.
    public var namesOrNil: [String: String]? { names.isEmpty ? nil : names }
    public var valuesOrNil: [String: DynamoDBValue]? { values.isEmpty ? nil : values }
}
