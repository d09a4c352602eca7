import Crypto
import Foundation
import Synchronization

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
    /// The day's signing key, derived once per day instead of with four HMACs per request.
    private let keyCache = SigningKeyCache()

    /// Headers never signed (botocore's list: hop-by-hop headers and ones proxies rewrite).
    static let unsignedHeaders: Set<String> = [
        "connection", "expect", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
        "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id", "authorization",
    ]

    /// `unsignedHeaders` as a switch: no hashing on the hot path.
    static func isUnsigned(_ name: String) -> Bool {
        switch name {
        case "connection", "expect", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
            "transfer-encoding", "upgrade", "user-agent", "x-amzn-trace-id", "authorization":
            true
        default:
            false
        }
    }

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
        try sign(method: method, target: Target(url: url), headers: headers, body: body, date: date)
    }

    /// Where a request goes, parsed once: a client calling one endpoint keeps its `Target`.
    public struct Target: Sendable {
        /// The `host` header botocore derives: lower-case host, the port only when not the scheme's default.
        public let hostHeader: String
        /// The path and query, percent-encoded as sent.
        public let path: String
        public let query: String?

        /// The path and query as the canonical request has them, computed once.
        let canonicalPath: String
        let canonicalQuery: String

        public init(url: String) throws {
            guard let components = URLComponents(string: url), let host = components.host, !host.isEmpty else {
                throw SigV4Error(message: "cannot sign a request to '\(url)': not an absolute URL")
            }
            self.hostHeader = SigV4Signer.hostHeader(components)
            self.path = components.percentEncodedPath
            self.query = components.percentEncodedQuery
            self.canonicalPath = SigV4Signer.canonicalPath(path)
            self.canonicalQuery = SigV4Signer.canonicalQuery(query)
        }
    }

    /// Signs a request to a parsed target (see ``sign(method:url:headers:body:date:)``).
    public func sign(method: String, target: Target, headers: [Header], body: some Collection<UInt8>, date: Date) throws -> [Header] {
        let timestamp = keyCache.timestamp(date)
        var headers = headers
        var hasHost = false
        var givenPayloadHash: String?
        headers.removeAll { header in
            switch Self.lowercasedASCII(header.name) {
            case "authorization", "x-amz-date": return true
            case "x-amz-security-token": return credentials.sessionToken != nil
            case "host": hasHost = true
            // A precomputed payload hash (S3's header) is used as given, as botocore does.
            case "x-amz-content-sha256": givenPayloadHash = header.value
            default: break
            }
            return false
        }
        headers.append(("X-Amz-Date", timestamp))
        if let token = credentials.sessionToken {
            headers.append(("X-Amz-Security-Token", token))
        }
        var toSign = headers
        if !hasHost {
            toSign.append(("host", target.hostHeader))
        }
        let payloadHash = givenPayloadHash ?? Self.hex(SHA256.hash(data: Array(body)))
        let (canonical, signedHeaders) = canonicalRequestBytes(
            method: method, canonicalPath: target.canonicalPath, canonicalQuery: target.canonicalQuery, headers: toSign, payloadHash: payloadHash
        )
        let scope = scope(timestamp: timestamp)
        let stringToSign = "AWS4-HMAC-SHA256\n\(timestamp)\n\(scope)\n\(Self.hex(SHA256.hash(data: canonical)))"
        let signature = Self.hex(signingMAC(day: String(timestamp.prefix(8)), stringToSign))
        headers.append((
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyId)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"
        ))
        return headers
    }

    // MARK: - The stages

    /// The canonical request and the `SignedHeaders` list.
    public func canonicalRequest(method: String, path: String, query: String?, headers: [Header], payloadHash: String)
        -> (canonicalRequest: String, signedHeaders: String)
    {
        let (bytes, signedHeaders) = canonicalRequestBytes(
            method: method, canonicalPath: Self.canonicalPath(path), canonicalQuery: Self.canonicalQuery(query),
            headers: headers, payloadHash: payloadHash
        )
        return (String(decoding: bytes, as: UTF8.self), signedHeaders)
    }

    /// The canonical request as bytes (hashed as they are), from an already canonical path and query.
    func canonicalRequestBytes(method: String, canonicalPath: String, canonicalQuery: String, headers: [Header], payloadHash: String)
        -> (bytes: [UInt8], signedHeaders: String)
    {
        // Few headers: sort (name, value) pairs, then join the values of repeated names in order.
        var pairs: [(name: String, value: String)] = []
        pairs.reserveCapacity(headers.count)
        for header in headers {
            let name = Self.lowercasedASCII(header.name)
            guard !Self.isUnsigned(name) else { continue }
            pairs.append((name, Self.trimAll(header.value)))
        }
        // Insertion sort: stable (repeated headers keep their order) and fast for a handful.
        for index in pairs.indices.dropFirst() {
            var position = index
            let pair = pairs[index]
            while position > 0 && Self.byteOrder(pair.name, pairs[position - 1].name) {
                pairs[position] = pairs[position - 1]
                position -= 1
            }
            pairs[position] = pair
        }
        let newline = UInt8(ascii: "\n")
        var bytes: [UInt8] = []
        bytes.reserveCapacity(512)
        bytes.append(contentsOf: (method.utf8.contains { $0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z") } ? method.uppercased() : method).utf8)
        bytes.append(newline)
        bytes.append(contentsOf: canonicalPath.utf8)
        bytes.append(newline)
        bytes.append(contentsOf: canonicalQuery.utf8)
        bytes.append(newline)
        var signedHeaders = ""
        for (index, pair) in pairs.enumerated() {
            if index > 0 && pairs[index - 1].name == pair.name {
                bytes.removeLast()  // the newline: a repeated name continues the line
                bytes.append(UInt8(ascii: ","))
            } else {
                if !signedHeaders.isEmpty { signedHeaders += ";" }
                signedHeaders += pair.name
                bytes.append(contentsOf: pair.name.utf8)
                bytes.append(UInt8(ascii: ":"))
            }
            bytes.append(contentsOf: pair.value.utf8)
            bytes.append(newline)
        }
        bytes.append(newline)
        bytes.append(contentsOf: signedHeaders.utf8)
        bytes.append(newline)
        bytes.append(contentsOf: payloadHash.utf8)
        return (bytes, signedHeaders)
    }

    /// `AWS4-HMAC-SHA256`, the timestamp, the scope and the canonical request's hash.
    public func stringToSign(canonicalRequest: String, date: Date) -> String {
        "AWS4-HMAC-SHA256\n\(Self.timestamp(date))\n\(scope(date))\n\(Self.hex(SHA256.hash(data: Array(canonicalRequest.utf8))))"
    }

    /// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").
    public func signingKey(date: Date) -> SymmetricKey {
        signingKey(day: String(Self.timestamp(date).prefix(8)))
    }

    /// The signing key of a day (`yyyyMMdd`), derived once per day.
    func signingKey(day: String) -> SymmetricKey {
        if let cached = keyCache.entry(for: day) { return cached.key }
        let key = deriveSigningKey(day: day)
        keyCache.store(key, for: day)
        return key
    }

    /// HMAC-SHA256 of `message` with the day's signing key, from an HMAC already keyed (the key
    /// set-up is half the cost of a short message's HMAC).
    func signingMAC(day: String, _ message: String) -> [UInt8] {
        var mac: HMAC<SHA256>
        if let cached = keyCache.entry(for: day) {
            mac = cached.keyed
        } else {
            let key = deriveSigningKey(day: day)
            keyCache.store(key, for: day)
            mac = HMAC(key: key)
        }
        mac.update(data: Array(message.utf8))
        return Array(mac.finalize())
    }

    private func deriveSigningKey(day: String) -> SymmetricKey {
        let dateKey = Self.hmac(key: SymmetricKey(data: Array(("AWS4" + credentials.secretAccessKey).utf8)), day)
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
        scope(timestamp: Self.timestamp(date))
    }

    private func scope(timestamp: String) -> String {
        "\(timestamp.prefix(8))/\(region)/\(service)/aws4_request"
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
        // Fast path: ASCII with nothing to trim or collapse (nearly every header) is returned as is.
        var previousWasSpace = true
        var clean = true
        for byte in value.utf8 {
            if byte >= 0x80 {
                clean = false
                break
            }
            let isSpace = byte == 0x20 || (0x09...0x0D).contains(byte) || (0x1C...0x1F).contains(byte)
            if isSpace && (previousWasSpace || byte != 0x20) {
                clean = false
                break
            }
            previousWasSpace = isSpace
        }
        if clean && !previousWasSpace { return value }
        if value.isEmpty { return value }
        return String(String.UnicodeScalarView(
            value.unicodeScalars.split(whereSeparator: isWhiteSpace).joined(separator: [" "])
        ))
    }

    private static func isWhiteSpace(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09...0x0D, 0x1C...0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: true
        default: false
        }
    }

    /// Lower-cases a header name: ASCII byte by byte (the usual case), anything else as Python's
    /// `str.lower()` would.
    static func lowercasedASCII(_ name: String) -> String {
        var hasUpper = false
        for byte in name.utf8 {
            if byte >= 0x80 { return name.lowercased() }
            if byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") { hasUpper = true }
        }
        guard hasUpper else { return name }
        return String(unsafeUninitializedCapacity: name.utf8.count) { buffer in
            for (index, byte) in name.utf8.enumerated() {
                buffer[index] = byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") ? byte + 32 : byte
            }
            return name.utf8.count
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
        hex(Array(bytes))
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits: StaticString = "0123456789abcdef"
        return String(unsafeUninitializedCapacity: bytes.count * 2) { buffer in
            digits.withUTF8Buffer { hexDigits in
                var index = 0
                for byte in bytes {
                    buffer[index] = hexDigits[Int(byte >> 4)]
                    buffer[index + 1] = hexDigits[Int(byte & 0x0F)]
                    index += 2
                }
            }
            return bytes.count * 2
        }
    }
}

/// A request that cannot be signed.
public struct SigV4Error: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}

/// The signing key of the current day, shared by copies of a signer.
final class SigningKeyCache: Sendable {
    struct Entry: Sendable {
        let day: String
        let key: SymmetricKey
        /// An HMAC keyed with `key`, copied for each message.
        let keyed: HMAC<SHA256>
    }

    private let current = Mutex<Entry?>(nil)
    private let lastTimestamp = Mutex<(second: Int64, text: String)?>(nil)

    /// The `X-Amz-Date` text, formatted once per second.
    func timestamp(_ date: Date) -> String {
        let second = Int64(date.timeIntervalSince1970.rounded(.down))
        if let cached = lastTimestamp.withLock({ $0 }), cached.second == second { return cached.text }
        let text = SigV4Signer.timestamp(date)
        lastTimestamp.withLock { $0 = (second, text) }
        return text
    }

    func entry(for day: String) -> Entry? {
        current.withLock { $0?.day == day ? $0 : nil }
    }

    func store(_ key: SymmetricKey, for day: String) {
        current.withLock { $0 = Entry(day: day, key: key, keyed: HMAC(key: key)) }
    }
}
