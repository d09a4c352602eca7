import Foundation
import RequestBudget

/// DynamoDB's JSON 1.0 API: the operations this project uses, typed.
public struct DynamoDB: Sendable {
    public let client: AWSClient
    /// The service endpoint (`https://dynamodb.<region>.amazonaws.com` unless configured).
    public let endpoint: String

    public init(client: AWSClient, endpoint: String? = nil) {
        self.client = client
        self.endpoint = endpoint ?? "https://dynamodb.\(client.region).amazonaws.com"
    }

    /// One operation: encodes the input, calls, decodes the output; errors become ``DynamoDBError``.
    public func call<Output: Decodable>(_ operation: String, _ input: some JSONWritable, as: Output.Type = Output.self) async throws -> Output {
        let response: [UInt8]
        do {
            response = try await client.jsonCall(
                endpoint: endpoint, signingName: "dynamodb", target: "DynamoDB_20120810.\(operation)",
                contentType: "application/x-amz-json-1.0", body: input.jsonBytes
            )
        } catch let error as AWSServiceError {
            throw DynamoDBError(error)
        }
        do {
            return try Self.decoder.decode(Output.self, from: Data(response))
        } catch {
            throw DynamoDBError(code: .invalidResponse, message: "\(operation): unreadable response: \(error)")
        }
    }

    static let decoder = JSONDecoder()

    // MARK: - Items

    public func getItem(_ input: GetItemInput) async throws -> GetItemOutput { try await call("GetItem", input) }
    public func putItem(_ input: PutItemInput) async throws { _ = try await call("PutItem", input, as: Empty.self) }
    public func deleteItem(_ input: DeleteItemInput) async throws { _ = try await call("DeleteItem", input, as: Empty.self) }
    public func updateItem(_ input: UpdateItemInput) async throws -> UpdateItemOutput { try await call("UpdateItem", input) }
    public func query(_ input: QueryInput) async throws -> QueryOutput { try await call("Query", input) }
    public func transactWriteItems(_ input: TransactWriteItemsInput) async throws {
        _ = try await call("TransactWriteItems", input, as: Empty.self)
    }

    /// DynamoDB's limit of write requests per `BatchWriteItem` call.
    public static let maxBatchWrites = 25

    /// BatchWriteItem: any number of writes, sent 25 at a time, each call's `UnprocessedItems`
    /// re-sent with backoff until none are left.
    public func batchWriteItem(_ input: BatchWriteItemInput) async throws {
        let all = input.RequestItems.flatMap { table, requests in requests.map { (table, $0) } }
        for start in stride(from: 0, to: all.count, by: Self.maxBatchWrites) {
            let chunk = all[start..<min(start + Self.maxBatchWrites, all.count)]
            try await batchWriteChunk(Dictionary(grouping: chunk, by: \.0).mapValues { $0.map(\.1) })
        }
    }

    private func batchWriteChunk(_ requests: [String: [WriteRequest]]) async throws {
        try await RetryBudget.withCurrent { budget in
            var pending = requests
            var attempt = 0
            while !pending.isEmpty {
                attempt += 1
                let output: BatchWriteItemOutput = try await call("BatchWriteItem", BatchWriteItemInput(RequestItems: pending))
                pending = output.UnprocessedItems?.filter { !$0.value.isEmpty } ?? [:]
                if !pending.isEmpty {
                    // Unprocessed items are throttled ones: the request's budget decides how long to insist.
                    guard let delay = budget.nextRetryDelay(attempt: attempt, base: client.retryPolicy.throttlingBase, cap: client.retryPolicy.cap) else {
                        throw DynamoDBError(code: .throttling, message: "BatchWriteItem: items still unprocessed after \(attempt) attempts")
                    }
                    try await Task.sleep(for: delay)
                }
            }
        }
    }

