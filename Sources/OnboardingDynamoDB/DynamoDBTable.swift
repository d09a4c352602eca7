import AWSClient
import Logging
import OnboardingCore

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

    /// Creates the table if it does not exist, waits until it and its index are active, and
    /// enables TTL. Safe to run again: an existing table is checked, not changed.
    /// - Returns: `true` when the table was created by this call.
    @discardableResult
    public static func create(_ dynamoDB: DynamoDB, name: String, logger: Logger = Logger(label: "onboard.dynamodb")) async throws -> Bool {
        var created = true
        do {
            try await dynamoDB.createTable(definition(name: name))
            logger.info("table created", metadata: ["table": "\(name)"])
        } catch let error as DynamoDBError where error.code == .resourceInUse {
            created = false
        }
        // Wait for ACTIVE (real DynamoDB takes seconds; moto is immediate).
        for attempt in 1...120 {
            let table = try await dynamoDB.describeTable(name).Table
            guard table.KeySchema?.map(\.AttributeName) ?? ["tenantId", "resourceKey"] == ["tenantId", "resourceKey"] else {
                throw DynamoDBError(code: .validation, message: "table \(name) exists with another key schema than tenantId + resourceKey")
            }
            let indexesActive = table.GlobalSecondaryIndexes?.allSatisfy { ($0.IndexStatus ?? "ACTIVE") == "ACTIVE" } ?? true
            if table.TableStatus == "ACTIVE" && indexesActive { break }
            if attempt == 120 { throw DynamoDBError(code: .other, message: "table \(name) did not become ACTIVE") }
            try await Task.sleep(for: .seconds(1))
        }
        let ttl = try await dynamoDB.describeTimeToLive(name).TimeToLiveDescription
        if ttl?.TimeToLiveStatus != "ENABLED" && ttl?.TimeToLiveStatus != "ENABLING" {
            try await dynamoDB.updateTimeToLive(table: name, attribute: ttlAttribute)
        }
        return created
    }
}
