import Foundation
import Hummingbird
import NIOCore
import OnboardingCore

/// Reading JSON request bodies and writing JSON responses, with the API's rules:
/// `Content-Type: application/json` (415 otherwise), at most 64 KiB (413), valid JSON (400),
/// an object at the top (400).
enum JSONBody {
    /// The body as a JSON object.
    static func object(_ request: Request, context: AppRequestContext) async throws -> [String: AttributeValue] {
        try requireJSONContentType(request)
        if let length = request.headers[.contentLength].flatMap(Int.init), length > context.maxUploadSize {
            throw Problem.tooLarge()
        }
        let buffer = try await request.body.collect(upTo: context.maxUploadSize)
        let value: AttributeValue
        do {
            value = try JSONCodec.parseUntrusted(buffer.readableBytesView)
        } catch {
            throw Problem.malformedJSON(error)
        }
        guard case .map(let object) = value else {
            throw Problem.badRequest("The request body must be a JSON object, not \(value.typeDescription)")
        }
        return object
    }

    /// `application/json`, with no parameter but an optional `charset=utf-8`.
    static func requireJSONContentType(_ request: Request) throws {
        guard let header = request.headers[.contentType] else { throw Problem.unsupportedMediaType(nil) }
        if header == MediaTypes.json { return }  // the common case, without parsing
        let parts = header.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard parts.first == MediaTypes.json else { throw Problem.unsupportedMediaType(parts.first ?? header) }
        for parameter in parts.dropFirst() where !parameter.isEmpty {
            let charset = parameter.replacingOccurrences(of: "\"", with: "")
            guard charset == "charset=utf-8" || charset == "charset=utf8" else {
                throw Problem.unsupportedMediaType(header)
            }
        }
    }

    /// A JSON response. API responses may carry personal data: never cached.
    static func response(_ status: HTTPResponse.Status, _ body: [String: AttributeValue], headers: HTTPFields = [:]) -> Response {
        var headers = headers
        headers[.contentType] = MediaTypes.json
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: JSONCodec.serializeBytes(.map(body)))))
    }
}
