import AWSClient
import Foundation
import OnboardTestSupport
import OnboardingCore
import OnboardingDynamoDB
import Testing

/// `StoreRules.canonicalNumber` is the form both stores return numbers in, meant to be
/// DynamoDB's. These tests write numbers through the raw `DynamoDB` client (no StoreRules on the
/// way) to DynamoDB as moto serves it and compare what comes back with our canonical form.
///
/// Where moto 5.2 differs from DynamoDB's documented behaviour:
/// - moto stores and returns an `N` exactly as it was written (`"1.50"` comes back `"1.50"`),
///   while DynamoDB documents that "leading and trailing zeroes are trimmed"
///   (developer guide, "Supported data types and naming rules", Number); so against moto the
///   canonical *value* is checked (moto compares numbers as Decimals), not the text;
/// - moto checks the range with Python floats and never the precision, so it accepts
///   `1e126` and numbers of 39 significant digits, which DynamoDB documents as out of range
///   ("up to 38 digits of precision", "positive range: 1E-130 to 9.9999999999999999999999999999999999999E+125"):
///   declared as a known issue, limited to exactly those inputs.
///
/// Not sent: texts that are not JSON numbers but that DynamoDB may accept, such as `"007"` or
/// `"+1"`. StoreRules refuses them on purpose (every number reaches the stores from JSON), on
/// both stores alike.
@Suite("Numbers: StoreRules' canonical form against DynamoDB (moto)", .requires(.moto))
struct NumberCanonicalisationTests {
    static let accepted = [
        "0", "7", "-42", "1.0", "1.50", "-1.50", "100", "1200", "1000.000", "-0", "-0.00", "0.000", "0e5",
        "1e3", "1E+2", "1e+0", "1e-05", "1E+003", "10e-1", "0.1e1", "1E-2", "25e-4", "1.5e-3", "123.456e1",
        "0.00012300", "12345678901234567890123456789012345678", "1234567890123456789012345678901234567800000",
        "0.12345678901234567890123456789012345678", "1e125", "1e-130", "-1e-130",
        "9.9999999999999999999999999999999999999e125", "-9.9999999999999999999999999999999999999e125",
    ]

    /// What DynamoDB documents it refuses: not a number, out of range, more than 38 digits.
    static let refused = [
        "", "-", "abc", "NaN", "Infinity", "1e", "1e+", " 1", "1 ", "0x10", "1e1000000", "1e-131", "-1e-131",
        "1e126", "-1e126", "123456789012345678901234567890123456789", "1.00000000000000000000000000000000000001",
    ]

    /// A fresh table on the shared moto server.
    func freshTable() async throws -> (DynamoDB, String) {
        let dynamoDB = try await MotoServer.shared().dynamoDB()
        let table = "numbers-\(UUID().uuidString.prefix(8).lowercased())"
        try await DynamoDBTable.create(dynamoDB, name: table)
        return (dynamoDB, table)
    }

    static let key: DynamoDBItem = ["tenantId": .s("numbers"), "resourceKey": .s("N#1")]

    @Test("a number read back from DynamoDB (moto) has the value of StoreRules' canonical form, exactly", arguments: accepted)
    func canonicalForm(_ text: String) async throws {
        let canonical = try #require(StoreRules.canonicalNumber(text), "StoreRules accepts \(text)")
        let (dynamoDB, table) = try await freshTable()
        try await dynamoDB.putItem(PutItemInput(TableName: table, Item: Self.key.merging(["v": .n(text)]) { $1 }))
        let stored = try #require(try await dynamoDB.getItem(GetItemInput(TableName: table, Key: Self.key)).Item?["v"])

        // moto 5.2 returns an N as it was written, where DynamoDB documents that it trims leading
        // and trailing zeros (our canonical form): so moto cannot confirm the form, only that it
        // is one of those two, never a third. What it can confirm is the value, below.
        #expect(stored == .n(canonical) || stored == .n(text), "\(text) came back as \(stored)")

        // The same value: moto compares numbers in conditions as Python Decimals, exactly.
        let names = ["#v": "v"]
        try await dynamoDB.putItem(PutItemInput(
            TableName: table, Item: Self.key.merging(["v": .n(text), "checked": .bool(true)]) { $1 },
            ConditionExpression: "#v = :v", ExpressionAttributeNames: names, ExpressionAttributeValues: [":v": .n(canonical)]
        ))
        // ... and not merely close to it: one more digit is another value.
        let other = canonical.contains(".") ? canonical + "1" : canonical + ".1"
        let error = await #expect(throws: DynamoDBError.self) {
            try await dynamoDB.putItem(PutItemInput(
                TableName: table, Item: Self.key, ConditionExpression: "#v = :v",
                ExpressionAttributeNames: names, ExpressionAttributeValues: [":v": .n(other)]
            ))
        }
        #expect(error?.code == .conditionalCheckFailed, "\(other) is not \(text)")
    }

    @Test("what DynamoDB refuses as a number, StoreRules refuses", arguments: refused)
    func refusedNumbers(_ text: String) async throws {
        #expect(StoreRules.canonicalNumber(text) == nil)
        let (dynamoDB, table) = try await freshTable()
        var refusal: DynamoDBError?
        do {
            try await dynamoDB.putItem(PutItemInput(TableName: table, Item: Self.key.merging(["v": .n(text)]) { $1 }))
        } catch let error as DynamoDBError {
            refusal = error
        }
        withKnownIssue("moto 5.2 checks a number's range with floats and never its precision") {
            #expect(refusal?.code == .validation, "DynamoDB refuses \(text): \(refusal.map { "\($0)" } ?? "accepted")")
        } when: {
            refusal == nil && Self.motoAcceptsWrongly.contains(text)
        }
    }

    /// The refused numbers moto 5.2 accepts: `1e126` is not above `9.99…e125` once both are
    /// floats, and moto never counts significant digits.
    static let motoAcceptsWrongly: Set = [
        "1e126", "-1e126", "123456789012345678901234567890123456789", "1.00000000000000000000000000000000000001",
    ]
}
