import AWSClient
import Foundation
import OnboardTestSupport
import OnboardingCore
import OnboardingDynamoDB
import SigV4
import Synchronization
import Testing

/// A clock the tests move forward.
/// A clock that stands still at its creation until moved: only `advance` moves it, so a slow
/// machine cannot push a check into or out of a window. Credentials made after it (their expiry
/// counted from the real time of their making) expire no sooner on it than their lifetime says.
final class TestClock: Sendable {
    private let start = Date()
    private let offset = Mutex<TimeInterval>(0)
    func advance(to seconds: TimeInterval) { offset.withLock { $0 = seconds } }
    var now: @Sendable () -> Date { { [self] in start.addingTimeInterval(offset.withLock { $0 }) } }
}

/// A source that answers from a script and counts its fetches.
final class ScriptedSource: AWSCredentialSource {
    let lookedAt: String
    let failureMeansAbsent: Bool
    private let answers: Mutex<[Result<ExpiringCredentials?, AWSCredentialsError>]>
    private let count = Atomic<Int>(0)
    var fetches: Int { count.load(ordering: .relaxed) }

    /// The last answer repeats once the script is used up.
    init(_ lookedAt: String, _ answers: [Result<ExpiringCredentials?, AWSCredentialsError>], failureMeansAbsent: Bool = false) {
        self.lookedAt = lookedAt
        self.answers = Mutex(answers)
        self.failureMeansAbsent = failureMeansAbsent
    }

    func fetch() async throws -> ExpiringCredentials? {
        count.add(1, ordering: .relaxed)
        let answer = answers.withLock { $0.count > 1 ? $0.removeFirst() : $0[0] }
        return try answer.get()
    }
}

func keys(_ id: String, expiresIn seconds: TimeInterval? = nil) -> ExpiringCredentials {
    ExpiringCredentials(
        AWSCredentials(accessKeyId: id, secretAccessKey: "secret-\(id)", sessionToken: "token-\(id)"),
        expiration: seconds.map { Date().addingTimeInterval($0) }
    )
}

/// An environment with nothing in it but `variables` (an empty home: no shared files).
func bareEnvironment(_ variables: [String: String]) -> AWSEnvironment {
    AWSEnvironment(variables: variables, homeDirectory: "/nonexistent-\(UUID().uuidString)")
}

@Suite("Credential chain and cache (no network)")
struct CredentialChainTests {
    @Test("the first source that has credentials wins; later ones are not asked; the chain sticks to the winner")
    func order() async throws {
        let none = ScriptedSource("or none", [.success(nil)])
        let first = ScriptedSource("or first", [.success(keys("FIRST"))])
        let second = ScriptedSource("or second", [.success(keys("SECOND"))])
        let chain = AWSCredentialChain([none, first, second])
        #expect(try await chain.fetch()?.credentials.accessKeyId == "FIRST")
        #expect(try await chain.fetch()?.credentials.accessKeyId == "FIRST")
        #expect(none.fetches == 1, "after a source delivered, refreshes ask that source only")
        #expect(first.fetches == 2)
        #expect(second.fetches == 0)
    }

    @Test("a source that is set up but fails stops the chain; one whose failure means absence is noted and passed")
    func failures() async throws {
        let broken = ScriptedSource("or broken", [.failure(AWSCredentialsError(message: "the container endpoint answered HTTP 500"))])
        let after = ScriptedSource("or after", [.success(keys("AFTER"))])
        let error = await #expect(throws: AWSCredentialsError.self) { try await AWSCredentialChain([broken, after]).fetch() }
        #expect(error?.message == "the container endpoint answered HTTP 500")
        #expect(after.fetches == 0, "a broken configured source must not fall through to another identity")

        let probe = ScriptedSource("or an EC2 instance role", [.failure(AWSCredentialsError(message: "no answer"))], failureMeansAbsent: true)
        let unset = ScriptedSource("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY", [.success(nil)])
        let nothing = await #expect(throws: AWSCredentialsError.self) { try await AWSCredentialChain([unset, probe]).fetch() }
        #expect(nothing?.message == "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or an EC2 instance role: no answer")
    }

