import AWSClient
import ArgumentParser
import Foundation
import Hummingbird
import Logging
import OnboardingCore
import OnboardingHTTP
import OnboardingDynamoDB
import OnboardingSQLite
import Synchronization

/// `onboard serve`: the API over HTTP, on a local SQLite file.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the onboarding API over HTTP, storing in a local SQLite file.",
        discussion: "Each option can also be set by its environment variable; a flag wins over the variable."
    )

    // Options are read as text and validated in ServeConfiguration, so a bad flag and a bad
    // environment variable get the same one-line message.
    @Option(help: ArgumentHelp("Address to listen on (ONBOARD_HOST; default 127.0.0.1).", valueName: "address"))
    var host: String?

    @Option(help: ArgumentHelp("TCP port; 0 picks a free one (ONBOARD_PORT; default 8080).", valueName: "port"))
    var port: String?

    @OptionGroup var storeOptions: StoreOptions

    @Option(help: ArgumentHelp(
        "Admin bearer token, 24+ characters (ONBOARD_ADMIN_TOKEN, preferred: flags show in ps). Default: generated on first start and stored hashed.",
        valueName: "token"
    ))
    var adminToken: String?

    @Option(help: ArgumentHelp("trace, debug, info, notice, warning, error or critical (ONBOARD_LOG_LEVEL; default info).", valueName: "level"))
    var logLevel: String?

    @Option(help: ArgumentHelp(
        "How long a request's store calls may take, retries included, before it is answered 503 with Retry-After (ONBOARD_REQUEST_DEADLINE; default 10s).",
        valueName: "duration"
    ))
    var requestDeadline: String?

    @Option(help: ArgumentHelp(
        "How long an API key's look-up and a tenant's status are reused before the store is read again: revocations and suspensions made by other processes apply within it, this server's own at once (ONBOARD_CREDENTIAL_CACHE; default 1s; 0 reads on every request).",
        valueName: "duration"
    ))
    var credentialCache: String?

    @OptionGroup var accessOptions: AccessOptions
    @OptionGroup var oidcOptions: OIDCOptions
    @OptionGroup var eventsOptions: EventsOptions
    @OptionGroup var connectionOptions: ConnectionOptions

    func run() async throws {
        let flags = [
            Setting.host.key: host, Setting.port.key: port, Setting.adminToken.key: adminToken, Setting.logLevel.key: logLevel,
            Setting.requestDeadline.key: requestDeadline, Setting.credentialCache.key: credentialCache,
        ].compactMapValues { $0 }.merging(storeOptions.flags) { $1 }.merging(accessOptions.flags) { $1 }.merging(oidcOptions.flags) { $1 }
            .merging(eventsOptions.flags) { $1 }.merging(connectionOptions.flags) { $1 }
        let configuration: ServeConfiguration
        do {
            configuration = try ServeConfiguration.resolve(flags: flags, environment: ProcessInfo.processInfo.environment)
        } catch {
            throw Console.fail(error.description, exitCode: .validationFailure)
        }
        let level = configuration.logLevel
        LoggingSystem.bootstrap { label in LineLogHandler.standardOutput(label: label, level: level) }

        var app: OnboardApplication
        do {
            app = try await buildApplication(configuration)
        } catch {
            throw Console.fail("\(error)", exitCode: .failure)
        }

        Console.line("onboard \(OnboardVersion.current)")
        Console.line(app.storeSummary)
        Console.line(configuration.oidc.summary)
        if let token = app.generatedAdminToken {
            // Standard output is the log stream (collected, shipped, kept): the token goes to
            // standard error, the terminal of whoever started the server, and only this once.
            Console.secret("admin token: \(token)")
            Console.secret("  (generated now and shown only this once; the store keeps only its SHA-256 hash. `onboard admin-token rotate` issues a new one.)")
            Console.line("admin token: generated on this first start and written to standard error, once (never to standard output)")
        } else if configuration.adminToken != nil {
            Console.line("admin token: as configured (--admin-token / ONBOARD_ADMIN_TOKEN)")
        } else {
            Console.line("admin token: stored hashed in the store (lost it? `onboard admin-token rotate` with the same store options)")
        }
        Console.line("onboarding: \(configuration.onboarding == .open ? "open (anyone may POST /onboard)" : "admin only")")
        Console.line("rate limits: \(configuration.rateLimits.map(Self.describe) ?? "off")")
        Console.line("events: \(app.eventSinksSummary)")
        Console.line("connections: \(configuration.connectionLimits.summary)")
        let host = configuration.host
        let started = Atomic(false)
        app.whenServerRunning = { channel in
            started.store(true, ordering: .relaxed)
            let port = channel.localAddress?.port ?? 0
            Console.line("listening on http://\(host.contains(":") ? "[\(host)]" : host):\(port)")
        }
        // One service group: the background services, then the server; on SIGTERM/SIGINT the
        // server stops first, so key usage is drained after the last request was answered.
        do {
            try await app.runService()
            await app.close()
        } catch {
            await app.close()
            let message = started.load(ordering: .relaxed) ? "the server stopped: \(error)" : "cannot listen on \(host):\(configuration.port): \(error)"
            throw Console.fail(message, exitCode: .failure)
        }
    }
}

