#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import AWSClient
import Foundation

import Hummingbird
import Logging
import NIOCore
import OnboardTestSupport
import OnboardingCore
import OnboardingEvents
import Synchronization
import Testing
import ServiceLifecycle

/// Events for the sink tests: real envelopes (``TenantEvent``), each of a new tenant unless one is given.
enum SinkTestEvents {
    static let ids = EventIDGenerator()

    static func make(
        _ type: TenantEventType = .tenantOnboarded, tenant: TenantID? = nil, source: String = "urn:onboard:sink-tests",
        data: [String: AttributeValue] = ["changed": .list([.string("clientName")])]
    ) -> OutboxEvent {
        let tenantId = tenant ?? TenantID(UUID().uuidString)!
        let event = TenantEvent(
            id: ids.next(), type: type, tenantId: tenantId, time: "2026-12-02T07:00:00.000Z", source: source, actor: "admin", requestID: "req-1",
            data: data
        )
        return OutboxEvent(id: event.id, tenantId: tenantId, type: type, time: event.time, envelopeJSON: event.envelopeJSON)
    }
}

/// A webhook receiver on 127.0.0.1 (Hummingbird): records every request's headers and body and
/// answers what `answer` says (it may also wait, to hold a request open).
final class RecordingWebhookReceiver: Sendable {
    struct Delivery: Sendable {
        /// Header names in lower case.
        let headers: [String: String]
        let body: [UInt8]
        func header(_ name: String) -> String? { headers[name] }
    }

    private final class Recorded: Sendable {
        let deliveries = Mutex<[Delivery]>([])
    }

    let port: Int
    var url: String { "http://127.0.0.1:\(port)/hook" }
    private let recorded: Recorded
    private let services: ServiceGroup
    private let task: Task<Void, any Error>

    /// The requests received so far, in arrival order.
    var deliveries: [Delivery] { recorded.deliveries.withLock { $0 } }

    /// Starts a receiver; `answer` gets each request (recorded before it is called) and its
    /// 1-based number, and returns the status to answer.
    static func start(answer: @escaping @Sendable (Delivery, Int) async -> HTTPResponse.Status = { _, _ in .noContent }) async throws
        -> RecordingWebhookReceiver
    {
        try await start(path: "/hook") { delivery, number in (await answer(delivery, number), "") }
    }

    /// Starts a stand-in answering `POST path` with the status and body `answer` returns (an AWS
    /// service's stand-in: `path` "/").
    static func start(path: String, answer: @escaping @Sendable (Delivery, Int) async -> (HTTPResponse.Status, String)) async throws
        -> RecordingWebhookReceiver
    {
        let recorded = Recorded()
        let router = Router()
        router.post(RouterPath(path)) { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            var headers: [String: String] = [:]
            for field in request.headers { headers[field.name.canonicalName] = field.value }
            let delivery = Delivery(headers: headers, body: Array(body.readableBytesView))
            let number = recorded.deliveries.withLock {
                $0.append(delivery)
                return $0.count
            }
            let (status, text) = await answer(delivery, number)
            return Response(status: status, body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
        }
        let port = Mutex<Int?>(nil)
        let app = Application(
            router: router, configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in port.withLock { $0 = channel.localAddress?.port } },
            // Quiet: stopping makes Hummingbird log errors that are not the test's.
            logger: { var logger = Logger(label: "test.receiver"); logger.logLevel = .critical; return logger }()
        )
        // Stopped gracefully, never by cancelling it while it listens: a connection accepted but
        // not yet served when the serving task is cancelled makes NIO trap ("Deinited
        // NIOAsyncWriter without calling finish()", apple/swift-nio#3481; seen in CI). Graceful
        // shutdown closes the listening socket first; what is still open after 2 s is cancelled.
        let services = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: app.logger))
        let task = Task { try await services.run() }
        for _ in 0..<3000 {
            if let bound = port.withLock({ $0 }) { return RecordingWebhookReceiver(port: bound, recorded: recorded, services: services, task: task) }
            try await Task.sleep(for: .milliseconds(10))
        }
        await services.triggerGracefulShutdown()
        throw UnavailableInThisEnvironment(description: "the webhook receiver did not start listening")
    }

    private init(port: Int, recorded: Recorded, services: ServiceGroup, task: Task<Void, any Error>) {
        self.port = port
        self.recorded = recorded
        self.services = services
        self.task = task
    }

    /// Shuts the receiver down gracefully (its listening socket closes first); what still runs
    /// after 2 s is cancelled.
    func stop() {
        Task { [services, task] in
            await services.triggerGracefulShutdown()
            try? await Task.sleep(for: .seconds(2))
            task.cancel()
        }
    }
}

/// A port where the kernel accepts connections (they wait in the listen backlog) but nobody ever
/// reads or answers: a webhook endpoint that hangs.
final class SilentListener: Sendable {
    let port: Int
    private let fd: Int32

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw UnavailableInThisEnvironment(description: "socket() failed") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else {
            close(fd)
            throw UnavailableInThisEnvironment(description: "bind()/listen() failed")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.fd = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }
}

