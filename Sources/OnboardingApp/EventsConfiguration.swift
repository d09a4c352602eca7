import AWSClient
import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import OnboardingCore
import OnboardingEvents
import SigV4

extension Setting {
    /// CloudEvents `source` of every event (`--event-source`, `ONBOARD_EVENT_SOURCE`).
    public static let eventSource = Setting(key: "event_source", isSecret: false)
    /// Webhook endpoints: `--webhook-url` (repeatable), `ONBOARD_WEBHOOK_URLS` (comma-separated).
    public static let webhookURLs = Setting(key: "webhook_urls", isSecret: false, flag: "--webhook-url")
    /// The webhooks' signing secret, `whsec_<base64>` (`--webhook-secret`, `ONBOARD_WEBHOOK_SECRET`).
    public static let webhookSecret = Setting(key: "webhook_secret", isSecret: true)
    /// `--sns-topic-arn`, `ONBOARD_SNS_TOPIC_ARN`.
    public static let snsTopicARN = Setting(key: "sns_topic_arn", isSecret: false)
    /// `--eventbridge-bus`, `ONBOARD_EVENTBRIDGE_BUS`.
    public static let eventBridgeBus = Setting(key: "eventbridge_bus", isSecret: false)
    /// How long a sink may keep failing an event before it is marked failed for it
    /// (`--event-fail-after`, `ONBOARD_EVENT_FAIL_AFTER`).
    public static let eventFailAfter = Setting(key: "event_fail_after", isSecret: false)
    /// The log sink also when other sinks are configured (`--log-events`, `ONBOARD_LOG_EVENTS`).
    public static let logEvents = Setting(key: "log_events", isSecret: false)

    public static let events: [Setting] = [.eventSource, .webhookURLs, .webhookSecret, .snsTopicARN, .eventBridgeBus, .eventFailAfter, .logEvents]

    /// What separates repeated flag values in ``SettingsReader/flags`` (`--webhook-url` given
    /// twice): a newline, which no URL holds (the environment variable's list is comma-separated).
    public static let repeatedFlagSeparator: Character = "\n"
}

/// Where lifecycle events are delivered. Events are recorded with every change whatever this
/// says; these settings only choose the sinks: webhooks, an SNS topic, an EventBridge bus, and
/// the log (the default when nothing else is configured, or asked for with `--log-events`).
public struct EventsConfiguration: Sendable {
    /// CloudEvents `source`; `nil`: `urn:onboard:<host name>` (``EventRecorder/defaultSource``).
    public var source: String?
    /// Webhook endpoints, each a sink of its own; all signed with ``webhookSecret``.
    public var webhookURLs: [String] = []
    /// `whsec_<base64>` (Standard Webhooks); required with a webhook URL. Never logged or printed
    /// (its description is redacted).
    public var webhookSecret: WebhookSecret?
    /// An SNS topic (`arn:aws:sns:<region>:<account>:<name>`; `.fifo` topics keep per-tenant order).
    public var snsTopicARN: String?
    /// An EventBridge bus: a name (`default`, in the configured region) or its ARN.
    public var eventBridgeBus: String?
    /// How long a sink may keep failing an event before the event is marked failed for it (and
    /// waits for `onboard events redeliver`).
    public var failAfter: Duration = .seconds(24 * 3600)
    /// The log sink also when other sinks are configured.
    public var logEvents = false

    public init() {}

    /// The event source in use.
    public var resolvedSource: String { source ?? EventRecorder.defaultSource }

    /// Whether a sink other than the log is configured.
    public var hasDeliverySinks: Bool { !webhookURLs.isEmpty || snsTopicARN != nil || eventBridgeBus != nil }

    /// Whether the log sink is used: nothing else configured, or asked for.
    public var usesLogSink: Bool { logEvents || !hasDeliverySinks }

    /// The longest ``failAfter`` accepted (30 days).
    public static let maximumFailAfter: Duration = .seconds(30 * 24 * 3600)

