import AWSClient
import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import OnboardTestSupport
import OnboardingApp
import OnboardingCore
import OnboardingDynamoDB
import OnboardingHTTP
import Synchronization
import Testing
import WireFormat

/// The DynamoDB path under the faults a real client meets, injected by a proxy between our client
/// and moto (`scripts/dynamodb_fault_proxy.py`): answers lost after the write happened, 500s after
/// the write happened, throttling. Every check is made on moto directly, not through the proxy.
@Suite(
    "Lost answers: the DynamoDB path behind a fault proxy", .serialized,
    .requires(.moto)
)
struct LostAnswerTests {
    static let onboardings = 600
    /// moto runs one request at a time, and its TransactWriteItems copies the whole table first
    /// (for its rollback), so each costs more as the table grows: with more callers at once the
    /// queue in front of moto, not our code, would push calls past the request's deadline.
    static let concurrency = 8

    @Test("the proxy's faults are real: a dropped answer is a reset after the write, a 500 comes after the write, throttling as DynamoDB sends it")
    func proxyFaults() async throws {
        try await ProxiedServer.run { server in
            let direct = server.moto.dynamoDB()
            // One attempt, no retry: each call shows the fault as the client meets it.
            try await withClient(TestAWSClients.credentials, retryPolicy: RetryPolicy(maxAttempts: 1, base: .milliseconds(1), throttlingBase: .milliseconds(1), cap: .milliseconds(1))) { client in
                // The raw call, so the errors are the client's own (status, type, request id).
                func call(_ operation: String, _ body: String) async throws {
                    _ = try await client.jsonCall(
                        endpoint: server.proxy.endpoint, signingName: "dynamodb", target: "DynamoDB_20120810.\(operation)",
                        contentType: "application/x-amz-json-1.0", body: Array(body.utf8)
                    )
                }
                func put(_ id: String) async throws {
                    try await call("PutItem", #"{"TableName": "\#(server.table)", "Item": {"tenantId": {"S": "\#(id)"}, "resourceKey": {"S": "PROBE#1"}}}"#)
                }
                func stored(_ id: String) async throws -> Bool {
                    try await direct.getItem(GetItemInput(TableName: server.table, Key: ["tenantId": .s(id), "resourceKey": .s("PROBE#1")])).Item != nil
                }

                try server.proxy.setMode(.dropAnswer(every: 1))
                await #expect(throws: AWSTransportError.self) { try await put("dropped") }
                #expect(try await stored("dropped"), "the write reached moto although its answer was lost")

                try server.proxy.setMode(.failAnswer(every: 1))
                let failed = await #expect(throws: AWSServiceError.self) { try await put("failed") }
                #expect(failed?.status == 500 && failed?.type == "InternalServerError")
                #expect(try await stored("failed"), "the write reached moto although it was answered 500")

                try server.proxy.setMode(.throttle(rate: 1))
                var throttles: Set<String> = []
                for index in 0..<4 {
                    let throttled = await #expect(throws: AWSServiceError.self) { try await put("throttled-\(index)") }
                    #expect(throttled?.status == 400 && throttled?.requestID != nil)
                    throttles.insert(throttled?.type ?? "none")
                    #expect(try await stored("throttled-\(index)") == false, "a throttled call is not forwarded")
                }
                #expect(throttles == ["ThrottlingException", "ProvisionedThroughputExceededException"])

                // Only writes are hit by "every N-th write"; a one-shot fault hits its target once.
                try server.proxy.setMode(.dropAnswer(every: 1))
                try await call("GetItem", #"{"TableName": "\#(server.table)", "Key": {"tenantId": {"S": "dropped"}, "resourceKey": {"S": "PROBE#1"}}}"#)
                try server.proxy.setMode(.forward)
                try server.proxy.failNext("PutItem", .fail)
                await #expect(throws: AWSServiceError.self) { try await put("once") }
                try await put("twice")
            }
            let stats = try server.proxy.stats()
            #expect(stats.target("PutItem").dropped == 1 && stats.target("PutItem").failed == 2 && stats.target("PutItem").throttled == 4)
            #expect(stats.target("GetItem").calls == 1 && stats.target("GetItem").dropped == 0)
        }
    }

    @Test(
        "600 onboardings through faults give exactly 600 tenants, each returned to exactly one caller with a key that works",
        .heavyLoad, arguments: [FaultProxy.Mode.dropAnswer(every: 4), .failAnswer(every: 4), .throttle(rate: 0.1)]
    )
    func onboardingsThroughFaults(mode: FaultProxy.Mode) async throws {
        try await ProxiedServer.run { server in
            try server.proxy.setMode(mode)
            let outcomes = try await server.onboardAll(count: Self.onboardings, concurrency: Self.concurrency)
            let faults = try server.proxy.stats()
            try server.proxy.setMode(.forward)

            // The proxy really injected its fault, into the onboarding writes themselves.
            switch mode {
            case .dropAnswer: #expect(faults.target("TransactWriteItems").dropped + faults.target("PutItem").dropped > 20, "\(faults)")
            case .failAnswer: #expect(faults.target("TransactWriteItems").failed + faults.target("PutItem").failed > 20, "\(faults)")
            case .throttle: #expect(faults.throttled > 20, "\(faults)")
            case .forward: break
            }

            // Every onboarding the test started answered: 201 with its tenant, or an error.
            #expect(outcomes.count == Self.onboardings)
            let created = outcomes.compactMap { outcome -> (index: Int, id: String, key: String)? in
                guard case .created(let id, let key) = outcome.result else { return nil }
                return (outcome.index, id, key)
            }
            let failures = outcomes.compactMap { outcome -> String? in
                guard case .failed(let description) = outcome.result else { return nil }
                return "#\(outcome.index): \(description)"
            }
            #expect(failures.isEmpty, "\(failures.count) onboardings failed, e.g. \(failures.prefix(3))")
            #expect(created.count == Self.onboardings)
            #expect(Set(created.map(\.id)).count == created.count, "a tenant id was returned to two callers")

            // The table holds exactly the tenants the callers were told about: none nobody heard
            // of (a write retried after its answer was lost), no 201 without its tenant.
            let profiles = try await server.profiles()
            #expect(profiles.count == Self.onboardings, "profile items on moto: \(profiles.count)")
            let stored = Set(profiles.map(\.id))
            let returned = Set(created.map(\.id))
            #expect(stored.count == profiles.count, "a tenant has two profile items")
            #expect(stored.subtracting(returned).isEmpty, "\(stored.subtracting(returned).count) tenants in the table no caller was told about")
            #expect(returned.subtracting(stored).isEmpty, "\(returned.subtracting(stored).count) tenants answered 201 are not in the table")
            // No client was onboarded twice: one profile per name sent, under the id its caller got.
            let names = Dictionary(profiles.map { ($0.id, $0.name) }, uniquingKeysWith: { first, _ in first })
            #expect(Set(profiles.map(\.name)).count == profiles.count, "a client has two tenants")
            let wrongName = created.filter { names[$0.id] != nil && names[$0.id] != ProxiedServer.clientName($0.index) }
            #expect(wrongName.isEmpty, "\(wrongName.count) callers got another caller's tenant")

            // The API key each caller was given is the one stored: it opens its own tenant.
            let rejected = try await server.keysRejected(created.map { ($0.id, $0.key) }, concurrency: Self.concurrency)
            #expect(rejected.isEmpty, "\(rejected.count) returned API keys do not work, e.g. \(rejected.prefix(3))")
        }
    }

    @Test("a resource DELETE whose DeleteItem answer is lost answers 204, and the resource is gone")
    func deleteThroughLostAnswer() async throws {
        try await ProxiedServer.run { server in
            let (id, key) = try await server.onboardOne()
            let path = "/tenants/\(id)/resources/invoice/inv-lost"
            #expect(try await server.send(.put, path, token: key, json: #"{"amount": 12}"#).status == 201)

            try server.proxy.failNext("DeleteItem", .drop)
            let deleted = try await server.send(.delete, path, token: key)
            #expect(try server.proxy.stats().target("DeleteItem").dropped == 1, "the proxy dropped the DeleteItem's answer")
            #expect(deleted.status == 204, "answered \(deleted.status): \(deleted.text)")

            #expect(try await server.send(.get, path, token: key).status == 404)
            let onMoto = try await server.moto.dynamoDB().getItem(GetItemInput(
                TableName: server.table, Key: ["tenantId": .s(id), "resourceKey": .s("invoice#inv-lost")]
            ))
            #expect(onMoto.Item == nil, "the resource is still on moto")
        }
    }

    @Test("a generated admin token whose PutItem answer is lost is still returned, and it is the one stored")
    func adminTokenThroughLostAnswer() async throws {
        try await ProxiedServer.run { server in
            try server.proxy.failNext("PutItem", .drop)
            let first = try await AdminTokenRecord.prepare(store: server.store, configuredToken: nil)
            #expect(try server.proxy.stats().target("PutItem").dropped == 1, "the proxy dropped the PutItem's answer")

            let stored = try await server.moto.dynamoDB().getItem(GetItemInput(
                TableName: server.table, Key: ["tenantId": .s("_system"), "resourceKey": .s("ADMIN_TOKEN#current")]
            ))
            let storedHash = try #require(stored.Item?["tokenHash"].flatMap { value -> String? in
                if case .s(let text) = value { return text }
                return nil
            }, "the token's hash was stored")
            // The token is printed exactly when it was stored: the one returned hashes to the stored hash.
            let token = try #require(first.generatedToken, "a token was stored but none returned to print")
            #expect(AdminCredential(storedHash: storedHash)?.matches(token) == true, "the token returned is not the one whose hash is stored")
            #expect(first.credential.storedHash == storedHash)
            #expect(first.credential.matches(token))

            // A later start finds the stored token: it prints none and accepts the same one.
            let second = try await AdminTokenRecord.prepare(store: server.store, configuredToken: nil)
            #expect(second.generatedToken == nil)
            #expect(second.credential.matches(token))
        }
    }
}

