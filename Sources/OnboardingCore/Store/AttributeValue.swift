/// One attribute of a stored item: the document types both stores share.
///
/// The cases mirror DynamoDB's document types (`S`, `N`, `BOOL`, `NULL`, `L`, `M`) and JSON's
/// values, so an item moves between SQLite, DynamoDB and an HTTP body without losing anything.
/// Numbers keep their decimal text, as DynamoDB's `N` does, so a 20-digit integer or a precise
/// decimal survives the round trip.
///
/// Equality compares strings and map member names by their UTF-8 bytes, as DynamoDB does: NFC
/// `"é"` (U+00E9) and NFD `"e\u{301}"` are equal Swift strings but different values here.
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


extension AttributeValue {
    public static func == (lhs: AttributeValue, rhs: AttributeValue) -> Bool {
        switch (lhs, rhs) {
        case (.string(let lhs), .string(let rhs)): lhs.utf8.elementsEqual(rhs.utf8)
        case (.number(let lhs), .number(let rhs)): lhs.utf8.elementsEqual(rhs.utf8)
        case (.bool(let lhs), .bool(let rhs)): lhs == rhs
        case (.null, .null): true
        case (.list(let lhs), .list(let rhs)): lhs == rhs
        case (.map(let lhs), .map(let rhs)): ByteExact.equal(lhs, rhs)
        default: false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .string(let text):
            hasher.combine(0 as UInt8)
            ByteExact.hash(text, into: &hasher)
        case .number(let text):
            hasher.combine(1 as UInt8)
            ByteExact.hash(text, into: &hasher)
        case .bool(let value):
            hasher.combine(2 as UInt8)
            hasher.combine(value)
        case .null:
            hasher.combine(3 as UInt8)
        case .list(let elements):
            hasher.combine(4 as UInt8)
            hasher.combine(elements)
        case .map(let members):
            // Order-independent, as the members are unordered.
            hasher.combine(5 as UInt8)
            hasher.combine(members.count)
            var combined = 0
            for (name, value) in members {
                var member = Hasher()
                ByteExact.hash(name, into: &member)
                member.combine(value)
                combined ^= member.finalize()
            }
            hasher.combine(combined)
        }
    }
}

/// Comparisons of strings by their UTF-8 bytes, as DynamoDB and SQLite (`BINARY`) compare them.
///
/// Swift's `String` `==` and `Dictionary` lookups use Unicode canonical equivalence: NFC `"é"`
/// and NFD `"e\u{301}"` are the same there, but two different keys, values or attribute names
/// in a store.
public enum ByteExact {
    /// Whether two strings have the same UTF-8 bytes.
    public static func equal(_ lhs: String, _ rhs: String) -> Bool {
        lhs.utf8.elementsEqual(rhs.utf8)
    }

    /// Hashes a string's UTF-8 bytes (and its length, so concatenations do not collide).
    public static func hash(_ text: String, into hasher: inout Hasher) {
        hasher.combine(text.utf8.count)
        for byte in text.utf8 { hasher.combine(byte) }
    }

    /// Whether two attribute maps have the same member names (bytes) with equal values.
    public static func equal(_ lhs: [String: AttributeValue], _ rhs: [String: AttributeValue]) -> Bool {
        guard lhs.count == rhs.count else { return false }
        for (name, value) in lhs {
            guard let other = rhs.valueForExactKey(name), other == value else { return false }
        }
        return true
    }
}

extension Dictionary where Key == String {
    /// The value stored under a key with exactly these UTF-8 bytes.
    ///
    /// A subscript would also find a key that is only canonically equivalent (NFC `"é"` for NFD
    /// `"e\u{301}"`), which DynamoDB treats as another attribute.
    public func valueForExactKey(_ key: String) -> Value? {
        guard let index = index(forKey: key), ByteExact.equal(self[index].key, key) else { return nil }
        return self[index].value
    }
}