    @Test("the standard chain: environment, shared files, web identity, container, instance metadata; one line when none has any")
    func standardOrder() async throws {
        let chain = try AWSCredentialChain.standard(
            environment: bareEnvironment(["AWS_EC2_METADATA_DISABLED": "true", "AWS_PROFILE": "ci"]), region: "eu-west-1"
        )
        #expect(chain.sources.count == 5)
        #expect(chain.sources[0] is EnvironmentCredentialSource)
        #expect(chain.sources[1] is SharedFilesCredentialSource)
        #expect(chain.sources[2] is WebIdentityCredentialSource)
        #expect(chain.sources[3] is ContainerCredentialSource)
        #expect(chain.sources[4] is InstanceMetadataCredentialSource)
        let error = await #expect(throws: AWSCredentialsError.self) { try await chain.fetch() }
        let message = try #require(error?.message)
        #expect(message.hasPrefix("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or give profile 'ci' keys in "))
        for place in ["AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_EC2_METADATA_DISABLED"] {
            #expect(message.contains(place))
        }
        #expect(!message.contains("\n"))

        let withKeys = try AWSCredentialChain.standard(
            environment: bareEnvironment(["AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "s", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:1/"]),
            region: "eu-west-1"
        )
        #expect(try await withKeys.fetch()?.credentials.accessKeyId == "AKIAENV", "static keys need no network (the container URI is dead)")
    }

    @Test("settings that are wrong whatever the network says stop the start")
    func badSettings() throws {
        #expect(throws: AWSConfigurationError.self) {
            try AWSCredentialChain.standard(environment: bareEnvironment(["AWS_WEB_IDENTITY_TOKEN_FILE": "/t"]), region: "us-east-1")
        }
        #expect(throws: AWSConfigurationError.self) {
            try AWSCredentialChain.standard(environment: bareEnvironment(["AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://203.0.113.9/creds"]), region: "us-east-1")
        }
    }

    @Test("expiring credentials are fetched once, refreshed 5 minutes before expiry in the background, by one fetch for many callers")
    func refreshWindow() async throws {
        let clock = TestClock()
        let source = ScriptedSource("or scripted", [.success(keys("ONE", expiresIn: 3600)), .success(keys("TWO", expiresIn: 7200))])
        let provider = CachingCredentialProvider(source, now: clock.now)
        let first = try await concurrentCredentials(provider, callers: 50)
        #expect(first == ["ONE"])
        #expect(source.fetches == 1, "50 callers without credentials wait for one fetch")

        clock.advance(to: 3600 - 400)
        #expect(try await provider.credentials().accessKeyId == "ONE", "more than 5 minutes left: no refresh")
        await provider.refreshCompleted()
        #expect(source.fetches == 1)

        clock.advance(to: 3600 - 200)
        let second = try await concurrentCredentials(provider, callers: 50)
        #expect(second == ["ONE"], "inside the window the valid credentials are used at once")
        await provider.refreshCompleted()
        #expect(source.fetches == 2, "50 callers inside the refresh window cause one fetch")
        #expect(try await provider.credentials().accessKeyId == "TWO")
        #expect(source.fetches == 2)
    }

    @Test("credentials without expiry are fetched once; invalidating other credentials than the held ones changes nothing")
    func noExpiry() async throws {
        let source = ScriptedSource("or scripted", [.success(keys("STATIC")), .success(keys("ROTATED"))])
        let provider = CachingCredentialProvider(source)
        for _ in 0..<10 { _ = try await provider.credentials() }
        #expect(source.fetches == 1)
        provider.invalidate(AWSCredentials(accessKeyId: "OLDER", secretAccessKey: "x"))
        #expect(try await provider.credentials().accessKeyId == "STATIC")
        provider.invalidate(keys("STATIC").credentials)
        #expect(try await provider.credentials().accessKeyId == "ROTATED")
        #expect(source.fetches == 2)
    }

    @Test("a failed refresh keeps credentials that are still valid, is not retried at once; once they expired the failure is thrown")
    func failedRefresh() async throws {
        let clock = TestClock()
        let down = AWSCredentialsError(message: "the container credential endpoint: no answer")
        let source = ScriptedSource("or scripted", [.success(keys("ONE", expiresIn: 3600)), .failure(down)])
        let provider = CachingCredentialProvider(source, now: clock.now)
        #expect(try await provider.credentials().accessKeyId == "ONE")
        clock.advance(to: 3600 - 60)
        #expect(try await provider.credentials().accessKeyId == "ONE")
        await provider.refreshCompleted()
        #expect(source.fetches == 2, "the refresh was tried")
        #expect(try await provider.credentials().accessKeyId == "ONE")
        await provider.refreshCompleted()
        #expect(source.fetches == 2, "not again within the minimum gap")
        clock.advance(to: 3600 - 60 + CachingCredentialProvider.minimumRefreshGap)
        #expect(try await provider.credentials().accessKeyId == "ONE")
        await provider.refreshCompleted()
        #expect(source.fetches == 3, "tried again after the gap")
        clock.advance(to: 3700)
        let error = await #expect(throws: AWSCredentialsError.self) { try await provider.credentials() }
        #expect(error?.message == down.message)
    }

    @Test("credential timestamps with and without fractions (moto's STS sends microseconds)")
    func timestamps() {
        #expect(CredentialTimestamp.parse("2026-12-02T01:54:41Z") == Date(timeIntervalSince1970: 1_796_176_481))
        let fractional = CredentialTimestamp.parse("2026-12-02T01:54:41.189175Z")
        #expect(fractional.map { abs($0.timeIntervalSince1970 - 1_796_176_481.189175) < 0.001 } == true)
        #expect(CredentialTimestamp.parse("2026-12-02T02:54:41+01:00") == Date(timeIntervalSince1970: 1_796_176_481))
        #expect(CredentialTimestamp.parse("tomorrow") == nil)
    }
}

