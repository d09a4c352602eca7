#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import AWSClient
import NIOCore
import Foundation
import SigV4
import Synchronization

/// A tool or server a test needs is not there. Tests declare what they need with a trait
/// (`.requires(.moto)`), so outside CI they are skipped before this can be thrown; it fails a test
/// that runs without the tool (under CI), naming what is missing.
public struct UnavailableInThisEnvironment: Error, CustomStringConvertible {
    public let description: String
    public init(description: String) { self.description = description }
}

/// moto's server (`python3 -m moto.server`) on 127.0.0.1 and a free port, started by the tests
/// themselves. The child ends soon after the test process, so no server outlives a crashed run.
public final class MotoServer: Sendable {
    public let port: Int
    public var endpoint: String { "http://127.0.0.1:\(port)" }
    private let process: ChildProcess

    /// The server shared by a test process (the default configuration, no authentication).
    /// - Throws: ``UnavailableInThisEnvironment`` when moto is not installed.
    public static func shared() async throws -> MotoServer {
        try await sharedServer.get()
    }

    private static let sharedServer = LazyServer()

    /// One of a few servers shared by a test process, in turn: moto serves one request at a time,
    /// so a suite that runs dozens of servers' traffic at once (the HTTP suite on DynamoDB, each
    /// test's application also delivering its events) spreads it over several processes (and
    /// cores) instead of queueing it all behind one lock.
    public static func pooled() async throws -> MotoServer {
        let index = poolTurn.withLock { turn in
            defer { turn = (turn + 1) % pool.count }
            return turn
        }
        return try await pool[index].get()
    }

    private static let pool = (0..<3).map { _ in LazyServer() }
    private static let poolTurn = Mutex(0)

    /// Starts a server of its own, with extra environment variables (for example
    /// `INITIAL_NO_AUTH_ACTION_COUNT` to make it check signatures).
    public static func start(environment: [String: String] = [:]) async throws -> MotoServer {
        try Requirements.check(.moto)
        let port = try freePort()
        // A watchdog thread ends moto when the test process is gone (its parent changes). Not
        // PR_SET_PDEATHSIG: that fires when the spawning *thread* exits, and Swift's worker
        // threads come and go during a run.
        let launcher = """
            import os, sys, threading, time
            parent = os.getppid()
            def watch():
                while os.getppid() == parent:
                    time.sleep(0.5)
                os._exit(0)
            threading.Thread(target=watch, daemon=True).start()
            # Connections are served concurrently but requests run one at a time: moto's DynamoDB
            # is not thread-safe (concurrent TransactWriteItems fail with "dictionary changed size
            # during iteration" and can leave half a transaction applied). Serialised, each
            # request is atomic, as in DynamoDB.
            from moto.server import DomainDispatcherApplication, create_backend_app
            from werkzeug.serving import run_simple
            # moto backs up every table a transaction names by deep-copying it whole (once per
            # item of the transaction) and puts the copy back if the transaction fails: a test of
            # hundreds of onboardings, or one transaction of 100 deletes in a 10,000-item
            # partition, becomes quadratic. The rollback only needs the items the transaction
            # names: keep those (copied, or absent) and restore them on failure; the tables are
            # not copied. Requests are serialised (below), so nothing else writes meanwhile.
            import copy, types
            import moto.dynamodb.models as dynamodb_models
            from moto.dynamodb.models.dynamo_type import DynamoType
            dynamodb_models.copy = types.SimpleNamespace(
                deepcopy=lambda value, memo=None: value if isinstance(value, dynamodb_models.Table) else copy.deepcopy(value, memo),
                copy=copy.copy,
            )
            transact = dynamodb_models.DynamoDBBackend.transact_write_items
            def transact_restoring_items(self, transact_items, *args, **kwargs):
                saved = []
                for entry in transact_items:
                    for op_type, op in entry.items():
                        table = self.tables.get(op.get("TableName"))
                        if table is None:
                            continue
                        attrs = op["Item"] if op_type == "Put" else op.get("Key", {})
                        if table.hash_key_attr not in attrs:
                            continue
                        hash_value = DynamoType(attrs[table.hash_key_attr])
                        range_value = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr and table.range_key_attr in attrs else None
                        try:
                            current = table.get_item(hash_value, range_value)
                        except Exception:
                            continue  # a malformed key: moto refuses the request before writing
                        saved.append((table, hash_value, range_value, copy.deepcopy(current)))
                try:
                    return transact(self, transact_items, *args, **kwargs)
                except Exception:
                    for table, hash_value, range_value, item in reversed(saved):
                        if range_value is None:
                            if item is None: table.items.pop(hash_value, None)
                            else: table.items[hash_value] = item
                        else:
                            if item is None: table.items[hash_value].pop(range_value, None)
                            else: table.items[hash_value][range_value] = item
                    raise
            dynamodb_models.DynamoDBBackend.transact_write_items = transact_restoring_items
            app = DomainDispatcherApplication(create_backend_app)
            lock = threading.Lock()
            def serialised(environ, start_response):
                with lock:
                    return list(app(environ, start_response))
            run_simple("127.0.0.1", int(sys.argv[1]), serialised, threaded=True)
            """
        var variables = ProcessInfo.processInfo.environment
        variables.merge(environment) { $1 }
        let process = try ChildProcess.start(
            executable: "/usr/bin/env", arguments: ["python3", "-c", launcher, String(port)], environment: variables,
            standardOutput: .null, standardError: .null
        )
        let server = MotoServer(port: port, process: process)
        try await server.waitUntilReady()
        return server
    }

