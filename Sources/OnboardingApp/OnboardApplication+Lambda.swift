import HTTPTypes
import Hummingbird
import LambdaRuntime
import OnboardingHTTP

extension OnboardApplication {
    /// The application as a Lambda function: API Gateway events through the same responder the
    /// HTTP server uses, and each background service's pending step (``runPending()``) after an
    /// invocation is answered and before the next one is asked for.
    ///
    /// Lambda does not freeze the sandbox until the runtime asks for the next event, so that step
    /// runs (and is billed) then; nothing runs while the function waits. A handler still running
    /// just before the deadline (one that ignores cancellation) is answered for: 503 with
    /// Retry-After, rather than the 502 API Gateway makes of an error.
    public func lambdaLoop(client: any LambdaRuntimeClient) -> LambdaRuntimeLoop {
        let adapter = APIGatewayAdapter(responder: responder) { info, logger in
            AppRequestContext(logger: logger, authorizerClaims: info.claims, peerAddress: info.sourceIP)
        }
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
            handler: adapter.handle
        )
    }
}
