import Foundation
import HTTPTypes
import OnboardingCore
import OnboardingHTTP
import Yams

/// Checks HTTP responses against the OpenAPI document the server serves.
///
/// Every response the HTTP tests receive goes through ``violations(method:path:status:headers:body:)``:
/// its path and method must be documented (or be the documented 404/405), its status listed for
/// the operation, its required headers present and well-formed, its content type documented, and
/// its body valid against the schema (JSON Schema 2020-12, the subset the document uses).
final class OpenAPIValidator: @unchecked Sendable {
    /// Immutable after init, hence `@unchecked Sendable`.
    private let root: [String: Any]

    static let shared: OpenAPIValidator = {
        let text = String(decoding: OpenAPIDocument.bytes, as: UTF8.self)
        guard let root = (try? Yams.load(yaml: text)) as? [String: Any] else {
            fatalError("openapi.yaml does not parse as a YAML mapping")
        }
        return OpenAPIValidator(root: root)
    }()

    init(root: [String: Any]) {
        self.root = root
    }

    var paths: [String: [String: Any]] { root["paths"] as? [String: [String: Any]] ?? [:] }

    /// Every documented operation as `METHOD path`.
    var operations: Set<String> {
        var result = Set<String>()
        for (path, item) in paths {
            for method in item.keys where ["get", "put", "post", "delete", "patch", "head", "options"].contains(method) {
                result.insert("\(method.uppercased()) \(path)")
            }
        }
        return result
    }

    /// The documented path template a concrete path matches (`/tenants/abc` → `/tenants/{tenantId}`).
    func template(for path: String) -> String? {
        let segments = Self.segments(path)
        return paths.keys.first { template in
            let parts = Self.segments(template)
            guard parts.count == segments.count else { return false }
            return zip(parts, segments).allSatisfy { part, segment in part.hasPrefix("{") || part == segment }
        }
    }

    private static func segments(_ path: String) -> [Substring] {
        let withoutQuery = path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        return withoutQuery.split(separator: "/", omittingEmptySubsequences: true)
    }

    /// What is wrong with this response according to the document; empty when it conforms.
    func violations(method: HTTPRequest.Method, path: String, status: Int, headers: HTTPFields, body: [UInt8]) -> [String] {
        let where_ = "\(method.rawValue) \(path) → \(status)"
        guard let template = template(for: path), let item = paths[template] else {
            guard status == 404 else { return ["\(where_): undocumented path answered \(status), expected 404"] }
            return check(responseNamed: "RouteNotFound", headers: headers, body: body, isHead: method == .head, where_)
        }
        var operationKey = method.rawValue.lowercased()
        if method == .head, item["head"] == nil, item["get"] != nil { operationKey = "get" }
        guard let operation = item[operationKey] as? [String: Any] else {
            guard status == 405 else { return ["\(where_): undocumented method answered \(status), expected 405"] }
            return check(responseNamed: "MethodNotAllowed", headers: headers, body: body, isHead: method == .head, where_)
        }
        guard let responses = operation["responses"] as? [String: Any], let response = responses[String(status)] else {
            return ["\(where_): status \(status) is not documented for \(method.rawValue) \(template)"]
        }
        return check(response: resolve(response), headers: headers, body: body, isHead: method == .head, where_)
    }

    private func check(responseNamed name: String, headers: HTTPFields, body: [UInt8], isHead: Bool, _ where_: String) -> [String] {
        check(response: resolve(["$ref": "#/components/responses/\(name)"]), headers: headers, body: body, isHead: isHead, where_)
    }

    private func check(response: [String: Any], headers: HTTPFields, body: [UInt8], isHead: Bool, _ where_: String) -> [String] {
        var problems: [String] = []
        for (name, rawHeader) in response["headers"] as? [String: Any] ?? [:] {
            let header = resolve(rawHeader)
            guard let fieldName = HTTPField.Name(name), let value = headers[fieldName] else {
                if header["required"] as? Bool == true { problems.append("\(where_): required header \(name) is missing") }
                continue
            }
            if let schema = header["schema"] {
                problems += validate(.string(value), against: schema, at: "header \(name)").map { "\(where_): \($0)" }
            }
        }
        guard let content = response["content"] as? [String: Any] else {
            if !body.isEmpty { problems.append("\(where_): a body was sent where none is documented") }
            return problems
        }
        let contentType = headers[.contentType]?.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
        guard let media = content[contentType] as? [String: Any] else {
            return problems + ["\(where_): content type '\(contentType)' is not one of \(content.keys.sorted())"]
        }
        if isHead { return problems }
        if contentType.hasSuffix("json") {
            do {
                let value = try JSONCodec.parse(body)
                if let schema = media["schema"] {
                    problems += validate(value, against: schema, at: "body").map { "\(where_): \($0)" }
                }
            } catch {
                problems.append("\(where_): the body is not JSON: \(error)")
            }
        } else if contentType.hasSuffix("yaml") {
            if (try? Yams.load(yaml: String(decoding: body, as: UTF8.self))) == nil {
                problems.append("\(where_): the body is not YAML")
            }
        }
        return problems
    }