extension Serve {
    static func describe(_ policy: RateLimitPolicy) -> String {
        var text = "\(policy.perPrincipal) per caller, \(policy.anonymousPerAddress) per anonymous address, \(policy.onboardPerAddress) sign-ups per address (IPv6: per /\(policy.ipv6Prefix))"
        if !policy.trustedProxies.isEmpty { text += "; trusted proxies \(policy.trustedProxies.map(\.description).joined(separator: ","))" }
        return text
    }
}

/// Who may onboard, and the request limits (`serve` only).
struct AccessOptions: ParsableArguments {
    @Option(help: ArgumentHelp("open (anyone may POST /onboard) or admin (only the admin) (ONBOARD_ONBOARDING; default open).", valueName: "mode"))
    var onboarding: String?

    @Option(help: ArgumentHelp("on or off: off lifts every limit, for benchmarks and load tests (ONBOARD_RATE_LIMITS; default on).", valueName: "on|off"))
    var rateLimits: String?

    @Option(help: ArgumentHelp("Per authenticated caller, <count>/<s|m|h>[:<burst>] (ONBOARD_RATE_LIMIT; default 50/s:100).", valueName: "rate"))
    var rateLimit: String?

    @Option(help: ArgumentHelp("Per client address without credentials (ONBOARD_ANONYMOUS_RATE_LIMIT; default 20/s:50).", valueName: "rate"))
    var anonymousRateLimit: String?

    @Option(help: ArgumentHelp("POST /onboard per client address (ONBOARD_ONBOARD_RATE_LIMIT; default 1/s:20).", valueName: "rate"))
    var onboardRateLimit: String?

    @Option(help: ArgumentHelp(
        "Comma-separated addresses/CIDRs of proxies whose X-Forwarded-For is believed (ONBOARD_TRUSTED_PROXIES; default none).",
        valueName: "cidrs"
    ))
    var trustedProxies: String?

    @Option(help: ArgumentHelp(
        "IPv6 clients share a rate-limit bucket per network of this many bits, 32-128 (ONBOARD_IPV6_RATE_LIMIT_PREFIX; default 64).",
        valueName: "bits"
    ))
    var ipv6RateLimitPrefix: String?

    var flags: [String: String] {
        [
            Setting.onboarding.key: onboarding, Setting.rateLimits.key: rateLimits, Setting.rateLimit.key: rateLimit,
            Setting.anonymousRateLimit.key: anonymousRateLimit, Setting.onboardRateLimit.key: onboardRateLimit,
            Setting.trustedProxies.key: trustedProxies, Setting.ipv6RateLimitPrefix.key: ipv6RateLimitPrefix,
        ].compactMapValues { $0 }
    }
}

