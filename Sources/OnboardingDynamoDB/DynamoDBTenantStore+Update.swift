import AWSClient
import OnboardingCore

extension DynamoDBTenantStore {
    /// One `UpdateItem`: `SET` of the given attributes, under `attribute_exists` and the condition.
    ///
    /// Like a put, the update stores a new write token and asks for the old item when its
    /// condition fails, so a resend after a lost answer recognises its own earlier success.
    public func update(_ key: ItemKey, set attributes: [String: AttributeValue], condition: WriteCondition?) async throws {
        let (attributes, condition) = try StoreRules.checkedUpdate(key, set: attributes, condition: condition)
        let token = Self.newWriteToken()
        var builder = ExpressionBuilder()
        // Sorted, so the same update always sends the same expression.
        var assignments = attributes.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }.map { name, value in
            "\(builder.name(name)) = \(builder.value(value.dynamoDB))"
        }
        assignments.append("\(builder.name(Self.writeTokenAttribute)) = \(builder.value(.s(token)))")
        let conditionExpression = condition.expression(&builder)
        let input = UpdateItemInput(
            TableName: table, Key: key.dynamoDB, UpdateExpression: "SET " + assignments.joined(separator: ", "),
            ConditionExpression: conditionExpression,
            ExpressionAttributeNames: builder.namesOrNil, ExpressionAttributeValues: builder.valuesOrNil,
            ReturnValuesOnConditionCheckFailure: "ALL_OLD"
        )
        try await writeRecognising(key, token: token) {
            _ = try await dynamoDB.updateItem(input)
        }
    }
}
