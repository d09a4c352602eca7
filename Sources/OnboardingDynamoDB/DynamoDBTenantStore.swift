import AWSClient
import Foundation
import OnboardingCore

/// The single table in DynamoDB (the brief's design): partition key `tenantId`, sort key
/// `resourceKey`, pay-per-request.
///
/// Same semantics as the SQLite store (one conformance suite runs on both): strongly consistent
/// reads, conditions as condition expressions, transactions as `TransactWriteItems`, queries with
/// `begins_with` on the sort key, numbers canonical (``StoreRules``).
///
/// A write whose answer was lost (a timeout, a dropped connection, a 500) is retried by the
/// client; transactions carry a `ClientRequestToken`, so a resent one is not applied twice. A
/// resent conditional put can fail its own condition after the first attempt was applied: only
/// the caller can tell its item from another's (``OnboardingService`` does, by content).
public struct DynamoDBTenantStore: TenantStore {
    public let dynamoDB: DynamoDB
    public let table: String

    public init(dynamoDB: DynamoDB, table: String) {
        self.dynamoDB = dynamoDB
        self.table = table
    }

    public func get(_ key: ItemKey) async throws -> Item? {
        try StoreRules.validate(key)
        let output = try await translate(key) {
            try await dynamoDB.getItem(GetItemInput(TableName: table, Key: key.dynamoDB, ConsistentRead: true))
        }
        return try output.Item.map(Item.init(dynamoDB:))
    }

    public func put(_ item: Item, condition: WriteCondition?) async throws {
        let item = try StoreRules.checked(item)
        let condition = try StoreRules.checked(condition)
        var builder = ExpressionBuilder()
        let expression = condition?.expression(&builder)
        try await translate(item.key) {
            try await dynamoDB.putItem(PutItemInput(
                TableName: table, Item: item.dynamoDB, ConditionExpression: expression,
                ExpressionAttributeNames: builder.namesOrNil, ExpressionAttributeValues: builder.valuesOrNil
            ))
        }
    }

    public func delete(_ key: ItemKey, condition: WriteCondition?) async throws {
        try StoreRules.validate(key)
        let condition = try StoreRules.checked(condition)
        var builder = ExpressionBuilder()
        let expression = condition?.expression(&builder)
        try await translate(key) {
            try await dynamoDB.deleteItem(DeleteItemInput(
                TableName: table, Key: key.dynamoDB, ConditionExpression: expression,
                ExpressionAttributeNames: builder.namesOrNil, ExpressionAttributeValues: builder.valuesOrNil
            ))
        }
    }

    public func transact(_ writes: [TransactionWrite]) async throws {
        let writes = try StoreRules.checked(writes)
        let items: [TransactWriteItem] = writes.map { write in
            var builder = ExpressionBuilder()
            switch write {
            case .put(let item, let condition):
                let expression = condition?.expression(&builder)
                return .put(.init(
                    TableName: table, Item: item.dynamoDB, ConditionExpression: expression,
                    ExpressionAttributeNames: builder.namesOrNil, ExpressionAttributeValues: builder.valuesOrNil
                ))
            case .delete(let key, let condition):
                let expression = condition?.expression(&builder)
                return .delete(.init(
                    TableName: table, Key: key.dynamoDB, ConditionExpression: expression,
                    ExpressionAttributeNames: builder.namesOrNil, ExpressionAttributeValues: builder.valuesOrNil
                ))
            case .conditionCheck(let key, let condition):
                let expression = condition.expression(&builder)
                return .conditionCheck(.init(
                    TableName: table, Key: key.dynamoDB, ConditionExpression: expression,
                    ExpressionAttributeNames: builder.namesOrNil, ExpressionAttributeValues: builder.valuesOrNil
                ))
            }
        }
        // The token makes the transaction idempotent when a retry resends it (DynamoDB keeps it
        // for 10 minutes).
        let input = TransactWriteItemsInput(TransactItems: items, ClientRequestToken: UUID().uuidString)
        // Transactions touching the same items at the same time cancel each other
        // (`TransactionConflict`); that is retried here, as SQLite would simply have waited.
        var attempt = 0
        while true {
            attempt += 1
            do {
                try await translate(writes[0].key) { try await dynamoDB.transactWriteItems(input) }
                return
            } catch is TransactionConflict where attempt < dynamoDB.client.retryPolicy.maxAttempts {
                try await Task.sleep(for: dynamoDB.client.retryPolicy.delay(afterAttempt: attempt))
            } catch let conflict as TransactionConflict {
                throw StoreError(.unavailable, "the transaction kept conflicting with others: \(conflict.message)")
            }
        }
    }

    /// A transaction canceled for a reason other than a condition (a conflict, throttling).
    private struct TransactionConflict: Error {
        let message: String
    }

    public func query(_ query: ItemQuery) async throws -> ItemPage {
        try StoreRules.validate(query)
        var builder = ExpressionBuilder()
        var expression = "\(builder.name(KeyAttribute.tenantId)) = \(builder.value(.s(query.tenantId)))"
        if !query.prefix.isEmpty {
            expression += " AND begins_with(\(builder.name(KeyAttribute.resourceKey)), \(builder.value(.s(query.prefix))))"
        }
        // One item more than asked tells whether another page exists, as in the SQLite store.
        let input = QueryInput(
            TableName: table, KeyConditionExpression: expression,
            ExpressionAttributeNames: builder.namesOrNil, ExpressionAttributeValues: builder.valuesOrNil,
            Limit: query.limit + 1, ExclusiveStartKey: query.exclusiveStartKey?.dynamoDB,
            ScanIndexForward: query.ascending, ConsistentRead: true
        )
        let output = try await translate(ItemKey(tenantId: query.tenantId, resourceKey: query.prefix)) {
            try await dynamoDB.query(input)
        }
        let items = try (output.Items ?? []).map(Item.init(dynamoDB:))
        if items.count > query.limit {
            let page = Array(items.prefix(query.limit))
            return ItemPage(items: page, lastEvaluatedKey: page.last?.key)
        }
        // Fewer items but a LastEvaluatedKey: DynamoDB stopped at its 1 MB page size.
        return ItemPage(items: items, lastEvaluatedKey: output.LastEvaluatedKey == nil ? nil : items.last?.key)
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
            items += try (output.Items ?? []).map(Item.init(dynamoDB:))
            exclusiveStart = output.LastEvaluatedKey
        } while exclusiveStart != nil && items.count < query.limit
        return items
    }

    public func checkHealth() async throws {
        _ = try await get(ItemKey(tenantId: "_system", resourceKey: "HEALTH#probe"))
    }

    /// Runs a DynamoDB call and turns its errors into the store contract's.
    @discardableResult
    private func translate<T>(_ key: ItemKey, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as DynamoDBError {
            switch error.code {
            case .conditionalCheckFailed:
                throw StoreError.conditionFailed(key)
            case .transactionCanceled:
                let reasons = error.cancellationReasons.map { reason -> StoreError.CancellationReason in
                    switch reason.Code {
                    case nil, "None"?: .none
                    case "ConditionalCheckFailed"?: .conditionFailed
                    case let code?: .other(code)
                    }
                }
                guard reasons.contains(.conditionFailed) else { throw TransactionConflict(message: error.message) }
                throw StoreError(.transactionCanceled, "a condition of the transaction does not hold", cancellationReasons: reasons)
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