/// The real router on a live HTTP server on 127.0.0.1, on a DynamoDB store whose calls go through
/// a ``FaultProxy`` to moto; a fresh table per test.
struct ProxiedServer: Sendable {
    let moto: MotoServer
    let proxy: FaultProxy
    let table: String
    let store: DynamoDBTenantStore
    let port: Int
    let http: HTTPClient

    static let adminToken = "lost-answer-admin-token-0123456789"

    /// Retries fast, so hundreds of faults cost little time; enough attempts that no onboarding
    /// runs out of them while one write in four loses its answer.
    static let fastRetries = RetryPolicy(maxAttempts: 10, base: .milliseconds(5), throttlingBase: .milliseconds(10), cap: .milliseconds(200))

    static func clientName(_ index: Int) -> String { "Lost Answer \(index)" }

    static func run(_ body: @Sendable (ProxiedServer) async throws -> Void) async throws {
        // A moto of its own: these tests fill a table with thousands of items, which would slow
        // every later TransactWriteItems on the shared server.
        let moto = try await MotoServer.start()
        defer { moto.stop() }
        let table = "lost-\(UUID().uuidString.prefix(8).lowercased())"
        _ = try await DynamoDBTable.create(moto.dynamoDB(), name: table)
        let proxy = try await FaultProxy.start(upstream: moto.endpoint)
        defer { proxy.stop() }
        try await withClient(TestAWSClients.credentials, retryPolicy: fastRetries) { client in
            let store = DynamoDBTenantStore(dynamoDB: DynamoDB(client: client, endpoint: proxy.endpoint), table: table)
            // The application `serve` runs (buildApplication), on the store behind the proxy.
            var configuration = ServeConfiguration()
            configuration.port = 0
            configuration.adminToken = adminToken
            configuration.rateLimits = nil
            // moto, not the code under test, is slow here (one request at a time, and a deep
            // copy of the table per transaction): a deadline that a queue at moto cannot
            // exhaust, so that every 503 would be a real failure to recognise a write.
            configuration.requestDeadline = .seconds(60)
            var logger = Logger(label: "onboard")
            logger.logLevel = .warning  // 1,800 request lines per test are noise; failures still show
            let app = try await buildApplication(configuration, overrides: AppOverrides(store: store, logger: logger))
            try await app.test(.live) { testClient in
                // Requests go through async-http-client's pool, so they run concurrently (the
                // test client sends one request at a time on its one connection).
                let http = HTTPClient(
                    eventLoopGroupProvider: .singleton,
                    configuration: .init(
                        timeout: .init(connect: .seconds(10), read: .seconds(60)),
                        connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 32)
                    )
                )
                do {
                    try await body(ProxiedServer(moto: moto, proxy: proxy, table: table, store: store, port: testClient.port ?? 0, http: http))
                    try await http.shutdown()
                } catch {
                    try? await http.shutdown()
                    throw error
                }
            }
        }
    }

    struct Answer: Sendable {
        let status: Int
        let body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
        var json: [String: AttributeValue] { (try? JSONCodec.parse(body))?.mapValue ?? [:] }
    }

    func send(_ method: HTTPRequest.Method, _ path: String, token: String? = nil, json: String? = nil) async throws -> Answer {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
        request.method = .init(rawValue: method.rawValue)
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if let json {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: json))
        }
        let response = try await http.execute(request, timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 1 << 20)
        return Answer(status: Int(response.status.code), body: Array(body.readableBytesView))
    }

    /// One `POST /onboard`; its tenant id and API key.
    func onboardOne(_ index: Int = 0) async throws -> (id: String, key: String) {
        let answer = try await onboard(index)
        #expect(answer.status == 201, "\(answer.text)")
        return (try #require(answer.json["tenantId"]?.stringValue), try #require(answer.json["apiKey"]?.stringValue))
    }

    private func onboard(_ index: Int) async throws -> Answer {
        let phone = "+44207946\(String(format: "%04d", index % 10_000))"
        return try await send(.post, "/onboard", json: #"{"clientName": "\#(Self.clientName(index))", "clientPhone": "\#(phone)"}"#)
    }

    enum Result: Sendable {
        case created(id: String, key: String)
        case failed(String)
    }

    /// `count` onboardings, at most `concurrency` at a time; what each one answered.
    func onboardAll(count: Int, concurrency: Int) async throws -> [(index: Int, result: Result)] {
        try await forEach(0..<count, concurrency: concurrency) { index in
            do {
                let answer = try await onboard(index)
                if answer.status == 201, let id = answer.json["tenantId"]?.stringValue, let key = answer.json["apiKey"]?.stringValue {
                    return (index, .created(id: id, key: key))
                }
                return (index, .failed("\(answer.status) \(answer.text)"))
            } catch {
                return (index, .failed("no answer: \(error)"))
            }
        }
    }

    /// The (tenant, key) pairs whose key does not open its tenant (`GET /tenants/{id}`).
    func keysRejected(_ pairs: [(String, String)], concurrency: Int) async throws -> [String] {
        try await forEach(pairs, concurrency: concurrency) { pair -> String? in
            let answer = try await send(.get, "/tenants/\(pair.0)", token: pair.1)
            return answer.status == 200 ? nil : "\(pair.0): \(answer.status)"
        }.compactMap { $0 }
    }

    /// The tenant profiles (`TENANT#…` items) in the table, scanned on moto directly.
    func profiles() async throws -> [(id: String, name: String)] {
        let dynamoDB = moto.dynamoDB()
        var found: [(id: String, name: String)] = []
        var start: DynamoDBItem?
        repeat {
            let page: ProfileScanOutput = try await dynamoDB.call("Scan", ProfileScan(table: table, start: start))
            for item in page.Items ?? [] {
                guard case .s(let id)? = item["tenantId"], case .s(let key)? = item["resourceKey"], key.hasPrefix("TENANT#") else { continue }
                guard case .s(let name)? = item["clientName"] else { continue }
                found.append((id, name))
            }
            start = page.LastEvaluatedKey
        } while start != nil
        return found
    }

    /// Runs `work` on every element, at most `concurrency` at a time; the results in any order.
    private func forEach<Element: Sendable, Output: Sendable>(
        _ elements: some Sequence<Element>, concurrency: Int, _ work: @escaping @Sendable (Element) async throws -> Output
    ) async throws -> [Output] {
        try await withThrowingTaskGroup(of: Output.self) { group in
            var results: [Output] = []
            var running = 0
            for element in elements {
                if running == concurrency {
                    if let result = try await group.next() { results.append(result) }
                    running -= 1
                }
                group.addTask { try await work(element) }
                running += 1
            }
            for try await result in group { results.append(result) }
            return results
        }
    }
}

/// A `Scan` of the profile items (`begins_with(resourceKey, "TENANT#")`), consistent.
private struct ProfileScan: JSONWritable {
    let table: String
    let start: DynamoDBItem?

    func write(to writer: inout JSONWriter) {
        writer.beginObject()
        writer.field("TableName", table)
        writer.field("FilterExpression", "begins_with(resourceKey, :profile)")
        writer.key("ExpressionAttributeValues")
        writer.beginObject()
        writer.key(":profile")
        DynamoDBValue.s("TENANT#").write(to: &writer)
        writer.endObject()
        if let start {
            writer.key("ExclusiveStartKey")
            writer.beginObject()
            for (name, value) in start {
                writer.key(name)
                value.write(to: &writer)
            }
            writer.endObject()
        }
        writer.field("ConsistentRead", true)
        writer.endObject()
    }
}

private struct ProfileScanOutput: Decodable {
    var Items: [DynamoDBItem]?
    var LastEvaluatedKey: DynamoDBItem?
}
