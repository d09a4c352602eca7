import ArgumentParser
import OnboardingApp

/// Timeouts for slow and idle clients, and the cap on connections (`serve` only).
struct ConnectionOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "A request's head must be complete within this, from the connection's opening or a later request's first byte; else the connection is closed (ONBOARD_HEADER_TIMEOUT; default 10s).",
        valueName: "duration"
    ))
    var headerTimeout: String?

    @Option(help: ArgumentHelp(
        "A request's whole body must arrive within this after its head; else the connection is closed (ONBOARD_BODY_TIMEOUT; default 30s).",
        valueName: "duration"
    ))
    var bodyTimeout: String?

    @Option(help: ArgumentHelp(
        "An answered keep-alive connection with no next request is closed after this (ONBOARD_IDLE_TIMEOUT; default 75s).",
        valueName: "duration"
    ))
    var idleTimeout: String?

    @Option(help: ArgumentHelp(
        "Connections served at once; more wait to be accepted (ONBOARD_MAX_CONNECTIONS; default 4096, or the open-file limit less 128 if lower).",
        valueName: "count"
    ))
    var maxConnections: String?

    var flags: [String: String] {
        [
            Setting.headerTimeout.key: headerTimeout, Setting.bodyTimeout.key: bodyTimeout, Setting.idleTimeout.key: idleTimeout,
            Setting.maxConnections.key: maxConnections,
        ].compactMapValues { $0 }
    }
}
