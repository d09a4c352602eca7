import AsyncHTTPClient
import Foundation
import HTTPTypes
import NIOCore
import OnboardTestSupport
import OnboardingCore
import OnboardingHTTP
import Synchronization
import Testing

@Suite("Idempotency-Key on the creating POSTs", .testStoreAvailable)
struct IdempotencyTests {
    static let body = #"{"clientName": "Idem Corp", "clientPhone": "+14155550123"}"#

    static func onboard(
        _ api: APIClient, key: String?, body: String = body, headers extra: HTTPFields = [:],
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> APIResponse {
        var headers = extra
        headers[.contentType] = "application/json"
        if let key { headers[.idempotencyKeyForTests] = key }
        return try await api.send(.post, "/onboard", headers: headers, body: body, sourceLocation: sourceLocation)
    }

    static func newKey() -> String { UUID().uuidString }

    /// `POST /onboard` on a client of the test's own (not validated against openapi.yaml).
    static func rawOnboard(_ client: HTTPClient, port: Int, key: String) async throws -> (status: Int, body: [UInt8], replayed: Bool) {
        var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/onboard")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Idempotency-Key", value: key)
        request.body = .bytes(ByteBuffer(string: body))
        // As patient as the tests' own client (PatientLiveServer): a held request waits for
        // others, on moto one at a time under the whole run's load.
        let response = try await client.execute(request, timeout: .seconds(300))
        let bytes = try await response.body.collect(upTo: 1 << 16)
        return (Int(response.status.code), Array(bytes.readableBytesView), response.headers.first(name: "Idempotent-Replayed") == "true")
    }

    @Test("the same key and body replay the first 201: status, body, headers, the apiKey that still works")
    func replay() async throws {
        try await TestServer.run { api, fixture in
            let key = Self.newKey()
            let first = try await Self.onboard(api, key: key)
            #expect(first.status == 201)
            #expect(first.headers[.idempotentReplayedForTests] == nil, "a first answer is not a replay")
            let apiKey = try #require(first["apiKey"])
            let tenantId = try #require(first["tenantId"])

            let again = try await Self.onboard(api, key: key)
            #expect(again.status == 201)
            #expect(again.headers[.idempotentReplayedForTests] == "true")
            #expect(again.body == first.body, "the same bytes: the same tenant and the same apiKey")
            #expect(again.headers[.location] == first.headers[.location])
            #expect(again.headers[.contentType] == first.headers[.contentType])
            #expect(again.headers[.cacheControl] == "no-store")
            #expect(again.headers[HTTPField.Name("X-Request-Id")!] != first.headers[HTTPField.Name("X-Request-Id")!], "each request keeps its own id")
            // The replayed key is the live key of the one tenant created.
            let read = try await api.call(.get, "/tenants/\(tenantId)", token: apiKey)
            #expect(read.status == 200)
            #expect(try await fixture.itemCount() == 5, "one tenant (profile, key, look-up, its tenant.onboarded event) and its idempotency record")

            // Without a key, the same body creates another tenant, as before.
            let plain = try await Self.onboard(api, key: nil)
            #expect(plain.status == 201)
            #expect(plain["tenantId"] != tenantId)
        }
    }

