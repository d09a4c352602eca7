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
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", "-c", script, moto.endpoint]
    let output = Pipe()
    process.standardOutput = output
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = output.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let words = String(decoding: data, as: UTF8.self).split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
    guard process.terminationStatus == 0, words.count == 2 else {
        throw UnavailableInThisEnvironment(description: "boto3 could not create an IAM user on moto")
    }
    return AWSCredentials(accessKeyId: words[0], secretAccessKey: words[1])
}

/// Runs `body` with a client, shutting its connection pool down afterwards.
func withClient<T>(_ credentials: AWSCredentials, retryPolicy: RetryPolicy = .standard, _ body: (AWSClient) async throws -> T) async throws -> T {
    let client = AWSClient(credentials: credentials, region: "us-east-1", retryPolicy: retryPolicy)
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

    @Test("behind a proxy that throttles and fails a share of calls, 200 onboardings all succeed, none twice")
    func faultTolerance() async throws {
        guard let moto = try await ifAvailable("fault tolerance", { try await MotoServer.shared() }) else { return }
        try await DynamoDBTable.create(moto.dynamoDB(), name: "faulty")
        let proxy = FaultInjectingProxy(upstream: moto.endpoint, faultRate: 0.3)
        try await proxy.run { proxyEndpoint in
            let fast = RetryPolicy(maxAttempts: 10, base: .milliseconds(5), throttlingBase: .milliseconds(10), cap: .milliseconds(200))
            try await withClient(TestAWSClients.credentials, retryPolicy: fast) { client in
                let store = DynamoDBTenantStore(dynamoDB: DynamoDB(client: client, endpoint: proxyEndpoint), table: "faulty")
                let onboarding = OnboardingService(store: store, hasher: CryptoSecretHasher())
                let ids = try await withThrowingTaskGroup(of: String.self) { group in
                    for index in 0..<200 {
                        group.addTask {
                            try await onboarding.onboard(OnboardingRequest(
                                clientName: .string("Flaky \(index)"), clientPhone: .string("+4420794\(String(10_000 + index))")
                            )).tenant.id.rawValue
                        }
                    }
                    var ids: [String] = []
                    for try await id in group { ids.append(id) }
                    return ids
                }
                #expect(Set(ids).count == 200)
            }
        }
        #expect(proxy.faults > 30, "the proxy really failed calls (\(proxy.faults) of \(proxy.calls))")
        // Counted on moto directly: exactly one profile, one API key and its look-up item per onboarding.
        #expect(try await moto.dynamoDB().countItems(table: "faulty") == 600)
    }
}

/// An HTTP proxy on 127.0.0.1 in front of moto that answers a share of DynamoDB calls itself
/// with throttling errors or a 500 (without forwarding them), and forwards the rest.
final class FaultInjectingProxy: Sendable {
    let upstream: String
    let faultRate: Double
    private let counters = Mutex((calls: 0, faults: 0))

    var calls: Int { counters.withLock { $0.calls } }
    var faults: Int { counters.withLock { $0.faults } }

    init(upstream: String, faultRate: Double) {
        self.upstream = upstream
        self.faultRate = faultRate
    }

    static let faultAnswers: [(HTTPResponse.Status, String)] = [
        (.badRequest, #"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate of requests exceeds the allowed throughput."}"#),
        (.badRequest, #"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded."}"#),
        (.internalServerError, #"{"__type":"com.amazonaws.dynamodb.v20120810#InternalServerError","message":"Internal server error"}"#),
    ]

    /// Serves the proxy while `body` runs, giving it the proxy's endpoint.
    func run(_ body: @escaping @Sendable (String) async throws -> Void) async throws {
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        let router = Router()
        router.post("/") { request, _ -> Response in
            let payload = try await request.body.collect(upTo: 16 << 20)
            let injectFault = self.counters.withLock { counters in
                counters.calls += 1
                guard Double.random(in: 0..<1) < self.faultRate else { return false }
                counters.faults += 1
                return true
            }
            if injectFault {
                let (status, json) = Self.faultAnswers.randomElement()!
                return Response(
                    status: status, headers: [.contentType: "application/x-amz-json-1.0"],
                    body: .init(byteBuffer: ByteBuffer(string: json))
                )
            }
            var forward = HTTPClientRequest(url: self.upstream + "/")
            forward.method = .POST
            for field in request.headers where field.name != .contentLength {
                forward.headers.add(name: field.name.rawName, value: field.value)
            }
            forward.body = .bytes(payload)
            let answer = try await http.execute(forward, timeout: .seconds(30))
            let bytes = try await answer.body.collect(upTo: 16 << 20)
            var headers = HTTPFields()
            headers[.contentType] = answer.headers.first(name: "content-type") ?? "application/x-amz-json-1.0"
            return Response(status: .init(code: Int(answer.status.code)), headers: headers, body: .init(byteBuffer: bytes))
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        do {
            try await app.test(.live) { client in
                try await body("http://127.0.0.1:\(client.port ?? 0)")
            }
            try await http.shutdown()
        } catch {
            try? await http.shutdown()
            throw error
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
