import Foundation
import LambdaRuntime
import OnboardingApp
import OnboardingCore
import OnboardingHTTP
import OnboardingSQLite
import Synchronization
import Testing

/// A Runtime API client whose next event is made from the answers posted so far, and which looks
/// into the store each time the loop asks for an event (`check`), so a test sees what was written
/// before that moment.
private final class ScriptedRuntimeClient: LambdaRuntimeClient {
    struct State {
        /// The posted proxy responses, as posted.
        var answers: [[UInt8]] = []
        var timeline: [String] = []
    }

    private let script: [@Sendable ([[String: Any]]) throws -> [String: Any]]
    private let check: @Sendable () async throws -> String
    private let state = Mutex(State())

    init(check: @escaping @Sendable () async throws -> String, _ script: [@Sendable ([[String: Any]]) throws -> [String: Any]]) {
        self.check = check
        self.script = script
    }

    /// The posted proxy responses, parsed.
    var answers: [[String: Any]] { state.withLock { $0.answers }.compactMap { try? proxyResponse($0) } }
    var timeline: [String] { state.withLock { $0.timeline } }

    func nextInvocation() async throws -> LambdaInvocation {
        let seen = try await check()
        let index = state.withLock { state in
            state.timeline.append("next (\(seen))")
            return state.timeline.filter { $0.hasPrefix("next") }.count - 1
        }
        guard index < script.count else { throw CancellationError() }
        return try invocation(try script[index](answers))
    }

    func sendResponse(requestID: String, body: [UInt8]) async throws {
        let status = try proxyResponse(body)["statusCode"] as? Int ?? 0
        let seen = try await check()
        state.withLock {
            $0.answers.append(body)
            $0.timeline.append("response \(status) (\(seen))")
        }
    }

    func sendError(requestID: String, error: LambdaErrorReport) async throws {
        state.withLock { $0.timeline.append("error \(error.errorType)") }
    }

    func sendInitError(_ error: LambdaErrorReport) async throws {
        state.withLock { $0.timeline.append("init error \(error.errorType)") }
    }
}

/// Where a test's key records its use, once the test knows it.
private final class KeyItem: Sendable {
    let value = Mutex<ItemKey?>(nil)
}

/// A fresh SQLite file, removed after `body`.
private func withSQLiteStore(_ body: (SQLiteTenantStore) async throws -> Void) async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("onboard-lambda-app-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    try await body(try SQLiteTenantStore(path: directory.appendingPathComponent("lambda.sqlite").path))
}

/// The settings the function reads from its environment, with an admin token.
private func lambdaConfiguration() throws -> ServeConfiguration {
    try ServeConfiguration.resolve(flags: [:], environment: ["ONBOARD_ADMIN_TOKEN": adminToken])
}

@Suite("The Lambda entry runs buildApplication's application")
struct LambdaApplicationTests {
    @Test("a key used in one invocation has its lastUsedAt written after that answer is posted and before the next event is asked for")
    func keyUsageBetweenInvocations() async throws {
        try await withSQLiteStore { store in
            // Where the first tenant's first key records its use (the key text is `onb_<keyId>_<secret>`).
            let keyItem = KeyItem()
            let client = ScriptedRuntimeClient(
                check: {
                    guard let key = keyItem.value.withLock({ $0 }) else { return "no key yet" }
                    return try await store.get(key)?["lastUsedAt"] == nil ? "lastUsedAt absent" : "lastUsedAt written"
                },
                [
                    // 1: onboard (as `sam local generate-event` makes the POST).
                    { _ in try sampleEvent("rest-v1") },
                    // 2: read the tenant with its new API key.
                    { answers in
                        let created = try JSONCodec.parse(try #require(answers.first?["body"] as? String)).mapValue ?? [:]
                        let tenantId = try #require(created["tenantId"]?.stringValue)
                        let apiKey = try #require(created["apiKey"]?.stringValue)
                        keyItem.value.withLock { $0 = ItemKey(tenantId: tenantId, resourceKey: "APIKEY#\(apiKey.dropFirst(4).prefix(16))") }
                        var read = try sampleEvent("rest-v1")
                        read["httpMethod"] = "GET"
                        read["path"] = "/tenants/\(tenantId)"
                        read["body"] = NSNull()
                        read["isBase64Encoded"] = false
                        read["headers"] = ["Authorization": "Bearer \(apiKey)"]
                        read["multiValueHeaders"] = ["Authorization": ["Bearer \(apiKey)"]]
                        return read
                    },
                    // 3: anything; the store is looked at when it is asked for.
                    { _ in
                        var health = try sampleEvent("rest-v1")
                        health["httpMethod"] = "GET"
                        health["path"] = "/health"
                        health["body"] = NSNull()
                        health["isBase64Encoded"] = false
                        return health
                    },
                ]
            )
            let app = try await buildApplication(try lambdaConfiguration(), runtime: .lambda, overrides: AppOverrides(store: store))
            #expect(app.backgroundServices.contains { $0 is KeyUsageRecorder })
            // Nothing runs the service group here, as inside Lambda: only the loop's between-invocations step writes.
            try await app.lambdaLoop(client: client).run(maxInvocations: 3)

            #expect(client.answers.map { $0["statusCode"] as? Int } == [201, 200, 200])
            #expect(
                client.timeline == [
                    "next (no key yet)", "response 201 (no key yet)",
                    "next (no key yet)", "response 200 (lastUsedAt absent)",
                    "next (lastUsedAt written)", "response 200 (lastUsedAt written)",
                ]
            )
        }
    }

