import Foundation
import HTTPTypes
import Hummingbird
import LambdaRuntime
import Logging
import OnboardingCore
import OnboardingEvents
import OnboardingHTTP

extension OnboardApplication {
    /// The application as a Lambda function: API Gateway events through the same responder the
    /// HTTP server uses, EventBridge's scheduled event as the event sweep (``lambdaHandler``), and
    /// each background service's pending step (``runPending()``) after an invocation is answered
    /// and before the next one is asked for.
    ///
    /// Lambda does not freeze the sandbox until the runtime asks for the next event, so that step
    /// runs (and is billed) then; nothing runs while the function waits. It is where the events
    /// an invocation recorded are delivered (``EventDispatcher/runPending()``, the shards it
    /// recorded into); the scheduled sweep delivers what a step did not (the sandbox ended, a sink
    /// was down). A handler still running just before the deadline (one that ignores
    /// cancellation) is answered for: 503 with Retry-After, rather than the 502 API Gateway makes
    /// of an error.
    public func lambdaLoop(client: any LambdaRuntimeClient) -> LambdaRuntimeLoop {
        let adapter = apiGatewayAdapter
        return LambdaRuntimeLoop(
            client: client, logger: logger,
            timeoutResponse: { invocation in
                await adapter.timeoutResponse(for: invocation) { request, info in
                    var problem = Problem(
                        .serviceUnavailable, code: "store-unavailable", title: "Storage unavailable",
                        detail: "The request did not finish before the function's deadline; it may have taken effect. Retry later."
                    )
                    problem.headers[.retryAfter] = "1"
                    return problem.response(path: request.uri.path, requestID: info.requestID ?? invocation.requestID)
                }
            },
            betweenInvocations: { await runPending() },
            handler: lambdaHandler
        )
    }

    /// One invocation, without the step after it: EventBridge's scheduled event
    /// (``ScheduledEvent``, `"source": "aws.events"`, `"detail-type": "Scheduled Event"`: the
    /// template's `EventSweepFunction`, once a minute) sweeps every outbox shard
    /// (``EventDispatcher/sweepAll()``) and answers a small JSON result; every other event goes
    /// to the API Gateway adapter (which reports anything but a proxy event as an error).
    public var lambdaHandler: LambdaHandler {
        let adapter = apiGatewayAdapter
        let dispatcher = dispatcher
        return { invocation, logger in
            if let scheduled = ScheduledEvent(payload: invocation.payload) {
                return await Self.sweep(scheduled, dispatcher: dispatcher, logger: logger)
            }
            return try await adapter.handle(invocation, logger: logger)
        }
    }

    private var apiGatewayAdapter: APIGatewayAdapter<Responder> {
        APIGatewayAdapter(responder: responder) { info, logger in
            AppRequestContext(logger: logger, authorizerClaims: info.authorizerClaims, peerAddress: info.sourceIP)
        }
    }

    /// The scheduled sweep: one bounded pass over every shard (it ends with the invocation's
    /// retry budget). The other background services' pending steps follow the answer, as after
    /// any invocation (the loop's step), which also finishes unfinished offboardings.
    ///
    /// Answers `{"sweep":"done","scheduledEvent":<id>,"durationMs":<n>}` (a scheduled invocation's
    /// answer goes nowhere but the function's metrics; it makes a manual `sam local invoke` or
    /// `aws lambda invoke` readable).
    static func sweep(_ event: ScheduledEvent, dispatcher: EventDispatcher, logger: Logger) async -> [UInt8] {
        let started = ContinuousClock.now
        await dispatcher.sweepAll()
        let elapsed = ContinuousClock.now - started
        let milliseconds = elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000
        logger.info("event sweep done", metadata: ["scheduled_event": .string(event.id), "duration_ms": .stringConvertible(milliseconds)])
        return JSONCodec.serializeBytes(.map(["sweep": .string("done"), "scheduledEvent": .string(event.id), "durationMs": .int(Int(milliseconds))]))
    }
}

extension APIGatewayRequestInfo {
    /// The event's authorizer claims for ``ClaimMapping``, in its payload format.
    public var authorizerClaims: AuthorizerClaims {
        AuthorizerClaims(format: version == .v2 ? .httpAPI : .restAPI, strings: claims, lists: claimLists)
    }
}
