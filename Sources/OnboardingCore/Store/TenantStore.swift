/// The single tenant-partitioned table, as every store implements it.
///
/// The semantics are DynamoDB's, so that SQLite (the default) and DynamoDB (scale-out) are
/// interchangeable and pass one conformance suite:
/// - every operation names the partition (`tenantId`) it touches; nothing scans across tenants;
/// - a write can carry a ``WriteCondition`` evaluated atomically against the current item;
/// - ``transact(_:)`` applies up to ``TransactionLimits/maxWrites`` writes all or nothing;
/// - ``query(_:)`` reads one partition in sort-key order, filtered by a sort-key prefix, in pages.
///
/// A write that returns has been made durable by the store.
public protocol TenantStore: Sendable {
    /// The item with this key, or `nil`.
    func get(_ key: ItemKey) async throws -> Item?

    /// Creates or replaces an item.
    /// - Throws: ``StoreError`` `.conditionFailed` when `condition` does not hold; nothing is written.
    func put(_ item: Item, condition: WriteCondition?) async throws

    /// Deletes an item. Deleting an absent item without a condition succeeds.
    /// - Throws: ``StoreError`` `.conditionFailed` when `condition` does not hold; nothing is deleted.
    func delete(_ key: ItemKey, condition: WriteCondition?) async throws

    /// Sets attributes of an existing item and leaves its other attributes as they are, in one
    /// write (DynamoDB `UpdateItem`; on SQLite one transaction).
    /// - Parameters:
    ///   - set: the attributes to set (at least one; not the key attributes).
    ///   - condition: must hold as well as the item's existence.
    /// - Throws: ``StoreError`` `.conditionFailed` when no item has this key or `condition` does
    ///   not hold; nothing is written (an absent item is never created).
    func update(_ key: ItemKey, set: [String: AttributeValue], condition: WriteCondition?) async throws

    /// Applies every write or none of them.
    /// - Throws: ``StoreError`` `.transactionCanceled` with one reason per write when a condition
    ///   fails; `.invalidRequest` when two writes name the same item or there are too many.
    func transact(_ writes: [TransactionWrite]) async throws

    /// One page of a partition's items whose sort key starts with a prefix, in sort-key order.
    func query(_ query: ItemQuery) async throws -> ItemPage

    /// Items of one shard of the listing index (``ListIndex``), in `listKey` order. The index is
    /// sparse (only items with both index attributes) and may lag writes by a moment (a DynamoDB
    /// global secondary index is eventually consistent).
    func queryListIndex(_ query: ListIndexQuery) async throws -> [Item]

    /// Checks that the store answers (for `GET /health`).
    func checkHealth() async throws
}

extension TenantStore {
    /// Creates or replaces an item unconditionally.
    public func put(_ item: Item) async throws { try await put(item, condition: nil) }

    /// Deletes an item unconditionally.
    public func delete(_ key: ItemKey) async throws { try await delete(key, condition: nil) }
}

/// A condition on the current state of one item, checked atomically with the write it guards.
public indirect enum WriteCondition: Sendable, Hashable {
    /// No item with this key exists (DynamoDB `attribute_not_exists(resourceKey)`).
    case itemNotExists
    /// An item with this key exists.
    case itemExists
    /// The item exists and its attribute `name` equals `value` (optimistic concurrency on `version`).
    case attributeEquals(String, AttributeValue)
    /// Both conditions hold.
    case and(WriteCondition, WriteCondition)
    /// At least one of the conditions holds.
    case or(WriteCondition, WriteCondition)
    /// The item has no attribute `name`, or there is no item (DynamoDB `attribute_not_exists(name)`).
    case attributeNotExists(String)
    /// The item exists and has an attribute `name` (DynamoDB `attribute_exists(name)`).
    case attributeExists(String)
    /// The item exists and its attribute `name` is a number below `value`. An absent attribute,
    /// or one that is not a number, does not satisfy it (as in DynamoDB, where `<` between
    /// different types is false).
    case attributeLessThan(String, Int)

    /// Evaluates the condition against the item as it is now (`nil` when absent).
    public func isSatisfied(by current: Item?) -> Bool {
        switch self {
        case .itemNotExists: current == nil
        case .itemExists: current != nil
        // By bytes, names and values alike, as DynamoDB compares (``ByteExact``).
        case .attributeEquals(let name, let value): current?.attributes.valueForExactKey(name) == value
        case .and(let lhs, let rhs): lhs.isSatisfied(by: current) && rhs.isSatisfied(by: current)
        case .or(let lhs, let rhs): lhs.isSatisfied(by: current) || rhs.isSatisfied(by: current)
        case .attributeNotExists(let name): current?.attributes.valueForExactKey(name) == nil
        case .attributeExists(let name): current?.attributes.valueForExactKey(name) != nil
        case .attributeLessThan(let name, let bound):
            if case .number(let text)? = current?.attributes.valueForExactKey(name),
                let canonical = StoreRules.canonicalNumber(text)
            {
                StoreRules.compareCanonicalNumbers(canonical, String(bound)) < 0
            } else {
                false
            }
        }
    }
}