    /// Reads and checks the event settings (flag, then environment variable).
    /// - Throws: ``ConfigurationError``, one line naming the flag or variable and what is wrong.
    public static func resolve(_ settings: SettingsReader) throws(ConfigurationError) -> EventsConfiguration {
        var configuration = EventsConfiguration()
        // An empty value is the setting left unset (a deployment template's empty parameter).
        func read(_ setting: Setting) -> (value: String, source: String)? {
            guard let (value, source) = settings.read(setting), !value.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { return nil }
            return (value, source)
        }
        if let (text, source) = read(.eventSource) {
            // CloudEvents: a non-empty URI-reference; an absolute URI (urn:…, https://…) is recommended.
            guard text.utf8.count <= 1024, text.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }), URL(string: text) != nil else {
                throw ConfigurationError(description: "invalid \(source) '\(text)': expected a URI such as urn:onboard:prod or https://onboard.example.com")
            }
            configuration.source = text
        }
        if let (text, source) = read(.webhookURLs) {
            // Repeated flags arrive newline-separated; the variable is a comma-separated list.
            let separator: Character = source == Setting.webhookURLs.flag ? Setting.repeatedFlagSeparator : ","
            let urls = text.split(separator: separator).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            for url in urls {
                try checkWebhookURL(url, source: source)
                guard !configuration.webhookURLs.contains(url) else {
                    throw ConfigurationError(description: "invalid \(source): \(WebhookSink.sinkId(url: url)) is listed twice")
                }
                configuration.webhookURLs.append(url)
            }
        }
        // A secret without URLs is allowed (webhooks off) and unused.
        if let (secret, source) = read(.webhookSecret) {
            // The secret's value is never echoed, only what is wrong with it.
            do {
                configuration.webhookSecret = try WebhookSecret(secret)
            } catch {
                throw ConfigurationError(description: "invalid \(source): \(error.description); make one with: echo whsec_$(openssl rand -base64 32)")
            }
        } else if !configuration.webhookURLs.isEmpty, let (_, source) = read(.webhookURLs) {
            throw ConfigurationError(
                description: "invalid \(source): webhooks need a signing secret (\(Setting.webhookSecret.flag) / \(Setting.webhookSecret.environmentVariable): whsec_ followed by base64)"
            )
        }
        if let (arn, source) = read(.snsTopicARN) {
            guard SNSTopicARN(arn) != nil else {
                throw ConfigurationError(description: "invalid \(source) '\(arn)': expected an SNS topic ARN, arn:aws:sns:<region>:<account id>:<topic name>")
            }
            configuration.snsTopicARN = arn
        }
        if let (bus, source) = read(.eventBridgeBus) {
            guard EventBridgeBus(bus) != nil else {
                throw ConfigurationError(
                    description: "invalid \(source) '\(bus)': expected an event bus name (1-256 characters of A-Z a-z 0-9 . _ - /) or its ARN, arn:aws:events:<region>:<account id>:event-bus/<name>"
                )
            }
            configuration.eventBridgeBus = bus
        }
        if let (text, source) = read(.eventFailAfter) {
            guard let duration = parseDuration(text), duration >= .zero, duration <= maximumFailAfter else {
                throw ConfigurationError(description: "invalid \(source) '\(text)': expected a duration from 0s to 30d, e.g. 24h, 90m or 90s")
            }
            configuration.failAfter = duration
        }
        if let (text, source) = read(.logEvents) {
            switch text.lowercased() {
            case "true", "on", "1", "yes": configuration.logEvents = true
            case "false", "off", "0", "no": configuration.logEvents = false
            default: throw ConfigurationError(description: "invalid \(source) '\(text)': expected true or false")
            }
        }
        return configuration
    }

    /// `24h`, `90m`, `90s`, `1500ms`, `2d`, or plain seconds (`90`).
    public static func parseDuration(_ text: String) -> Duration? {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        let units: [(suffix: String, milliseconds: Double)] = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000)]
        for (suffix, scale) in units where trimmed.hasSuffix(suffix) {
            let number = trimmed.dropLast(suffix.count)
            // `ms` also ends with `s`: `1500ms` is not 1500m-something.
            if suffix == "s", number.hasSuffix("m") { continue }
            guard let value = Double(number), value.isFinite, value >= 0, value * scale < 1e15 else { return nil }
            return .milliseconds(Int64((value * scale).rounded()))
        }
        guard let seconds = Double(trimmed), seconds.isFinite, seconds >= 0, seconds < 1e12 else { return nil }
        return .milliseconds(Int64((seconds * 1000).rounded()))
    }

    static func checkWebhookURL(_ text: String, source: String) throws(ConfigurationError) {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), ["http", "https"].contains(scheme), url.host?.isEmpty == false
        else {
            throw ConfigurationError(description: "invalid \(source) '\(text)': expected an http:// or https:// URL such as https://example.com/hooks/onboard")
        }
        // No user or password either (the deliveries are authenticated by their signature). The
        // URL itself is never printed, logged or stored: the sink's id (WebhookSink.sinkId) is.
        guard url.user == nil, url.password == nil else {
            throw ConfigurationError(
                description: "invalid \(source): a webhook URL may not hold a user name or password (it is logged and stored); receivers verify the webhook-signature instead"
            )
        }
    }
}

