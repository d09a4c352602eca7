import AWSClient
import Foundation
import Logging
import OnboardingCore
import WireFormat

/// The table's layout, the one place that states it (the SAM template must say the same).
public enum DynamoDBTable {
    /// The sparse index listing tenants in creation order, write-sharded (``ListIndex``): tenant
    /// profiles carry `listShard` = `TENANTS#0` … `TENANTS#f` and `listKey` = `<createdAt>#<tenantId>`.
    public static let tenantIndex = "tenants-by-creation"
    public static let indexPartitionKey = ListIndex.shardAttribute
    public static let indexSortKey = ListIndex.keyAttribute
    /// Items with this number attribute (Unix seconds) expire (DynamoDB TTL).
    public static let ttlAttribute = "expiresAt"

    /// What `CreateTable` is sent: keys, the index, pay-per-request billing.
    public static func definition(name: String) -> CreateTableInput {
        CreateTableInput(
            TableName: name,
            AttributeDefinitions: [
                .init("tenantId", "S"), .init("resourceKey", "S"), .init(indexPartitionKey, "S"), .init(indexSortKey, "S"),
            ],
            KeySchema: [.hash("tenantId"), .range("resourceKey")],
            BillingMode: "PAY_PER_REQUEST",
            GlobalSecondaryIndexes: [
                .init(IndexName: tenantIndex, KeySchema: [.hash(indexPartitionKey), .range(indexSortKey)], Projection: .init(ProjectionType: "ALL"))
            ]
        )
    }

    /// What ``create(_:name:logger:)`` did.
    public struct Outcome: Sendable, Hashable {
        /// The table did not exist and was created.
        public var tableCreated: Bool
        /// The table existed without the listing index, which was added (`UpdateTable`).
        public var indexAdded: Bool
    }

    /// A table that exists but is not laid out as the store needs.
    public struct LayoutError: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// How long ``create(_:name:logger:)`` waits for the table and its index to become ACTIVE
    /// (adding an index to a large table makes DynamoDB backfill it first).
    public static let activeTimeout: Duration = .seconds(1800)

    /// Creates the table if it does not exist, adds the listing index to an existing table that
    /// lacks it, waits until the table and its indexes are active, and enables TTL. Safe to run
    /// again: a table laid out as expected is left as it is.
    /// - Throws: ``LayoutError`` when the table has other keys, or an index of the listing
    ///   index's name with other keys; ``DynamoDBError`` when DynamoDB refuses.
    @discardableResult
    public static func create(_ dynamoDB: DynamoDB, name: String, logger: Logger = Logger(label: "onboard.dynamodb")) async throws -> Outcome {
        var outcome = Outcome(tableCreated: true, indexAdded: false)
        let started = Date()
        do {
            try await dynamoDB.createTable(definition(name: name))
            logger.info("table created", metadata: ["table": "\(name)"])
        } catch let error as DynamoDBError where error.code == .resourceInUse {
            // A resend after a lost answer finds the table its first attempt created: a table
            // created since this call began (give or take clock skew) is that one.
            let created = try await error.answerLost ? describe(dynamoDB, name: name).CreationDateTime : nil
            outcome.tableCreated = created.map { $0 >= started.timeIntervalSince1970 - 5 } ?? false
        }
        // Wait for ACTIVE (real DynamoDB takes seconds for a table, longer for an index's
        // backfill; moto is immediate).
        let clock = ContinuousClock()
        let deadline = clock.now + activeTimeout
        while true {
            let table = try await describe(dynamoDB, name: name)
            let index = try checkKeys(table, name: name)
            if index == nil && table.TableStatus == "ACTIVE" && !outcome.indexAdded {
                try await addIndex(dynamoDB, name: name)
                logger.notice("adding the listing index to an existing table", metadata: ["table": "\(name)", "index": "\(tenantIndex)"])
                outcome.indexAdded = true
            } else if index != nil, table.TableStatus == "ACTIVE",
                table.GlobalSecondaryIndexes?.allSatisfy({ ($0.IndexStatus ?? "ACTIVE") == "ACTIVE" }) ?? true {
                break
            }
            guard clock.now < deadline else {
                throw DynamoDBError(code: .other, message: "table \(name) or its index \(tenantIndex) did not become ACTIVE in \(activeTimeout)")
            }
            try await Task.sleep(for: .seconds(1))
        }
        let ttl = try await dynamoDB.describeTimeToLive(name).TimeToLiveDescription
        if ttl?.TimeToLiveStatus != "ENABLED" && ttl?.TimeToLiveStatus != "ENABLING" {
            try await dynamoDB.updateTimeToLive(table: name, attribute: ttlAttribute)
        }
        return outcome
    }

