import Configuration
import Foundation
import Logging
import OnboardingHTTP
import SigV4

/// One setting: its configuration key, its flag and its environment variable.
public struct Setting: Sendable {
    /// The key under `onboard.` (`host` → `onboard.host`, read from `ONBOARD_HOST`).
    public let key: String
    public let isSecret: Bool
    private let flagName: String?

    /// - Parameter flag: the flag when it is not the key's (`--webhook-url`, repeatable, for `webhook_urls`).
    public init(key: String, isSecret: Bool, flag: String? = nil) {
        self.key = key
        self.isSecret = isSecret
        self.flagName = flag
    }

    public var flag: String { flagName ?? "--" + key.replacingOccurrences(of: "_", with: "-") }
    public var environmentVariable: String { "ONBOARD_" + key.uppercased() }
    var configKey: ConfigKey { ConfigKey(["onboard", key]) }

    public static let host = Setting(key: "host", isSecret: false)
    public static let port = Setting(key: "port", isSecret: false)
    public static let database = Setting(key: "database", isSecret: false)
    public static let adminToken = Setting(key: "admin_token", isSecret: true)
    public static let logLevel = Setting(key: "log_level", isSecret: false)
    public static let store = Setting(key: "store", isSecret: false)
    public static let table = Setting(key: "table", isSecret: false)
    public static let dynamoDBEndpoint = Setting(key: "dynamodb_endpoint", isSecret: false)
    public static let region = Setting(key: "region", isSecret: false)
    public static let onboarding = Setting(key: "onboarding", isSecret: false)
    public static let rateLimits = Setting(key: "rate_limits", isSecret: false)
    public static let rateLimit = Setting(key: "rate_limit", isSecret: false)
    public static let anonymousRateLimit = Setting(key: "anonymous_rate_limit", isSecret: false)
    public static let onboardRateLimit = Setting(key: "onboard_rate_limit", isSecret: false)
    public static let trustedProxies = Setting(key: "trusted_proxies", isSecret: false)
    public static let ipv6RateLimitPrefix = Setting(key: "ipv6_rate_limit_prefix", isSecret: false)
    public static let requestDeadline = Setting(key: "request_deadline", isSecret: false)
    public static let credentialCache = Setting(key: "credential_cache", isSecret: false)

    public static let all: [Setting] = [
        .host, .port, .database, .adminToken, .logLevel, .store, .table, .dynamoDBEndpoint, .region,
        .onboarding, .rateLimits, .rateLimit, .anonymousRateLimit, .onboardRateLimit, .trustedProxies, .requestDeadline,
        .ipv6RateLimitPrefix, .credentialCache,
    ] + oidc + events + connections
}

/// Reads settings: flag, then environment variable, then (the caller's) default.
public struct SettingsReader {
    public let flags: [String: String]
    private let reader: ConfigReader

    public init(flags: [String: String], environment: [String: String]) {
        self.flags = flags
        var values: [AbsoluteConfigKey: ConfigValue] = [:]
        for setting in Setting.all {
            if let value = flags[setting.key] {
                values[AbsoluteConfigKey(setting.configKey)] = ConfigValue(.string(value), isSecret: setting.isSecret)
            }
        }
        reader = ConfigReader(providers: [
            InMemoryProvider(name: "flags", values: values),
            EnvironmentVariablesProvider(
                environmentVariables: environment,
                secretsSpecifier: .specific(Set(Setting.all.filter(\.isSecret).map(\.environmentVariable)))
            ),
        ])
    }

    /// The value and where it came from (the flag or the variable), for error messages.
    public func read(_ setting: Setting) -> (value: String, source: String)? {
        guard let value = reader.string(forKey: setting.configKey, isSecret: setting.isSecret) else { return nil }
        return (value, flags[setting.key] != nil ? setting.flag : setting.environmentVariable)
    }
}

/// Which store, and where: `sqlite` (a file) or `dynamodb` (a table, an endpoint, a region).
public struct StoreConfiguration: Sendable {
    public enum Kind: String, Sendable {
        case sqlite
        case dynamodb
    }

    public var kind: Kind = .sqlite
    public var databasePath = "onboarding.sqlite"
    public var table = "onboard-tenants"
    /// `nil`: `AWS_ENDPOINT_URL_DYNAMODB`, `AWS_ENDPOINT_URL`, or DynamoDB's public endpoint.
    public var dynamoDBEndpoint: String?
    /// `nil`: `AWS_REGION`, `AWS_DEFAULT_REGION`, or the profile's region.
    public var region: String?

