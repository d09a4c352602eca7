import Configuration
import Foundation
import Logging
import OnboardingHTTP

/// One setting: its configuration key, its flag and its environment variable.
struct Setting: Sendable {
    /// The key under `onboard.` (`host` → `onboard.host`, read from `ONBOARD_HOST`).
    let key: String
    let isSecret: Bool

    var flag: String { "--" + key.replacingOccurrences(of: "_", with: "-") }
    var environmentVariable: String { "ONBOARD_" + key.uppercased() }
    var configKey: ConfigKey { ConfigKey(["onboard", key]) }

    static let host = Setting(key: "host", isSecret: false)
    static let port = Setting(key: "port", isSecret: false)
    static let database = Setting(key: "database", isSecret: false)
    static let adminToken = Setting(key: "admin_token", isSecret: true)
    static let logLevel = Setting(key: "log_level", isSecret: false)
}

/// A setting with a value that cannot be used; the message is the one line `onboard` prints.
struct ConfigurationError: Error, CustomStringConvertible {
    let description: String
}

/// The settings of `onboard serve`, resolved in one place: flag, then environment variable
/// (`ONBOARD_*`), then default. Invalid values are rejected here, before anything starts.
struct ServeConfiguration: Sendable {
    var host: String
    var port: Int
    var databasePath: String
    var adminToken: String?
    var logLevel: Logger.Level

    static let defaultDatabase = "onboarding.sqlite"

    /// - Parameters:
    ///   - flags: the values given on the command line, by setting key.
    ///   - environment: the process environment.
    static func resolve(flags: [String: String], environment: [String: String]) throws(ConfigurationError) -> ServeConfiguration {
        let settings: [Setting] = [.host, .port, .database, .adminToken, .logLevel]
        var values: [AbsoluteConfigKey: ConfigValue] = [:]
        for setting in settings {
            if let value = flags[setting.key] {
                values[AbsoluteConfigKey(setting.configKey)] = ConfigValue(.string(value), isSecret: setting.isSecret)
            }
        }
        let reader = ConfigReader(providers: [
            InMemoryProvider(name: "flags", values: values),
            EnvironmentVariablesProvider(
                environmentVariables: environment,
                secretsSpecifier: .specific([Setting.adminToken.environmentVariable])
            ),
        ])
        func read(_ setting: Setting) -> (value: String, source: String)? {
            guard let value = reader.string(forKey: setting.configKey, isSecret: setting.isSecret) else { return nil }
            return (value, flags[setting.key] != nil ? setting.flag : setting.environmentVariable)
        }

        var configuration = ServeConfiguration(
            host: "127.0.0.1", port: 8080, databasePath: defaultDatabase, adminToken: nil, logLevel: .info
        )
        if let (host, source) = read(.host) {
            guard !host.isEmpty, !host.contains(where: { $0.isWhitespace || $0 == "/" }) else {
                throw ConfigurationError(description: "invalid \(source) '\(host)': expected a host name or IP address")
            }
            configuration.host = host
        }
        if let (port, source) = read(.port) {
            guard let number = Int(port), (0...65535).contains(number) else {
                throw ConfigurationError(description: "invalid \(source) '\(port)': expected a port number from 0 to 65535 (0 picks a free port)")
            }
            configuration.port = number
        }
        if let (path, source) = read(.database) {
            guard !path.isEmpty else { throw ConfigurationError(description: "invalid \(source): the database path is empty") }
            configuration.databasePath = path
        }
        let directory = URL(fileURLWithPath: configuration.databasePath).deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ConfigurationError(description: "invalid database path '\(configuration.databasePath)': the directory \(directory) does not exist")
        }
        if let (token, source) = read(.adminToken) {
            // The token's value is never echoed, only what is wrong with it.
            guard token.count >= AdminCredential.minimumTokenLength else {
                throw ConfigurationError(description: "invalid \(source): the admin token must have at least \(AdminCredential.minimumTokenLength) characters")
            }
            guard token.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
                throw ConfigurationError(description: "invalid \(source): the admin token may hold only printable ASCII characters without spaces")
            }
            configuration.adminToken = token
        }
        if let (level, source) = read(.logLevel) {
            guard let parsed = Logger.Level(rawValue: level.lowercased()) else {
                let levels = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
                throw ConfigurationError(description: "invalid \(source) '\(level)': expected one of \(levels)")
            }
            configuration.logLevel = parsed
        }
        return configuration
    }
}