/// An SNS topic ARN, `arn:<partition>:sns:<region>:<account id>:<topic name>`.
public struct SNSTopicARN: Sendable, Hashable {
    public let arn: String
    public let partition: String
    public let region: String
    public let account: String
    public let name: String

    /// `nil` when `text` is not an SNS topic's ARN.
    public init?(_ text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 6, parts[0] == "arn", parts[1].hasPrefix("aws"), parts[2] == "sns", isRegion(parts[3]),
            parts[4].count == 12, parts[4].allSatisfy(\.isASCII), parts[4].allSatisfy(\.isNumber)
        else { return nil }
        // Topic names: 1-256 of A-Z a-z 0-9 _ -, a FIFO topic's ending in .fifo.
        let name = parts[5]
        let base = name.hasSuffix(".fifo") ? String(name.dropLast(5)) : name
        guard (1...256).contains(name.count), !base.isEmpty, base.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") })
        else { return nil }
        arn = text
        partition = parts[1]
        region = parts[3]
        account = parts[4]
        self.name = name
    }

    /// A FIFO topic (`.fifo`): messages of one group (tenant) keep their order.
    public var isFIFO: Bool { name.hasSuffix(".fifo") }
}

/// An EventBridge bus: its name, or its ARN (`arn:<partition>:events:<region>:<account>:event-bus/<name>`).
public struct EventBridgeBus: Sendable, Hashable {
    /// As configured (PutEvents' `EventBusName` takes a name or an ARN).
    public let text: String
    /// The region named by an ARN; `nil` for a bare name (the configured region).
    public let region: String?

    /// `nil` when `text` is neither a bus name nor a bus ARN.
    public init?(_ text: String) {
        func isName(_ name: Substring) -> Bool {
            (1...256).contains(name.count) && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-/".contains($0)) }
        }
        if text.hasPrefix("arn:") {
            let parts = text.split(separator: ":", maxSplits: 5, omittingEmptySubsequences: false)
            guard parts.count == 6, parts[1].hasPrefix("aws"), parts[2] == "events", isRegion(String(parts[3])), parts[4].count == 12,
                parts[4].allSatisfy({ $0.isASCII && $0.isNumber }), parts[5].hasPrefix("event-bus/"),
                isName(parts[5].dropFirst("event-bus/".count))
            else { return nil }
            self.text = text
            region = String(parts[3])
        } else {
            guard isName(Substring(text)) else { return nil }
            self.text = text
            region = nil
        }
    }
}

/// `eu-west-1`, `us-gov-west-1`: lowercase letters, digits and dashes.
private func isRegion(_ text: String) -> Bool {
    !text.isEmpty && text.allSatisfy { $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "-") } && text.contains("-")
}

/// The sinks built from ``EventsConfiguration`` and the clients they share, closed together by
/// ``shutdown()`` (after the dispatcher's last sweep).
public struct EventSinks: Sendable {
    /// In delivery order: webhooks, SNS, EventBridge, the log.
    public let sinks: [any EventSink]
    /// One line for the terminal: where events go (never the secret).
    public let summary: String
    private let shutdownAction: @Sendable () async -> Void

    public init(sinks: [any EventSink], summary: String, shutdown: @escaping @Sendable () async -> Void = {}) {
        self.sinks = sinks
        self.summary = summary
        self.shutdownAction = shutdown
    }

    /// Closes the webhooks' HTTP client and the AWS clients.
    public func shutdown() async { await shutdownAction() }
}