    private init(port: Int, process: ChildProcess) {
        self.port = port
        self.process = process
    }

    deinit {
        stop()
    }

    /// Stops the server: SIGKILL, as its state is in memory only (moto's SIGTERM handling can
    /// leave the server running, and a wait for it would hang the test process).
    public func stop() {
        process.kill()
    }

    private func waitUntilReady() async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            guard process.isRunning else {
                throw UnavailableInThisEnvironment(description: "moto exited at start (\(process.exitStatus.map { "\($0)" } ?? "status unknown"))")
            }
            if Self.canConnect(port: port) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        stop()
        throw UnavailableInThisEnvironment(description: "moto did not start listening on 127.0.0.1:\(port) within 30 s")
    }

    /// A port the kernel reports free on 127.0.0.1.
    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw UnavailableInThisEnvironment(description: "socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw UnavailableInThisEnvironment(description: "bind() failed") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Whether something accepts connections on 127.0.0.1:`port`.
    public static func canConnect(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}

/// Starts the shared server once, on first use.
private final class LazyServer: Sendable {
    private let task = Mutex<Task<MotoServer, any Error>?>(nil)

    func get() async throws -> MotoServer {
        let task = task.withLock { task in
            if let task { return task }
            let started = Task { try await MotoServer.start() }
            task = started
            return started
        }
        return try await task.value
    }
}

extension MotoServer {
    /// A DynamoDB client for this server. Clients are cached per endpoint for the whole test
    /// process (an async-http-client pool must be shut down before it is released, and these
    /// live until the process ends).
    public func dynamoDB() -> DynamoDB {
        DynamoDB(client: TestAWSClients.client(), endpoint: endpoint)
    }
}

/// The AWS client the tests share: fixed test credentials, region us-east-1.
public enum TestAWSClients {
    public static let credentials = AWSCredentials(accessKeyId: "testing", secretAccessKey: "testing")
    /// Patient, because moto is: it serves one request at a time and copies a table for each
    /// transaction, so when many suites share it on a busy machine an answer can take tens of
    /// seconds. A short timeout would resend work moto still does (piling more onto its queue)
    /// and fail tests that have nothing wrong but the wait. Tests of timeouts and budgets make
    /// clients of their own.
    private static let shared = AWSClient(
        credentials: credentials, region: "us-east-1", requestTimeout: .seconds(90), defaultBudget: .seconds(180),
        // Also for a free connection: the tests together send more requests at once than the pool holds.
        connectTimeout: .seconds(90)
    )
    public static func client() -> AWSClient { shared }
}
