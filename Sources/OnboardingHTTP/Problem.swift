import HTTPTypes
import Logging
import Hummingbird
import OnboardingCore

/// An RFC 9457 problem: the body of every error response (`application/problem+json`).
///
/// ```json
/// {"type": "urn:onboard:problem:validation-error", "code": "validation-error",
///  "title": "Invalid request fields", "status": 422, "detail": "…",
///  "instance": "/onboard", "requestId": "…", "errors": [{"field": "clientPhone", …}]}
/// ```
/// `type` and `code` are stable; `title` is the same for every problem of a type; `detail`
/// explains this occurrence. A problem names the parts of the request it is about (the path in
/// `instance`, an unknown member's name in `field`, a refused media type), each quoted at most
/// ``maxEchoedCharacters`` long, but never repeats a submitted value (a name, a phone number, a
/// token, a document's content).
public struct Problem: Error, Sendable, HTTPResponseError {
    public let status: HTTPResponse.Status
    /// Stable identifier of the problem type, also the last part of `type`.
    public let code: String
    public let title: String
    public let detail: String
    /// For validation problems: one entry per bad field.
    public var errors: [FieldError] = []
    /// Extra response headers (`Allow`, `WWW-Authenticate`, `Retry-After`, …).
    public var headers: HTTPFields = [:]

    public init(_ status: HTTPResponse.Status, code: String, title: String, detail: String) {
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
    }

    /// The problem type URI.
    public var type: String { "urn:onboard:problem:\(code)" }

    /// The most characters of a client's text (a path, a media type) a `detail` quotes.
    public static let maxEchoedCharacters = 100

    /// `text` as a detail quotes it: at most ``maxEchoedCharacters`` characters, then `…`.
    static func echoed(_ text: some StringProtocol) -> String {
        text.count <= maxEchoedCharacters ? String(text) : text.prefix(maxEchoedCharacters) + "…"
    }

    /// The problem as a response, naming the request's path and id.
    public func response(path: String, requestID: String) -> Response {
        var body: [String: AttributeValue] = [
            "type": .string(type),
            "code": .string(code),
            "title": .string(title),
            "status": .int(status.code),
            "detail": .string(detail),
            "instance": .string(path),
            "requestId": .string(requestID),
        ]
        if !errors.isEmpty {
            body["errors"] = .list(errors.map { error in
                .map([
                    "field": .string(error.field),
                    "pointer": .string("/" + error.field),
                    "code": .string(error.code.rawValue),
                    "detail": .string(error.detail),
                ])
            })
        }
        var headers = self.headers
        headers[.contentType] = MediaTypes.problemJSON
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: JSONCodec.serializeBytes(.map(body)))))
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        response(path: request.uri.path, requestID: context.logger[metadataKey: "hb.request.id"]?.description ?? "")
    }
}

extension Problem {
    static func validation(_ error: ValidationError) -> Problem {
        var problem = Problem(
            .unprocessableContent, code: "validation-error", title: "Invalid request fields",
            detail: error.errors.count == 1 ? error.errors[0].detail : "\(error.errors.count) fields are invalid: see errors"
        )
        problem.errors = error.errors
        return problem
    }

    static func malformedJSON(_ error: JSONSyntaxError) -> Problem {
        Problem(.badRequest, code: "malformed-json", title: "Malformed JSON", detail: "The request body is not valid JSON: \(error)")
    }

    static func badRequest(_ detail: String) -> Problem {
        Problem(.badRequest, code: "bad-request", title: "Bad request", detail: detail)
    }

    static func unsupportedMediaType(_ received: String?) -> Problem {
        var problem = Problem(
            .unsupportedMediaType, code: "unsupported-media-type", title: "Unsupported media type",
            detail: received.map { "Send the body as application/json, not \(echoed($0))" } ?? "Send the body as application/json (Content-Type header missing)"
        )
        problem.headers[.acceptPost] = "application/json"
        return problem
    }

    static func tooLarge() -> Problem {
        Problem(
            .contentTooLarge, code: "payload-too-large", title: "Request body too large",
            detail: "The request body must be at most \(AppLimits.maxBodyBytes / 1024) KiB"
        )
    }

    static func routeNotFound(_ path: String) -> Problem {
        Problem(.notFound, code: "route-not-found", title: "No such route", detail: "No route matches \(echoed(path)); see /openapi.yaml")
    }

    static func methodNotAllowed(_ method: HTTPRequest.Method, allowed: [HTTPRequest.Method]) -> Problem {
        let allow = allowed.map(\.rawValue).joined(separator: ", ")
        var problem = Problem(
            .methodNotAllowed, code: "method-not-allowed", title: "Method not allowed",
            detail: "\(method.rawValue) is not allowed here; allowed: \(allow)"
        )
        problem.headers[.allow] = allow
        return problem
    }

    static func unauthorized(_ detail: String, invalidToken: Bool) -> Problem {
        var problem = Problem(.unauthorized, code: "unauthorized", title: "Authentication required", detail: detail)
        problem.headers[.wwwAuthenticate] = invalidToken ? #"Bearer realm="onboard", error="invalid_token""# : #"Bearer realm="onboard""#
        return problem
    }

    static func forbidden(_ detail: String) -> Problem {
        Problem(.forbidden, code: "forbidden", title: "Not allowed", detail: detail)
    }

    static func invalidCursor() -> Problem {
        Problem(
            .badRequest, code: "invalid-cursor", title: "Invalid cursor",
            detail: "A cursor is 1 to 512 characters of A-Z a-z 0-9 - _: pass nextCursor back as it was given"
        )
    }

    static func tenantNotFound(_ detail: String) -> Problem {
        Problem(.notFound, code: "tenant-not-found", title: "Tenant not found", detail: detail)
    }

    static func storeUnavailable() -> Problem {
        var problem = Problem(
            .serviceUnavailable, code: "store-unavailable", title: "Storage unavailable",
            detail: "The tenant store failed or did not answer in time. A write may still have been applied: read before repeating it. Retry later."
        )
        problem.headers[.retryAfter] = "1"
        return problem
    }

    static func internalError() -> Problem {
        Problem(
            .internalServerError, code: "internal-error", title: "Internal error",
            detail: "The server failed to answer; the error is logged with this request id"
        )
    }
}

/// Media types the API speaks.
public enum MediaTypes {
    public static let json = "application/json"
    public static let problemJSON = "application/problem+json"
    public static let yaml = "application/yaml"
}

extension HTTPField.Name {
    static let acceptPost = Self("Accept-Post")!
    static let xRequestID = Self("X-Request-Id")!
}
