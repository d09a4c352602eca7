import Foundation
import Hummingbird
import LambdaRuntime
import Logging
import OnboardingHTTP

/// `onboard` as a Lambda custom runtime (`provided.al2023`, handler `bootstrap`): chosen when
/// `AWS_LAMBDA_RUNTIME_API` is set. The same router as `serve`, fed API Gateway events.
///
/// Start-up makes no network call: the store is opened without checking the table, and the
/// stored admin token's hash is read on the first request that presents a token.
enum LambdaMain {
    static func run(runtimeAPI: String, environment: [String: String]) async -> Int32 {
        let level = environment["ONBOARD_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0.lowercased()) } ?? .info
        // JSON lines: CloudWatch Logs Insights reads their fields.
        LoggingSystem.bootstrap { label in LineLogHandler.standardOutput(label: label, level: level, format: .json) }
        let logger = Logger(label: "onboard")
        let client: HTTPLambdaRuntimeClient
        do {
            client = try HTTPLambdaRuntimeClient(runtimeAPI: runtimeAPI)
        } catch {
            logger.critical("cannot reach the Runtime API", metadata: ["error": "\(error)"])
            return 1
        }

        let loop: LambdaRuntimeLoop
        let opened: OpenedStore
        do {
            let configuration = try ServeConfiguration.resolve(flags: [:], environment: environment)
            opened = try await OpenedStore.open(configuration.store, logger: logger, checkTable: false)
            let verifier: any CredentialVerifier =
                configuration.adminToken.map { AdminTokenVerifier(credential: AdminCredential(token: $0)) }
                ?? StoredAdminTokenVerifier(store: opened.store, credential: nil)
            let keyUsage = KeyUsageRecorder(store: opened.store, logger: logger)
            let router = buildRouter(AppDependencies(
                store: opened.store, verifiers: [verifier] + configuration.oidc.verifiers(logger: logger),
                onboardingAccess: configuration.onboarding,
                rateLimiter: configuration.rateLimits.map { RateLimiter(policy: $0) },
                claimMapping: configuration.oidc.claims,
                keyUsage: keyUsage
            ))
            let adapter = APIGatewayAdapter(responder: router.buildResponder()) { info, logger in
                AppRequestContext(logger: logger, authorizerClaims: info.claims, peerAddress: info.sourceIP)
            }
            // A handler still running just before the deadline (one that ignores cancellation)
            // is answered for: 503 with Retry-After, rather than the 502 API Gateway makes of an error.
            loop = LambdaRuntimeLoop(
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
                betweenInvocations: { await keyUsage.flush() },
                handler: adapter.handle
            )
        } catch {
            await LambdaRuntimeLoop.reportInitError(error, client: client, logger: logger)
            try? await client.shutdown()
            return 1
        }
        logger.info("lambda runtime started", metadata: ["store": .string(opened.summary)])
        do {
            try await loop.run()
        } catch {
            logger.critical("the Runtime API stopped answering", metadata: ["error": "\(error)"])
        }
        await opened.close()
        try? await client.shutdown()
        return 1
    }
}
