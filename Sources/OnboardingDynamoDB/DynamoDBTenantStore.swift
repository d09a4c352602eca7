import AWSClient
import Foundation
import OnboardingCore
import RequestBudget

/// The single table in DynamoDB (the brief's design): partition key `tenantId`, sort key
/// `resourceKey`, pay-per-request.
///
/// Same semantics as the SQLite store (one conformance suite runs on both): strongly consistent
/// reads, conditions as condition expressions, transactions as `TransactWriteItems`, queries with
/// `begins_with` on the sort key, numbers canonical (``StoreRules``).
///
/// Writes survive lost answers. A write whose answer was lost (a timeout, a dropped connection,
/// a 5xx) is resent by the client, and a resent conditional write can fail its own condition
/// because its first attempt was applied. So every put carries a write token (the attribute
/// ``writeTokenAttribute``, new for every write, never shown to callers) and asks for
/// `ReturnValuesOnConditionCheckFailure: ALL_OLD`: when a condition fails after a lost answer,
/// the store compares the item it is shown with its own intent (its write token; for a delete,
/// the item being gone) and reports the write as done when it was. Transactions carry a
/// `ClientRequestToken`, the same across the client's resends of one attempt and new for each
/// new attempt after a conflict, so real DynamoDB applies a resent one once; the same
/// recognition covers stores that ignore the token (moto).
///
/// Every retry (the client's resends, transaction conflicts, unprocessed batch items) draws on
/// the request's ``RetryBudget``, so retries never nest and never outlive the request's deadline.
public struct DynamoDBTenantStore: TenantStore {
    public let dynamoDB: DynamoDB
    public let table: String

    public init(dynamoDB: DynamoDB, table: String) {
        self.dynamoDB = dynamoDB
        self.table = table
    }

    /// The attribute in which every put stores its write token, so that a resent write can
    /// recognise the item it wrote itself. Stripped from every item read.
    public static let writeTokenAttribute = "_writeToken"