/// Where lifecycle events are delivered (`serve` only; each also an `ONBOARD_*` variable).
struct EventsOptions: ParsableArguments {
    @Option(help: ArgumentHelp("CloudEvents source of every event (ONBOARD_EVENT_SOURCE; default urn:onboard:<host name>).", valueName: "uri"))
    var eventSource: String?

    @Option(help: ArgumentHelp(
        "POST every event here, signed per Standard Webhooks; repeatable (ONBOARD_WEBHOOK_URLS, comma-separated; default none).",
        valueName: "url"
    ))
    var webhookUrl: [String] = []

    @Option(help: ArgumentHelp(
        "The webhooks' signing secret, whsec_<base64 of 24-64 bytes>; required with --webhook-url (ONBOARD_WEBHOOK_SECRET, preferred: flags show in ps).",
        valueName: "secret"
    ))
    var webhookSecret: String?

    @Option(help: ArgumentHelp(
        "Publish every event to this SNS topic, e.g. arn:aws:sns:eu-west-1:123456789012:onboard-events (ONBOARD_SNS_TOPIC_ARN; endpoint AWS_ENDPOINT_URL_SNS, AWS_ENDPOINT_URL).",
        valueName: "arn"
    ))
    var snsTopicArn: String?

    @Option(help: ArgumentHelp(
        "Put every event on this EventBridge bus, a name or an ARN (ONBOARD_EVENTBRIDGE_BUS; endpoint AWS_ENDPOINT_URL_EVENTBRIDGE, AWS_ENDPOINT_URL).",
        valueName: "bus"
    ))
    var eventbridgeBus: String?

    @Option(help: ArgumentHelp(
        "How long a sink may keep failing an event before it is marked failed for it (`onboard events list --failed`) (ONBOARD_EVENT_FAIL_AFTER; default 24h).",
        valueName: "duration"
    ))
    var eventFailAfter: String?

    @Flag(help: "Log one line per event also when webhooks, SNS or EventBridge are configured (ONBOARD_LOG_EVENTS=true; the default sink when none is).")
    var logEvents = false

    var flags: [String: String] {
        [
            Setting.eventSource.key: eventSource,
            Setting.webhookURLs.key: webhookUrl.isEmpty ? nil : webhookUrl.joined(separator: String(Setting.repeatedFlagSeparator)),
            Setting.webhookSecret.key: webhookSecret, Setting.snsTopicARN.key: snsTopicArn, Setting.eventBridgeBus.key: eventbridgeBus,
            Setting.eventFailAfter.key: eventFailAfter, Setting.logEvents.key: logEvents ? "true" : nil,
        ].compactMapValues { $0 }
    }
}

/// `onboard admin-token rotate`: replaces the stored admin token.
struct AdminTokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin-token",
        abstract: "Manage the admin token stored (hashed) in the database.",
        subcommands: [Rotate.self]
    )

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate a new admin token, store its hash and print it once. Running servers accept it within 5 seconds; the old one stops working."
        )

        @OptionGroup var storeOptions: StoreOptions

        func run() async throws {
            try await storeOptions.withStore { opened in
                Console.line(try await AdminTokenRecord.rotate(store: opened.store))
            }
        }
    }
}

/// `onboard table create`: the DynamoDB table as the store expects it.
struct TableCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "table",
        abstract: "Manage the DynamoDB table.",
        subcommands: [Create.self]
    )

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the DynamoDB table (keys tenantId + resourceKey, pay-per-request), its tenant listing index and TTL on expiresAt. Safe to run again; adds the index to a table that lacks it."
        )

        @OptionGroup var storeOptions: StoreOptions

        func run() async throws {
            try await storeOptions.withStore(kind: .dynamodb, checkTable: false) { opened in
                guard let dynamoDB = opened.dynamoDB else { return }
                let outcome = try await DynamoDBTable.create(dynamoDB, name: opened.table, logger: opened.logger)
                let what = outcome.tableCreated ? "created" : outcome.indexAdded ? "already existed; index \(DynamoDBTable.tenantIndex) added" : "already existed"
                Console.line(
                    "table \(opened.table) \(what) at \(dynamoDB.endpoint): "
                        + "active, index \(DynamoDBTable.tenantIndex), TTL on \(DynamoDBTable.ttlAttribute)"
                )
            }
        }
    }
}

