import Crypto
import Foundation

/// AWS Signature Version 4 (`AWS4-HMAC-SHA256`) for request headers.
///
/// The stages are the documented ones, each a method so tests can check them on their own:
/// ``canonicalRequest(method:path:query:headers:payloadHash:)`` →
/// ``stringToSign(canonicalRequest:date:)`` → ``signingKey(date:)`` (kDate → kRegion →
/// kService → kSigning) → the signature. The output matches botocore's `SigV4Auth` byte for
/// byte (the tests compare them on generated requests): headers are lower-cased, values trimmed
/// with inner white space collapsed, repeated headers joined with `,`, `host` added from the
/// URL (without a default port), the path normalised (dot segments, repeated slashes) and
/// percent-encoded once more (every service but S3), the query sorted, and the payload hashed.
public struct SigV4Signer: Sendable {
    public let credentials: AWSCredentials
    public let region: String
    public let service: String

    /// Headers never signed (botocore's list: hop-by-hop headers and ones proxies rewrite).
    static let unsignedHeaders: Set<String> = [
        "connection", "expect", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id", "authorization",
    ]

    public init(credentials: AWSCredentials, region: String, service: String) {
        self.credentials = credentials
        self.region = region
        self.service = service
    }

    /// A header of a request to sign: name and value as sent.
    public typealias Header = (name: String, value: String)

