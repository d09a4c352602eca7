import AWSClient
import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import OnboardTestSupport
import OnboardingCore
import OnboardingDynamoDB
import OnboardingHTTP
import SigV4
import Synchronization
import Testing

/// Creates an IAM user with full rights on a moto server that checks signatures, using boto3
/// for the set-up (moto only lets the first few calls through unsigned).
func createIAMUser(on moto: MotoServer) throws -> AWSCredentials {
    try Requirements.check(.boto3)
    let script = """
        import boto3, json, sys
        iam = boto3.client("iam", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="setup", aws_secret_access_key="setup")
        iam.create_user(UserName="onboard")
        iam.put_user_policy(UserName="onboard", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="onboard")["AccessKey"]
        print(key["AccessKeyId"], key["SecretAccessKey"])
        """
    let setup = try ChildProcess.run(executable: "/usr/bin/env", arguments: ["python3", "-c", script, moto.endpoint], standardError: .null)
    let words = setup.outputText.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
    guard setup.status.isSuccess, words.count == 2 else {
        throw UnavailableInThisEnvironment(description: "boto3 could not create an IAM user on moto")
    }
    return AWSCredentials(accessKeyId: words[0], secretAccessKey: words[1])
}

/// Runs `body` with a client, shutting its connection pool down afterwards.
func withClient<T>(
    _ credentials: AWSCredentials, retryPolicy: RetryPolicy = .standard, requestTimeout: TimeAmount = .seconds(10),
    _ body: (AWSClient) async throws -> T
) async throws -> T {
    let client = AWSClient(credentials: credentials, region: "us-east-1", retryPolicy: retryPolicy, requestTimeout: requestTimeout)
    do {
        let result = try await body(client)
        try await client.shutdown()
        return result
    } catch {
        try? await client.shutdown()
        throw error
    }
}

@Suite("Against moto", .serialized)
struct MotoAWSTests {
    @Test(
        "signatures for real: moto with authentication accepts ours and names a wrong secret's failure",
        .requires(.moto), .requires(.boto3)
    )
    func signatureVerification() async throws {
        let moto = try await MotoServer.start(environment: ["INITIAL_NO_AUTH_ACTION_COUNT": "3"])
        defer { moto.stop() }
        let credentials = try createIAMUser(on: moto)

        try await withClient(credentials) { client in
            let dynamoDB = DynamoDB(client: client, endpoint: moto.endpoint)
            try await DynamoDBTable.create(dynamoDB, name: "signed")
            let store = DynamoDBTenantStore(dynamoDB: dynamoDB, table: "signed")
            let item = Item(tenantId: "t", resourceKey: "SIGNED#1", attributes: ["ok": .bool(true)])
            try await store.put(item)
            #expect(try await store.get(item.key) == item)
        }

        let wrong = AWSCredentials(accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey + "x")
        try await withClient(wrong) { client in
            let dynamoDB = DynamoDB(client: client, endpoint: moto.endpoint)
            let error = await #expect(throws: DynamoDBError.self) { try await dynamoDB.describeTable("signed") }
            #expect(error?.code == .invalidSignature)
            #expect(error?.awsType == "SignatureDoesNotMatch")
            #expect("\(error.map { "\($0)" } ?? "")".contains("SignatureDoesNotMatch"))
            let storeError = await #expect(throws: StoreError.self) {
                try await DynamoDBTenantStore(dynamoDB: dynamoDB, table: "signed").get(ItemKey(tenantId: "t", resourceKey: "SIGNED#1"))
            }
            #expect(storeError?.code == .unavailable)
            #expect(storeError?.message.contains("SignatureDoesNotMatch") == true)
            #expect(storeError?.message.contains(wrong.secretAccessKey) == false, "the secret never appears in errors")
        }
    }
}

@Suite("DynamoDB operations on moto")
struct DynamoDBOperationTests {
    @Test("UpdateItem with a reserved-word attribute and a condition; BatchWriteItem beyond 25 writes; Query pages", .requires(.moto))
    func operations() async throws {
        let moto = try await MotoServer.shared()
        let dynamoDB = moto.dynamoDB()
        let table = "ops-\(UUID().uuidString.prefix(8).lowercased())"
        try await DynamoDBTable.create(dynamoDB, name: table)
        let key: DynamoDBItem = ["tenantId": .s("t1"), "resourceKey": .s("TENANT#t1")]
        try await dynamoDB.putItem(PutItemInput(TableName: table, Item: key.merging(["status": .s("ACTIVE"), "version": .n("1")]) { $1 }))

        var builder = ExpressionBuilder()
        let update = "SET \(builder.name("status")) = \(builder.value(.s("SUSPENDED"))), \(builder.name("version")) = \(builder.name("version")) + \(builder.value(.n("1")))"
        let condition = "\(builder.name("version")) = \(builder.value(.n("1")))"
        let updated = try await dynamoDB.updateItem(UpdateItemInput(
            TableName: table, Key: key, UpdateExpression: update, ConditionExpression: condition,
            ExpressionAttributeNames: builder.namesOrNil, ExpressionAttributeValues: builder.valuesOrNil, ReturnValues: "ALL_NEW"
        ))
        #expect(updated.Attributes?["status"] == .s("SUSPENDED"))
        #expect(updated.Attributes?["version"] == .n("2"))
        let stale = await #expect(throws: DynamoDBError.self) {
            _ = try await dynamoDB.updateItem(UpdateItemInput(
                TableName: table, Key: key, UpdateExpression: update, ConditionExpression: condition,
                ExpressionAttributeNames: builder.namesOrNil, ExpressionAttributeValues: builder.valuesOrNil
            ))
        }
        #expect(stale?.code == .conditionalCheckFailed)

        let writes = (0..<60).map { WriteRequest.put(["tenantId": .s("t2"), "resourceKey": .s(String(format: "EVENT#%03d", $0)), "n": .n(String($0))]) }
        try await dynamoDB.batchWriteItem(BatchWriteItemInput(RequestItems: [table: writes]))
        var names = ExpressionBuilder()
        let keyCondition = "\(names.name("tenantId")) = \(names.value(.s("t2")))"
        var seen: [String] = []
        var start: DynamoDBItem?
        var pages = 0
        repeat {
            let page = try await dynamoDB.query(QueryInput(
                TableName: table, KeyConditionExpression: keyCondition, ExpressionAttributeNames: names.namesOrNil,
                ExpressionAttributeValues: names.valuesOrNil, Limit: 25, ExclusiveStartKey: start, ConsistentRead: true
            ))
            seen += (page.Items ?? []).compactMap { if case .s(let key)? = $0["resourceKey"] { key } else { nil } }
            start = page.LastEvaluatedKey
            pages += 1
        } while start != nil && pages < 10
        #expect(seen == (0..<60).map { String(format: "EVENT#%03d", $0) })
        #expect(pages >= 3)

        try await dynamoDB.batchWriteItem(BatchWriteItemInput(RequestItems: [table: (0..<30).map {
            WriteRequest.delete(["tenantId": .s("t2"), "resourceKey": .s(String(format: "EVENT#%03d", $0))])
        }]))
        #expect(try await dynamoDB.countItems(table: table) == 31)
    }
}
