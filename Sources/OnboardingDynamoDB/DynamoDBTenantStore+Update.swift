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
        let updateExpression = Self.updateExpression(set: attributes, add: [:], token: token, &builder)
        let conditionExpression = condition.expression(&builder)
        let input = UpdateItemInput(
            TableName: table, Key: key.dynamoDB, UpdateExpression: updateExpression,
            ConditionExpression: conditionExpression,
            ExpressionAttributeNames: builder.namesOrNil, ExpressionAttributeValues: builder.valuesOrNil,
            ReturnValuesOnConditionCheckFailure: "ALL_OLD"
        )
        try await writeRecognising(key, token: token) {
            _ = try await dynamoDB.updateItem(input)
        }
    }

    /// The `SET` expression of an update (`UpdateItem`, or an `Update` in a transaction): each
    /// attribute of `set` assigned, each of `add` as `if_not_exists(n, 0) + d` (an absent number
    /// counts as 0), and the write token, so a resent write can recognise the item it changed.
    static func updateExpression(
        set attributes: [String: AttributeValue], add: [String: Int], token: String, _ builder: inout ExpressionBuilder
    ) -> String {
        // Sorted, so the same update always sends the same expression.
        func sorted<Value>(_ members: [String: Value]) -> [(key: String, value: Value)] {
            members.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
        }
        var assignments = sorted(attributes).map { name, value in
            "\(builder.name(name)) = \(builder.value(value.dynamoDB))"
        }
        if !add.isEmpty {
            let zero = builder.value(.n("0"))
            for (name, delta) in sorted(add) {
                let placeholder = builder.name(name)
                assignments.append("\(placeholder) = if_not_exists(\(placeholder), \(zero)) + \(builder.value(.n(String(delta))))")
            }
        }
        assignments.append("\(builder.name(writeTokenAttribute)) = \(builder.value(.s(token)))")
        return "SET " + assignments.joined(separator: ", ")
    }
}