    /// Signs a request: returns its headers with `X-Amz-Date`, `X-Amz-Security-Token` (for
    /// temporary credentials) and `Authorization` set, replacing any earlier ones.
    /// - Parameters:
    ///   - url: the full URL, with its path and query percent-encoded as they are sent.
    ///   - date: the signing time (injectable: tests pin it).
    public func sign(method: String, url: String, headers: [Header], body: some Collection<UInt8>, date: Date) throws -> [Header] {
        guard let components = URLComponents(string: url), let host = components.host, !host.isEmpty else {
            throw SigV4Error(message: "cannot sign a request to '\(url)': not an absolute URL")
        }
        let timestamp = Self.timestamp(date)
        var headers = headers.filter { header in
            let name = header.name.lowercased()
            return name != "authorization" && name != "x-amz-date" && (credentials.sessionToken == nil || name != "x-amz-security-token")
        }
        headers.append(("X-Amz-Date", timestamp))
        if let token = credentials.sessionToken {
            headers.append(("X-Amz-Security-Token", token))
        }
        var toSign = headers
        if !headers.contains(where: { $0.name.lowercased() == "host" }) {
            toSign.append(("host", Self.hostHeader(components)))
        }
        // A precomputed payload hash (S3's header) is used as given, as botocore does.
        let payloadHash = headers.last { $0.name.lowercased() == "x-amz-content-sha256" }?.value
            ?? Self.hex(SHA256.hash(data: Array(body)))
        let (canonical, signedHeaders) = canonicalRequest(
            method: method, path: components.percentEncodedPath, query: components.percentEncodedQuery,
            headers: toSign, payloadHash: payloadHash
        )
        let signature = signature(stringToSign: stringToSign(canonicalRequest: canonical, date: date), date: date)
        headers.append((
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyId)/\(scope(date)), SignedHeaders=\(signedHeaders), Signature=\(signature)"
        ))
        return headers
    }

    // MARK: - The stages

    /// The canonical request and the `SignedHeaders` list.
    public func canonicalRequest(method: String, path: String, query: String?, headers: [Header], payloadHash: String)
        -> (canonicalRequest: String, signedHeaders: String)
    {
        var byName: [String: [String]] = [:]
        for header in headers {
            let name = header.name.lowercased()
            guard !Self.unsignedHeaders.contains(name) else { continue }
            byName[name, default: []].append(Self.trimAll(header.value))
        }
        let names = byName.keys.sorted(by: Self.byteOrder)
        let canonicalHeaders = names.map { "\($0):\(byName[$0]!.joined(separator: ","))\n" }.joined()
        let signedHeaders = names.joined(separator: ";")
        let canonical = [
            method.uppercased(),
            Self.canonicalPath(path),
            Self.canonicalQuery(query),
            canonicalHeaders,
            signedHeaders,
            payloadHash,
        ].joined(separator: "\n")
        return (canonical, signedHeaders)
    }

    /// `AWS4-HMAC-SHA256`, the timestamp, the scope and the canonical request's hash.
    public func stringToSign(canonicalRequest: String, date: Date) -> String {
        "AWS4-HMAC-SHA256\n\(Self.timestamp(date))\n\(scope(date))\n\(Self.hex(SHA256.hash(data: Array(canonicalRequest.utf8))))"
    }

    /// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").
    public func signingKey(date: Date) -> SymmetricKey {
        let dateKey = Self.hmac(key: SymmetricKey(data: Array(("AWS4" + credentials.secretAccessKey).utf8)), String(Self.timestamp(date).prefix(8)))
        let regionKey = Self.hmac(key: SymmetricKey(data: dateKey), region)
        let serviceKey = Self.hmac(key: SymmetricKey(data: regionKey), service)
        return SymmetricKey(data: Self.hmac(key: SymmetricKey(data: serviceKey), "aws4_request"))
    }

    /// The hex signature of a string to sign.
    public func signature(stringToSign: String, date: Date) -> String {
        Self.hex(Self.hmac(key: signingKey(date: date), stringToSign))
    }

    /// `20150830/us-east-1/service/aws4_request`.
    public func scope(_ date: Date) -> String {
        "\(Self.timestamp(date).prefix(8))/\(region)/\(service)/aws4_request"
    }

    // MARK: - Helpers

    /// `yyyyMMdd'T'HHmmss'Z'` in UTC.
    public static func timestamp(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(parts.tm_year + 1900)\(two(parts.tm_mon + 1))\(two(parts.tm_mday))T\(two(parts.tm_hour))\(two(parts.tm_min))\(two(parts.tm_sec))Z"
    }

    /// The `host` header botocore derives: lower-case host, the port only when not the scheme's default.
    static func hostHeader(_ components: URLComponents) -> String {
        var host = (components.host ?? "").lowercased()
        if host.contains(":"), !host.hasPrefix("[") { host = "[\(host)]" }
        if let port = components.port {
            let defaultPort = components.scheme?.lowercased() == "https" ? 443 : (components.scheme?.lowercased() == "http" ? 80 : -1)
            if port != defaultPort { host += ":\(port)" }
        }
        return host
    }

    /// Trims and collapses runs of white space to one space (SigV4's "Trimall"), white space
    /// being what Python's `str.split()` splits on, as in botocore.
    static func trimAll(_ value: String) -> String {
        String(String.UnicodeScalarView(
            value.unicodeScalars.split(whereSeparator: isWhiteSpace).joined(separator: [" "])
        ))
    }

    private static func isWhiteSpace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: true
        default: false
        }
    }

    /// Code-point order (UTF-8 byte order), as Python sorts strings; Swift's `<` on `String`
    /// compares by Unicode canonical equivalence instead.
    static func byteOrder(_ lhs: String, _ rhs: String) -> Bool {
        lhs.utf8.lexicographicallyPrecedes(rhs.utf8)
    }

    /// Dot segments and empty segments removed (RFC 3986 §5.2.4, as AWS requires), then every byte
    /// but `A-Z a-z 0-9 - _ . ~ /` percent-encoded (so `%2F` in the path is signed as `%252F`).
    static func canonicalPath(_ path: String) -> String {
        guard !path.isEmpty else { return "/" }
        var output: [Substring] = []
        for segment in path.split(separator: "/", omittingEmptySubsequences: true) where segment != "." {
            if segment == ".." {
                if !output.isEmpty { output.removeLast() }
            } else {
                output.append(segment)
            }
        }
        var normalised = path.hasPrefix("/") ? "/" : ""
        normalised += output.joined(separator: "/")
        if path.hasSuffix("/") && !output.isEmpty { normalised += "/" }
        return percentEncode(normalised, keeping: "/")
    }

    /// `key=value` pairs sorted by key, then value, as they appear in the URL (already encoded).
    static func canonicalQuery(_ query: String?) -> String {
        guard let query, !query.isEmpty else { return "" }
        return query.split(separator: "&", omittingEmptySubsequences: false).map { pair -> (String, String) in
            guard let equals = pair.firstIndex(of: "=") else { return (String(pair), "") }
            return (String(pair[..<equals]), String(pair[pair.index(after: equals)...]))
        }
        .sorted { $0.0 == $1.0 ? byteOrder($0.1, $1.1) : byteOrder($0.0, $1.0) }
        .map { "\($0.0)=\($0.1)" }
        .joined(separator: "&")
    }

    /// Percent-encodes every UTF-8 byte outside the unreserved set (and `extra`).
    public static func percentEncode(_ text: String, keeping extra: Character? = nil) -> String {
        let hexDigits = Array("0123456789ABCDEF".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        let kept = extra.flatMap(\.asciiValue)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                bytes.append(byte)
            case kept:
                bytes.append(byte)
            default:
                bytes.append(UInt8(ascii: "%"))
                bytes.append(hexDigits[Int(byte >> 4)])
                bytes.append(hexDigits[Int(byte & 0x0F)])
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func hmac(key: SymmetricKey, _ message: String) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: Array(message.utf8), using: key))
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let hexDigits = Array("0123456789abcdef".utf8)
        var output: [UInt8] = []
        for byte in bytes {
            output.append(hexDigits[Int(byte >> 4)])
            output.append(hexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: output, as: UTF8.self)
    }
}

/// A request that cannot be signed.
public struct SigV4Error: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}
