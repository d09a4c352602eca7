import AsyncHTTPClient
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import OnboardingApp
import ServiceLifecycle
import Synchronization

/// What HummingbirdTesting's `app.test(.live)` does (the application's service group on a free
/// port, a client to it), with a client that waits as long as the suite's store may take.
///
/// `.live`'s client gives up after a fixed 20 s; on moto, which serves one request at a time,
/// the whole suite's traffic (each test's application also delivering its events) can keep one
/// request queued longer than that. Deadlines are tested by the tests of deadlines, with their
/// own settings, never by this wait.
enum PatientLiveServer {
    /// How long one request may wait for its answer.
    static let requestTimeout: TimeAmount = .seconds(300)

    static func run<Value: Sendable>(
        _ app: OnboardApplication, _ body: @Sendable (_ transport: @escaping APIClient.Transport, _ port: Int) async throws -> Value
    ) async throws -> Value {
        var app = app
        let (ports, portSink) = AsyncStream.makeStream(of: Int.self, bufferingPolicy: .bufferingNewest(1))
        let earlier = app.whenServerRunning
        app.whenServerRunning = { channel in
            await earlier(channel)
            portSink.yield(channel.localAddress?.port ?? 0)
            portSink.finish()
        }
        let group = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: app.logger))
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = ports.makeAsyncIterator()
            guard let port = await iterator.next() else { throw HTTPClientError.remoteConnectionClosed }
            var configuration = HTTPClient.Configuration()
            configuration.timeout = .init(connect: .seconds(120), read: requestTimeout)
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            let transport: APIClient.Transport = { uri, method, headers, bytes in
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(uri)")
                request.method = HTTPMethod(rawValue: method.rawValue)
                for field in headers { request.headers.add(name: field.name.rawName, value: field.value) }
                if let bytes { request.body = .bytes(ByteBuffer(bytes: bytes)) }
                let response = try await client.execute(request, timeout: requestTimeout)
                let payload = try await response.body.collect(upTo: 64 * 1024 * 1024)
                var fields = HTTPFields()
                for header in response.headers {
                    if let name = HTTPField.Name(header.name) { fields.append(HTTPField(name: name, value: header.value)) }
                }
                return (Int(response.status.code), fields, Array(payload.readableBytesView))
            }
            do {
                let value = try await body(transport, port)
                try await client.shutdown()
                await group.triggerGracefulShutdown()
                return value
            } catch {
                try? await client.shutdown()
                await group.triggerGracefulShutdown()
                throw error
            }
        }
    }
}
