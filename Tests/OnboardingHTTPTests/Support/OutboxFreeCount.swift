import AWSClient
import OnboardingCore
import WireFormat

/// Counting a table's items without the event outbox (`_outbox#0` … `_outbox#f`): the
/// dispatcher deletes an outbox item once its event is delivered, whenever that is, so a count
/// that included them would depend on timing. Every other item (a tenant's audit events
/// included) is counted.
enum OutboxFreeCount {
    /// The prefix of the outbox partitions.
    static let outboxPrefix = "_outbox#"

    /// SQLite: the items outside the outbox (`_` is a LIKE wildcard, hence the escape).
    static let sqlite = #"SELECT count(*) FROM items WHERE tenantId NOT LIKE '\_outbox#%' ESCAPE '\'"#
}

extension DynamoDB {
    /// How many items the table holds outside the outbox: one consistent `Scan` (every page) with
    /// `Select: COUNT` and a filter on the partition key.
    func countItemsOutsideOutbox(table: String) async throws -> Int {
        var total = 0
        var start: DynamoDBItem?
        repeat {
            let output: FilteredCountOutput = try await call("Scan", FilteredCountInput(table: table, exclusiveStartKey: start))
            total += output.Count ?? 0
            start = output.LastEvaluatedKey
        } while start != nil
        return total
    }
}

private struct FilteredCountInput: JSONWritable {
    let table: String
    let exclusiveStartKey: DynamoDBItem?

    func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("TableName", table)
        writer.field("Select", "COUNT")
        writer.field("ConsistentRead", true)
        writer.field("FilterExpression", "NOT begins_with(#p, :outbox)")
        writer.field("ExpressionAttributeNames", ["#p": KeyAttribute.tenantId])
        writer.key("ExpressionAttributeValues")
        DynamoDBValue.write([":outbox": .s(OutboxFreeCount.outboxPrefix)], to: &writer)
        if let exclusiveStartKey {
            writer.key("ExclusiveStartKey")
            DynamoDBValue.write(exclusiveStartKey, to: &writer)
        }
        writer.endObject()
    }
}

private struct FilteredCountOutput: Decodable {
    var Count: Int?
    var LastEvaluatedKey: DynamoDBItem?
}