    @Test("an offboarding left unfinished (a crash after its first batch) is finished by the step after an invocation, not at start-up")
    func unfinishedOffboardingBetweenInvocations() async throws {
        try await withSQLiteStore { store in
            let onboarded = try await OnboardingService(store: store, hasher: CryptoSecretHasher()).onboard(
                OnboardingRequest(json: ["clientName": .string("Leaving Ltd"), "clientPhone": .string("+14155550101")])
            )
            let id = onboarded.tenant.id
            var writes: [TransactionWrite] = []
            for index in 0..<250 {
                writes.append(.put(Item(tenantId: id.rawValue, resourceKey: "doc#\(index)", attributes: ["n": .int(index)]), condition: nil))
            }
            for start in stride(from: 0, to: writes.count, by: 50) { try await store.transact(Array(writes[start..<start + 50])) }
            // The function that started it "died" after its first batch.
            let offboarding = Offboarding(store: store)
            _ = try await offboarding.start(id)
            let stopped = try await offboarding.finish(id, maxBatches: 1)
            #expect(stopped.outcome == .unfinished && stopped.itemsDeleted > 0)

            let client = ScriptedRuntimeClient(
                check: { try await store.get(Tenant.key(id))?["status"]?.stringValue ?? "absent" },
                Array(repeating: { _ in
                    var health = try sampleEvent("rest-v1")
                    health["httpMethod"] = "GET"
                    health["path"] = "/health"
                    health["body"] = NSNull()
                    health["isBase64Encoded"] = false
                    return health
                }, count: 2)
            )
            let app = try await buildApplication(try lambdaConfiguration(), runtime: .lambda, overrides: AppOverrides(store: store))
            try await app.lambdaLoop(client: client).run(maxInvocations: 2)

            #expect(client.answers.map { $0["statusCode"] as? Int } == [200, 200])
            // Still OFFBOARDING when the first answer is posted; finished before the next event is asked for.
            #expect(
                client.timeline == [
                    "next (OFFBOARDING)", "response 200 (OFFBOARDING)",
                    "next (OFFBOARDED)", "response 200 (OFFBOARDED)",
                ]
            )
            // The tombstone, and the tenant's events (its audit record, kept).
            let left = try await store.query(ItemQuery(tenantId: id.rawValue, prefix: "", limit: 10)).items.map(\.key.resourceKey)
            #expect(left.filter { !$0.hasPrefix(EventOutboxLayout.prefix) } == ["TENANT#\(id.rawValue)"])
            #expect(try await offboarding.pending().isEmpty)
        }
    }

    @Test("start-up on Lambda writes nothing (the admin token is read when first presented); serve generates and stores one")
    func lambdaStartUpWritesNothing() async throws {
        try await withSQLiteStore { store in
            let lambda = try await buildApplication(ServeConfiguration(), runtime: .lambda, overrides: AppOverrides(store: store))
            #expect(lambda.generatedAdminToken == nil)
            #expect(try await store.get(AdminTokenRecord.key) == nil)

            let server = try await buildApplication(ServeConfiguration(), runtime: .server, overrides: AppOverrides(store: store))
            let token = try #require(server.generatedAdminToken)
            #expect(try await store.get(AdminTokenRecord.key) != nil)
            // The function accepts the token serve stored, read on its first use.
            let client = ScriptedRuntimeClient(check: { "" }, [
                { _ in
                    var read = try sampleEvent("rest-v1")
                    read["httpMethod"] = "GET"
                    read["path"] = "/tenants"
                    read["body"] = NSNull()
                    read["isBase64Encoded"] = false
                    read["headers"] = ["Authorization": "Bearer \(token)"]
                    read["multiValueHeaders"] = ["Authorization": ["Bearer \(token)"]]
                    return read
                },
            ])
            try await lambda.lambdaLoop(client: client).run(maxInvocations: 1)
            #expect(client.answers.map { $0["statusCode"] as? Int } == [200])
        }
    }
}