    /// How many items the table holds (a `Scan` with `Select: COUNT`, every page). Reads the
    /// whole table: for tests and small tables, not for production paths.
    public func countItems(table: String) async throws -> Int {
        var total = 0
        var start: DynamoDBItem?
        repeat {
            let output: ScanCountOutput = try await call("Scan", ScanCountInput(TableName: table, ExclusiveStartKey: start))
            total += output.Count ?? 0
            start = output.LastEvaluatedKey
        } while start != nil
        return total
    }

    // MARK: - Tables

    public func createTable(_ input: CreateTableInput) async throws { _ = try await call("CreateTable", input, as: Empty.self) }
    public func describeTable(_ name: String) async throws -> DescribeTableOutput { try await call("DescribeTable", ["TableName": name]) }
    public func describeTimeToLive(_ name: String) async throws -> DescribeTimeToLiveOutput {
        try await call("DescribeTimeToLive", ["TableName": name])
    }
    public func updateTimeToLive(table: String, attribute: String) async throws {
        _ = try await call(
            "UpdateTimeToLive",
            UpdateTimeToLiveInput(TableName: table, TimeToLiveSpecification: .init(Enabled: true, AttributeName: attribute)),
            as: Empty.self
        )
    }
}

struct ScanCountInput: Encodable, Sendable {
    var TableName: String
    var Select = "COUNT"
    var ExclusiveStartKey: DynamoDBItem?
    var ConsistentRead = true
    init(TableName: String, ExclusiveStartKey: DynamoDBItem?) {
        self.TableName = TableName
        self.ExclusiveStartKey = ExclusiveStartKey
    }
}

struct ScanCountOutput: Decodable {
    var Count: Int?
    var LastEvaluatedKey: DynamoDBItem?
}

/// A response whose fields are not needed.
struct Empty: Decodable {}

// MARK: - Shapes (field names as in the API)

public struct GetItemInput: Encodable, Sendable {
    public var TableName: String
    public var Key: DynamoDBItem
    public var ConsistentRead: Bool?
    public init(TableName: String, Key: DynamoDBItem, ConsistentRead: Bool? = true) {
        self.TableName = TableName
        self.Key = Key
        self.ConsistentRead = ConsistentRead
    }
}

public struct GetItemOutput: Decodable, Sendable {
    public var Item: DynamoDBItem?
}

public struct PutItemInput: Encodable, Sendable {
    public var TableName: String
    public var Item: DynamoDBItem
    public var ConditionExpression: String?
    public var ExpressionAttributeNames: [String: String]?
    public var ExpressionAttributeValues: DynamoDBItem?
    /// `ALL_OLD`: a failed condition's error carries the item as it was, so a retried write can
    /// recognise its own earlier success.
    public var ReturnValuesOnConditionCheckFailure: String?
    public init(TableName: String, Item: DynamoDBItem, ConditionExpression: String? = nil, ExpressionAttributeNames: [String: String]? = nil, ExpressionAttributeValues: DynamoDBItem? = nil, ReturnValuesOnConditionCheckFailure: String? = nil) {
        self.TableName = TableName
        self.Item = Item
        self.ConditionExpression = ConditionExpression
        self.ExpressionAttributeNames = ExpressionAttributeNames
        self.ExpressionAttributeValues = ExpressionAttributeValues
        self.ReturnValuesOnConditionCheckFailure = ReturnValuesOnConditionCheckFailure
    }
}

public struct DeleteItemInput: Encodable, Sendable {
    public var TableName: String
    public var Key: DynamoDBItem
    public var ConditionExpression: String?
    public var ExpressionAttributeNames: [String: String]?
    public var ExpressionAttributeValues: DynamoDBItem?
    /// `ALL_OLD`: a failed condition's error carries the item as it was, so a retried write can
    /// recognise its own earlier success.
    public var ReturnValuesOnConditionCheckFailure: String?
    public init(TableName: String, Key: DynamoDBItem, ConditionExpression: String? = nil, ExpressionAttributeNames: [String: String]? = nil, ExpressionAttributeValues: DynamoDBItem? = nil, ReturnValuesOnConditionCheckFailure: String? = nil) {
        self.TableName = TableName
        self.Key = Key
        self.ConditionExpression = ConditionExpression
        self.ExpressionAttributeNames = ExpressionAttributeNames
        self.ExpressionAttributeValues = ExpressionAttributeValues
        self.ReturnValuesOnConditionCheckFailure = ReturnValuesOnConditionCheckFailure
    }
}