/// Where the data lives; shared by every command that opens the store.
struct StoreOptions: ParsableArguments {
    @Option(help: ArgumentHelp("sqlite or dynamodb (ONBOARD_STORE; default sqlite).", valueName: "kind"))
    var store: String?

    @Option(help: ArgumentHelp("SQLite database file (ONBOARD_DATABASE; default ./onboarding.sqlite).", valueName: "path"))
    var database: String?

    @Option(help: ArgumentHelp("DynamoDB table (ONBOARD_TABLE; default onboard-tenants).", valueName: "name"))
    var table: String?

    @Option(help: ArgumentHelp(
        "DynamoDB endpoint, e.g. moto's http://127.0.0.1:5000 (ONBOARD_DYNAMODB_ENDPOINT, AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL; default AWS's).",
        valueName: "url"
    ))
    var dynamodbEndpoint: String?

    @Option(help: ArgumentHelp("AWS region (ONBOARD_REGION, AWS_REGION, AWS_DEFAULT_REGION, ~/.aws/config).", valueName: "region"))
    var region: String?

    var flags: [String: String] {
        [
            Setting.store.key: store, Setting.database.key: database, Setting.table.key: table,
            Setting.dynamoDBEndpoint.key: dynamodbEndpoint, Setting.region.key: region,
        ].compactMapValues { $0 }
    }

    /// For one-shot commands: resolves the settings (exit 64 when invalid), opens the store
    /// (exit 1 when it cannot be), runs `body`, closes the store (exit 1 when `body` fails).
    /// - Parameter kind: forces the store kind (`table create` is about DynamoDB whatever `--store` says).
    func withStore(kind: StoreConfiguration.Kind? = nil, checkTable: Bool = true, _ body: (OpenedStore) async throws -> Void) async throws {
        var configuration: StoreConfiguration
        do {
            configuration = try StoreConfiguration.resolve(SettingsReader(flags: flags, environment: ProcessInfo.processInfo.environment))
        } catch {
            throw Console.fail(error.description, exitCode: .validationFailure)
        }
        if let kind { configuration.kind = kind }
        // One-shot commands print their own result; only warnings go to the log.
        var logger = Logger(label: "onboard")
        logger.logLevel = .warning
        let opened: OpenedStore
        do {
            opened = try await OpenedStore.open(configuration, logger: logger, checkTable: checkTable)
        } catch {
            throw Console.fail("\(error)", exitCode: .failure)
        }
        do {
            try await body(opened)
            await opened.close()
        } catch {
            await opened.close()
            throw Console.fail("\(error)", exitCode: .failure)
        }
    }
}

/// Unbuffered writes to the terminal (a buffered `print` to a pipe is lost on SIGTERM).
enum Console {
    static func line(_ text: String) {
        // After the log lines queued before it (serve's log writer shares standard output).
        LineWriter.flushShared()
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    /// Prints a line holding a secret to standard error, never standard output (the log stream).
    static func secret(_ text: String) {
        LineWriter.flushShared()
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    /// Prints `onboard: error: <message>` on one line to standard error and returns the exit code to throw.
    static func fail(_ message: String, exitCode: ExitCode) -> ExitCode {
        let oneLine = message.split(whereSeparator: \.isNewline).joined(separator: " ")
        FileHandle.standardError.write(Data("onboard: error: \(oneLine)\n".utf8))
        return exitCode
    }
}
