import Foundation
import HTTPTypes
import Hummingbird
import LambdaRuntime
import Logging
import NIOCore
import OnboardingApp
import OnboardingCore
import OnboardingEvents
import OnboardingHTTP
import OnboardingSQLite
import Synchronization
import Testing
import ServiceLifecycle

// Lifecycle events on Lambda, through the real runtime loop and its HTTP Runtime API client: the
// events an invocation recorded are delivered after its answer is posted and before the next
// event is asked for; what an invocation that died after its answer left in the outbox is
// delivered by the scheduled sweep (template.yaml's EventSweepFunction), whose event is
// Events/scheduled-event.json, made by SAM CLI 1.170.0 and kept byte for byte:
//
//     sam local generate-event cloudwatch scheduled-event > Tests/LambdaRuntimeTests/Events/scheduled-event.json

/// The bytes of `Events/<name>.json`, unchanged.
private func eventFile(_ name: String) throws -> [UInt8] {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Events/\(name).json")
    return Array(try Data(contentsOf: url))
}

/// Shuts `services` down gracefully (the listening socket closes first), then cancels what is
/// still running after 2 s (a request held open, such as a long-polled `/next`).
func stopGracefully(_ services: ServiceGroup, _ group: inout ThrowingTaskGroup<Void, any Error>) async {
    await services.triggerGracefulShutdown()
    group.addTask { try await Task.sleep(for: .seconds(2)) }
    _ = try? await group.next()
    group.cancelAll()
}

/// Runs `router` on 127.0.0.1 (a free port) while `body` runs, passing it the port.
private func withLocalServer(_ router: Router<BasicRequestContext>, _ body: (Int) async throws -> Void) async throws {
    let port = Mutex<Int?>(nil)
    let app = Application(
        router: router, configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
        onServerRunning: { channel in port.withLock { $0 = channel.localAddress?.port } },
        logger: {
            // Quiet: stopping the server at the end logs errors that say nothing about the test.
            var logger = Logger(label: "test-server")
            logger.logLevel = .critical
            return logger
        }()
    )
    try await withThrowingTaskGroup(of: Void.self) { group in
        // Stopped gracefully, never by cancelling it while it listens: a connection accepted but
        // not yet served when the serving task is cancelled makes NIO trap ("Deinited
        // NIOAsyncWriter without calling finish()", apple/swift-nio#3481; seen in CI). Graceful
        // shutdown closes the listening socket first; what is still open after 2 s is cancelled.
        let services = ServiceGroup(configuration: .init(services: [app], gracefulShutdownSignals: [], logger: app.logger))
        group.addTask { try await services.run() }
        var bound: Int?
        while bound == nil {
            try await Task.sleep(for: .milliseconds(10))
            bound = port.withLock { $0 }
        }
        do {
            try await body(bound!)
        } catch {
            await stopGracefully(services, &group)
            throw error
        }
        await stopGracefully(services, &group)
    }
}

/// A webhook endpoint on 127.0.0.1: records every delivery (its Standard Webhooks headers and
/// body) and answers 204.
private final class WebhookReceiver: Sendable {
    struct Delivery: Sendable {
        let id: String
        let timestamp: String
        let signature: String
        let body: [UInt8]

        /// The CloudEvents envelope delivered.
        var envelope: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:] }
    }

    let deliveries = Mutex<[Delivery]>([])

    var router: Router<BasicRequestContext> {
        let router = Router()
        router.post("/hook") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            let header = { (name: String) in request.headers[HTTPField.Name(name)!] ?? "" }
            self.deliveries.withLock {
                $0.append(Delivery(id: header("webhook-id"), timestamp: header("webhook-timestamp"), signature: header("webhook-signature"), body: Array(buffer: body)))
            }
            return Response(status: .noContent)
        }
        return router
    }

    /// What has arrived so far, for a timeline: the events' types, in arrival order.
    var summary: String {
        let types = deliveries.withLock { $0 }.map { $0.envelope["type"] as? String ?? "?" }
        return types.isEmpty ? "delivered: none" : "delivered: \(types.joined(separator: ", "))"
    }
}

/// A Lambda Runtime API (2018-06-01) on 127.0.0.1 that hands out `events` in order, one per
/// `next`, takes every answer, and writes a timeline: at each `next` and each posted answer,
/// what `observe` says at that moment.
private final class RuntimeAPIStandIn: Sendable {
    struct State {
        var handedOut = 0
        var timeline: [String] = []
        var answers: [[UInt8]] = []
    }

    let events: [[UInt8]]
    let observe: @Sendable () -> String
    /// Each invocation's deadline, from when it is handed out.
    let deadline: Duration
    let state = Mutex(State())

