import Hummingbird
import Logging

/// Gives every request an id: the caller's `X-Request-Id` when it is a sane token, Hummingbird's
/// per-request id otherwise. The id is returned in `X-Request-Id`, put in problem bodies and in every log line
/// of the request (as `hb.request.id`, replacing Hummingbird's own, so a request has one id).
public struct RequestIDMiddleware: RouterMiddleware {
    public typealias Context = AppRequestContext

    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let id: String
        if let given = request.headers[.xRequestID], Self.isAcceptable(given) {
            id = given
            context.logger[metadataKey: "hb.request.id"] = .string(given)
        } else {
            // Hummingbird's own id: a random 64-bit prefix per process and a counter, already
            // in the logger's metadata, so nothing is generated or copied per request.
            id = context.logger[metadataKey: "hb.request.id"]?.description ?? Self.newID()
        }
        context.requestID = id
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
        let words = (generator.next() as UInt64, generator.next() as UInt64)
        return String(unsafeUninitializedCapacity: 32) { buffer in
            for index in 0..<32 {
                let word = index < 16 ? words.0 : words.1
                let nibble = UInt8(truncatingIfNeeded: word >> (4 * (15 - index % 16))) & 0x0F
                buffer[index] = nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "a") + nibble - 10
            }
            return 32
        }
    }
}