    @Test("the stored record holds neither the apiKey, the name, the phone nor the Idempotency-Key in clear")
    func recordIsSealed() async throws {
        try await TestServer.run { api, fixture in
            let key = "order-7f3a9c2e-" + Self.newKey()
            let first = try await Self.onboard(api, key: key)
            #expect(first.status == 201)
            let apiKey = try #require(first["apiKey"])
            let record = try #require(
                try await fixture.store.get(IdempotencyRecordLocation.key(idempotencyKey: key, caller: nil)),
                "the record is named by the key's hash in the reserved partition"
            )
            #expect(record.key.tenantId.hasPrefix("_idem#"))
            #expect(record["state"]?.stringValue == "COMPLETED")
            let expiresAt = try #require(record["expiresAt"]?.intValue, "expiresAt is a number (DynamoDB's TTL attribute)")
            #expect(abs(Double(expiresAt) - Date().addingTimeInterval(24 * 3600).timeIntervalSince1970) < 120)
            let stored = Self.text(of: record)
            // `onb_<keyId>_<secret>`: the secret is base64url, which may itself hold "_".
            let secretPart = try #require(apiKey.split(separator: "_", maxSplits: 2).last.map(String.init))
            #expect(secretPart.count >= 40, "the whole secret, not a piece of it")
            for clear in [apiKey, secretPart, "Idem Corp", "14155550123", key] {
                #expect(!stored.contains(clear), "the record must not hold \(clear.count) characters of the request or response in clear")
            }
            // Nor in any encoding a reader could undo without the key: the sealed response is not base64 of the body.
            #expect(!stored.contains(ByteEncoding.base64URL(Array("Client onboarded successfully".utf8)).prefix(20)))
        }
    }

    @Test("the same key with another body is 422 idempotency-key-reused, and creates nothing")
    func reusedWithAnotherBody() async throws {
        try await TestServer.run { api, fixture in
            let key = Self.newKey()
            #expect(try await Self.onboard(api, key: key).status == 201)
            let other = try await Self.onboard(api, key: key, body: #"{"clientName": "Other Corp", "clientPhone": "+14155550123"}"#)
            #expect(other.status == 422)
            #expect(other["code"] == "idempotency-key-reused")
            #expect(other.headers[.contentType] == "application/problem+json")
            // One byte of difference is another request (the fingerprint covers the bytes).
            let spaced = try await Self.onboard(api, key: key, body: Self.body + " ")
            #expect(spaced.status == 422)
            #expect(try await fixture.itemCount() == 5)
            // The first request still replays.
            #expect(try await Self.onboard(api, key: key).headers[.idempotentReplayedForTests] == "true")
        }
    }

    @Test("a malformed Idempotency-Key is 400 problem+json and claims nothing")
    func malformedKey() async throws {
        try await TestServer.run { api, fixture in
            for bad in [String(repeating: "k", count: 256), "tab\there"] {
                let response = try await Self.onboard(api, key: bad)
                #expect(response.status == 400)
                #expect(response["code"] == "bad-request")
            }
            var twice = HTTPFields()
            twice.append(HTTPField(name: .idempotencyKeyForTests, value: "one"))
            twice.append(HTTPField(name: .idempotencyKeyForTests, value: "two"))
            #expect(try await Self.onboard(api, key: nil, headers: twice).status == 400)
            #expect(try await fixture.itemCount() == 0)
            // 255 printable characters are a key.
            #expect(try await Self.onboard(api, key: String(repeating: "~", count: 255)).status == 201)
        }
    }

    @Test("invalid fields are 422 validation-error and leave no record: the key stays usable")
    func invalidFieldsLeaveNoRecord() async throws {
        try await TestServer.run { api, fixture in
            let key = Self.newKey()
            let invalid = try await Self.onboard(api, key: key, body: #"{"clientName": "", "clientPhone": "12"}"#)
            #expect(invalid.status == 422)
            #expect(invalid["code"] == "validation-error")
            #expect(try await fixture.itemCount() == 0)
            #expect(try await Self.onboard(api, key: key).status == 201)
        }
    }

    @Test("scopes: tenants' equal keys do not collide; the admin has its own; anonymous keys ignore the client address")
    func scopes() async throws {
        var policy = RateLimitPolicy()
        policy.trustedProxies = [IPNetwork("127.0.0.0/8")!]
        try await TestServer.run(rateLimits: policy) { api, fixture in
            let a = try await api.newTenant("Tenant A")
            let b = try await api.newTenant("Tenant B")
            let key = Self.newKey()
            let headers: HTTPFields = [.idempotencyKeyForTests: key]
            let fromA = try await api.call(.post, "/tenants/\(a.id)/api-keys", token: a.key, headers: headers)
            let fromB = try await api.call(.post, "/tenants/\(b.id)/api-keys", token: b.key, headers: headers)
            #expect(fromA.status == 201 && fromB.status == 201, "another tenant's equal key is another key")
            #expect(fromA["keyId"] != fromB["keyId"])
            #expect(fromB.headers[.idempotentReplayedForTests] == nil)
            let againA = try await api.call(.post, "/tenants/\(a.id)/api-keys", token: a.key, headers: headers)
            #expect(againA.headers[.idempotentReplayedForTests] == "true")
            #expect(againA.body == fromA.body)
            #expect(againA.headers[.location] == fromA.headers[.location])
            // The admin's keys are the admin's: the same key on the same path is a new request.
            let admin = try await api.call(.post, "/tenants/\(a.id)/api-keys", token: TestServer.adminToken, headers: headers)
            #expect(admin.status == 201)
            #expect(admin.headers[.idempotentReplayedForTests] == nil)
            #expect(admin["keyId"] != fromA["keyId"])

            // Anonymous: the key alone. Two client addresses (behind the trusted proxy) get one tenant.
            let anonymousKey = Self.newKey()
            let one = try await Self.onboard(api, key: anonymousKey, headers: [HTTPField.Name("X-Forwarded-For")!: "203.0.113.5"])
            let two = try await Self.onboard(api, key: anonymousKey, headers: [HTTPField.Name("X-Forwarded-For")!: "198.51.100.9"])
            #expect(one.status == 201 && two.status == 201)
            #expect(two.headers[.idempotentReplayedForTests] == "true")
            #expect(one["tenantId"] == two["tenantId"])
            // A tenant sending the same key to /onboard is in its own scope, not the anonymous one.
            let asTenant = try await api.send(
                .post, "/onboard", headers: [.contentType: "application/json", .authorization: "Bearer \(a.key)", .idempotencyKeyForTests: anonymousKey],
                body: Self.body
            )
            #expect(asTenant.status == 201)
            #expect(asTenant["tenantId"] != one["tenantId"])
            _ = fixture
        }
    }

    @Test("a record past expiresAt is absent: the key runs afresh (any body), and the SQLite sweep deletes it")
    func expiry() async throws {
        try await TestServer.run { api, fixture in
            let key = Self.newKey()
            let first = try await Self.onboard(api, key: key)
            #expect(first.status == 201)
            let recordKey = IdempotencyRecordLocation.key(idempotencyKey: key, caller: nil)
            let kept = Self.newKey()
            #expect(try await Self.onboard(api, key: kept).status == 201)
            // 24 hours later, as far as the record can tell.
            let past = Int(Date().timeIntervalSince1970) - 1
            try await fixture.store.update(recordKey, set: ["expiresAt": .int(past)], condition: nil)

            let later = try await Self.onboard(api, key: key, body: #"{"clientName": "Later Corp", "clientPhone": "+14155550124"}"#)
            #expect(later.status == 201, "not 422: the old record no longer counts")
            #expect(later.headers[.idempotentReplayedForTests] == nil)
            #expect(later["tenantId"] != first["tenantId"])
            #expect(try await Self.onboard(api, key: key, body: #"{"clientName": "Later Corp", "clientPhone": "+14155550124"}"#)
                .headers[.idempotentReplayedForTests] == "true", "the new record replays")

            // The sweep (SQLite; DynamoDB's TTL does this there) deletes expired records only.
            try await fixture.store.update(recordKey, set: ["expiresAt": .int(past)], condition: nil)
            let deleted = await IdempotencySweeper(store: fixture.store).sweep()
            if TestStore.isDynamoDB {
                #expect(deleted == 0, "DynamoDB's TTL deletes; the sweeper does nothing there")
            } else {
                #expect(deleted == 1)
                #expect(try await fixture.store.get(recordKey) == nil)
            }
            #expect(try await fixture.store.get(IdempotencyRecordLocation.key(idempotencyKey: kept, caller: nil)) != nil)
        }
    }

    @Test("a duplicate while the first is in flight is 409 request-in-progress with Retry-After; afterwards it replays")
    func inFlight() async throws {
        let holding = TransactionHoldingStore.Gate()
        try await TestServer.run(wrapStore: { TransactionHoldingStore(base: $0, gate: holding) }) { api, fixture in
            let key = Self.newKey()
            // On a connection of its own: the test client's one connection would wait for it.
            let client = HTTPClient.shared
            let first = Task { try await Self.rawOnboard(client, port: fixture.port, key: key) }
            // The first request now waits inside its transaction, its claim written.
            await holding.waitUntilHeld()
            let duplicate = try await Self.onboard(api, key: key)
            #expect(duplicate.status == 409)
            #expect(duplicate["code"] == "request-in-progress")
            #expect(duplicate.headers[.retryAfter].flatMap(Int.init).map { $0 >= 1 } == true)
            // A different body is still the key reused, in flight or not.
            #expect(try await Self.onboard(api, key: key, body: #"{"clientName": "Else", "clientPhone": "+14155550123"}"#).status == 422)
            holding.release()
            let created = try await first.value
            #expect(created.status == 201)
            #expect(!created.replayed)
            let replay = try await Self.onboard(api, key: key)
            #expect(replay.headers[.idempotentReplayedForTests] == "true")
            #expect(replay.body == created.body)
            #expect(try await fixture.itemCount() == 5)
        }
    }

    @Test("500 concurrent POST /onboard with one key: one tenant; every answer the 201, its replay or 409", .heavyLoad)
    func concurrentDuplicates() async throws {
        let count = 500
        try await TestServer.run(logLevel: .warning) { api, fixture in
            let key = Self.newKey()
            let request = ConcurrentRequest(
                method: .post, path: "/onboard", headers: [.contentType: "application/json", .idempotencyKeyForTests: key], body: Self.body
            )
            let answers = try await api.sendConcurrently(Array(repeating: request, count: count), port: fixture.port).map { answer in
                (status: answer.status, replayed: answer.headers[.idempotentReplayedForTests] == "true", tenantId: answer["tenantId"], code: answer["code"])
            }
            #expect(answers.count == count)
            let created = answers.filter { $0.status == 201 }
            let firsts = created.filter { !$0.replayed }
            #expect(firsts.count == 1, "exactly one request created the tenant")
            #expect(Set(created.compactMap(\.tenantId)).count == 1, "every 201 names the same tenant")
            let others = answers.filter { $0.status != 201 }
            #expect(others.allSatisfy { $0.status == 409 && $0.code == "request-in-progress" }, "\(Set(others.map(\.status)))")
            #expect(try await fixture.itemCount() == 5, "one tenant's three items, its event and one idempotency record")
            let replay = try await Self.onboard(api, key: key)
            #expect(replay.headers[.idempotentReplayedForTests] == "true")
            #expect(replay["tenantId"] == firsts.first?.tenantId)
        }
    }

    @Test("a crash between claim and commit creates nothing; the claim is taken over once its lease expires")
    func crashBetweenClaimAndCommit() async throws {
        // Writes: 1 the claim, 2 the onboarding's transaction, 3 the claim's release. The outer
        // layer fails the transaction; the inner one fails the release (its second write): the
        // process "crashed" after claiming, leaving an IN_PROGRESS record and nothing else. (The
        // event dispatcher's calls bypass the counting.)
        let outer = Mutex<FailingStore?>(nil)
        try await TestServer.run(wrapStore: { base in
            OutboxBypass(base: base) { base in
                let store = FailingStore(base: FailingStore(base: base, failAt: 2, counting: .writesOnly), failAt: 2, counting: .writesOnly)
                outer.withLock { $0 = store }
                return store
            }
        }) { api, fixture in
            let key = Self.newKey()
            let failed = try await Self.onboard(api, key: key)
            #expect(failed.status == 503)
            let failing = try #require(outer.withLock { $0 })
            #expect(failing.failuresInjected == 1)
            let recordKey = IdempotencyRecordLocation.key(idempotencyKey: key, caller: nil)
            let record = try #require(try await fixture.store.get(recordKey))
            #expect(record["state"]?.stringValue == "IN_PROGRESS")
            #expect(try await fixture.itemCount() == 1, "no tenant, no key: only the abandoned claim")

            // While its lease runs, a retry is told to wait.
            let early = try await Self.onboard(api, key: key)
            #expect(early.status == 409)
            #expect(early["code"] == "request-in-progress")

            // The lease ends (as it would after the request's deadline): the retry takes over.
            try await fixture.store.update(recordKey, set: ["leaseExpiresAt": .int(0)], condition: nil)
            let retried = try await Self.onboard(api, key: key)
            #expect(retried.status == 201)
            #expect(retried.headers[.idempotentReplayedForTests] == nil)
            #expect(try await fixture.itemCount() == 5, "one tenant (with its event) and its completed record")
            let replay = try await Self.onboard(api, key: key)
            #expect(replay.headers[.idempotentReplayedForTests] == "true")
            #expect(replay["tenantId"] == retried["tenantId"])
        }
    }

    @Test("a stale holder whose claim was taken over cannot commit: its tenant is never written")
    func staleHolderCannotCommit() async throws {
        let holding = TransactionHoldingStore.Gate()
        try await TestServer.run(wrapStore: { TransactionHoldingStore(base: $0, gate: holding) }) { api, fixture in
            let key = Self.newKey()
            let client = HTTPClient.shared
            let stale = Task { try await Self.rawOnboard(client, port: fixture.port, key: key) }
            await holding.waitUntilHeld()
            // Its lease ends while it is held; another request takes the claim over and completes.
            let recordKey = IdempotencyRecordLocation.key(idempotencyKey: key, caller: nil)
            try await fixture.store.update(recordKey, set: ["leaseExpiresAt": .int(0)], condition: nil)
            let winner = try await Self.onboard(api, key: key)
            #expect(winner.status == 201)
            holding.release()
            let late = try await stale.value
            #expect(late.status == 409, "the stale holder's transaction fails on its lost lease")
            #expect((try? JSONCodec.parse(late.body))?.mapValue?["code"]?.stringValue == "request-in-progress")
            #expect(try await fixture.itemCount() == 5, "only the winner's tenant (and its event) exists")
            #expect(try await Self.onboard(api, key: key)["tenantId"] == winner["tenantId"])
        }
    }

    @Test("a lost answer of the committing transaction still answers the stored 201")
    func lostAnswerOfCommit() async throws {
        // Write 2 (the transaction) is applied, then reported as failed (the event dispatcher's
        // calls bypass the counting).
        try await TestServer.run(wrapStore: {
            OutboxBypass(base: $0) { FailingStore(base: $0, failAt: 2, counting: .writesOnly, mode: .afterForwarding) }
        }) { api, fixture in
            let key = Self.newKey()
            let answer = try await Self.onboard(api, key: key)
            #expect(answer.status == 201, "the release finds the record completed by this request and answers it")
            #expect(try await fixture.itemCount() == 5)
            let replay = try await Self.onboard(api, key: key)
            #expect(replay["tenantId"] == answer["tenantId"])
            #expect(replay["apiKey"] == answer["apiKey"])
        }
    }

    /// Every attribute of an item as one text (names and values).
    static func text(of item: Item) -> String {
        item.attributes.map { "\($0.key)=\(JSONCodec.serialize($0.value))" }.joined(separator: "\n") + item.key.description
    }
}

extension HTTPField.Name {
    static let idempotencyKeyForTests = HTTPField.Name("Idempotency-Key")!
    static let idempotentReplayedForTests = HTTPField.Name("Idempotent-Replayed")!
}

/// A store that holds the first transaction carrying an idempotency record until released, so
/// a test can send a duplicate while the first request is in flight.
final class TransactionHoldingStore: TenantStore {
    /// The switch a test holds: learns when a transaction is held, and lets it go.
    final class Gate: Sendable {
        private let armed = Mutex(true)
        private let heldStream: AsyncStream<Void>
        private let heldContinuation: AsyncStream<Void>.Continuation
        private let releaseStream: AsyncStream<Void>
        private let releaseContinuation: AsyncStream<Void>.Continuation

        init() {
            (heldStream, heldContinuation) = AsyncStream.makeStream()
            (releaseStream, releaseContinuation) = AsyncStream.makeStream()
        }

        /// Returns once a transaction is being held.
        func waitUntilHeld() async {
            for await _ in heldStream { return }
        }

        /// Lets the held transaction (and every later one) through.
        func release() {
            releaseContinuation.yield()
            releaseContinuation.finish()
        }

        fileprivate func holdIfArmed() async {
            guard armed.withLock({ armed in defer { armed = false }; return armed }) else { return }
            heldContinuation.yield()
            for await _ in releaseStream { return }
        }
    }

    let base: any TenantStore
    let gate: Gate

    init(base: any TenantStore, gate: Gate) {
        self.base = base
        self.gate = gate
    }

    func transact(_ writes: [TransactionWrite]) async throws {
        if writes.contains(where: { IdempotencyRecords.isRecord($0.key) }) { await gate.holdIfArmed() }
        try await base.transact(writes)
    }

    func get(_ key: ItemKey) async throws -> Item? { try await base.get(key) }
    func put(_ item: Item, condition: WriteCondition?) async throws { try await base.put(item, condition: condition) }
    func delete(_ key: ItemKey, condition: WriteCondition?) async throws { try await base.delete(key, condition: condition) }
    func update(_ key: ItemKey, set: [String: AttributeValue], condition: WriteCondition?) async throws {
        try await base.update(key, set: set, condition: condition)
    }
    func query(_ query: ItemQuery) async throws -> ItemPage { try await base.query(query) }
    func queryListIndex(_ query: ListIndexQuery) async throws -> [Item] { try await base.queryListIndex(query) }
    func checkHealth() async throws { try await base.checkHealth() }
}