    /// Follows a local `$ref` (`#/components/...`).
    func resolve(_ node: Any) -> [String: Any] {
        guard let object = node as? [String: Any] else { return [:] }
        guard let reference = object["$ref"] as? String else { return object }
        precondition(reference.hasPrefix("#/"), "only local references are supported: \(reference)")
        var current: Any = root
        for part in reference.dropFirst(2).split(separator: "/") {
            guard let next = (current as? [String: Any])?[String(part)] else {
                preconditionFailure("unresolvable reference \(reference)")
            }
            current = next
        }
        return resolve(current)
    }

    /// Validates a JSON value against a JSON Schema (the keywords openapi.yaml uses).
    func validate(_ value: AttributeValue, against rawSchema: Any, at path: String) -> [String] {
        let schema = resolve(rawSchema)
        var problems: [String] = []
        if let all = schema["allOf"] as? [Any] {
            for sub in all { problems += validate(value, against: sub, at: path) }
        }
        if let any = schema["anyOf"] as? [Any], !any.contains(where: { validate(value, against: $0, at: path).isEmpty }) {
            problems.append("\(path) matches none of anyOf")
        }
        if let type = schema["type"] {
            let types = (type as? [String]) ?? [(type as? String) ?? ""]
            if !types.contains(where: { Self.matches(value, type: $0) }) {
                return problems + ["\(path) should be \(types.joined(separator: " or ")), is \(value.typeDescription)"]
            }
        }
        if let constant = schema["const"], Self.attributeValue(constant) != value {
            problems.append("\(path) should be \(constant)")
        }
        if let options = schema["enum"] as? [Any], !options.contains(where: { Self.attributeValue($0) == value }) {
            problems.append("\(path) should be one of \(options)")
        }
        switch value {
        case .string(let string):
            if let pattern = schema["pattern"] as? String, string.range(of: pattern, options: .regularExpression) == nil {
                problems.append("\(path) '\(string)' does not match \(pattern)")
            }
            if let min = schema["minLength"] as? Int, string.unicodeScalars.count < min { problems.append("\(path) is shorter than \(min)") }
            if let max = schema["maxLength"] as? Int, string.unicodeScalars.count > max { problems.append("\(path) is longer than \(max)") }
            if schema["format"] as? String == "date-time",
                string.range(of: #"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$"#, options: .regularExpression) == nil
            {
                problems.append("\(path) '\(string)' is not an RFC 3339 date-time")
            }
        case .number(let text):
            let number = Double(text) ?? .nan
            if let min = schema["minimum"] as? Int, number < Double(min) { problems.append("\(path) is below \(min)") }
            if let max = schema["maximum"] as? Int, number > Double(max) { problems.append("\(path) is above \(max)") }
        case .list(let elements):
            if let min = schema["minItems"] as? Int, elements.count < min { problems.append("\(path) has fewer than \(min) items") }
            if let items = schema["items"] {
                for (index, element) in elements.enumerated() { problems += validate(element, against: items, at: "\(path)[\(index)]") }
            }
        case .map(let members):
            for name in schema["required"] as? [String] ?? [] where members[name] == nil {
                problems.append("\(path).\(name) is required")
            }
            let properties = schema["properties"] as? [String: Any] ?? [:]
            if let names = schema["propertyNames"] {
                for name in members.keys { problems += validate(.string(name), against: names, at: "\(path) (member name)") }
            }
            for (name, member) in members {
                if let property = properties[name] {
                    problems += validate(member, against: property, at: "\(path).\(name)")
                } else if let additional = schema["additionalProperties"] {
                    if additional as? Bool == false {
                        problems.append("\(path).\(name) is not a documented property")
                    } else if additional is [String: Any] {
                        problems += validate(member, against: additional, at: "\(path).\(name)")
                    }
                }
            }
        case .bool, .null:
            break
        }
        return problems
    }

    private static func matches(_ value: AttributeValue, type: String) -> Bool {
        switch (type, value) {
        case ("string", .string), ("boolean", .bool), ("null", .null), ("array", .list), ("object", .map), ("number", .number):
            true
        case ("integer", .number(let text)):
            Int(text) != nil
        default:
            false
        }
    }

    private static func attributeValue(_ yaml: Any) -> AttributeValue? {
        switch yaml {
        case let string as String: .string(string)
        case let bool as Bool: .bool(bool)
        case let int as Int: .int(int)
        default: nil
        }
    }
}
