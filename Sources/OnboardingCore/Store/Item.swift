/// The primary key of an item in the single table: partition key and sort key.
///
/// `tenantId` is the partition (a tenant's id, or a reserved partition such as `_system` that can
/// never be a UUID); `resourceKey` is the sort key, `resourceType#resourceId`.
///
/// Keys are equal when their UTF-8 bytes are (``ByteExact``), as in DynamoDB and SQLite: keys
/// that differ only by Unicode normalisation name two items.
public struct ItemKey: Sendable, Hashable, CustomStringConvertible {
    public var tenantId: String
    public var resourceKey: String

    public init(tenantId: String, resourceKey: String) {
        self.tenantId = tenantId
        self.resourceKey = resourceKey
    }

    public var description: String { "\(tenantId)/\(resourceKey)" }

    public static func == (lhs: ItemKey, rhs: ItemKey) -> Bool {
        ByteExact.equal(lhs.tenantId, rhs.tenantId) && ByteExact.equal(lhs.resourceKey, rhs.resourceKey)
    }

    public func hash(into hasher: inout Hasher) {
        ByteExact.hash(tenantId, into: &hasher)
        ByteExact.hash(resourceKey, into: &hasher)
    }
}

/// One item of the single table: its key and its other attributes.
///
/// The key attributes are not repeated in `attributes`; a store rejects an item that tries to.
/// Items are equal when their keys and attributes are byte for byte (``ByteExact``).
public struct Item: Sendable, Hashable {
    public var key: ItemKey
    public var attributes: [String: AttributeValue]

    public init(key: ItemKey, attributes: [String: AttributeValue]) {
        self.key = key
        self.attributes = attributes
    }

    public init(tenantId: String, resourceKey: String, attributes: [String: AttributeValue]) {
        self.init(key: ItemKey(tenantId: tenantId, resourceKey: resourceKey), attributes: attributes)
    }

    public subscript(name: String) -> AttributeValue? {
        get { attributes[name] }
        set { attributes[name] = newValue }
    }

    public static func == (lhs: Item, rhs: Item) -> Bool {
        lhs.key == rhs.key && ByteExact.equal(lhs.attributes, rhs.attributes)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(key)
        hasher.combine(AttributeValue.map(attributes))
    }
}

/// The names of the key attributes, the same in every store.
public enum KeyAttribute {
    /// The partition key.
    public static let tenantId = "tenantId"
    /// The sort key.
    public static let resourceKey = "resourceKey"
}