extension EventsConfiguration {
    /// Builds the configured sinks: one ``WebhookSink`` per URL, all sharing one HTTP client
    /// (redirects not followed: a 3xx is retried, never sent elsewhere); an ``SNSSink`` and an
    /// ``EventBridgeSink`` on AWS clients made as the DynamoDB store's is
    /// (``OpenedStore/awsClient(region:environment:logger:)``: the SDKs' credential chain), at
    /// `AWS_ENDPOINT_URL_SNS` / `AWS_ENDPOINT_URL_EVENTBRIDGE`, then `AWS_ENDPOINT_URL`, else the
    /// region's public endpoint; the ``LogSink`` when nothing else is configured or
    /// ``logEvents`` asks for it.
    ///
    /// The SNS topic's region is its ARN's; an EventBridge bus given by name is in `region`
    /// (else the environment's region), one given by ARN in the ARN's.
    ///
    /// - Parameter region: the configured region (`--region`), for a bus given by name.
    /// - Throws: ``ConfigurationError`` when AWS credentials or the region cannot be found
    ///   (nothing is left open then).
    public func makeSinks(region: String?, environment: AWSEnvironment, logger: Logger) async throws -> EventSinks {
        var sinks: [any EventSink] = []
        var described: [String] = []
        var httpClient: HTTPClient?
        var awsClients: [String: AWSClient] = [:]
        let opened: @Sendable ([AWSClient], HTTPClient?) async -> Void = { clients, http in
            for client in clients { try? await client.shutdown() }
            try? await http?.shutdown()
        }
        do {
            if let secret = webhookSecret, !webhookURLs.isEmpty {
                var configuration = HTTPClient.Configuration(redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5)))
                configuration.decompression = .disabled
                let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
                httpClient = client
                for url in webhookURLs {
                    sinks.append(WebhookSink(url: url, secret: secret, httpClient: client, logger: logger))
                }
                // The sinks' ids, never the URLs (their path or query may hold a token).
                described.append("webhook \(webhookURLs.map { WebhookSink.sinkId(url: $0) }.joined(separator: ", "))")
            }
            func awsClient(_ wanted: String?) async throws -> AWSClient {
                let key = wanted ?? region ?? ""
                if let client = awsClients[key] { return client }
                let client = try await OpenedStore.awsClient(region: wanted ?? region, environment: environment, logger: logger)
                awsClients[key] = client
                return client
            }
            if let arn = snsTopicARN, let topic = SNSTopicARN(arn) {
                let endpoint = try OpenedStore.endpointURL(environment, service: "SNS")
                let client = try await awsClient(topic.region)
                let sns = SNS(client: client, endpoint: endpoint)
                sinks.append(SNSSink(sns: sns, topicArn: arn, logger: logger))
                described.append("SNS \(arn) at \(sns.endpoint)")
            }
            if let name = eventBridgeBus, let bus = EventBridgeBus(name) {
                let endpoint = try OpenedStore.endpointURL(environment, service: "EVENTBRIDGE")
                let client = try await awsClient(bus.region)
                let events = EventBridge(client: client, endpoint: endpoint)
                sinks.append(EventBridgeSink(events: events, busName: name, logger: logger))
                described.append("EventBridge bus \(name) at \(events.endpoint) (\(client.region))")
            }
        } catch {
            await opened(Array(awsClients.values), httpClient)
            throw error
        }
        if usesLogSink {
            sinks.append(LogSink(logger: logger))
            described.append("log")
        }
        let clients = Array(awsClients.values)
        let http = httpClient
        let failAfterText = Self.describe(failAfter)
        return EventSinks(
            sinks: sinks,
            summary: described.joined(separator: "; ") + " (source \(resolvedSource); a failing sink gives an event up after \(failAfterText))",
            shutdown: { await opened(clients, http) }
        )
    }

    /// `24h`, `90m`, `90s`, `1500ms`.
    static func describe(_ duration: Duration) -> String {
        let milliseconds = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        if milliseconds == 0 { return "0s" }
        for (unit, scale) in [("d", Int64(86_400_000)), ("h", 3_600_000), ("m", 60_000), ("s", 1000)] where milliseconds >= scale && milliseconds % scale == 0 {
            return "\(milliseconds / scale)\(unit)"
        }
        return "\(milliseconds)ms"
    }
}

extension EventDispatcher: BackgroundService {}
