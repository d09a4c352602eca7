@testable import AWSClient
import RequestBudget
import Foundation
import Testing
import WireFormat

@Suite("DynamoDB JSON: attribute values, expressions, errors")
struct DynamoDBCodecTests {
    @Test("every attribute type encodes to DynamoDB's typed JSON and back")
    func attributeValues() throws {
        let item: DynamoDBItem = [
            "s": .s("Société"), "n": .n("-12.5"), "b": .b([0, 1, 255]), "bool": .bool(true), "null": .null,
            "l": .l([.s("x"), .n("1")]), "m": .m(["k": .s("v")]), "ss": .ss(["a", "b"]), "ns": .ns(["1", "2"]), "bs": .bs([[1], [2]]),
        ]
        let json = try JSONEncoder().encode(item)
        let object = try #require(try JSONSerialization.jsonObject(with: json) as? [String: [String: Any]])
        #expect(object["s"]?["S"] as? String == "Société")
        #expect(object["n"]?["N"] as? String == "-12.5")
        #expect(object["b"]?["B"] as? String == "AAH/")
        #expect(object["null"]?["NULL"] as? Bool == true)
        #expect(try JSONDecoder().decode(DynamoDBItem.self, from: json) == item)
    }

    @Test("a value with no type tag, or two, is rejected")
    func malformedValues() {
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(DynamoDBValue.self, from: Data(#"{}"#.utf8)) }
        #expect(throws: DecodingError.self) { try JSONDecoder().decode(DynamoDBValue.self, from: Data(#"{"S":"a","N":"1"}"#.utf8)) }
    }

    @Test("expression names are always placeholders, reused per name; values always fresh")
    func expressions() {
        var builder = ExpressionBuilder()
        let status = builder.name("status")
        let again = builder.name("status")
        let name = builder.name("name")
        let first = builder.value(.s("ACTIVE"))
        let second = builder.value(.s("ACTIVE"))
        #expect(status == again && status != name && status.hasPrefix("#"))
        #expect(first != second && first.hasPrefix(":"))
        #expect(builder.names == [status: "status", name: "name"])
        #expect(ExpressionBuilder().namesOrNil == nil)
    }

    @Test("errors decode from JSON __type/message and from XML Code/Message")
    func errors() {
        let conditional = AWSServiceError(
            status: 400, body: Array(#"{"__type":"com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException","message":"The conditional request failed"}"#.utf8),
            requestID: "r1"
        )
        #expect(conditional.type == "ConditionalCheckFailedException")
        #expect(DynamoDBError(conditional).code == .conditionalCheckFailed)
        #expect(!conditional.isRetryable)

        let throttled = AWSServiceError(status: 400, body: Array(#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","Message":"slow down"}"#.utf8), requestID: nil)
        #expect(throttled.isThrottling && throttled.isRetryable)
        #expect(throttled.message == "slow down")
        #expect(DynamoDBError(throttled).code == .throttling)

        let canceled = AWSServiceError(
            status: 400,
            body: Array(#"{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","message":"Transaction cancelled","CancellationReasons":[{"Code":"None"},{"Code":"ConditionalCheckFailed","Message":"The conditional request failed"}]}"#.utf8),
            requestID: nil
        )
        #expect(DynamoDBError(canceled).cancellationReasons.map(\.Code) == ["None", "ConditionalCheckFailed"])

        let signature = AWSServiceError(
            status: 403,
            body: Array("<?xml version=\"1.0\"?><ErrorResponse><Errors><Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message></Error></Errors></ErrorResponse>".utf8),
            requestID: nil
        )
        #expect(signature.type == "SignatureDoesNotMatch")
        #expect(DynamoDBError(signature).code == .invalidSignature)
        #expect(!signature.isRetryable)

        let serverError = AWSServiceError(status: 500, body: Array("oops".utf8), requestID: nil)
        #expect(serverError.type == "HTTP500" && serverError.isRetryable)
    }

    @Test("backoff: full jitter below an exponential ceiling, capped, a longer base when throttled")
    func backoff() throws {
        let policy = RetryPolicy(maxAttempts: 5, base: .milliseconds(10), throttlingBase: .milliseconds(100), cap: .milliseconds(500))
        #expect(policy.base(throttled: false) == .milliseconds(10))
        #expect(policy.base(throttled: true) == .milliseconds(100))
        let budget = RetryBudget(timeout: .seconds(600), maxRetries: 10 * 50 * 2)
        for attempt in 1...10 {
            for _ in 0..<50 {
                let delay = try #require(budget.nextRetryDelay(attempt: attempt, base: policy.base(throttled: false), cap: policy.cap))
                #expect(delay >= .zero)
                #expect(delay <= min(.milliseconds(500), .milliseconds(10) * (1 << attempt)))
                let throttled = try #require(budget.nextRetryDelay(attempt: attempt, base: policy.base(throttled: true), cap: policy.cap))
                #expect(throttled <= .milliseconds(500))
            }
        }
    }
}

@Suite("JSONWriter says what the declared (Encodable) shapes say")
struct JSONWriterTests {
    /// Both encodings, normalised (parsed and re-serialised with sorted keys).
    func normalised(_ bytes: [UInt8]) throws -> Data {
        try JSONSerialization.data(withJSONObject: JSONSerialization.jsonObject(with: Data(bytes)), options: [.sortedKeys])
    }

    func expectSame<T: Encodable & JSONWritable>(_ input: T, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let declared = try normalised(Array(JSONEncoder().encode(input)))
        let written = try normalised(input.jsonBytes)
        #expect(declared == written, "\(String(decoding: written, as: UTF8.self))", sourceLocation: sourceLocation)
    }

    static let item: DynamoDBItem = [
        "tenantId": .s("t\"q\\u\n"), "n": .n("1.5"), "b": .b([0, 1, 2, 250, 251]), "bool": .bool(false), "null": .null,
        "l": .l([.s("x"), .m(["k": .ns(["1"])])]), "ss": .ss(["a"]), "bs": .bs([[1, 2, 3, 4]]), "emoji": .s("🚀 é"),
    ]

    @Test("every request shape")
    func shapes() throws {
        try expectSame(GetItemInput(TableName: "t", Key: Self.item))
        try expectSame(PutItemInput(TableName: "t", Item: Self.item, ConditionExpression: "attribute_not_exists(#n0)", ExpressionAttributeNames: ["#n0": "resourceKey"]))
        try expectSame(DeleteItemInput(TableName: "t", Key: Self.item, ConditionExpression: "#n0 = :v0", ExpressionAttributeNames: ["#n0": "v"], ExpressionAttributeValues: [":v0": .n("1")]))
        try expectSame(UpdateItemInput(TableName: "t", Key: Self.item, UpdateExpression: "SET #n0 = :v0", ExpressionAttributeNames: ["#n0": "a"], ExpressionAttributeValues: [":v0": .s("b")], ReturnValues: "ALL_NEW"))
        try expectSame(QueryInput(TableName: "t", IndexName: "i", KeyConditionExpression: "#n0 = :v0", ExpressionAttributeNames: ["#n0": "k"], ExpressionAttributeValues: [":v0": .s("x")], Limit: 5, ExclusiveStartKey: Self.item, ScanIndexForward: false, ConsistentRead: true))
        try expectSame(BatchWriteItemInput(RequestItems: ["t": [.put(Self.item), .delete(["k": .s("v")])]]))
        try expectSame(TransactWriteItemsInput(TransactItems: [
            .put(.init(TableName: "t", Item: Self.item, ConditionExpression: nil, ExpressionAttributeNames: nil, ExpressionAttributeValues: nil)),
            .delete(.init(TableName: "t", Key: ["k": .s("v")], ConditionExpression: "attribute_exists(#n0)", ExpressionAttributeNames: ["#n0": "k"], ExpressionAttributeValues: nil)),
            .conditionCheck(.init(TableName: "t", Key: ["k": .s("w")], ConditionExpression: "#n0 = :v0", ExpressionAttributeNames: ["#n0": "n"], ExpressionAttributeValues: [":v0": .bool(true)])),
        ], ClientRequestToken: "token"))
        try expectSame(CreateTableInput(
            TableName: "t", AttributeDefinitions: [.init("a", "S")], KeySchema: [.hash("a"), .range("b")],
            GlobalSecondaryIndexes: [.init(IndexName: "i", KeySchema: [.hash("c")], Projection: .init(ProjectionType: "ALL"))]
        ))
        try expectSame(UpdateTimeToLiveInput(TableName: "t", TimeToLiveSpecification: .init(Enabled: true, AttributeName: "expiresAt")))
        try expectSame(ScanCountInput(TableName: "t", ExclusiveStartKey: Self.item))
    }

    @Test("base64 of every length agrees with Foundation")
    func base64() {
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            #expect(Base64.encode(bytes) == Data(bytes).base64EncodedString())
        }
    }
}
