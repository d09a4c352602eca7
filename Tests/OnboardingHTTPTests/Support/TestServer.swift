import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import InMemoryLogging
import Logging
import NIOCore
import OnboardTestSupport
import OnboardingApp
import OnboardingCore
import OnboardingDynamoDB
import OnboardingEvents
import OnboardingHTTP
import OnboardingSQLite
import Synchronization
import Testing

/// A response as the tests see it, already checked against the OpenAPI document.
struct APIResponse: Sendable {
    let status: Int
    let headers: HTTPFields
    let body: [UInt8]

    var text: String { String(decoding: body, as: UTF8.self) }

    /// The body as a JSON object (empty when it is not one).
    var json: [String: AttributeValue] {
        (try? JSONCodec.parse(body))?.mapValue ?? [:]
    }

    subscript(field: String) -> String? { json[field]?.stringValue }

    /// The `code`s of a problem's field errors, by field.
    var fieldErrors: [String: String] {
        guard case .list(let errors)? = json["errors"] else { return [:] }
        var result: [String: String] = [:]
        for case .map(let error) in errors {
            if let field = error["field"]?.stringValue { result[field] = error["code"]?.stringValue }
        }
        return result
    }
}

/// A client for the server under test; every response it returns has been validated against
/// openapi.yaml, so the whole suite doubles as the contract test.
struct APIClient: Sendable {
    /// Sends one request (path and query, method, headers, body) and returns the answer's status,
    /// headers and body.
    typealias Transport = @Sendable (String, HTTPRequest.Method, HTTPFields, [UInt8]?) async throws -> (Int, HTTPFields, [UInt8])

    let transport: Transport
    /// Every credential this client sent or received; the server's logs must contain none.
    let secrets: SecretLedger

    init(transport: @escaping Transport, secrets: SecretLedger = SecretLedger()) {
        self.transport = transport
        self.secrets = secrets
    }

    /// Through a HummingbirdTesting client (`app.test(.live)`, `.router`).
    init(client: any TestClientProtocol, secrets: SecretLedger = SecretLedger()) {
        self.init(transport: { uri, method, headers, bytes in
            let response = try await client.executeRequest(uri: uri, method: method, headers: headers, body: bytes.map { ByteBuffer(bytes: $0) })
            return (Int(response.status.code), response.headers, Array(response.body.readableBytesView))
        }, secrets: secrets)
    }

