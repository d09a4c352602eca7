import ArgumentParser
import OnboardingHTTP

/// `onboard`: the tenant control plane. The commands only parse arguments and call the build
/// functions; everything they run is in the library targets.
@main
struct Onboard: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "onboard",
        abstract: "Multi-tenant client onboarding: a tenant control plane on SQLite or DynamoDB.",
        version: OnboardVersion.current,
        subcommands: [Serve.self, AdminTokenCommand.self, TableCommand.self]
    )
}
