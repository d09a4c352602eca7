import Hummingbird
import Logging

/// Gives every request an id: the caller's `X-Request-Id` when it is a sane token, a new one
/// otherwise. The id is returned in `X-Request-Id`, put in problem bodies and in every log line
/// of the request (as `hb.request.id`, replacing Hummingbird's own, so a request has one id).
public struct RequestIDMiddleware: RouterMiddleware {
    public typealias Context = AppRequestContext

    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let id = request.headers[.xRequestID].flatMap { Self.isAcceptable($0) ? $0 : nil } ?? Self.newID()
        context.requestID = id
        context.logger[metadataKey: "hb.request.id"] = .string(id)
        var response = try await next(request, context)
        response.headers[.xRequestID] = id
        return response
    }

    /// 1–128 characters of `A–Z a–z 0–9 - _ . : /`: enough for UUIDs, trace ids and the like,
    /// and nothing that could forge a log line or a header.
    static func isAcceptable(_ id: String) -> Bool {
        let utf8 = id.utf8
        guard (1...128).contains(utf8.count) else { return false }
        return utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                true
            case UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: ":"), UInt8(ascii: "/"):
                true
            default:
                false
            }
        }
    }

    /// 128 random bits as 32 hex digits.
    static func newID() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = generator.next() as UInt64
        let low = generator.next() as UInt64
        return hex(high) + hex(low)
    }

    private static func hex(_ value: UInt64) -> String {
        let text = String(value, radix: 16)
        return String(repeating: "0", count: 16 - text.count) + text
    }
}
