import AWSClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import OnboardTestSupport
import OnboardingCore
import OnboardingDynamoDB
import RequestBudget
import SigV4
import Synchronization
import Testing

/// A DynamoDB stand-in on 127.0.0.1 that answers from a script: each call gets the answer the
/// script gives for its number and its body, and every request is kept for the test to read.
/// Deterministic where moto cannot be: moto never reports a transaction conflict (it runs one
/// request at a time) and never loses an answer.
final class ScriptedDynamoDB: Sendable {
    struct Call: Sendable {
        let target: String
        let body: [String: any Sendable]
    }

    typealias Answer = (status: HTTPResponse.Status, json: String)
    private let script: @Sendable (_ number: Int, _ call: Call) -> Answer
    private let recorded = Mutex<[Call]>([])

    var calls: [Call] { recorded.withLock { $0 } }

    init(_ script: @escaping @Sendable (_ number: Int, _ call: Call) -> Answer) {
        self.script = script
    }

    static let ok: Answer = (.ok, "{}")
    static func error(_ type: String, status: HTTPResponse.Status = .badRequest, extra: String = "") -> Answer {
        (status, #"{"__type":"com.amazonaws.dynamodb.v20120810#\#(type)","message":"scripted"\#(extra)}"#)
    }
    static let serverError = error("InternalServerError", status: .internalServerError)

    /// Serves the stand-in while `body` runs with a store whose client goes to it.
    func run(
        maxRetries: Int = 8, timeout: Duration = .seconds(300),
        _ body: @escaping @Sendable (DynamoDBTenantStore) async throws -> Void
    ) async throws {
        let router = Router()
        router.post("/") { request, _ -> Response in
            let payload = try await request.body.collect(upTo: 1 << 20)
            let object = (try? JSONSerialization.jsonObject(with: Data(payload.readableBytesView))) as? [String: Any] ?? [:]
            let call = Call(target: request.headers[HTTPField.Name("X-Amz-Target")!] ?? "", body: object.mapValues { "\($0)" as any Sendable }.merging(["raw": String(buffer: payload)]) { $1 })
            let number = self.recorded.withLock { calls in
                calls.append(call)
                return calls.count
            }
            let answer = self.script(number, call)
            return Response(
                status: answer.status, headers: [.contentType: "application/x-amz-json-1.0"],
                body: .init(byteBuffer: ByteBuffer(string: answer.json))
            )
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let fast = RetryPolicy(maxAttempts: maxRetries + 1, base: .milliseconds(1), throttlingBase: .milliseconds(2), cap: .milliseconds(10))
            // Every answer comes from the script, at once: an attempt only outlasts 10 s when the
            // test process is busy, and a timed-out attempt would be a resend the script did not plan.
            try await withClient(TestAWSClients.credentials, retryPolicy: fast, requestTimeout: .seconds(120)) { aws in
                let store = DynamoDBTenantStore(dynamoDB: DynamoDB(client: aws, endpoint: "http://127.0.0.1:\(client.port ?? 0)"), table: "scripted")
                try await RetryBudget.$current.withValue(RetryBudget(timeout: timeout, maxRetries: maxRetries)) {
                    try await body(store)
                }
            }
        }
    }
}

extension ScriptedDynamoDB.Call {
    /// The raw JSON text of the request.
    var raw: String { body["raw"] as? String ?? "" }
    /// The transaction's `ClientRequestToken`.
    var clientRequestToken: String? { body["ClientRequestToken"] as? String }
    /// The write token the store put in the request's first item, read from the raw JSON.
    var writeToken: String? {
        guard let range = raw.range(of: #""\#(DynamoDBTenantStore.writeTokenAttribute)":{"S":""#) else { return nil }
        return String(raw[range.upperBound...].prefix { $0 != "\"" })
    }
}

private let tenant = Item(tenantId: "t1", resourceKey: "TENANT#t1", attributes: ["clientName": .string("Ada")])
private let apiKey = Item(tenantId: "t1", resourceKey: "APIKEY#k1", attributes: ["prefix": .string("onb_k1")])

/// The item of a `ConditionalCheckFailedException` with `ALL_OLD`, as DynamoDB sends it.
private func oldItem(_ item: Item, token: String?) -> String {
    var fields = [#""tenantId":{"S":"\#(item.key.tenantId)"}"#, #""resourceKey":{"S":"\#(item.key.resourceKey)"}"#]
    if let token { fields.append(#""\#(DynamoDBTenantStore.writeTokenAttribute)":{"S":"\#(token)"}"#) }
    return "{" + fields.joined(separator: ",") + "}"
}

@Suite("Lost answers, conflicts and the retry budget (a scripted DynamoDB on loopback)")
struct RetryAndRecognitionTests {
    @Test("a put whose answer was lost recognises its own item when the resend fails its condition")
    func putRecognisesItsOwnWrite() async throws {
        let stub = ScriptedDynamoDB { number, call in
            number == 1 ? ScriptedDynamoDB.serverError
                : ScriptedDynamoDB.error("ConditionalCheckFailedException", extra: #","Item":\#(oldItem(tenant, token: call.writeToken))"#)
        }
        try await stub.run { store in try await store.put(tenant, condition: .itemNotExists) }
        #expect(stub.calls.count == 2)
        #expect(stub.calls.allSatisfy { $0.raw.contains(#""ReturnValuesOnConditionCheckFailure":"ALL_OLD""#) })
        #expect(stub.calls[0].writeToken != nil && stub.calls[0].writeToken == stub.calls[1].writeToken, "a resend is the same write")
    }

    @Test("another writer's item (another token) is not taken for one's own, lost answer or not")
    func putDoesNotClaimAnotherWrite() async throws {
        for lostFirst in [true, false] {
            let stub = ScriptedDynamoDB { number, _ in
                lostFirst && number == 1 ? ScriptedDynamoDB.serverError
                    : ScriptedDynamoDB.error("ConditionalCheckFailedException", extra: #","Item":\#(oldItem(tenant, token: "someone-else"))"#)
            }
            try await stub.run { store in
                let error = await #expect(throws: StoreError.self) { try await store.put(tenant, condition: .itemNotExists) }
                #expect(error?.code == .conditionFailed)
            }
        }
        // Without a lost answer, even an item carrying the same token is not "recognised": only a
        // lost attempt can have written it.
        let stub = ScriptedDynamoDB { _, call in
            ScriptedDynamoDB.error("ConditionalCheckFailedException", extra: #","Item":\#(oldItem(tenant, token: call.writeToken))"#)
        }
        try await stub.run { store in
            await #expect(throws: StoreError.self) { try await store.put(tenant, condition: .itemNotExists) }
        }
    }

    @Test("a conditional delete whose answer was lost succeeds when the item is gone, fails when it is still there")
    func deleteRecognisesItsOwnWrite() async throws {
        let gone = ScriptedDynamoDB { number, _ in
            number == 1 ? ScriptedDynamoDB.serverError : ScriptedDynamoDB.error("ConditionalCheckFailedException")
        }
        try await gone.run { store in try await store.delete(tenant.key, condition: .attributeEquals("etag", .string("e1"))) }
        #expect(gone.calls.count == 2)

        let stillThere = ScriptedDynamoDB { number, _ in
            number == 1 ? ScriptedDynamoDB.serverError
                : ScriptedDynamoDB.error("ConditionalCheckFailedException", extra: #","Item":\#(oldItem(tenant, token: nil))"#)
        }
        try await stillThere.run { store in
            let error = await #expect(throws: StoreError.self) {
                try await store.delete(tenant.key, condition: .attributeEquals("etag", .string("e1")))
            }
            #expect(error?.code == .conditionFailed)
        }
    }

    @Test("a transaction resent after a lost answer keeps its ClientRequestToken and recognises its own items")
    func transactionRecognisesItsOwnWrite() async throws {
        let stub = ScriptedDynamoDB { number, call in
            guard number > 1 else { return ScriptedDynamoDB.serverError }
            let reasons = #"[{"Code":"ConditionalCheckFailed","Message":"x","Item":\#(oldItem(tenant, token: call.writeToken))},{"Code":"None"}]"#
            return ScriptedDynamoDB.error("TransactionCanceledException", extra: #","CancellationReasons":\#(reasons)"#)
        }
        try await stub.run { store in
            try await store.transact([.put(tenant, condition: .itemNotExists), .put(apiKey, condition: .itemNotExists)])
        }
        #expect(stub.calls.count == 2)
        #expect(stub.calls[0].clientRequestToken != nil)
        #expect(stub.calls[0].clientRequestToken == stub.calls[1].clientRequestToken, "transport resends of one attempt share the token")

        // The same answer without a lost one first is a real failed condition.
        let honest = ScriptedDynamoDB { _, call in
            let reasons = #"[{"Code":"ConditionalCheckFailed","Message":"x","Item":\#(oldItem(tenant, token: "other"))},{"Code":"None"}]"#
            return ScriptedDynamoDB.error("TransactionCanceledException", extra: #","CancellationReasons":\#(reasons)"#)
        }
        try await honest.run { store in
            let error = await #expect(throws: StoreError.self) {
                try await store.transact([.put(tenant, condition: .itemNotExists), .put(apiKey, condition: .itemNotExists)])
            }
            #expect(error?.code == .transactionCanceled)
            #expect(error?.cancellationReasons == [.conditionFailed, .none])
        }
    }

    @Test("a transaction with an update, resent after a lost answer, recognises its token on the updated item")
    func transactionUpdateRecognisesItsOwnWrite() async throws {
        let writes: [TransactionWrite] = [
            .put(apiKey, condition: .itemNotExists),
            .update(tenant.key, set: [:], add: ["apiKeyCount": 1], condition: .attributeLessThan("apiKeyCount", 20)),
        ]
        for (lostFirst, ownToken) in [(true, true), (true, false), (false, true)] {
            let stub = ScriptedDynamoDB { number, call in
                if lostFirst && number == 1 { return ScriptedDynamoDB.serverError }
                // As if the key's put still held on the resend, and only the count's condition failed.
                let item = oldItem(tenant, token: ownToken ? call.writeToken : "someone-else")
                let reasons = #"[{"Code":"None"},{"Code":"ConditionalCheckFailed","Message":"x","Item":\#(item)}]"#
                return ScriptedDynamoDB.error("TransactionCanceledException", extra: #","CancellationReasons":\#(reasons)"#)
            }
            try await stub.run { store in
                if lostFirst && ownToken {
                    try await store.transact(writes)
                } else {
                    let error = await #expect(throws: StoreError.self) { try await store.transact(writes) }
                    #expect(error?.cancellationReasons == [.none, .conditionFailed])
                }
            }
            let first = try #require(stub.calls.first)
            let token = try #require(first.writeToken)
            #expect(first.raw.contains(#""Update":{"#))
            #expect(first.raw.contains("if_not_exists("))
            #expect(first.raw.components(separatedBy: token).count == 3, "the put's item and the update both carry the transaction's token")
        }
    }

    @Test("a transaction conflict is retried as a new attempt with a new token, until it goes through")
    func conflictRetriedWithNewToken() async throws {
        let conflict = ScriptedDynamoDB.error(
            "TransactionCanceledException", extra: #","CancellationReasons":[{"Code":"TransactionConflict","Message":"x"},{"Code":"None"}]"#
        )
        let stub = ScriptedDynamoDB { number, _ in number <= 2 ? conflict : ScriptedDynamoDB.ok }
        try await stub.run { store in
            try await store.transact([.put(tenant, condition: .itemNotExists), .put(apiKey, condition: nil)])
        }
        let tokens = stub.calls.compactMap(\.clientRequestToken)
        #expect(tokens.count == 3)
        #expect(Set(tokens).count == 3, "each attempt after a conflict is a new transaction")
    }

    @Test("validation errors in a transaction are not conflicts: answered at once, never retried")
    func validationIsNotAConflict() async throws {
        let stub = ScriptedDynamoDB { _, _ in
            ScriptedDynamoDB.error(
                "TransactionCanceledException",
                extra: #","CancellationReasons":[{"Code":"None"},{"Code":"ValidationError","Message":"Item size has exceeded the maximum allowed size"}]"#
            )
        }
        try await stub.run { store in
            let error = await #expect(throws: StoreError.self) {
                try await store.transact([.put(tenant, condition: .itemNotExists), .put(apiKey, condition: nil)])
            }
            #expect(error?.code == .invalidRequest)
            #expect(error?.message.contains("maximum allowed size") == true)
        }
        #expect(stub.calls.count == 1)
    }

    @Test("throttling reasons are retried (as throttling) and then go through")
    func throttlingReasonRetried() async throws {
        let throttled = ScriptedDynamoDB.error(
            "TransactionCanceledException", extra: #","CancellationReasons":[{"Code":"ThrottlingError","Message":"x"},{"Code":"None"}]"#
        )
        let stub = ScriptedDynamoDB { number, _ in number == 1 ? throttled : ScriptedDynamoDB.ok }
        try await stub.run { store in try await store.transact([.put(tenant, condition: nil), .put(apiKey, condition: nil)]) }
        #expect(stub.calls.count == 2)
    }

    @Test("one budget for the whole request: conflicts and resends together stop at its retries, then 'unavailable'")
    func oneBudgetAcrossLayers() async throws {
        let conflict = ScriptedDynamoDB.error(
            "TransactionCanceledException", extra: #","CancellationReasons":[{"Code":"TransactionConflict","Message":"x"},{"Code":"None"}]"#
        )
        // Odd calls fail in transport terms (500: the client resends), even ones conflict (the
        // store starts a new attempt): both layers draw on the same 5 retries.
        let stub = ScriptedDynamoDB { number, _ in number.isMultiple(of: 2) ? conflict : ScriptedDynamoDB.serverError }
        try await stub.run(maxRetries: 5) { store in
            let error = await #expect(throws: StoreError.self) {
                try await store.transact([.put(tenant, condition: nil), .put(apiKey, condition: nil)])
            }
            #expect(error?.code == .unavailable)
        }
        // One first attempt and five retries: not 8 × 8 as nested loops would make.
        #expect(stub.calls.count == 6)
    }

    @Test("a request whose deadline has passed makes no further attempt")
    func deadlineStopsRetries() async throws {
        let stub = ScriptedDynamoDB { _, _ in ScriptedDynamoDB.serverError }
        try await stub.run(maxRetries: 1_000, timeout: .milliseconds(400)) { store in
            let error = await #expect(throws: StoreError.self) { try await store.put(tenant, condition: nil) }
            #expect(error?.code == .unavailable)
            #expect(RetryBudget.current?.isExpired == true || RetryBudget.current.map { $0.remaining < .milliseconds(200) } == true)
        }
        #expect(stub.calls.count < 1_000, "the deadline, not the retry count, ended the request")
    }

    @Test("a Query page that comes back empty but with a LastEvaluatedKey does not end the listing")
    func emptyQueryPageFollowed() async throws {
        let stub = ScriptedDynamoDB { number, _ in
            switch number {
            case 1: (.ok, #"{"Items":[],"Count":0,"LastEvaluatedKey":{"tenantId":{"S":"t1"},"resourceKey":{"S":"doc#0"}}}"#)
            default: (.ok, #"{"Items":[{"tenantId":{"S":"t1"},"resourceKey":{"S":"doc#1"},"_writeToken":{"S":"w"}}],"Count":1}"#)
            }
        }
        try await stub.run { store in
            let page = try await store.query(ItemQuery(tenantId: "t1", prefix: "doc#", limit: 10))
            #expect(page.items.map(\.key.resourceKey) == ["doc#1"])
            #expect(page.items.first?.attributes.isEmpty == true, "the write token is the store's own, never shown")
            #expect(page.lastEvaluatedKey == nil)
        }
        #expect(stub.calls.count == 2)
    }
}

@Suite("RetryBudget")
struct RetryBudgetTests {
    @Test("retries are counted across callers and stop at the maximum")
    func countsRetries() {
        let budget = RetryBudget(timeout: .seconds(60), maxRetries: 3)
        let delays = (1...5).map { budget.nextRetryDelay(attempt: $0, base: .milliseconds(1), cap: .milliseconds(4)) }
        #expect(delays.prefix(3).allSatisfy { $0 != nil })
        #expect(delays.suffix(2).allSatisfy { $0 == nil })
        #expect(budget.retries >= 3)
    }

    @Test("pauses use full jitter below the cap, and never run past the deadline")
    func jitterAndDeadline() throws {
        let budget = RetryBudget(timeout: .seconds(60), maxRetries: 1_000)
        for attempt in 1...200 {
            let delay = budget.nextRetryDelay(attempt: attempt, base: .milliseconds(10), cap: .milliseconds(50))
            #expect(delay.map { $0 >= .zero && $0 <= .milliseconds(50) } == true)
        }
        // 200 ms left: an attempt gets at most that, and no pause is granted that would leave
        // less than a minimal attempt before the deadline.
        let short = RetryBudget(timeout: .milliseconds(200), maxRetries: 1_000)
        let timeout = try #require(short.attemptTimeout(atMost: .seconds(10)))
        #expect(timeout <= .milliseconds(200))
        for _ in 0..<100 {
            if let pause = short.nextRetryDelay(attempt: 30, base: .seconds(1), cap: .seconds(10)) {
                #expect(pause + RetryBudget.minimumAttemptTime <= .milliseconds(200))
            }
        }
        // With a 1 s cap the pause is mostly longer than the 150 ms that fit: most are refused.
        let refused = (0..<100).filter { _ in
            RetryBudget(timeout: .milliseconds(200), maxRetries: 5).nextRetryDelay(attempt: 30, base: .seconds(1), cap: .seconds(1)) == nil
        }.count
        #expect(refused > 50)
        let expired = RetryBudget(deadline: .now - .seconds(1))
        #expect(expired.attemptTimeout(atMost: .seconds(10)) == nil)
        #expect(expired.nextRetryDelay(attempt: 1, base: .milliseconds(1), cap: .milliseconds(1)) == nil)
    }

    @Test("withCurrent keeps a budget already bound and binds a new one otherwise")
    func bindsOnce() async {
        let outer = RetryBudget(timeout: .seconds(5))
        await RetryBudget.$current.withValue(outer) {
            await RetryBudget.withCurrent { budget in #expect(budget === outer) }
        }
        #expect(RetryBudget.current == nil)
        await RetryBudget.withCurrent { budget in #expect(RetryBudget.current === budget) }
    }
}