public struct UpdateItemInput: Encodable, Sendable {
    public var TableName: String
    public var Key: DynamoDBItem
    public var UpdateExpression: String
    public var ConditionExpression: String?
    public var ExpressionAttributeNames: [String: String]?
    public var ExpressionAttributeValues: DynamoDBItem?
    public var ReturnValues: String?
    /// `ALL_OLD`: a failed condition's error carries the item as it was, so a retried write can
    /// recognise its own earlier success.
    public var ReturnValuesOnConditionCheckFailure: String?
    public init(TableName: String, Key: DynamoDBItem, UpdateExpression: String, ConditionExpression: String? = nil, ExpressionAttributeNames: [String: String]? = nil, ExpressionAttributeValues: DynamoDBItem? = nil, ReturnValues: String? = nil, ReturnValuesOnConditionCheckFailure: String? = nil) {
        self.TableName = TableName
        self.Key = Key
        self.UpdateExpression = UpdateExpression
        self.ConditionExpression = ConditionExpression
        self.ExpressionAttributeNames = ExpressionAttributeNames
        self.ExpressionAttributeValues = ExpressionAttributeValues
        self.ReturnValues = ReturnValues
        self.ReturnValuesOnConditionCheckFailure = ReturnValuesOnConditionCheckFailure
    }
}

public struct UpdateItemOutput: Decodable, Sendable {
    public var Attributes: DynamoDBItem?
}

public struct QueryInput: Encodable, Sendable {
    public var TableName: String
    public var IndexName: String?
    public var KeyConditionExpression: String
    public var ExpressionAttributeNames: [String: String]?
    public var ExpressionAttributeValues: DynamoDBItem?
    public var Limit: Int?
    public var ExclusiveStartKey: DynamoDBItem?
    public var ScanIndexForward: Bool?
    public var ConsistentRead: Bool?
    public init(TableName: String, IndexName: String? = nil, KeyConditionExpression: String, ExpressionAttributeNames: [String: String]? = nil, ExpressionAttributeValues: DynamoDBItem? = nil, Limit: Int? = nil, ExclusiveStartKey: DynamoDBItem? = nil, ScanIndexForward: Bool? = nil, ConsistentRead: Bool? = nil) {
        self.TableName = TableName
        self.IndexName = IndexName
        self.KeyConditionExpression = KeyConditionExpression
        self.ExpressionAttributeNames = ExpressionAttributeNames
        self.ExpressionAttributeValues = ExpressionAttributeValues
        self.Limit = Limit
        self.ExclusiveStartKey = ExclusiveStartKey
        self.ScanIndexForward = ScanIndexForward
        self.ConsistentRead = ConsistentRead
    }
}

public struct QueryOutput: Decodable, Sendable {
    public var Items: [DynamoDBItem]?
    public var LastEvaluatedKey: DynamoDBItem?
    public var Count: Int?
}

public struct WriteRequest: Codable, Sendable {
    public struct PutRequest: Codable, Sendable {
        public var Item: DynamoDBItem
    }
    public struct DeleteRequest: Codable, Sendable {
        public var Key: DynamoDBItem
    }
    public var PutRequest: PutRequest?
    public var DeleteRequest: DeleteRequest?

    public static func put(_ item: DynamoDBItem) -> WriteRequest { WriteRequest(PutRequest: .init(Item: item), DeleteRequest: nil) }
    public static func delete(_ key: DynamoDBItem) -> WriteRequest { WriteRequest(PutRequest: nil, DeleteRequest: .init(Key: key)) }
}

public struct BatchWriteItemInput: Encodable, Sendable {
    public var RequestItems: [String: [WriteRequest]]
    public init(RequestItems: [String: [WriteRequest]]) { self.RequestItems = RequestItems }
}

