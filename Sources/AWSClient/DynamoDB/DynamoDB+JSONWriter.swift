// The request shapes written with JSONWriter. Each stays Encodable too: a test checks that both
// encodings say the same, so the fast one cannot drift from the declared shape.

import WireFormat

extension DynamoDBValue {
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        switch self {
        case .s(let value): writer.field("S", value)
        case .n(let value): writer.field("N", value)
        case .b(let value): writer.field("B", Base64.encode(value))
        case .bool(let value): writer.field("BOOL", value)
        case .null: writer.field("NULL", true)
        case .l(let values):
            writer.key("L")
            writer.beginArray()
            for value in values { value.write(to: &writer) }
            writer.endArray()
        case .m(let members):
            writer.key("M")
            Self.write(members, to: &writer)
        case .ss(let values):
            writer.key("SS")
            writer.beginArray()
            for value in values { writer.string(value) }
            writer.endArray()
        case .ns(let values):
            writer.key("NS")
            writer.beginArray()
            for value in values { writer.string(value) }
            writer.endArray()
        case .bs(let values):
            writer.key("BS")
            writer.beginArray()
            for value in values { writer.string(Base64.encode(value)) }
            writer.endArray()
        }
        writer.endObject()
    }

    /// An item (or any attribute map) as a JSON object.
    public static func write(_ item: DynamoDBItem, to writer: inout JSONWriter) {
        writer.beginObject()
        for (name, value) in item {
            writer.key(name)
            value.write(to: &writer)
        }
        writer.endObject()
    }
}

extension JSONWriter {
    mutating func field(_ name: String, _ item: DynamoDBItem?) {
        guard let item else { return }
        key(name)
        DynamoDBValue.write(item, to: &self)
    }

    /// The members every conditional write has: table, item or key, condition and its placeholders.
    mutating func conditionalWrite(
        table: String, itemName: String, item: DynamoDBItem, condition: String?, names: [String: String]?, values: DynamoDBItem?,
        returnOnFailure: String?
    ) {
        field("TableName", table)
        field(itemName, item)
        field("ConditionExpression", condition)
        field("ExpressionAttributeNames", names)
        field("ExpressionAttributeValues", values)
        field("ReturnValuesOnConditionCheckFailure", returnOnFailure)
    }
}

extension Dictionary: JSONWritable where Key == String, Value == String {
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        for (name, value) in self {
            writer.key(name)
            writer.string(value)
        }
        writer.endObject()
    }
}

extension GetItemInput: JSONWritable {
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("TableName", TableName)
        writer.field("Key", Key)
        writer.field("ConsistentRead", ConsistentRead)
        writer.endObject()
    }
}

extension PutItemInput: JSONWritable {
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.conditionalWrite(
            table: TableName, itemName: "Item", item: Item, condition: ConditionExpression,
            names: ExpressionAttributeNames, values: ExpressionAttributeValues,
            returnOnFailure: ReturnValuesOnConditionCheckFailure
        )
        writer.endObject()
    }
}

extension DeleteItemInput: JSONWritable {
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.conditionalWrite(
            table: TableName, itemName: "Key", item: Key, condition: ConditionExpression,
            names: ExpressionAttributeNames, values: ExpressionAttributeValues,
            returnOnFailure: ReturnValuesOnConditionCheckFailure
        )
        writer.endObject()
    }
}

extension UpdateItemInput: JSONWritable {
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("TableName", TableName)
        writer.field("Key", Key)
        writer.field("UpdateExpression", UpdateExpression)
        writer.field("ConditionExpression", ConditionExpression)
        writer.field("ExpressionAttributeNames", ExpressionAttributeNames)
        writer.field("ExpressionAttributeValues", ExpressionAttributeValues)
        writer.field("ReturnValues", ReturnValues)
        writer.field("ReturnValuesOnConditionCheckFailure", ReturnValuesOnConditionCheckFailure)
        writer.endObject()
    }
}

extension QueryInput: JSONWritable {
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("TableName", TableName)
        writer.field("IndexName", IndexName)
        writer.field("KeyConditionExpression", KeyConditionExpression)
        writer.field("ExpressionAttributeNames", ExpressionAttributeNames)
        writer.field("ExpressionAttributeValues", ExpressionAttributeValues)
        writer.field("Limit", Limit)
        writer.field("ExclusiveStartKey", ExclusiveStartKey)
        writer.field("ScanIndexForward", ScanIndexForward)
        writer.field("ConsistentRead", ConsistentRead)
        writer.endObject()
    }
}