    public init() {}

    public static func resolve(_ settings: SettingsReader) throws(ConfigurationError) -> StoreConfiguration {
        var configuration = StoreConfiguration()
        if let (kind, source) = settings.read(.store) {
            guard let parsed = Kind(rawValue: kind.lowercased()) else {
                throw ConfigurationError(description: "invalid \(source) '\(kind)': expected sqlite or dynamodb")
            }
            configuration.kind = parsed
        }
        if let (path, source) = settings.read(.database) {
            guard !path.isEmpty else { throw ConfigurationError(description: "invalid \(source): the database path is empty") }
            configuration.databasePath = path
        }
        if configuration.kind == .sqlite {
            let directory = URL(fileURLWithPath: configuration.databasePath).deletingLastPathComponent().path
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw ConfigurationError(description: "invalid database path '\(configuration.databasePath)': the directory \(directory) does not exist")
            }
        }
        if let (table, source) = settings.read(.table) {
            // DynamoDB's rule for table names.
            guard (3...255).contains(table.count), table.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_-.".contains($0)) }) else {
                throw ConfigurationError(description: "invalid \(source) '\(table)': 3-255 characters of A-Z a-z 0-9 _ - .")
            }
            configuration.table = table
        }
        if let (endpoint, source) = settings.read(.dynamoDBEndpoint) {
            // Signed calls and the store's data cross it: plain http only to this machine.
            if let problem = EndpointURLRule.problem(with: endpoint) {
                throw ConfigurationError(description: "invalid \(source) '\(endpoint)': \(problem)")
            }
            configuration.dynamoDBEndpoint = endpoint
        }
        if let (region, source) = settings.read(.region) {
            guard !region.isEmpty, region.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") }) else {
                throw ConfigurationError(description: "invalid \(source) '\(region)': expected a region name such as eu-west-1")
            }
            configuration.region = region
        }
        return configuration
    }
}

/// A setting with a value that cannot be used; the message is the one line `onboard` prints.
public struct ConfigurationError: Error, CustomStringConvertible {
    public let description: String

    public init(description: String) {
        self.description = description
    }
}