struct BatchWriteItemOutput: Decodable {
    var UnprocessedItems: [String: [WriteRequest]]?
}

/// One element of `TransactItems`: exactly one of the four is set.
public struct TransactWriteItem: Encodable, Sendable {
    public struct Put: Encodable, Sendable {
        public var TableName: String
        public var Item: DynamoDBItem
        public var ConditionExpression: String?
        public var ExpressionAttributeNames: [String: String]?
        public var ExpressionAttributeValues: DynamoDBItem?
        public var ReturnValuesOnConditionCheckFailure: String?
        public init(TableName: String, Item: DynamoDBItem, ConditionExpression: String?, ExpressionAttributeNames: [String: String]?, ExpressionAttributeValues: DynamoDBItem?, ReturnValuesOnConditionCheckFailure: String? = nil) {
            self.TableName = TableName
            self.Item = Item
            self.ConditionExpression = ConditionExpression
            self.ExpressionAttributeNames = ExpressionAttributeNames
            self.ExpressionAttributeValues = ExpressionAttributeValues
            self.ReturnValuesOnConditionCheckFailure = ReturnValuesOnConditionCheckFailure
        }
    }
    public struct Delete: Encodable, Sendable {
        public var TableName: String
        public var Key: DynamoDBItem
        public var ConditionExpression: String?
        public var ExpressionAttributeNames: [String: String]?
        public var ExpressionAttributeValues: DynamoDBItem?
        public var ReturnValuesOnConditionCheckFailure: String?
        public init(TableName: String, Key: DynamoDBItem, ConditionExpression: String?, ExpressionAttributeNames: [String: String]?, ExpressionAttributeValues: DynamoDBItem?, ReturnValuesOnConditionCheckFailure: String? = nil) {
            self.TableName = TableName
            self.Key = Key
            self.ConditionExpression = ConditionExpression
            self.ExpressionAttributeNames = ExpressionAttributeNames
            self.ExpressionAttributeValues = ExpressionAttributeValues
            self.ReturnValuesOnConditionCheckFailure = ReturnValuesOnConditionCheckFailure
        }
    }
    public struct ConditionCheck: Encodable, Sendable {
        public var TableName: String
        public var Key: DynamoDBItem
        public var ConditionExpression: String
        public var ExpressionAttributeNames: [String: String]?
        public var ExpressionAttributeValues: DynamoDBItem?
        public var ReturnValuesOnConditionCheckFailure: String?
        public init(TableName: String, Key: DynamoDBItem, ConditionExpression: String, ExpressionAttributeNames: [String: String]?, ExpressionAttributeValues: DynamoDBItem?, ReturnValuesOnConditionCheckFailure: String? = nil) {
            self.TableName = TableName
            self.Key = Key
            self.ConditionExpression = ConditionExpression
            self.ExpressionAttributeNames = ExpressionAttributeNames
            self.ExpressionAttributeValues = ExpressionAttributeValues
            self.ReturnValuesOnConditionCheckFailure = ReturnValuesOnConditionCheckFailure
        }
    }
    public struct Update: Encodable, Sendable {
        public var TableName: String
        public var Key: DynamoDBItem
        public var UpdateExpression: String
        public var ConditionExpression: String?
        public var ExpressionAttributeNames: [String: String]?
        public var ExpressionAttributeValues: DynamoDBItem?
        public var ReturnValuesOnConditionCheckFailure: String?
        public init(TableName: String, Key: DynamoDBItem, UpdateExpression: String, ConditionExpression: String?, ExpressionAttributeNames: [String: String]?, ExpressionAttributeValues: DynamoDBItem?, ReturnValuesOnConditionCheckFailure: String? = nil) {
            self.TableName = TableName
            self.Key = Key
            self.UpdateExpression = UpdateExpression
            self.ConditionExpression = ConditionExpression
            self.ExpressionAttributeNames = ExpressionAttributeNames
            self.ExpressionAttributeValues = ExpressionAttributeValues
            self.ReturnValuesOnConditionCheckFailure = ReturnValuesOnConditionCheckFailure
        }
    }
    public var Put: Put?
    public var Delete: Delete?
    public var ConditionCheck: ConditionCheck?
    public var Update: Update?