    @discardableResult
    func send(
        _ method: HTTPRequest.Method, _ path: String, headers: HTTPFields = [:], body: String? = nil,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> APIResponse {
        try await send(method, path, headers: headers, bytes: body.map { Array($0.utf8) }, sourceLocation: sourceLocation)
    }

    @discardableResult
    func send(
        _ method: HTTPRequest.Method, _ path: String, headers: HTTPFields = [:], bytes: [UInt8]?,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> APIResponse {
        recordSent(headers)
        let (status, responseHeaders, body) = try await transport(path, method, headers, bytes)
        let result = APIResponse(status: status, headers: responseHeaders, body: body)
        checkReceived(method, path, result, sourceLocation: sourceLocation)
        return result
    }

    /// Records the credentials a request carries: its Authorization (and the token in it) and its
    /// Idempotency-Key (which unlocks a replay of the sealed apiKey).
    func recordSent(_ headers: HTTPFields) {
        if let authorization = headers[.authorization] {
            secrets.record(authorization)
            if let token = authorization.split(separator: " ", maxSplits: 1).last { secrets.record(String(token)) }
        }
        for key in headers[values: .idempotencyKeyForTests] { secrets.record(key) }
    }

    /// Records an issued apiKey and checks the response against openapi.yaml.
    func checkReceived(_ method: HTTPRequest.Method, _ path: String, _ result: APIResponse, sourceLocation: SourceLocation) {
        if let issued = result["apiKey"] { secrets.record(issued) }
        let violations = OpenAPIValidator.shared.violations(
            method: method, path: path, status: result.status, headers: result.headers, body: result.body
        )
        #expect(violations.isEmpty, "response does not conform to openapi.yaml: \(violations)", sourceLocation: sourceLocation)
    }

    /// `POST /onboard` with a JSON body.
    @discardableResult
    func onboard(_ json: String, path: String = "/onboard", sourceLocation: SourceLocation = #_sourceLocation) async throws -> APIResponse {
        try await send(.post, path, headers: [.contentType: "application/json"], body: json, sourceLocation: sourceLocation)
    }

    /// Onboards a client and returns the new tenant's id and first API key.
    func newTenant(_ name: String = "Tenant", sourceLocation: SourceLocation = #_sourceLocation) async throws -> (id: String, key: String) {
        let response = try await onboard(#"{"clientName": "\#(name)", "clientPhone": "+14155550100"}"#, sourceLocation: sourceLocation)
        #expect(response.status == 201, sourceLocation: sourceLocation)
        return (try #require(response["tenantId"], sourceLocation: sourceLocation), try #require(response["apiKey"], sourceLocation: sourceLocation))
    }

    /// A request with `Authorization: Bearer <token>` (and a JSON body, when given).
    @discardableResult
    func call(
        _ method: HTTPRequest.Method, _ path: String, token: String?, json: String? = nil, headers: HTTPFields = [:],
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> APIResponse {
        var headers = headers
        if let token { headers[.authorization] = "Bearer \(token)" }
        if json != nil { headers[.contentType] = "application/json" }
        return try await send(method, path, headers: headers, body: json, sourceLocation: sourceLocation)
    }

    /// `GET /tenants/{id}` with the admin token.
    func tenant(_ id: String, token: String = TestServer.adminToken, sourceLocation: SourceLocation = #_sourceLocation) async throws -> APIResponse {
        try await send(.get, "/tenants/\(id)", headers: [.authorization: "Bearer \(token)"], sourceLocation: sourceLocation)
    }
}

/// What a test can inspect besides the HTTP answers: the store, the logs.
struct TestFixture: Sendable {
    let store: any TenantStore
    /// The SQLite file, when the suite runs on SQLite (`nil` on DynamoDB).
    let sqlitePath: String?
    let logs: InMemoryLogHandler
    /// The server's port on 127.0.0.1.
    let port: Int
    /// The server's JWT verifier, when it was started with one (`TestServer.run(oidc:)`).
    let jwtVerifier: JWTVerifier?
    /// The application under test, as `buildApplication` made it.
    let application: OnboardApplication?
    private let countItems: @Sendable () async throws -> Int

    init(
        store: any TenantStore, sqlitePath: String?, logs: InMemoryLogHandler, port: Int, jwtVerifier: JWTVerifier? = nil,
        application: OnboardApplication? = nil, countItems: @escaping @Sendable () async throws -> Int
    ) {
        self.store = store
        self.sqlitePath = sqlitePath
        self.logs = logs
        self.port = port
        self.jwtVerifier = jwtVerifier
        self.application = application
        self.countItems = countItems
    }

    /// How many items the table holds, read from the store itself (the SQLite file, or a DynamoDB
    /// scan), the event outbox left out (its items go whenever the dispatcher delivered them; a
    /// tenant's audit events are counted).
    func itemCount() async throws -> Int { try await countItems() }

    /// Every log line of the server so far, rendered as text.
    var logText: String { Self.text(of: logs) }

    /// Log entries rendered one per line: level, message, metadata sorted by key.
    static func text(of logs: InMemoryLogHandler) -> String {
        logs.entries.map { entry in
            let metadata = entry.metadata.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            return "\(entry.level) \(entry.message) \(metadata)"
        }.joined(separator: "\n")
    }
}

/// The store the HTTP suite runs on: SQLite, or DynamoDB on moto when `ONBOARD_TEST_STORE=dynamodb`
/// (CI runs the suite both ways).
enum TestStore {
    static var isDynamoDB: Bool { ProcessInfo.processInfo.environment["ONBOARD_TEST_STORE"] == "dynamodb" }

    /// Whether the suite's store can run here: SQLite always, DynamoDB where moto can (always
    /// under `CI=true`). The suites gate on it with `.testStoreAvailable`.
    static var isAvailable: Bool { !isDynamoDB || Requirements.moto }

    /// A fresh store, how to count its items, and its SQLite path if any.
    static func make(in directory: TemporaryDirectory) async throws -> (any TenantStore, String?, @Sendable () async throws -> Int) {
        if isDynamoDB {
            let moto = try await MotoServer.pooled()
            let table = "api-\(UUID().uuidString.prefix(8).lowercased())"
            let dynamoDB = moto.dynamoDB()
            try await DynamoDBTable.create(dynamoDB, name: table)
            return (DynamoDBTenantStore(dynamoDB: dynamoDB, table: table), nil, { try await dynamoDB.countItemsOutsideOutbox(table: table) })
        }
        let path = directory.path("onboarding.sqlite")
        let store = try SQLiteTenantStore(path: path)
        return (store, path, {
            try DatabaseQueue(path: path).read { db in try Int.fetchOne(db, sql: OutboxFreeCount.sqlite) ?? -1 }
        })
    }
}

extension Trait where Self == ConditionTrait {
    /// On every suite that runs ``TestServer``: with `ONBOARD_TEST_STORE=dynamodb` and no moto
    /// (outside CI), its tests show as skipped instead of failing to start moto.
    static var testStoreAvailable: Self {
        .enabled(if: TestStore.isAvailable, "ONBOARD_TEST_STORE=dynamodb, but \(Requirement.moto.missingReason)")
    }
}

/// Runs the application `serve` runs (``buildApplication(_:runtime:overrides:)``: router, verifiers,
/// limits, background services) on a real HTTP server on 127.0.0.1 (Hummingbird's `.live` testing), on
/// a real store: a SQLite file in a fresh temporary folder, or a fresh DynamoDB table on moto.
enum TestServer {
    static let adminToken = "test-admin-token-0123456789abcdef"

    /// - Parameters:
    ///   - wrapStore: lets a test put a fault-injecting layer around the real store.
    ///   - oidc: a Cognito pool on moto whose tokens the server accepts (a ``JWTVerifier`` with
    ///     the pool's issuer, JWKS and app client, default claims), after the admin token.
    ///   - jwtVerifier: a verifier of the test's own instead (other settings, a test clock).
    ///   - credentialCache: serve's default unless a test of the cache says otherwise.
    static func run<Value: Sendable>(
        logLevel: Logger.Level = .debug,
        wrapStore: @escaping @Sendable (any TenantStore) -> any TenantStore = { $0 },
        onboardingAccess: OnboardingAccess = .open,
        rateLimits: RateLimitPolicy? = nil,
        oidc: CognitoFixture? = nil,
        jwtVerifier: JWTVerifier? = nil,
        credentialCache: CredentialCache.Configuration = CredentialCache.Configuration(),
        _ body: @Sendable (APIClient, TestFixture) async throws -> Value
    ) async throws -> Value {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let (store, sqlitePath, countItems) = try await TestStore.make(in: directory)
        var logs = InMemoryLogHandler()
        logs.logLevel = logLevel
        let handler = logs
        let logger = Logger(label: "onboard-test", factory: { _ in handler })
        let jwt = jwtVerifier ?? oidc.map { JWTVerifier(configuration: $0.verifierConfiguration(), logger: logger) }
        // The application `serve` runs, from the same `buildApplication`, on this test's store and logs.
        var configuration = ServeConfiguration()
        configuration.host = "127.0.0.1"
        configuration.port = 0
        configuration.adminToken = adminToken
        configuration.onboarding = onboardingAccess
        configuration.rateLimits = rateLimits
        // Under the whole run's load (every test at once, on two cores; moto answering one
        // request at a time) a request can wait longer than serve's default 10 s for nothing but
        // the queue, and an idempotency claim's lease (the request's budget) would end while
        // its request still runs. Tests of deadlines set their own.
        configuration.requestDeadline = .seconds(120)
        configuration.credentialCache = credentialCache
        let app = try await buildApplication(configuration, overrides: AppOverrides(
            store: store, wrapStore: wrapStore, logger: logger, jwtVerifier: jwt,
            // API keys' lastUsedAt, written as `serve` writes it (a short interval, for the tests'
            // sake), noted at most once an hour (serve: a minute) so that a test running for
            // minutes under the whole run's load still sees one use noted once.
            keyUsage: .init(flushInterval: .milliseconds(50), resolution: .seconds(3600)),
            eventDispatcher: Self.dispatcherConfiguration,
            // The markers are read at start, as `serve` reads them, but not again a minute later:
            // a test that drives an offboarding step by step (and runs for minutes under the
            // whole run's load) must not see the server's worker finish it meanwhile.
            offboardingWorker: .init(rescanInterval: .seconds(3600))
        ))
        let secrets = SecretLedger()
        secrets.record(adminToken)
        let value = try await PatientLiveServer.run(app) { transport, port in
            try await body(
                APIClient(transport: transport, secrets: secrets),
                TestFixture(
                    store: store, sqlitePath: sqlitePath, logs: handler, port: port, jwtVerifier: jwt, application: app,
                    countItems: countItems
                )
            )
        }
        // Secrets hygiene, checked after every test of the suite: no key or token the test issued
        // or sent appears anywhere in what the server logged (message or metadata).
        let logText = TestFixture.text(of: handler)
        // (Counted, not expected one by one: a failed #expect would print the log, secret included.)
        let leaked = secrets.all.filter { $0.count >= 16 && logText.contains($0) }.count
        #expect(leaked == 0, "credentials appear in the server's logs")
        return value
    }
}

extension TestServer {
    /// The dispatcher as `serve` runs it, but on moto without the periodic sweep of the 16 outbox
    /// shards: recorded events still wake it, while dozens of test servers sweeping every 5 s
    /// would queue every request behind moto's one lock (CI saw read timeouts).
    static var dispatcherConfiguration: EventDispatcher.Configuration? {
        guard TestStore.isDynamoDB else { return nil }
        var configuration = EventDispatcher.Configuration()
        configuration.sweepInterval = .seconds(3600)
        return configuration
    }
}

/// The credentials a test issued or sent, collected to check the logs against.
final class SecretLedger: Sendable {
    private let secrets = Mutex(Set<String>())

    func record(_ secret: String) { _ = secrets.withLock { $0.insert(secret) } }

    var all: Set<String> { secrets.withLock { $0 } }
}

/// A folder under the system's temporary directory, removed by `remove()`.
struct TemporaryDirectory: Sendable {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("onboard-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    func remove() { try? FileManager.default.removeItem(at: url) }
}

extension CognitoFixture {
    /// A ``JWTVerifier`` configuration for this pool: its issuer, moto's JWKS URL, its app client.
    func verifierConfiguration(
        tokenUses: Set<JWTVerifier.TokenUse>? = [.id, .access],
        minimumRefetchInterval: Duration = .seconds(30)
    ) -> JWTVerifier.Configuration {
        JWTVerifier.Configuration(
            issuer: issuer, jwksURL: jwksURL, clientIDs: [clientId], tokenUses: tokenUses,
            claims: ClaimMapping(tenantClaim: Self.tenantClaim, groupsClaim: Self.groupsClaim, adminGroup: Self.adminGroup),
            minimumRefetchInterval: minimumRefetchInterval,
            // moto answers one request at a time: under the run's load a fetch can queue past 5 s.
            fetchTimeout: .seconds(120)
        )
    }
}
