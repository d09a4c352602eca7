import ArgumentParser
import Foundation
import OnboardingHTTP

/// `onboard`: the tenant control plane. The commands only parse arguments and call the build
/// functions; everything they run is in the library targets.
@main
struct Onboard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "onboard",
        abstract: "Multi-tenant client onboarding: a tenant control plane on SQLite or DynamoDB.",
        version: OnboardVersion.current,
        subcommands: [Serve.self, AdminTokenCommand.self, TableCommand.self, TenantsCommand.self, KeysCommand.self, EventsCommand.self]
    )

    /// In Lambda (`AWS_LAMBDA_RUNTIME_API` set) the binary is the runtime; elsewhere a command line.
    static func main() async {
        let environment = ProcessInfo.processInfo.environment
        if let runtimeAPI = environment["AWS_LAMBDA_RUNTIME_API"] {
            Foundation.exit(await LambdaMain.run(runtimeAPI: runtimeAPI, environment: environment))
        }
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