/// Checks Standard Webhooks signatures with an implementation independent of ours: Python's
/// `hmac`, `hashlib` and `base64`, as a receiver would.
enum PythonWebhookVerifier {
    struct Case: Encodable {
        let secret: String
        let id: String
        let timestamp: String
        let signature: String
        /// The body, base64 (exact bytes through JSON).
        let body: String

        init(secret: String, id: String, timestamp: String, signature: String, body: [UInt8]) {
            self.secret = secret
            self.id = id
            self.timestamp = timestamp
            self.signature = signature
            self.body = Data(body).base64EncodedString()
        }
    }

    static let script = """
        import base64, hashlib, hmac, json, sys
        results = []
        for case in json.load(sys.stdin):
            assert case["secret"].startswith("whsec_")
            key = base64.b64decode(case["secret"][len("whsec_"):])
            signed = case["id"].encode() + b"." + case["timestamp"].encode() + b"." + base64.b64decode(case["body"])
            expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
            given = [s.split(",", 1)[1] for s in case["signature"].split(" ") if s.startswith("v1,")]
            results.append(any(hmac.compare_digest(g, expected) for g in given))
        print(json.dumps(results))
        """

    /// Whether each case's signature verifies, in order.
    static func verify(_ cases: [Case]) throws -> [Bool] {
        try Requirements.check(.python3)
        let input = try JSONEncoder().encode(cases)
        let run = try ChildProcess.run(executable: "/usr/bin/env", arguments: ["python3", "-c", script], input: Array(input), standardError: .pipe)
        guard run.status.isSuccess else { throw ChildProcessError(description: "the Python verifier failed: \(run.errorText)") }
        return try JSONDecoder().decode([Bool].self, from: Data(run.output))
    }
}

/// An SQS queue on moto, read with SQS's JSON protocol (`AmazonSQS.*`), to see what SNS and
/// EventBridge delivered.
struct SQSTestQueue {
    let client: AWSClient
    let endpoint: String
    let url: String
    let arn: String

    struct Message: Decodable {
        let Body: String
        let Attributes: [String: String]?
    }

    static func call(_ client: AWSClient, endpoint: String, _ operation: String, _ input: [String: Any]) async throws -> [String: Any] {
        let body = try JSONSerialization.data(withJSONObject: input)
        let answer = try await client.jsonCall(
            endpoint: endpoint, signingName: "sqs", target: "AmazonSQS.\(operation)", contentType: "application/x-amz-json-1.0", body: Array(body)
        )
        return (try JSONSerialization.jsonObject(with: Data(answer)) as? [String: Any]) ?? [:]
    }

    /// Creates a queue (FIFO when the name ends in `.fifo`) that SNS and EventBridge may send to.
    static func create(on moto: MotoServer, name: String) async throws -> SQSTestQueue {
        let client = TestAWSClients.client()
        var attributes: [String: String] = [:]
        if name.hasSuffix(".fifo") { attributes["FifoQueue"] = "true" }
        let created = try await call(client, endpoint: moto.endpoint, "CreateQueue", ["QueueName": name, "Attributes": attributes])
        let url = try #require(created["QueueUrl"] as? String)
        let read = try await call(client, endpoint: moto.endpoint, "GetQueueAttributes", ["QueueUrl": url, "AttributeNames": ["QueueArn"]])
        let arn = try #require((read["Attributes"] as? [String: String])?["QueueArn"])
        return SQSTestQueue(client: client, endpoint: moto.endpoint, url: url, arn: arn)
    }

    /// Receives until `count` messages came, or until `attempts` receives in a row found nothing
    /// more (then returns what it has, for the test to compare).
    func receive(count: Int, attempts: Int = 20) async throws -> [Message] {
        var messages: [Message] = []
        var emptyInARow = 0
        while messages.count < count, emptyInARow < attempts {
            let answer = try await Self.call(
                client, endpoint: endpoint, "ReceiveMessage",
                ["QueueUrl": url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1, "AttributeNames": ["All"], "MessageAttributeNames": ["All"]]
            )
            let batch = try JSONDecoder().decode([Message].self, from: JSONSerialization.data(withJSONObject: answer["Messages"] ?? []))
            emptyInARow = batch.isEmpty ? emptyInARow + 1 : 0
            messages += batch
        }
        return messages
    }
}

/// Credentials of a new IAM user allowed everything, created with boto3 on a moto that checks
/// signatures (`INITIAL_NO_AUTH_ACTION_COUNT` = 3: these set-up calls are the unchecked ones).
func sinkTestIAMUser(on moto: MotoServer) throws -> (accessKeyId: String, secretAccessKey: String) {
    try Requirements.check(.boto3)
    let script = """
        import boto3, json, sys
        iam = boto3.client("iam", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id="setup", aws_secret_access_key="setup")
        iam.create_user(UserName="events")
        iam.put_user_policy(UserName="events", PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName="events")["AccessKey"]
        print(key["AccessKeyId"], key["SecretAccessKey"])
        """
    let setup = try ChildProcess.run(executable: "/usr/bin/env", arguments: ["python3", "-c", script, moto.endpoint], standardError: .null)
    let words = setup.outputText.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
    guard setup.status.isSuccess, words.count == 2 else {
        throw UnavailableInThisEnvironment(description: "boto3 could not create an IAM user on moto")
    }
    return (words[0], words[1])
}
