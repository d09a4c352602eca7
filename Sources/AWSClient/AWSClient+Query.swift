import Foundation

extension AWSClient {
    /// One Query-protocol call (SNS, SQS's old protocol, STS): `Action`, `Version` and the
    /// parameters form-encoded in a signed `POST /`, with the same retries as
    /// ``jsonCall(endpoint:signingName:target:contentType:body:)``.
    /// - Parameters:
    ///   - endpoint: the service's base URL (`https://sns.eu-west-1.amazonaws.com`, a moto URL, …).
    ///   - signingName: the service name in the signature scope (`sns`).
    ///   - action: the operation (`Publish`).
    ///   - version: the API version (`2010-03-31` for SNS).
    ///   - parameters: the operation's parameters in their flattened Query names
    ///     (`MessageAttributes.entry.1.Name`), in the order given.
    /// - Returns: the XML body of a 2xx answer (read it with ``QueryXML``).
    /// - Throws: ``AWSServiceError`` for an error answer (its XML `<Code>` and `<Message>`),
    ///   after retries for retryable ones; ``AWSTransportError`` when no answer came.
    public func queryCall(endpoint: String, signingName: String, action: String, version: String, parameters: [(String, String)]) async throws -> [UInt8] {
        let body = QueryForm.encode([("Action", action), ("Version", version)] + parameters)
        return try await call(
            endpoint: endpoint, signingName: signingName, operation: action,
            headers: [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")], body: Array(body.utf8)
        )
    }
}

/// `application/x-www-form-urlencoded` as botocore writes it (Python's `urlencode`): spaces as
/// `+`, every other byte but the unreserved ones (`A-Z a-z 0-9 - _ . ~`) percent-encoded. AWS
/// signs the body's bytes, so `%20` would do there too; but moto checks a signature against the
/// form it re-encodes this way, and then only this spelling matches.
enum QueryForm {
    static func encode(_ parameters: [(String, String)]) -> String {
        parameters.map { "\(percentEncode($0.0))=\(percentEncode($0.1))" }.joined(separator: "&")
    }

    static func percentEncode(_ text: String) -> String {
        var encoded = ""
        encoded.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                encoded.unicodeScalars.append(Unicode.Scalar(byte))
            case UInt8(ascii: " "):
                encoded.unicodeScalars.append("+")
            default:
                let hex = Array("0123456789ABCDEF".unicodeScalars)
                encoded.unicodeScalars.append("%")
                encoded.unicodeScalars.append(hex[Int(byte >> 4)])
                encoded.unicodeScalars.append(hex[Int(byte & 0x0F)])
            }
        }
        return encoded
    }
}

/// A small, tolerant reader of the XML that Query-protocol services answer: the text of named
/// elements, wherever they are. Enough for the few fields this project reads (`MessageId`,
/// `TopicArn`, an error's `Code` and `Message`); not a general XML parser (no CDATA, no
/// namespaces prefixes, no nesting of an element in itself).
public enum QueryXML {
    /// The text of the first element `name` (with or without attributes), its escapes decoded;
    /// `nil` when there is none. An empty element (`<name/>`) is the empty text.
    public static func text(of name: String, in xml: String) -> String? {
        texts(of: name, in: xml, limit: 1).first
    }

    /// The texts of every element `name`, in document order.
    public static func texts(of name: String, in xml: String) -> [String] {
        texts(of: name, in: xml, limit: .max)
    }

    private static func texts(of name: String, in xml: String, limit: Int) -> [String] {
        var found: [String] = []
        var searchFrom = xml.startIndex
        let opening = "<\(name)"
        while found.count < limit, let start = xml.range(of: opening, range: searchFrom..<xml.endIndex) {
            // The tag's name must end here (`<MessageId>`, `<MessageId a="b">`, `<MessageId/>`),
            // not continue (`<MessageIdList>`).
            guard let next = xml[start.upperBound...].first, next == ">" || next == "/" || next == " " || next == "\t" || next == "\n" || next == "\r",
                let tagEnd = xml.range(of: ">", range: start.upperBound..<xml.endIndex)
            else {
                searchFrom = start.upperBound
                continue
            }
            if xml[xml.index(before: tagEnd.lowerBound)] == "/" {
                found.append("")
                searchFrom = tagEnd.upperBound
                continue
            }
            guard let close = xml.range(of: "</\(name)>", range: tagEnd.upperBound..<xml.endIndex) else { break }
            found.append(unescape(xml[tagEnd.upperBound..<close.lowerBound]))
            searchFrom = close.upperBound
        }
        return found
    }

    /// XML's five named entities and numeric character references decoded.
    public static func unescape(_ text: Substring) -> String {
        guard text.contains("&") else { return String(text) }
        var result = ""
        var rest = text[...]
        while let ampersand = rest.firstIndex(of: "&") {
            result += rest[..<ampersand]
            guard let semicolon = rest[ampersand...].firstIndex(of: ";"), rest.distance(from: ampersand, to: semicolon) <= 10 else {
                result += "&"
                rest = rest[rest.index(after: ampersand)...]
                continue
            }
            let entity = rest[rest.index(after: ampersand)..<semicolon]
            let decoded: String? =
                switch entity {
                case "lt": "<"
                case "gt": ">"
                case "amp": "&"
                case "quot": "\""
                case "apos": "'"
                default:
                    if entity.hasPrefix("#x") || entity.hasPrefix("#X") {
                        UInt32(entity.dropFirst(2), radix: 16).flatMap(Unicode.Scalar.init).map { String(Character($0)) }
                    } else if entity.hasPrefix("#") {
                        UInt32(entity.dropFirst(), radix: 10).flatMap(Unicode.Scalar.init).map { String(Character($0)) }
                    } else {
                        nil
                    }
                }
            if let decoded {
                result += decoded
                rest = rest[rest.index(after: semicolon)...]
            } else {
                result += "&"
                rest = rest[rest.index(after: ampersand)...]
            }
        }
        result += rest
        return result
    }
}