    public static func put(_ put: Put) -> TransactWriteItem { TransactWriteItem(Put: put) }
    public static func update(_ update: Update) -> TransactWriteItem { TransactWriteItem(Update: update) }
    public static func delete(_ delete: Delete) -> TransactWriteItem { TransactWriteItem(Delete: delete) }
    public static func conditionCheck(_ check: ConditionCheck) -> TransactWriteItem { TransactWriteItem(ConditionCheck: check) }
}

public struct TransactWriteItemsInput: Encodable, Sendable {
    public var TransactItems: [TransactWriteItem]
    /// Makes a retried transaction idempotent for 10 minutes.
    public var ClientRequestToken: String?
    public init(TransactItems: [TransactWriteItem], ClientRequestToken: String? = nil) {
        self.TransactItems = TransactItems
        self.ClientRequestToken = ClientRequestToken
    }
}

public struct CreateTableInput: Encodable, Sendable {
    public struct AttributeDefinition: Encodable, Sendable {
        public var AttributeName: String
        public var AttributeType: String
        public init(_ name: String, _ type: String) {
            AttributeName = name
            AttributeType = type
        }
    }
    public struct KeySchemaElement: Encodable, Sendable {
        public var AttributeName: String
        public var KeyType: String
        public static func hash(_ name: String) -> KeySchemaElement { KeySchemaElement(AttributeName: name, KeyType: "HASH") }
        public static func range(_ name: String) -> KeySchemaElement { KeySchemaElement(AttributeName: name, KeyType: "RANGE") }
    }
    public struct Projection: Encodable, Sendable {
        public var ProjectionType: String
        public init(ProjectionType: String) { self.ProjectionType = ProjectionType }
    }
    public struct GlobalSecondaryIndex: Encodable, Sendable {
        public var IndexName: String
        public var KeySchema: [KeySchemaElement]
        public var Projection: Projection
        public init(IndexName: String, KeySchema: [KeySchemaElement], Projection: Projection) {
            self.IndexName = IndexName
            self.KeySchema = KeySchema
            self.Projection = Projection
        }
    }
    public var TableName: String
    public var AttributeDefinitions: [AttributeDefinition]
    public var KeySchema: [KeySchemaElement]
    public var BillingMode: String
    public var GlobalSecondaryIndexes: [GlobalSecondaryIndex]?
    public init(TableName: String, AttributeDefinitions: [AttributeDefinition], KeySchema: [KeySchemaElement], BillingMode: String = "PAY_PER_REQUEST", GlobalSecondaryIndexes: [GlobalSecondaryIndex]? = nil) {
        self.TableName = TableName
        self.AttributeDefinitions = AttributeDefinitions
        self.KeySchema = KeySchema
        self.BillingMode = BillingMode
        self.GlobalSecondaryIndexes = GlobalSecondaryIndexes
    }
}

public struct DescribeTableOutput: Decodable, Sendable {
    public struct Table: Decodable, Sendable {
        public struct Index: Decodable, Sendable {
            public var IndexName: String
            public var IndexStatus: String?
        }
        public struct KeyElement: Decodable, Sendable {
            public var AttributeName: String
            public var KeyType: String
        }
        public var TableName: String
        public var TableStatus: String
        public var KeySchema: [KeyElement]?
        public var GlobalSecondaryIndexes: [Index]?
    }
    public var Table: Table
}

public struct DescribeTimeToLiveOutput: Decodable, Sendable {
    public struct Description: Decodable, Sendable {
        public var TimeToLiveStatus: String?
        public var AttributeName: String?
    }
    public var TimeToLiveDescription: Description?
}

struct UpdateTimeToLiveInput: Encodable, Sendable {
    struct Specification: Encodable, Sendable {
        var Enabled: Bool
        var AttributeName: String
    }
    var TableName: String
    var TimeToLiveSpecification: Specification
}