    /// Checks that the table exists with the store's keys and its listing index (one
    /// `DescribeTable`), so that a server does not start on a table it could only half use.
    /// - Throws: ``LayoutError`` naming what is missing and how to fix it; ``DynamoDBError``
    ///   `.resourceNotFound` when there is no such table.
    public static func check(_ dynamoDB: DynamoDB, name: String) async throws {
        let table = try await describe(dynamoDB, name: name)
        guard try checkKeys(table, name: name) != nil else {
            throw LayoutError(
                description: "the DynamoDB table \(name) has no index \(tenantIndex), which listing tenants needs; "
                    + "add it with `onboard table create --table \(name)` (it keeps the table and its items)"
            )
        }
    }

    // MARK: - DescribeTable and UpdateTable

    /// The parts of `DescribeTable`'s answer checked here (indexes with their keys).
    struct TableDescription: Decodable {
        struct KeyElement: Decodable {
            var AttributeName: String
            var KeyType: String
        }
        struct Index: Decodable {
            var IndexName: String
            var IndexStatus: String?
            var KeySchema: [KeyElement]?
        }
        var TableStatus: String
        /// Unix seconds.
        var CreationDateTime: Double?
        var KeySchema: [KeyElement]?
        var GlobalSecondaryIndexes: [Index]?
    }

    private struct DescribeTableOutput: Decodable {
        var Table: TableDescription
    }

    static func describe(_ dynamoDB: DynamoDB, name: String) async throws -> TableDescription {
        try await dynamoDB.call("DescribeTable", ["TableName": name], as: DescribeTableOutput.self).Table
    }

    /// Throws unless the table's and the listing index's keys are the store's; returns the
    /// listing index, `nil` when the table has none.
    private static func checkKeys(_ table: TableDescription, name: String) throws -> TableDescription.Index? {
        func names(_ keys: [TableDescription.KeyElement]?) -> [String]? {
            keys.map { $0.sorted { $0.KeyType < $1.KeyType }.map(\.AttributeName) }  // HASH before RANGE
        }
        guard names(table.KeySchema) ?? ["tenantId", "resourceKey"] == ["tenantId", "resourceKey"] else {
            throw LayoutError(description: "the DynamoDB table \(name) exists with other keys than tenantId (HASH) + resourceKey (RANGE)")
        }
        guard let index = table.GlobalSecondaryIndexes?.first(where: { $0.IndexName == tenantIndex }) else { return nil }
        guard names(index.KeySchema) ?? [indexPartitionKey, indexSortKey] == [indexPartitionKey, indexSortKey] else {
            throw LayoutError(
                description: "the index \(tenantIndex) of the DynamoDB table \(name) has other keys than \(indexPartitionKey) (HASH) + \(indexSortKey) (RANGE)"
            )
        }
        return index
    }

    /// `UpdateTable` creating the listing index (projection ALL, as in ``definition(name:)``).
    private struct AddIndexInput: JSONWritable {
        var table: String

        func write(to writer: inout JSONWriter) {
            func keyElement(_ name: String, _ type: String) {
                writer.beginObject()
                writer.field("AttributeName", name)
                writer.field("KeyType", type)
                writer.endObject()
            }
            writer.beginObject()
            writer.field("TableName", table)
            writer.key("AttributeDefinitions")
            writer.beginArray()
            for attribute in [indexPartitionKey, indexSortKey] {
                writer.beginObject()
                writer.field("AttributeName", attribute)
                writer.field("AttributeType", "S")
                writer.endObject()
            }
            writer.endArray()
            writer.key("GlobalSecondaryIndexUpdates")
            writer.beginArray()
            writer.beginObject()
            writer.key("Create")
            writer.beginObject()
            writer.field("IndexName", tenantIndex)
            writer.key("KeySchema")
            writer.beginArray()
            keyElement(indexPartitionKey, "HASH")
            keyElement(indexSortKey, "RANGE")
            writer.endArray()
            writer.key("Projection")
            writer.beginObject()
            writer.field("ProjectionType", "ALL")
            writer.endObject()
            writer.endObject()
            writer.endObject()
            writer.endArray()
            writer.endObject()
        }
    }

    private struct UpdateTableOutput: Decodable {}

    private static func addIndex(_ dynamoDB: DynamoDB, name: String) async throws {
        do {
            _ = try await dynamoDB.call("UpdateTable", AddIndexInput(table: name), as: UpdateTableOutput.self)
        } catch let error as DynamoDBError where error.code == .validation {
            // A provisioned-capacity table needs the index's capacity named, for example.
            throw LayoutError(
                description: "the DynamoDB table \(name) has no index \(tenantIndex) and DynamoDB refused to add it (\(error.message)); "
                    + "add it yourself: keys \(indexPartitionKey) (HASH, S) + \(indexSortKey) (RANGE, S), projection ALL"
            )
        }
    }
}
