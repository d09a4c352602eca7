import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import NIOHTTP1

/// Delivers events to an HTTP endpoint, signed per Standard Webhooks: `POST` of the envelope's
/// JSON, byte for byte, with `webhook-id` (the event id), `webhook-timestamp` (seconds since
/// 1970, at the attempt) and `webhook-signature` (`v1,<base64 HMAC-SHA256>`, see
/// ``StandardWebhooks``).
///
/// A 2xx answer is delivered; `410 Gone` disables the endpoint (said in an error log); any other
/// status, a timeout or a failed connection is retried later by the dispatcher. The events of one
/// call (of different tenants) are sent concurrently.
public struct WebhookSink: EventSink {
    public let url: String
    public let id: String
    public let maxBatch: Int
    public let timeout: Duration
    private let secret: WebhookSecret
    private let httpClient: HTTPClient
    private let logger: Logger

    /// The `user-agent` of every delivery.
    public static let userAgent = "onboard-webhooks/1"

    /// - Parameters:
    ///   - url: the endpoint (`http://` or `https://`); the sink's id is ``sinkId(url:)``, which
    ///     never holds the URL's path or query (they often carry a token: Slack, Zapier).
    ///   - secret: the signing secret.
    ///   - httpClient: the client to send with (shared; its owner shuts it down).
    ///   - timeout: the most one delivery may take, connection and answer included.
    ///   - maxBatch: the most events sent at once.
    public init(
        url: String, secret: WebhookSecret, httpClient: HTTPClient, timeout: Duration = .seconds(10), maxBatch: Int = 16,
        logger: Logger = Logger(label: "onboard.events.webhook")
    ) {
        self.url = url
        self.id = Self.sinkId(url: url)
        self.secret = secret
        self.httpClient = httpClient
        self.timeout = timeout
        self.maxBatch = maxBatch
        self.logger = logger
    }

    public func deliver(_ events: [OutboxEvent]) async -> [DeliveryResult] {
        await withTaskGroup(of: (Int, DeliveryResult).self) { group in
            for (index, event) in events.enumerated() {
                group.addTask { (index, await deliver(event)) }
            }
            var results = [DeliveryResult](repeating: .retry("not attempted"), count: events.count)
            for await (index, result) in group { results[index] = result }
            return results
        }
    }

    /// One signed `POST`.
    func deliver(_ event: OutboxEvent) async -> DeliveryResult {
        let body = Array(event.envelopeJSON.utf8)
        let timestamp = Int(Date().timeIntervalSince1970)
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "content-type", value: "application/json")
        request.headers.add(name: "webhook-id", value: event.id)
        request.headers.add(name: "webhook-timestamp", value: String(timestamp))
        request.headers.add(name: "webhook-signature", value: StandardWebhooks.signature(id: event.id, timestamp: timestamp, body: body, secret: secret))
        request.headers.add(name: "user-agent", value: Self.userAgent)
        request.body = .bytes(ByteBuffer(bytes: body))
        let status: HTTPResponseStatus
        do {
            let response = try await httpClient.execute(request, timeout: Self.timeAmount(timeout))
            status = response.status
            // Read (and drop) the answer, so that the connection can serve the next delivery.
            _ = try? await response.body.collect(upTo: 64 * 1024)
        } catch {
            let reason = Self.reason(error, timeout: timeout, url: url)
            logger.debug("webhook delivery failed", metadata: ["sink": "\(id)", "eventId": "\(event.id)", "reason": "\(reason)"])
            return .retry(reason)
        }
        switch status.code {
        case 200..<300:
            return .delivered
        case 410:
            logger.error(
                "webhook endpoint answered 410 Gone: no more events are sent to it until the server restarts",
                metadata: ["sink": "\(id)", "eventId": "\(event.id)"]
            )
            return .disable("HTTP 410 Gone")
        default:
            logger.debug("webhook delivery refused", metadata: ["sink": "\(id)", "eventId": "\(event.id)", "status": "\(status.code)"])
            return .retry("HTTP \(status.code)\(status.reasonPhrase.isEmpty ? "" : " \(status.reasonPhrase)")")
        }
    }

    /// A webhook's id and its only display: `webhook:<scheme>://<host>[:port]#<first 8 hex digits
    /// of the SHA-256 of the full URL>`. Stable per URL, distinct per URL, and free of the path and
    /// query, where webhook URLs often carry a secret token; the full URL is never logged or stored.
    public static func sinkId(url: String) -> String {
        let digest = SHA256.hash(data: Array(url.utf8)).prefix(4).map { String(format: "%02x", $0) }.joined()
        let origin: String
        if let components = URLComponents(string: url), let scheme = components.scheme, let host = components.host {
            origin = "\(scheme)://\(host.contains(":") ? "[\(host)]" : host)" + (components.port.map { ":\($0)" } ?? "")
        } else {
            origin = "?"
        }
        return "webhook:\(origin)#\(digest)"
    }

    /// A short reason for a delivery that got no answer (kept as the outbox item's `lastError`).
    static func reason(_ error: any Error, timeout: Duration, url: String? = nil) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .writeTimeout: return "no answer within \(timeout)"
            case .connectTimeout: return "connection timed out"
            case .remoteConnectionClosed: return "connection closed by the endpoint before an answer"
            case .cancelled: return "cancelled"
            default: break
            }
        }
        if error is CancellationError { return "cancelled" }
        var text = String(describing: error)
        if text.localizedCaseInsensitiveContains("refused") { return "connection refused" }
        // The error's text may quote the URL (and its token): never kept or logged.
        if let url, !url.isEmpty { text = text.replacingOccurrences(of: url, with: sinkId(url: url)) }
        return text.count > 200 ? String(text.prefix(200)) + "…" : text
    }

    /// `duration` as NIO's `TimeAmount` (saturating).
    static func timeAmount(_ duration: Duration) -> TimeAmount {
        let (seconds, attoseconds) = duration.components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        return .nanoseconds(overflow ? .max : product + attoseconds / 1_000_000_000)
    }
}