// MARK: - Errors

/// A DynamoDB error, typed. A struct with a code, so new codes do not break callers.
public struct DynamoDBError: Error, Sendable, CustomStringConvertible {
    public struct Code: RawRepresentable, Sendable, Hashable {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }

        public static let conditionalCheckFailed = Code(rawValue: "ConditionalCheckFailedException")
        public static let transactionCanceled = Code(rawValue: "TransactionCanceledException")
        public static let validation = Code(rawValue: "ValidationException")
        public static let resourceNotFound = Code(rawValue: "ResourceNotFoundException")
        public static let resourceInUse = Code(rawValue: "ResourceInUseException")
        public static let throttling = Code(rawValue: "Throttling")
        public static let accessDenied = Code(rawValue: "AccessDenied")
        public static let invalidSignature = Code(rawValue: "InvalidSignature")
        public static let serverError = Code(rawValue: "ServerError")
        public static let invalidResponse = Code(rawValue: "InvalidResponse")
        public static let other = Code(rawValue: "Other")
    }

    /// One entry of `CancellationReasons`: `Code` is `None`, `ConditionalCheckFailed`, …
    public struct CancellationReason: Sendable, Hashable, Decodable {
        public var Code: String?
        public var Message: String?
        /// The item as it was, when the write asked for `ALL_OLD` and its condition failed.
        public var Item: DynamoDBItem?
        public init(Code: String?, Message: String? = nil, Item: DynamoDBItem? = nil) {
            self.Code = Code
            self.Message = Message
            self.Item = Item
        }
    }

    public let code: Code
    public let message: String
    /// The service's own error type (`ConditionalCheckFailedException`, `SignatureDoesNotMatch`, …).
    public let awsType: String
    public let cancellationReasons: [CancellationReason]
    /// For `ConditionalCheckFailedException` of a write that asked for `ALL_OLD`: the item as it
    /// was (`nil` when there was none).
    public let oldItem: DynamoDBItem?
    /// Whether an earlier attempt of the same call got no answer and may have been applied
    /// (``AWSServiceError/answerLost``).
    public let answerLost: Bool

    public init(
        code: Code, message: String, awsType: String = "", cancellationReasons: [CancellationReason] = [],
        oldItem: DynamoDBItem? = nil, answerLost: Bool = false
    ) {
        self.code = code
        self.message = message
        self.awsType = awsType
        self.cancellationReasons = cancellationReasons
        self.oldItem = oldItem
        self.answerLost = answerLost
    }

    init(_ error: AWSServiceError) {
        let code: Code =
            switch error.type {
            case "ConditionalCheckFailedException": .conditionalCheckFailed
            case "TransactionCanceledException": .transactionCanceled
            case "ValidationException", "SerializationException": .validation
            case "ResourceNotFoundException": .resourceNotFound
            case "ResourceInUseException": .resourceInUse
            case "SignatureDoesNotMatch", "InvalidSignatureException", "UnrecognizedClientException", "IncompleteSignatureException", "MissingAuthenticationTokenException":
                .invalidSignature
            case "AccessDeniedException", "AccessDenied": .accessDenied
            default: error.isThrottling ? .throttling : (error.status >= 500 ? .serverError : .other)
            }
        var reasons: [CancellationReason] = []
        var oldItem: DynamoDBItem?
        if code == .transactionCanceled || code == .conditionalCheckFailed,
            let decoded = try? JSONDecoder().decode(ErrorDetails.self, from: Data(error.body))
        {
            reasons = decoded.CancellationReasons ?? []
            oldItem = decoded.Item
        }
        self.init(
            code: code, message: error.message, awsType: error.type, cancellationReasons: reasons, oldItem: oldItem,
            answerLost: error.answerLost
        )
    }

    /// The error-specific members of an error body.
    private struct ErrorDetails: Decodable {
        var CancellationReasons: [CancellationReason]?
        var Item: DynamoDBItem?
    }

    public var description: String { "DynamoDB \(awsType.isEmpty ? code.rawValue : awsType): \(message)" }
}
