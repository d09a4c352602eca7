import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Which URLs may carry credentials, tokens or signed requests: `https://` anywhere, `http://`
/// only to this machine (a loopback address: `127.0.0.0/8`, `::1`, or `localhost`), where a
/// local stand-in (moto, DynamoDB Local, a test identity provider) listens. Plain HTTP to any
/// other host would let the network read or change what the service trusts: signed AWS calls
/// and their answers, an issuer's signing keys.
public enum EndpointURLRule {
    /// The loopback addresses plain `http://` may go to, as said in error messages.
    public static let loopbackDescription = "a loopback address: 127.0.0.0/8, ::1 or localhost"

    /// `text` as an error message may quote it: a URL's user information (`user:secret@`) is
    /// replaced by `…@`, so no password in a URL reaches a log or a terminal.
    public static func redacted(_ text: String) -> String {
        guard let schemeEnd = text.range(of: "://") else { return text }
        let authorityEnd = text[schemeEnd.upperBound...].firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? text.endIndex
        guard let at = text[schemeEnd.upperBound..<authorityEnd].lastIndex(of: "@") else { return text }
        return String(text[..<schemeEnd.upperBound]) + "…" + String(text[at...])
    }

    /// What is wrong with `text` as an endpoint URL, or `nil` when it is acceptable: an absolute
    /// `https://` URL with a host, or an `http://` one whose host is a loopback address.
    public static func problem(with text: String) -> String? {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), let host = url.host, !host.isEmpty else {
            return "expected an https:// URL (http:// only to \(loopbackDescription))"
        }
        switch scheme {
        case "https":
            return nil
        case "http":
            return isLoopback(host: host) ? nil : "plain http:// is refused except to \(loopbackDescription); use https://"
        default:
            return "expected an https:// URL (http:// only to \(loopbackDescription))"
        }
    }

    /// Whether `host` (a URL's host, IPv6 literals with or without brackets) names this machine:
    /// `localhost`, an IPv4 address in `127.0.0.0/8`, or `::1`. Names that merely start like
    /// one (`127.0.0.1.example.com`, `localhost.example.com`) are not.
    public static func isLoopback(host: String) -> Bool {
        var name = host.lowercased()
        if name.hasPrefix("["), name.hasSuffix("]") { name = String(name.dropFirst().dropLast()) }
        if name == "localhost" || name == "localhost." { return true }
        var v4 = in_addr()
        if inet_pton(AF_INET, name, &v4) == 1 {
            return UInt32(bigEndian: v4.s_addr) >> 24 == 127
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, name, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { bytes in bytes.prefix(15).allSatisfy { $0 == 0 } && bytes[15] == 1 }
        }
        return false
    }
}

extension AWSEnvironment {
    /// The endpoint the SDKs would use for a service: `AWS_ENDPOINT_URL_<SERVICE>`, then
    /// `AWS_ENDPOINT_URL` (both ignored when `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`); `nil`
    /// means the service's public endpoint.
    /// - Parameter serviceVariable: the service's part of the variable name (`DYNAMODB`, `SNS`, `EVENTBRIDGE`, `STS`).
    /// - Throws: ``AWSConfigurationError`` naming the variable when its URL is not `https://`
    ///   (or `http://` to a loopback address; see ``EndpointURLRule``).
    public func endpointURL(serviceVariable: String) throws(AWSConfigurationError) -> String? {
        guard variables["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"]?.lowercased() != "true" else { return nil }
        for name in ["AWS_ENDPOINT_URL_\(serviceVariable)", "AWS_ENDPOINT_URL"] {
            guard let url = nonEmpty(name) else { continue }
            if let problem = EndpointURLRule.problem(with: url) {
                throw AWSConfigurationError(message: "invalid environment variable \(name) '\(EndpointURLRule.redacted(url))': \(problem)")
            }
            return url
        }
        return nil
    }
}
