import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import SigV4

/// The few HTTP requests credential sources make (instance metadata, the container endpoint,
/// STS): short timeouts, a couple of attempts on no answer or a 5xx, the answer's status and body.
///
/// They use async-http-client's shared client: credential sources are built before any
/// ``AWSClient`` and live as long as the process, so there is no pool of their own to shut down.
struct CredentialHTTP: Sendable {
    var client: HTTPClient = .shared

    struct Answer: Sendable {
        let status: Int
        let body: [UInt8]
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    /// No answer after every attempt (refused, reset, timed out).
    struct NoAnswer: Error, CustomStringConvertible {
        let description: String
    }

    /// One request, tried up to `attempts` times while no answer comes or the answer is a 5xx.
    func request(
        _ url: String, method: HTTPMethod = .GET, headers: [(String, String)] = [], body: [UInt8]? = nil, timeout: Duration, attempts: Int
    ) async throws -> Answer {
        var lastFailure = "no attempt"
        for attempt in 1...max(1, attempts) {
            if attempt > 1 { try await Task.sleep(for: .milliseconds(100)) }
            var request = HTTPClientRequest(url: url)
            request.method = method
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
            do {
                let response = try await client.execute(request, timeout: .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000))
                let payload = try await response.body.collect(upTo: 1024 * 1024)
                let answer = Answer(status: Int(response.status.code), body: Array(payload.readableBytesView))
                if answer.status >= 500, attempt < attempts {
                    lastFailure = "HTTP \(answer.status)"
                    continue
                }
                return answer
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                lastFailure = Self.describe(error, timeout: timeout)
            }
        }
        throw NoAnswer(description: "no answer from \(Self.origin(of: url)) (\(attempts) attempt\(attempts == 1 ? "" : "s"): \(lastFailure))")
    }

    /// `scheme://host:port` of a URL: what an error may name (paths can carry ids, never tokens).
    static func origin(of url: String) -> String {
        guard let components = URLComponents(string: url), let scheme = components.scheme, let host = components.host else { return "the endpoint" }
        return "\(scheme)://\(host)\(components.port.map { ":\($0)" } ?? "")"
    }

    static func describe(_ error: any Error, timeout: Duration) -> String {
        if let error = error as? HTTPClientError, error == .deadlineExceeded || error == .connectTimeout || error == .readTimeout {
            return "timed out after \(timeout)"
        }
        return "\(error)"
    }

    /// `application/x-www-form-urlencoded` from pairs, percent-encoded as SigV4 does.
    static func form(_ pairs: [(String, String)]) -> [UInt8] {
        Array(pairs.map { "\(SigV4Signer.percentEncode($0.0))=\(SigV4Signer.percentEncode($0.1))" }.joined(separator: "&").utf8)
    }
}

/// The JSON the container endpoint and the instance metadata service answer with.
struct MetadataCredentials: Decodable {
    let AccessKeyId: String
    let SecretAccessKey: String
    let Token: String?
    let Expiration: String?
    /// IMDS: `Success`, or an error code with a `Message`.
    let Code: String?
    let Message: String?
}