/// Calls `credentials()` from many tasks at once; the distinct access key ids they got.
func concurrentCredentials(_ provider: some AWSCredentialProvider, callers: Int) async throws -> Set<String> {
    try await withThrowingTaskGroup(of: String.self) { group in
        for _ in 0..<callers { group.addTask { try await provider.credentials().accessKeyId } }
        var ids = Set<String>()
        for try await id in group { ids.insert(id) }
        return ids
    }
}

@Suite("Credential sources against local stand-ins", .requires(.python3))
struct CredentialSourceTests {
    @Test("IMDSv2: a token first, then the role's name, then its credentials; the stand-in refuses requests without a token")
    func instanceMetadata() async throws {
        let standIn = try await MetadataStandIn.start()
        let unauthorized = try await standIn.get("/latest/meta-data/iam/security-credentials/")
        #expect(unauthorized.status == 401, "the stand-in requires IMDSv2, as an instance configured so does")

        let settings = try #require(bareEnvironment(["AWS_EC2_METADATA_SERVICE_ENDPOINT": standIn.endpoint]).instanceMetadata())
        #expect(settings.timeout == .seconds(1))
        let fetched = try #require(try await InstanceMetadataCredentialSource(settings: settings).fetch())
        #expect(fetched.credentials == AWSCredentials(accessKeyId: "ASIAIMDS1", secretAccessKey: "secret-imds-1", sessionToken: "token-imds-1"))
        let expiration = try #require(fetched.expiration)
        #expect(expiration > Date().addingTimeInterval(3500) && expiration < Date().addingTimeInterval(3700))
        let log = try await standIn.log()
        #expect(log.count("token") == 1)
        #expect(log.count("role") == 1)
        #expect(log.count("imds") == 1)
        #expect(log.count("unauthorized") == 1, "only the test's own request went without a token")
    }