/// The settings of `onboard serve`, resolved in one place: flag, then environment variable
/// (`ONBOARD_*`), then default. Invalid values are rejected here, before anything starts.
public struct ServeConfiguration: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    public var adminToken: String?
    public var logLevel: Logger.Level = .info
    public var store = StoreConfiguration()
    public var onboarding: OnboardingAccess = .open
    /// `nil`: rate limits off.
    public var rateLimits: RateLimitPolicy? = RateLimitPolicy()
    public var oidc = OIDCConfiguration()
    /// How long a request's store calls may take, retries included, before it is answered 503.
    public var requestDeadline: Duration = .seconds(10)
    /// How long API keys' look-up items and tenants' statuses are reused (changes made by this
    /// process apply at once; other processes' within this); `.zero`: read on every request.
    public var credentialCache = CredentialCache.Configuration()
    /// Where lifecycle events are delivered (they are recorded whatever this says).
    public var events = EventsConfiguration()
    /// Timeouts for slow and idle clients, and the cap on connections (the HTTP server only).
    public var connectionLimits = ConnectionLimits()

    public init() {}

    /// - Parameters:
    ///   - flags: the values given on the command line, by setting key.
    ///   - environment: the process environment.
    public static func resolve(flags: [String: String], environment: [String: String]) throws(ConfigurationError) -> ServeConfiguration {
        let settings = SettingsReader(flags: flags, environment: environment)
        var configuration = ServeConfiguration()
        if let (host, source) = settings.read(.host) {
            guard !host.isEmpty, !host.contains(where: { $0.isWhitespace || $0 == "/" }) else {
                throw ConfigurationError(description: "invalid \(source) '\(host)': expected a host name or IP address")
            }
            configuration.host = host
        }
        if let (port, source) = settings.read(.port) {
            guard let number = Int(port), (0...65535).contains(number) else {
                throw ConfigurationError(description: "invalid \(source) '\(port)': expected a port number from 0 to 65535 (0 picks a free port)")
            }
            configuration.port = number
        }
        configuration.store = try StoreConfiguration.resolve(settings)
        configuration.oidc = try OIDCConfiguration.resolve(settings)
        if let (token, source) = settings.read(.adminToken) {
            // The token's value is never echoed, only what is wrong with it.
            if let weakness = AdminCredential.weakness(of: token) {
                throw ConfigurationError(description: "invalid \(source): \(weakness)")
            }
            configuration.adminToken = token
        }
        if let (level, source) = settings.read(.logLevel) {
            guard let parsed = Logger.Level(rawValue: level.lowercased()) else {
                let levels = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
                throw ConfigurationError(description: "invalid \(source) '\(level)': expected one of \(levels)")
            }
            configuration.logLevel = parsed
        }
        if let (mode, source) = settings.read(.onboarding) {
            guard let parsed = OnboardingAccess(rawValue: mode.lowercased()) else {
                throw ConfigurationError(description: "invalid \(source) '\(mode)': expected open (anyone may onboard) or admin (only the admin)")
            }
            configuration.onboarding = parsed
        }
        configuration.rateLimits = try resolveRateLimits(settings)
        if let (text, source) = settings.read(.requestDeadline) {
            guard let deadline = parseDuration(text), deadline >= .milliseconds(100), deadline <= .seconds(300) else {
                throw ConfigurationError(description: "invalid \(source) '\(text)': expected a duration from 100ms to 300s, e.g. 10s or 2500ms")
            }
            configuration.requestDeadline = deadline
        }
        if let (text, source) = settings.read(.credentialCache) {
            guard let maxAge = parseDuration(text), maxAge <= .seconds(60) else {
                throw ConfigurationError(description: "invalid \(source) '\(text)': expected a duration from 0 (off) to 60s, e.g. 1s or 250ms")
            }
            configuration.credentialCache.maxAge = maxAge
        }
        configuration.events = try EventsConfiguration.resolve(settings)
        configuration.connectionLimits = try ConnectionLimits.resolve(settings)
        return configuration
    }

    /// `10s`, `2500ms`, `1.5s` or plain seconds (`10`).
    public static func parseDuration(_ text: String) -> Duration? {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        if trimmed.hasSuffix("ms"), let milliseconds = Int(trimmed.dropLast(2)) { return .milliseconds(milliseconds) }
        let secondsText = trimmed.hasSuffix("s") ? String(trimmed.dropLast()) : trimmed
        guard let seconds = Double(secondsText), seconds.isFinite, seconds >= 0 else { return nil }
        return .milliseconds(Int64((seconds * 1000).rounded()))
    }

    private static func resolveRateLimits(_ settings: SettingsReader) throws(ConfigurationError) -> RateLimitPolicy? {
        if let (switchValue, source) = settings.read(.rateLimits) {
            switch switchValue.lowercased() {
            case "off", "false", "0": return nil
            case "on", "true", "1": break
            default: throw ConfigurationError(description: "invalid \(source) '\(switchValue)': expected on or off")
            }
        }
        var policy = RateLimitPolicy()
        func limit(_ setting: Setting) throws(ConfigurationError) -> RateLimit? {
            guard let (text, source) = settings.read(setting) else { return nil }
            guard let parsed = RateLimit(parsing: text) else {
                throw ConfigurationError(description: "invalid \(source) '\(text)': expected <count>/<s|m|h>[:<burst>], e.g. 50/s:100")
            }
            return parsed
        }
        if let value = try limit(.rateLimit) { policy.perPrincipal = value }
        if let value = try limit(.anonymousRateLimit) { policy.anonymousPerAddress = value }
        if let value = try limit(.onboardRateLimit) { policy.onboardPerAddress = value }
        if let (text, source) = settings.read(.trustedProxies) {
            var networks: [IPNetwork] = []
            for entry in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !entry.isEmpty {
                guard let network = IPNetwork(entry) else {
                    throw ConfigurationError(description: "invalid \(source): '\(entry)' is not an IP address or CIDR network (e.g. 10.0.0.0/8)")
                }
                networks.append(network)
            }
            policy.trustedProxies = networks
        }
        if let (text, source) = settings.read(.ipv6RateLimitPrefix) {
            guard let bits = Int(text), (32...128).contains(bits) else {
                throw ConfigurationError(description: "invalid \(source) '\(text)': expected a prefix length from 32 to 128 (64: one bucket per /64; 128: per address)")
            }
            policy.ipv6Prefix = bits
        }
        return policy
    }
}