/// One write inside a transaction.
public enum TransactionWrite: Sendable, Hashable {
    case put(Item, condition: WriteCondition?)
    case delete(ItemKey, condition: WriteCondition?)
    /// Writes nothing; only requires `condition` to hold for the item.
    case conditionCheck(ItemKey, condition: WriteCondition)
    /// Changes attributes of an existing item and leaves the others as they are, like
    /// ``TenantStore/update(_:set:condition:)``: sets the attributes in `set`, and adds each
    /// number in `add` to its attribute (an absent attribute counts as 0; DynamoDB
    /// `SET n = if_not_exists(n, 0) + d`). At least one attribute, no name in both. The item
    /// must exist as well as `condition` hold; an absent item is never created.
    case update(ItemKey, set: [String: AttributeValue], add: [String: Int] = [:], condition: WriteCondition?)

    /// The key of the item this write touches.
    public var key: ItemKey {
        switch self {
        case .put(let item, _): item.key
        case .delete(let key, _), .conditionCheck(let key, _), .update(let key, _, _, _): key
        }
    }

    /// The condition the write is made under (for an update, as given: without the item's existence).
    public var condition: WriteCondition? {
        switch self {
        case .put(_, let condition), .delete(_, let condition), .update(_, _, _, let condition): condition
        case .conditionCheck(_, let condition): condition
        }
    }
}

/// Limits every store enforces, so that code tested on SQLite also runs on DynamoDB.
public enum TransactionLimits {
    /// DynamoDB's `TransactWriteItems` limit.
    public static let maxWrites = 100
}

/// A read of one partition: the items whose sort key starts with `prefix`, in sort-key order.
public struct ItemQuery: Sendable, Hashable {
    /// The partition to read.
    public var tenantId: String
    /// Only sort keys starting with this prefix (empty: the whole partition).
    public var prefix: String
    /// At most this many items per page (1...1000).
    public var limit: Int
    /// Continue after this key: the `lastEvaluatedKey` of the previous page.
    public var exclusiveStartKey: ItemKey?
    /// Ascending sort-key order when `true`, descending when `false`.
    public var ascending: Bool

    public init(tenantId: String, prefix: String, limit: Int = 100, exclusiveStartKey: ItemKey? = nil, ascending: Bool = true) {
        self.tenantId = tenantId
        self.prefix = prefix
        self.limit = limit
        self.exclusiveStartKey = exclusiveStartKey
        self.ascending = ascending
    }

    /// The largest page a store serves.
    public static let maxLimit = 1000
}

/// One page of a query.
public struct ItemPage: Sendable, Hashable {
    public var items: [Item]
    /// The key to pass as `exclusiveStartKey` for the next page; `nil` on the last page.
    public var lastEvaluatedKey: ItemKey?

    public init(items: [Item], lastEvaluatedKey: ItemKey?) {
        self.items = items
        self.lastEvaluatedKey = lastEvaluatedKey
    }
}

/// The listing index of the single table: a sparse index over items carrying the attributes
/// `listShard` (`TENANTS#0` … `TENANTS#f`) and `listKey` (sorted within a shard). Writes are
/// spread over 16 shards so that a burst of onboardings never lands on one hot index partition;
/// a listing merges the shards. DynamoDB: a global secondary index; SQLite: a partial index.
public enum ListIndex {
    public static let shardAttribute = "listShard"
    public static let keyAttribute = "listKey"
    /// The shards' names: `TENANTS#` and one hex digit.
    public static let shards: [String] = "0123456789abcdef".map { "TENANTS#\($0)" }
}

/// A read of one listing-index shard.
public struct ListIndexQuery: Sendable, Hashable {
    public var shard: String
    /// Continue after (ascending) or before (descending) this `listKey`.
    public var exclusiveStartKey: String?
    public var limit: Int
    public var ascending: Bool

    public init(shard: String, exclusiveStartKey: String? = nil, limit: Int, ascending: Bool = true) {
        self.shard = shard
        self.exclusiveStartKey = exclusiveStartKey
        self.limit = limit
        self.ascending = ascending
    }
}