    @Test("IMDS: AWS_EC2_METADATA_DISABLED=true is never asked; nothing listening is 'no credentials here', said in the chain's line")
    func instanceMetadataAbsent() async throws {
        let standIn = try await MetadataStandIn.start()
        let disabled = bareEnvironment(["AWS_EC2_METADATA_SERVICE_ENDPOINT": standIn.endpoint, "AWS_EC2_METADATA_DISABLED": "true"])
        let chain = try AWSCredentialChain.standard(environment: disabled, region: "us-east-1")
        await #expect(throws: AWSCredentialsError.self) { try await chain.fetch() }
        #expect(try await standIn.log().count("token") == 0)

        let closedPort = try MotoServer.freePort()
        let nobody = bareEnvironment(["AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:\(closedPort)"])
        let error = await #expect(throws: AWSCredentialsError.self) {
            try await AWSCredentialChain.standard(environment: nobody, region: "us-east-1").fetch()
        }
        let message = try #require(error?.message)
        #expect(message.hasPrefix("no AWS credentials: set AWS_ACCESS_KEY_ID"))
        #expect(message.contains("or an EC2 instance role (instance metadata at http://127.0.0.1:\(closedPort)): no answer from http://127.0.0.1:\(closedPort) (2 attempts"))
    }

    @Test("container endpoint: the token file wins over the variable; a wrong token is a clear error that never shows the token")
    func container() async throws {
        let standIn = try await MetadataStandIn.start(containerToken: "pod-identity-token-1")
        let tokenFile = FileManager.default.temporaryDirectory.appendingPathComponent("container-token-\(UUID().uuidString)")
        try "pod-identity-token-1\n".write(to: tokenFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: tokenFile) }

        let environment = bareEnvironment([
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": standIn.containerURL, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": tokenFile.path,
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": "stale-token-from-the-variable",
        ])
        let fetched = try #require(try await ContainerCredentialSource(settings: environment.containerCredentials()).fetch())
        #expect(fetched.credentials.accessKeyId == "ASIACONTAINER1")
        #expect(fetched.credentials.sessionToken == "token-container-1")
        #expect(fetched.expiration != nil)

        let wrong = bareEnvironment(["AWS_CONTAINER_CREDENTIALS_FULL_URI": standIn.containerURL, "AWS_CONTAINER_AUTHORIZATION_TOKEN": "not-the-token-77"])
        let error = await #expect(throws: AWSCredentialsError.self) { try await ContainerCredentialSource(settings: wrong.containerCredentials()).fetch() }
        let message = try #require(error?.message)
        #expect(message.contains("answered HTTP 403"))
        #expect(!message.contains("not-the-token-77"))
        let log = try await standIn.log()
        #expect(log.count("container") == 1)
        #expect(log.count("unauthorized") == 1)
    }

    @Test("the chain without keys: the container endpoint wins over instance metadata, which is not asked")
    func chainPrefersContainer() async throws {
        let standIn = try await MetadataStandIn.start(containerToken: "t0k3n")
        let environment = bareEnvironment([
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": standIn.containerURL, "AWS_CONTAINER_AUTHORIZATION_TOKEN": "t0k3n",
            "AWS_EC2_METADATA_SERVICE_ENDPOINT": standIn.endpoint,
        ])
        let chain = try AWSCredentialChain.standard(environment: environment, region: "us-east-1")
        #expect(try await chain.fetch()?.credentials.accessKeyId == "ASIACONTAINER1")
        let log = try await standIn.log()
        #expect(log.count("container") == 1)
        #expect(log.count("token") == 0)
    }

    @Test("expiry: credentials from the container endpoint are refreshed once inside the window, in the background, for many concurrent callers")
    func containerRefresh() async throws {
        let standIn = try await MetadataStandIn.start(expiresIn: 600)
        let clock = TestClock()
        let source = ContainerCredentialSource(settings: .init(url: standIn.containerURL))
        let provider = CachingCredentialProvider(source, now: clock.now)
        #expect(try await concurrentCredentials(provider, callers: 40) == ["ASIACONTAINER1"])
        #expect(try await standIn.log().count("container") == 1)
        clock.advance(to: 600 - 240)
        // Still valid: used at once while one refresh runs in the background.
        #expect(try await concurrentCredentials(provider, callers: 40) == ["ASIACONTAINER1"])
        await provider.refreshCompleted()
        #expect(try await standIn.log().count("container") == 2)
        #expect(try await concurrentCredentials(provider, callers: 40) == ["ASIACONTAINER2"])
        #expect(try await standIn.log().count("container") == 2)
    }
}

@Suite("ExpiredToken: refresh and send once more", .requires(.python3))
struct ExpiredTokenRetryTests {
    /// One call through a client whose credentials come from the stand-in's container endpoint;
    /// the client is shut down whatever happens (async-http-client traps on a pool never shut down).
    func call(_ standIn: MetadataStandIn, path: String) async throws -> [UInt8] {
        let provider = CachingCredentialProvider(ContainerCredentialSource(settings: .init(url: standIn.containerURL)))
        let client = AWSClient(credentialProvider: provider, region: "us-east-1")
        do {
            let answer = try await client.jsonCall(
                endpoint: standIn.endpoint + path, signingName: "dynamodb", target: "DynamoDB_20120810.ListTables",
                contentType: "application/x-amz-json-1.0", body: Array("{}".utf8)
            )
            try await client.shutdown()
            return answer
        } catch {
            try await client.shutdown()
            throw error
        }
    }

