import Foundation
import HummingbirdCore
import OnboardingHTTP

extension Setting {
    /// ``ConnectionLimits/headerTimeout`` (`--header-timeout`, `ONBOARD_HEADER_TIMEOUT`).
    public static let headerTimeout = Setting(key: "header_timeout", isSecret: false)
    /// ``ConnectionLimits/bodyTimeout`` (`--body-timeout`, `ONBOARD_BODY_TIMEOUT`).
    public static let bodyTimeout = Setting(key: "body_timeout", isSecret: false)
    /// ``ConnectionLimits/idleTimeout`` (`--idle-timeout`, `ONBOARD_IDLE_TIMEOUT`).
    public static let idleTimeout = Setting(key: "idle_timeout", isSecret: false)
    /// ``ConnectionLimits/maxConnections`` (`--max-connections`, `ONBOARD_MAX_CONNECTIONS`).
    public static let maxConnections = Setting(key: "max_connections", isSecret: false)

    public static let connections: [Setting] = [.headerTimeout, .bodyTimeout, .idleTimeout, .maxConnections]
}

extension ConnectionLimits {
    /// The limits from the settings; the defaults for those not given.
    static func resolve(_ settings: SettingsReader) throws(ConfigurationError) -> ConnectionLimits {
        var limits = ConnectionLimits()
        func duration(_ setting: Setting, upTo maximum: Duration, maximumText: String) throws(ConfigurationError) -> Duration? {
            guard let (text, source) = settings.read(setting) else { return nil }
            guard let value = ServeConfiguration.parseDuration(text), value >= .milliseconds(100), value <= maximum else {
                throw ConfigurationError(description: "invalid \(source) '\(text)': expected a duration from 100ms to \(maximumText), e.g. 10s or 2500ms")
            }
            return value
        }
        if let value = try duration(.headerTimeout, upTo: .seconds(300), maximumText: "300s") { limits.headerTimeout = value }
        if let value = try duration(.bodyTimeout, upTo: .seconds(3600), maximumText: "3600s") { limits.bodyTimeout = value }
        if let value = try duration(.idleTimeout, upTo: .seconds(3600), maximumText: "3600s") { limits.idleTimeout = value }
        if let (text, source) = settings.read(.maxConnections) {
            guard let count = Int(text.trimmingCharacters(in: .whitespaces)), (1...1_000_000).contains(count) else {
                throw ConfigurationError(description: "invalid \(source) '\(text)': expected a number of connections from 1 to 1000000")
            }
            limits.maxConnections = count
        }
        return limits
    }
}

extension OnboardApplication {
    /// Hummingbird's HTTP/1.1 server with the timeouts of ``connectionLimits`` on every connection
    /// (the cap is the ``configuration``'s `availableConnectionsDelegate`).
    public var server: HTTPServerBuilder { .http1(limits: connectionLimits) }
}