    init(events: [[UInt8]], deadline: Duration = .seconds(30), observe: @escaping @Sendable () -> String) {
        self.events = events
        self.deadline = deadline
        self.observe = observe
    }

    var timeline: [String] { state.withLock { $0.timeline } }
    var answers: [[UInt8]] { state.withLock { $0.answers } }

    var router: Router<BasicRequestContext> {
        let router = Router()
        let prefix = "/2018-06-01/runtime/invocation"
        router.get("\(prefix)/next") { _, _ -> Response in
            let seen = self.observe()
            let index = self.state.withLock { state in
                state.timeline.append("next (\(seen))")
                defer { state.handedOut += 1 }
                return state.handedOut
            }
            // The test asks for no more than it scripted (run(maxInvocations:)).
            guard index < self.events.count else { return Response(status: .internalServerError) }
            let deadline = Int64(Date().timeIntervalSince1970 * 1000) + self.deadline.components.seconds * 1000
            return Response(
                status: .ok,
                headers: [
                    HTTPField.Name(AmazonHeaders.requestID)!: "invocation-\(index + 1)", HTTPField.Name(AmazonHeaders.deadline)!: String(deadline),
                    HTTPField.Name(AmazonHeaders.invokedFunctionARN)!: "arn:aws:lambda:us-east-1:123456789012:function:onboard",
                ],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: self.events[index]))
            )
        }
        router.post("\(prefix)/{id}/{kind}") { request, context -> Response in
            let bytes = try await request.body.collect(upTo: 1 << 24)
            let seen = self.observe()
            let kind = context.parameters.get("kind") ?? ""
            self.state.withLock { state in
                if kind == "response" {
                    state.answers.append(Array(buffer: bytes))
                    state.timeline.append("response (\(seen))")
                } else {
                    state.timeline.append("\(kind) \(request.headers[HTTPField.Name(AmazonHeaders.functionErrorType)!] ?? "") (\(seen))")
                }
            }
            return Response(status: .accepted, body: ResponseBody(byteBuffer: ByteBuffer(string: #"{"status":"OK"}"#)))
        }
        return router
    }

    /// Runs the API while `body` runs, passing it an HTTP Runtime API client of it
    /// (`AWS_LAMBDA_RUNTIME_API` = `127.0.0.1:<port>`).
    func serve(_ body: (HTTPLambdaRuntimeClient) async throws -> Void) async throws {
        try await withLocalServer(router) { port in
            let client = try HTTPLambdaRuntimeClient(runtimeAPI: "127.0.0.1:\(port)")
            do {
                try await body(client)
            } catch {
                try? await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
    }
}

/// A fresh SQLite file (the function's store in these tests), removed after `body`.
private func withStoreFile(_ body: (SQLiteTenantStore) async throws -> Void) async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("onboard-lambda-events-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    try await body(try SQLiteTenantStore(path: directory.appendingPathComponent("lambda.sqlite").path))
}

/// The function's settings as template.yaml sets its environment: a webhook and its secret.
private func functionConfiguration(webhookPort: Int, secret: String) throws -> ServeConfiguration {
    try ServeConfiguration.resolve(
        flags: [:],
        environment: [
            "ONBOARD_ADMIN_TOKEN": adminToken,
            "ONBOARD_EVENT_SOURCE": "urn:onboard:lambda-events-test",
            "ONBOARD_WEBHOOK_URLS": "http://127.0.0.1:\(webhookPort)/hook",
            "ONBOARD_WEBHOOK_SECRET": secret,
        ]
    )
}

/// `GET /health` as a REST API (1.0) event.
private func healthEvent() throws -> [UInt8] {
    var health = try sampleEvent("rest-v1")
    health["httpMethod"] = "GET"
    health["path"] = "/health"
    health["body"] = NSNull()
    health["isBase64Encoded"] = false
    return Array(try JSONSerialization.data(withJSONObject: health))
}

/// The tenant id of a posted `201` proxy response.
private func onboardedTenantId(_ answer: [UInt8]) throws -> String {
    let response = try proxyResponse(answer)
    #expect(response["statusCode"] as? Int == 201)
    let body = try JSONCodec.parse(try #require(response["body"] as? String)).mapValue ?? [:]
    return try #require(body["tenantId"]?.stringValue)
}

/// Checks that `delivery` is the `tenant.onboarded` event of `tenantId`, signed with `secret`.
private func expectOnboarded(_ delivery: WebhookReceiver.Delivery, tenantId: String, secret: WebhookSecret) throws {
    let envelope = delivery.envelope
    #expect(envelope["type"] as? String == "tenant.onboarded")
    #expect(envelope["subject"] as? String == tenantId)
    #expect(envelope["source"] as? String == "urn:onboard:lambda-events-test")
    #expect(envelope["id"] as? String == delivery.id)
    let timestamp = try #require(Int(delivery.timestamp))
    #expect(StandardWebhooks.verify(signatureHeader: delivery.signature, id: delivery.id, timestamp: timestamp, body: delivery.body, secret: secret))
}

/// Every event still in the outbox.
private func pendingEventIds(_ store: any TenantStore) async throws -> [String] {
    try await EventOutbox(store: store).pending(limit: 100, cursor: nil).entries.map(\.eventId)
}

/// A sink that never answers: it waits until its call is cancelled, and says so.
private final class HangingSink: EventSink {
    let id = "hanging"
    let maxBatch = 1
    let state = Mutex("sink: not called")

    func deliver(_ events: [OutboxEvent]) async -> [DeliveryResult] {
        state.withLock { $0 = "sink: waiting" }
        while !Task.isCancelled { try? await Task.sleep(for: .seconds(3600)) }
        state.withLock { $0 = "sink: cancelled" }
        return events.map { _ in .retry("cancelled") }
    }
}

@Suite("Lifecycle events on Lambda: after the answer, and by the scheduled sweep")
struct LambdaEventsTests {
    @Test("an onboarding answered 201 is delivered to the webhook after the answer is posted and before the next event is asked for")
    func deliveredBetweenInvocations() async throws {
        try await withStoreFile { store in
            let receiver = WebhookReceiver()
            let (secret, secretText) = WebhookSecret.generate()
            try await withLocalServer(receiver.router) { webhookPort in
                let app = try await buildApplication(
                    try functionConfiguration(webhookPort: webhookPort, secret: secretText), runtime: .lambda, overrides: AppOverrides(store: store)
                )
                // As sam makes the POST /onboard/ event, then any event: the webhook is looked at when it is asked for.
                let runtime = RuntimeAPIStandIn(events: [try eventFile("rest-v1"), try healthEvent()], observe: { receiver.summary })
                try await runtime.serve { client in
                    // Nothing runs the service group here, as inside Lambda: only the loop delivers.
                    try await app.lambdaLoop(client: client).run(maxInvocations: 2)
                }
                await app.close()

                #expect(
                    runtime.timeline == [
                        "next (delivered: none)", "response (delivered: none)",
                        "next (delivered: tenant.onboarded)", "response (delivered: tenant.onboarded)",
                    ]
                )
                let tenantId = try onboardedTenantId(try #require(runtime.answers.first))
                let deliveries = receiver.deliveries.withLock { $0 }
                try #require(deliveries.count == 1)
                try expectOnboarded(deliveries[0], tenantId: tenantId, secret: secret)
                #expect(try await pendingEventIds(store).isEmpty)
            }
        }
    }

    @Test("an event left in the outbox by an invocation whose after-answer step never ran (the loop run without it: a stand-in for a sandbox dying after its 201, not a real kill) is delivered by the scheduled sweep of a fresh sandbox (sam's scheduled event)")
    func deliveredByTheScheduledSweep() async throws {
        try await withStoreFile { store in
            let receiver = WebhookReceiver()
            let (secret, secretText) = WebhookSecret.generate()
            try await withLocalServer(receiver.router) { webhookPort in
                let configuration = try functionConfiguration(webhookPort: webhookPort, secret: secretText)

                // The API function's sandbox, standing in for one that dies after its 201: the
                // loop is run WITHOUT the after-answer step (the invocation's handling alone), so
                // the event is left in the outbox as a death would leave it. No process is killed.
                let dying = try await buildApplication(configuration, runtime: .lambda, overrides: AppOverrides(store: store))
                let api = RuntimeAPIStandIn(events: [try eventFile("rest-v1")], observe: { receiver.summary })
                try await api.serve { client in
                    try await LambdaRuntimeLoop(client: client, logger: dying.logger, handler: dying.lambdaHandler).run(maxInvocations: 1)
                }
                await dying.close()
                #expect(api.timeline == ["next (delivered: none)", "response (delivered: none)"])
                let tenantId = try onboardedTenantId(try #require(api.answers.first))
                let recorded = try await pendingEventIds(store)
                try #require(recorded.count == 1, "the onboarding's event waits in the outbox")
                #expect(receiver.deliveries.withLock { $0 }.isEmpty)

                // EventSweepFunction's sandbox, fresh (it knows nothing of that invocation): its
                // invocation is EventBridge's scheduled event, exactly as sam generates it.
                let sweeper = try await buildApplication(configuration, runtime: .lambda, overrides: AppOverrides(store: store))
                let schedule = RuntimeAPIStandIn(events: [try eventFile("scheduled-event")], observe: { receiver.summary })
                try await schedule.serve { client in
                    try await sweeper.lambdaLoop(client: client).run(maxInvocations: 1)
                }
                await sweeper.close()

                // Delivered by the sweep itself, before its answer.
                #expect(schedule.timeline == ["next (delivered: none)", "response (delivered: tenant.onboarded)"])
                let answerBytes = try #require(schedule.answers.first)
                let answer = try #require(try JSONSerialization.jsonObject(with: Data(answerBytes)) as? [String: Any])
                #expect(answer["sweep"] as? String == "done")
                #expect(answer["scheduledEvent"] as? String == "cdc73f9d-aea9-11e3-9d5a-835b769c0d9c")
                let deliveries = receiver.deliveries.withLock { $0 }
                try #require(deliveries.count == 1)
                try expectOnboarded(deliveries[0], tenantId: tenantId, secret: secret)
                #expect(deliveries[0].id == recorded[0])
                #expect(try await pendingEventIds(store).isEmpty)
            }
        }
    }

    // The time limit only ends a test that would otherwise hang (a step nothing cuts short).
    @Test(
        "the step after the answer is cut short before the invocation's deadline (a sink that never answers): the next event is asked for, the event stays in the outbox",
        .timeLimit(.minutes(3))
    )
    func stepEndsBeforeTheDeadline() async throws {
        try await withStoreFile { store in
            let sink = HangingSink()
            var pacing = EventDispatcher.Configuration()
            // Neither the dispatcher's own call timeout nor the lease would end the call first.
            pacing.deliveryTimeout = .seconds(3600)
            pacing.leaseDuration = .seconds(7200)
            let app = try await buildApplication(
                try ServeConfiguration.resolve(flags: [:], environment: ["ONBOARD_ADMIN_TOKEN": adminToken]), runtime: .lambda,
                overrides: AppOverrides(store: store, extraEventSinks: [sink], eventDispatcher: pacing)
            )
            // Deadlines of 30 s: the onboarding and the step up to the sink have time even on a
            // loaded CI machine (8 s cut the step off there before it reached the sink).
            let runtime = RuntimeAPIStandIn(events: [try eventFile("rest-v1"), try healthEvent()], deadline: .seconds(30), observe: {
                sink.state.withLock { $0 }
            })
            try await runtime.serve { client in
                try await app.lambdaLoop(client: client).run(maxInvocations: 2)
            }
            await app.close()

            #expect(
                runtime.timeline == [
                    "next (sink: not called)", "response (sink: not called)",
                    "next (sink: cancelled)", "response (sink: cancelled)",
                ]
            )
            #expect(try await pendingEventIds(store).count == 1, "the event waits for the sweep")
        }
    }

    @Test("the scheduled event is told apart from API Gateway's events and from other EventBridge events")
    func recognisesTheScheduledEvent() throws {
        let scheduled = try #require(ScheduledEvent(payload: try eventFile("scheduled-event")))
        #expect(scheduled.id == "cdc73f9d-aea9-11e3-9d5a-835b769c0d9c")
        #expect(scheduled.resources == ["arn:aws:events:us-east-1:123456789012:rule/ExampleRule"])
        #expect(ScheduledEvent(payload: try eventFile("rest-v1")) == nil)
        #expect(ScheduledEvent(payload: try eventFile("http-v2")) == nil)
        var other = try #require(try JSONSerialization.jsonObject(with: Data(try eventFile("scheduled-event"))) as? [String: Any])
        other["detail-type"] = "EC2 Instance State-change Notification"
        #expect(ScheduledEvent(payload: Array(try JSONSerialization.data(withJSONObject: other))) == nil)
        #expect(ScheduledEvent(payload: Array("not json".utf8)) == nil)
    }

    @Test("the scheduled event is answered by the sweep, not reported as a broken API Gateway event; any other event still is")
    func scheduledEventIsNotAnAPIGatewayError() async throws {
        try await withStoreFile { store in
            let app = try await buildApplication(
                try ServeConfiguration.resolve(flags: [:], environment: ["ONBOARD_ADMIN_TOKEN": adminToken]), runtime: .lambda,
                overrides: AppOverrides(store: store)
            )
            let runtime = RuntimeAPIStandIn(events: [try eventFile("scheduled-event"), Array(#"{"hello":"world"}"#.utf8)], observe: { "" })
            try await runtime.serve { client in
                try await app.lambdaLoop(client: client).run(maxInvocations: 2)
            }
            await app.close()
            // Events go to the log here (no sink configured); what matters is who answers.
            #expect(runtime.timeline == ["next ()", "response ()", "next ()", "error APIGatewayEventError ()"])
        }
    }
}