    @Test("ExpiredTokenException: the credentials are refreshed and the request sent once more, signed with the new ones")
    func expired() async throws {
        let standIn = try await MetadataStandIn.start()
        let answer = try await call(standIn, path: "/service/expired-once")
        #expect(answer == Array("{}".utf8))
        let log = try await standIn.log()
        #expect(log.signedBy == ["ASIACONTAINER1", "ASIACONTAINER2"])
        #expect(log.count("container") == 2)
    }

    @Test("InvalidClientTokenId is no expiry: no refresh, no resend")
    func invalid() async throws {
        let standIn = try await MetadataStandIn.start()
        let error = await #expect(throws: AWSServiceError.self) { try await call(standIn, path: "/service/invalid") }
        #expect(error?.type == "InvalidClientTokenId")
        let log = try await standIn.log()
        #expect(log.signedBy == ["ASIACONTAINER1"])
        #expect(log.count("container") == 1)
    }
}

@Suite("Credentials from STS and the container endpoint, used on moto", .requires(.moto))
struct CredentialsOnMotoTests {
    @Test("web identity: AssumeRoleWithWebIdentity on moto's STS (AWS_ENDPOINT_URL_STS) gives temporary credentials")
    func webIdentity() async throws {
        // A moto of its own: the shared one queues every suite's requests (one at a time), and
        // STS calls time out after 5 s as in production.
        let moto = try await MotoServer.start()
        defer { moto.stop() }
        let tokenFile = FileManager.default.temporaryDirectory.appendingPathComponent("web-identity-\(UUID().uuidString)")
        try "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJvbmJvYXJkIn0.c2lnbmF0dXJl\n".write(to: tokenFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: tokenFile) }
        let environment = bareEnvironment([
            "AWS_WEB_IDENTITY_TOKEN_FILE": tokenFile.path, "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/onboard",
            "AWS_ROLE_SESSION_NAME": "ci-session", "AWS_ENDPOINT_URL_STS": moto.endpoint, "AWS_EC2_METADATA_DISABLED": "true",
        ])
        let settings = try #require(try environment.webIdentity())
        #expect(settings.stsEndpoint == moto.endpoint)
        let chain = try AWSCredentialChain.standard(environment: environment, region: "us-east-1")
        let fetched = try #require(try await chain.fetch())
        #expect(fetched.credentials.accessKeyId.hasPrefix("ASIA"))
        #expect(fetched.credentials.sessionToken?.isEmpty == false)
        let expiration = try #require(fetched.expiration)
        #expect(expiration > Date().addingTimeInterval(1800))

        let missing = bareEnvironment(["AWS_WEB_IDENTITY_TOKEN_FILE": "/nonexistent/token", "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/onboard"])
        let error = await #expect(throws: AWSCredentialsError.self) { try await AWSCredentialChain.standard(environment: missing, region: "us-east-1").fetch() }
        #expect(error?.message.contains("/nonexistent/token") == true)
    }

    @Test("end to end: DynamoDB on moto with credentials only from the container endpoint")
    func dynamoDBWithContainerCredentials() async throws {
        let moto = try await MotoServer.shared()
        let standIn = try await MetadataStandIn.start(containerToken: "eks-pod-identity")
        let environment = bareEnvironment([
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": standIn.containerURL, "AWS_CONTAINER_AUTHORIZATION_TOKEN": "eks-pod-identity",
            "AWS_EC2_METADATA_DISABLED": "true", "AWS_REGION": "us-east-1",
        ])
        let provider = CachingCredentialProvider(try AWSCredentialChain.standard(environment: environment, region: "us-east-1"))
        let client = AWSClient(credentialProvider: provider, region: "us-east-1")
        let dynamoDB = DynamoDB(client: client, endpoint: moto.endpoint)
        let table = "container-\(UUID().uuidString.prefix(8).lowercased())"
        do {
            try await DynamoDBTable.create(dynamoDB, name: table)
            let store = DynamoDBTenantStore(dynamoDB: dynamoDB, table: table)
            let item = Item(tenantId: "t", resourceKey: "CONTAINER#1", attributes: ["ok": .bool(true)])
            try await store.put(item)
            #expect(try await store.get(item.key) == item)
        } catch {
            try await client.shutdown()
            throw error
        }
        try await client.shutdown()
        #expect(try await standIn.log().count("container") == 1, "one fetch served every call")
    }
}
