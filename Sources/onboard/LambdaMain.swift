import Foundation
import LambdaRuntime
import Logging
import OnboardingHTTP

/// `onboard` as a Lambda custom runtime (`provided.al2023`, handler `bootstrap`): chosen when
/// `AWS_LAMBDA_RUNTIME_API` is set. The same application as `serve` (``buildApplication(_:runtime:overrides:)``),
/// fed API Gateway events (and, in template.yaml's `EventSweepFunction`, EventBridge's scheduled
/// event, which sweeps the event outbox); its background services run between invocations.
///
/// Start-up makes no network call: the store is opened without checking the table, and the
/// stored admin token's hash is read on the first request that presents a token.
enum LambdaMain {
    static func run(runtimeAPI: String, environment: [String: String]) async -> Int32 {
        let level = environment["ONBOARD_LOG_LEVEL"].flatMap { Logger.Level(rawValue: $0.lowercased()) } ?? .info
        // JSON lines: CloudWatch Logs Insights reads their fields. Written in `log`, not queued:
        // the sandbox may be frozen right after an invocation is answered (see LineLogHandler).
        LoggingSystem.bootstrap { label in LineLogHandler.standardOutput(label: label, level: level, format: .json, queued: false) }
        let logger = Logger(label: "onboard")
        let client: HTTPLambdaRuntimeClient
        do {
            client = try HTTPLambdaRuntimeClient(runtimeAPI: runtimeAPI)
        } catch {
            logger.critical("cannot reach the Runtime API", metadata: ["error": "\(error)"])
            return 1
        }

        let loop: LambdaRuntimeLoop
        let app: OnboardApplication
        do {
            let configuration = try ServeConfiguration.resolve(flags: [:], environment: environment)
            app = try await buildApplication(configuration, runtime: .lambda)
            loop = app.lambdaLoop(client: client)
        } catch {
            await LambdaRuntimeLoop.reportInitError(error, client: client, logger: logger)
            try? await client.shutdown()
            return 1
        }
        logger.info("lambda runtime started", metadata: ["store": .string(app.storeSummary), "events": .string(app.eventSinksSummary)])
        do {
            try await loop.run()
        } catch {
            logger.critical("the Runtime API stopped answering", metadata: ["error": "\(error)"])
        }
        await app.close()
        try? await client.shutdown()
        return 1
    }
}