    /// A fresh write token: 96 random bits, base64url.
    static func newWriteToken() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(12)
        for _ in 0..<3 { withUnsafeBytes(of: generator.next() as UInt32) { bytes.append(contentsOf: $0) } }
        return ByteEncoding.base64URL(bytes)
    }

    /// An item read from the table, without the store's own attributes.
    static func readItem(_ item: DynamoDBItem) throws -> Item {
        var item = item
        item.removeValue(forKey: writeTokenAttribute)
        return try Item(dynamoDB: item)
    }

    /// The item to send: the caller's, with this write's token.
    static func itemToWrite(_ item: Item, token: String) -> DynamoDBItem {
        var stored = item.dynamoDB
        stored[writeTokenAttribute] = .s(token)
        return stored
    }

    public func get(_ key: ItemKey) async throws -> Item? {
        try StoreRules.validate(key)
        let output = try await translate(key) {
            try await dynamoDB.getItem(GetItemInput(TableName: table, Key: key.dynamoDB, ConsistentRead: true))
        }
        return try output.Item.map(Self.readItem)
    }

    public func put(_ item: Item, condition: WriteCondition?) async throws {
        let item = try StoreRules.checked(item)
        let condition = try StoreRules.checked(condition)
        var builder = ExpressionBuilder()
        let expression = condition?.expression(&builder)
        let token = Self.newWriteToken()
        try await writeRecognising(item.key, token: token) {
            try await dynamoDB.putItem(PutItemInput(
                TableName: table, Item: Self.itemToWrite(item, token: token), ConditionExpression: expression,
                ExpressionAttributeNames: builder.namesOrNil, ExpressionAttributeValues: builder.valuesOrNil,
                ReturnValuesOnConditionCheckFailure: expression == nil ? nil : "ALL_OLD"
            ))
        }
    }

    /// Runs one write of an item carrying `token`. When its condition fails after an attempt
    /// whose answer was lost, and the item as it was carries `token`, that attempt was applied:
    /// the write is done. (Puts and updates; a delete recognises the item being gone instead.)
    func writeRecognising(_ key: ItemKey, token: String, _ body: () async throws -> Void) async throws {
        do {
            try await translateRecognisable(key, body)
        } catch let failure as RecognisableFailure {
            guard failure.answerLost, case .s(token)? = failure.oldItem?[Self.writeTokenAttribute] else { throw failure.error }
        }
    }

    public func delete(_ key: ItemKey, condition: WriteCondition?) async throws {
        try StoreRules.validate(key)
        let condition = try StoreRules.checked(condition)
        var builder = ExpressionBuilder()
        let expression = condition?.expression(&builder)
        do {
            try await translateRecognisable(key) {
                try await dynamoDB.deleteItem(DeleteItemInput(
                    TableName: table, Key: key.dynamoDB, ConditionExpression: expression,
                    ExpressionAttributeNames: builder.namesOrNil, ExpressionAttributeValues: builder.valuesOrNil,
                    ReturnValuesOnConditionCheckFailure: expression == nil ? nil : "ALL_OLD"
                ))
            }
        } catch let failure as RecognisableFailure {
            // The condition failed after an attempt whose answer was lost, and the item is gone:
            // the lost attempt deleted it (or another writer did; either way what the caller
            // asked for holds: the item it saw no longer exists).
            guard failure.answerLost, failure.oldItem == nil else { throw failure.error }
        }
    }

    public func transact(_ writes: [TransactionWrite]) async throws {
        let writes = try StoreRules.checked(writes)
        // One token for every put of this transaction: one of them found carrying it proves the
        // whole transaction was applied (transactions are all or nothing).
        let token = Self.newWriteToken()
        let items: [TransactWriteItem] = writes.map { write in
            var builder = ExpressionBuilder()
            switch write {
            case .put(let item, let condition):
                let expression = condition?.expression(&builder)
                return .put(.init(
                    TableName: table, Item: Self.itemToWrite(item, token: token), ConditionExpression: expression,
                    ExpressionAttributeNames: builder.namesOrNil, ExpressionAttributeValues: builder.valuesOrNil,
                    ReturnValuesOnConditionCheckFailure: expression == nil ? nil : "ALL_OLD"
                ))
            case .delete(let key, let condition):
                let expression = condition?.expression(&builder)
                return .delete(.init(
                    TableName: table, Key: key.dynamoDB, ConditionExpression: expression,
                    ExpressionAttributeNames: builder.namesOrNil, ExpressionAttributeValues: builder.valuesOrNil,
                    ReturnValuesOnConditionCheckFailure: expression == nil ? nil : "ALL_OLD"
                ))
            case .conditionCheck(let key, let condition):
                let expression = condition.expression(&builder)
                return .conditionCheck(.init(
                    TableName: table, Key: key.dynamoDB, ConditionExpression: expression,
                    ExpressionAttributeNames: builder.namesOrNil, ExpressionAttributeValues: builder.valuesOrNil
                ))
            case .update(let key, let set, let add, let condition):
                // An update carries the transaction's token too: found on its item, it proves
                // the transaction was applied, as a put's does.
                let updateExpression = Self.updateExpression(set: set, add: add, token: token, &builder)
                let expression = condition?.expression(&builder)
                return .update(.init(
                    TableName: table, Key: key.dynamoDB, UpdateExpression: updateExpression, ConditionExpression: expression,
                    ExpressionAttributeNames: builder.namesOrNil, ExpressionAttributeValues: builder.valuesOrNil,
                    ReturnValuesOnConditionCheckFailure: expression == nil ? nil : "ALL_OLD"
                ))
            }
        }
        // Transactions touching the same items at the same time cancel each other
        // (`TransactionConflict`); that is retried here, within the request's budget, as SQLite
        // would simply have waited. Each new attempt is a new transaction with a new token; the
        // client's resends of one attempt keep its token (DynamoDB applies it once in 10 minutes).
        try await RetryBudget.withCurrent { budget in
            var attempt = 0
            var answerLost = false
            while true {
                attempt += 1
                let input = TransactWriteItemsInput(TransactItems: items, ClientRequestToken: UUID().uuidString)
                do {
                    try await translateRecognisable(writes[0].key) { try await dynamoDB.transactWriteItems(input) }
                    return
                } catch let conflict as TransactionConflict {
                    answerLost = answerLost || conflict.answerLost
                    guard let delay = budget.nextRetryDelay(attempt: attempt, base: conflict.retryBase(dynamoDB.client.retryPolicy), cap: dynamoDB.client.retryPolicy.cap) else {
                        throw StoreError(.unavailable, "the transaction could not be applied within the request's retry budget: \(conflict.message)")
                    }
                    try await Task.sleep(for: delay)
                } catch let failure as RecognisableFailure {
                    if (answerLost || failure.answerLost) && Self.wasApplied(writes, token: token, reasons: failure.reasons) { return }
                    throw failure.error
                }
            }
        }
    }

    /// Whether a transaction canceled on conditions after a lost answer is in fact the lost
    /// attempt's own success: one of its puts or updates whose condition failed is there carrying
    /// this transaction's token, or every failed condition is a delete whose item is gone.
    ///
    /// An update whose condition still holds on the resend says nothing (reason `None`); a
    /// transaction made only of such updates cannot be recognised here, which is why callers
    /// pair a counter's update with a write whose condition the first attempt makes fail (the
    /// key's put on `itemNotExists`, its delete on `itemExists`).
    static func wasApplied(_ writes: [TransactionWrite], token: String, reasons: [DynamoDBError.CancellationReason]) -> Bool {
        guard reasons.count == writes.count else { return false }
        var sawPut = false
        var deletesGone = true
        for (write, reason) in zip(writes, reasons) where reason.Code == "ConditionalCheckFailed" {
            switch write {
            case .put, .update:
                if case .s(token)? = reason.Item?[writeTokenAttribute] { return true }
                sawPut = true
            case .delete:
                if reason.Item != nil { deletesGone = false }
            case .conditionCheck:
                return false
            }
        }
        return !sawPut && deletesGone && reasons.contains { $0.Code == "ConditionalCheckFailed" }
    }

    /// A transaction canceled without any condition failing: a conflict with another
    /// transaction, or throttling; worth a new attempt.
    private struct TransactionConflict: Error {
        let message: String
        let throttled: Bool
        let answerLost: Bool

        func retryBase(_ policy: RetryPolicy) -> Duration { policy.base(throttled: throttled) }
    }

    /// A condition failed: the store's error for the caller, and what DynamoDB showed of the
    /// items, so that a write whose earlier answer was lost can recognise its own success.
    private struct RecognisableFailure: Error {
        let error: StoreError
        let answerLost: Bool
        /// A single write's item as it was (`ALL_OLD`).
        let oldItem: DynamoDBItem?
        /// A transaction's reasons, one per write.
        let reasons: [DynamoDBError.CancellationReason]
    }

    public func query(_ query: ItemQuery) async throws -> ItemPage {
        try StoreRules.validate(query)
        var builder = ExpressionBuilder()
        var expression = "\(builder.name(KeyAttribute.tenantId)) = \(builder.value(.s(query.tenantId)))"
        if !query.prefix.isEmpty {
            expression += " AND begins_with(\(builder.name(KeyAttribute.resourceKey)), \(builder.value(.s(query.prefix))))"
        }
        // One item more than asked tells whether another page exists, as in the SQLite store.
        // DynamoDB may stop early (at 1 MB read, or with an empty page and a LastEvaluatedKey):
        // then it is asked again from where it stopped until the page is full or the partition
        // read.
        var items: [Item] = []
        var exclusiveStart = query.exclusiveStartKey?.dynamoDB
        var more = false
        repeat {
            let input = QueryInput(
                TableName: table, KeyConditionExpression: expression,
                ExpressionAttributeNames: builder.namesOrNil, ExpressionAttributeValues: builder.valuesOrNil,
                Limit: query.limit + 1 - items.count, ExclusiveStartKey: exclusiveStart,
                ScanIndexForward: query.ascending, ConsistentRead: true
            )
            let output = try await translate(ItemKey(tenantId: query.tenantId, resourceKey: query.prefix)) {
                try await dynamoDB.query(input)
            }
            items += try (output.Items ?? []).map(Self.readItem)
            exclusiveStart = output.LastEvaluatedKey
            more = exclusiveStart != nil
        } while more && items.count <= query.limit
        if items.count > query.limit {
            let page = Array(items.prefix(query.limit))
            return ItemPage(items: page, lastEvaluatedKey: page.last?.key)
        }
        return ItemPage(items: items, lastEvaluatedKey: nil)
    }

    public func queryListIndex(_ query: ListIndexQuery) async throws -> [Item] {
        try StoreRules.validate(query)
        var builder = ExpressionBuilder()
        var expression = "\(builder.name(ListIndex.shardAttribute)) = \(builder.value(.s(query.shard)))"
        if let start = query.exclusiveStartKey {
            expression += " AND \(builder.name(ListIndex.keyAttribute)) \(query.ascending ? ">" : "<") \(builder.value(.s(start)))"
        }
        var items: [Item] = []
        var exclusiveStart: DynamoDBItem?
        // A global secondary index is read eventually consistently; pages of 1 MB are followed.
        repeat {
            let input = QueryInput(
                TableName: table, IndexName: DynamoDBTable.tenantIndex, KeyConditionExpression: expression,
                ExpressionAttributeNames: builder.namesOrNil, ExpressionAttributeValues: builder.valuesOrNil,
                Limit: query.limit - items.count, ExclusiveStartKey: exclusiveStart, ScanIndexForward: query.ascending
            )
            let output = try await translate(ItemKey(tenantId: query.shard, resourceKey: query.shard)) { try await dynamoDB.query(input) }
            items += try (output.Items ?? []).map(Self.readItem)
            exclusiveStart = output.LastEvaluatedKey
        } while exclusiveStart != nil && items.count < query.limit
        return items
    }

    public func checkHealth() async throws {
        _ = try await get(ItemKey(tenantId: "_system", resourceKey: "HEALTH#probe"))
    }

    /// Runs a DynamoDB call and turns its errors into the store contract's.
    @discardableResult
    func translate<T>(_ key: ItemKey, _ body: () async throws -> T) async throws -> T {
        do {
            return try await translateRecognisable(key, body)
        } catch let failure as RecognisableFailure {
            throw failure.error
        }
    }

    /// ``translate(_:_:)``, but a failed condition is thrown as a ``RecognisableFailure`` that
    /// carries what DynamoDB showed of the items, for the write to recognise its own success.
    @discardableResult
    private func translateRecognisable<T>(_ key: ItemKey, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as DynamoDBError {
            switch error.code {
            case .conditionalCheckFailed:
                throw RecognisableFailure(error: StoreError.conditionFailed(key), answerLost: error.answerLost, oldItem: error.oldItem, reasons: [])
            case .transactionCanceled:
                let reasons = error.cancellationReasons.map { reason -> StoreError.CancellationReason in
                    switch reason.Code {
                    case nil, "None"?: .none
                    case "ConditionalCheckFailed"?: .conditionFailed
                    case let code?: .other(code)
                    }
                }
                let codes = Set(error.cancellationReasons.compactMap(\.Code))
                if codes.contains("ValidationError") {
                    // Not a conflict: the request itself is wrong and would fail again.
                    let detail = error.cancellationReasons.first { $0.Code == "ValidationError" }?.Message ?? error.message
                    throw StoreError.invalidRequest("DynamoDB rejected the transaction: \(detail)")
                }
                guard reasons.contains(.conditionFailed) else {
                    let throttled = !codes.isDisjoint(with: ["ThrottlingError", "ProvisionedThroughputExceeded", "RequestLimitExceeded"])
                    guard throttled || codes.contains("TransactionConflict") || codes.isEmpty else {
                        throw StoreError(.unavailable, "DynamoDB canceled the transaction: \(error.message)")
                    }
                    throw TransactionConflict(message: error.message, throttled: throttled, answerLost: error.answerLost)
                }
                throw RecognisableFailure(
                    error: StoreError(.transactionCanceled, "a condition of the transaction does not hold", cancellationReasons: reasons),
                    answerLost: error.answerLost, oldItem: nil, reasons: error.cancellationReasons
                )
            case .validation:
                throw StoreError.invalidRequest("DynamoDB rejected the request: \(error.message)")
            case .resourceNotFound:
                throw StoreError(.unavailable, "the DynamoDB table \(table) does not exist (create it with `onboard table create --table \(table)`)")
            default:
                throw StoreError(.unavailable, "\(error)")
            }
        } catch let error as AWSTransportError {
            throw StoreError(.unavailable, "\(error)")
        }
    }
}