extension WriteRequest {
    func write(to writer: inout JSONWriter) {
        writer.beginObject()
        if let put = self.PutRequest {
            writer.key("PutRequest")
            writer.beginObject()
            writer.field("Item", put.Item)
            writer.endObject()
        }
        if let delete = self.DeleteRequest {
            writer.key("DeleteRequest")
            writer.beginObject()
            writer.field("Key", delete.Key)
            writer.endObject()
        }
        writer.endObject()
    }
}

extension BatchWriteItemInput: JSONWritable {
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("RequestItems")
        writer.beginObject()
        for (table, requests) in RequestItems {
            writer.key(table)
            writer.beginArray()
            for request in requests { request.write(to: &writer) }
            writer.endArray()
        }
        writer.endObject()
        writer.endObject()
    }
}

extension TransactWriteItemsInput: JSONWritable {
    public func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("TransactItems")
        writer.beginArray()
        for item in TransactItems {
            writer.beginObject()
            if let put = item.Put {
                writer.key("Put")
                writer.beginObject()
                writer.conditionalWrite(
                    table: put.TableName, itemName: "Item", item: put.Item, condition: put.ConditionExpression,
                    names: put.ExpressionAttributeNames, values: put.ExpressionAttributeValues,
                    returnOnFailure: put.ReturnValuesOnConditionCheckFailure
                )
                writer.endObject()
            }
            if let delete = item.Delete {
                writer.key("Delete")
                writer.beginObject()
                writer.conditionalWrite(
                    table: delete.TableName, itemName: "Key", item: delete.Key, condition: delete.ConditionExpression,
                    names: delete.ExpressionAttributeNames, values: delete.ExpressionAttributeValues,
                    returnOnFailure: delete.ReturnValuesOnConditionCheckFailure
                )
                writer.endObject()
            }
            if let check = item.ConditionCheck {
                writer.key("ConditionCheck")
                writer.beginObject()
                writer.conditionalWrite(
                    table: check.TableName, itemName: "Key", item: check.Key, condition: check.ConditionExpression,
                    names: check.ExpressionAttributeNames, values: check.ExpressionAttributeValues,
                    returnOnFailure: check.ReturnValuesOnConditionCheckFailure
                )
                writer.endObject()
            }
            if let update = item.Update {
                writer.key("Update")
                writer.beginObject()
                writer.conditionalWrite(
                    table: update.TableName, itemName: "Key", item: update.Key, condition: update.ConditionExpression,
                    names: update.ExpressionAttributeNames, values: update.ExpressionAttributeValues,
                    returnOnFailure: update.ReturnValuesOnConditionCheckFailure
                )
                writer.field("UpdateExpression", update.UpdateExpression)
                writer.endObject()
            }
            writer.endObject()
        }
        writer.endArray()
        writer.field("ClientRequestToken", ClientRequestToken)
        writer.endObject()
    }
}

extension CreateTableInput: JSONWritable {
    public func write(to writer: inout JSONWriter) {
        func keySchema(_ elements: [KeySchemaElement]) {
            writer.key("KeySchema")
            writer.beginArray()
            for element in elements {
                writer.beginObject()
                writer.field("AttributeName", element.AttributeName)
                writer.field("KeyType", element.KeyType)
                writer.endObject()
            }
            writer.endArray()
        }
        writer.beginObject()
        writer.field("TableName", TableName)
        writer.key("AttributeDefinitions")
        writer.beginArray()
        for definition in AttributeDefinitions {
            writer.beginObject()
            writer.field("AttributeName", definition.AttributeName)
            writer.field("AttributeType", definition.AttributeType)
            writer.endObject()
        }
        writer.endArray()
        keySchema(KeySchema)
        writer.field("BillingMode", BillingMode)
        if let GlobalSecondaryIndexes {
            writer.key("GlobalSecondaryIndexes")
            writer.beginArray()
            for index in GlobalSecondaryIndexes {
                writer.beginObject()
                writer.field("IndexName", index.IndexName)
                keySchema(index.KeySchema)
                writer.key("Projection")
                writer.beginObject()
                writer.field("ProjectionType", index.Projection.ProjectionType)
                writer.endObject()
                writer.endObject()
            }
            writer.endArray()
        }
        writer.endObject()
    }
}

extension UpdateTimeToLiveInput: JSONWritable {
    func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("TableName", TableName)
        writer.key("TimeToLiveSpecification")
        writer.beginObject()
        writer.field("Enabled", TimeToLiveSpecification.Enabled)
        writer.field("AttributeName", TimeToLiveSpecification.AttributeName)
        writer.endObject()
        writer.endObject()
    }
}

extension ScanCountInput: JSONWritable {
    func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("TableName", TableName)
        writer.field("Select", Select)
        writer.field("ExclusiveStartKey", ExclusiveStartKey)
        writer.field("ConsistentRead", ConsistentRead)
        writer.endObject()
    }
}
