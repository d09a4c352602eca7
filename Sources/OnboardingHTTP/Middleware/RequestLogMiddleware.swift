import Hummingbird
import Logging

/// One log line per request, written when the response is ready:
/// `method`, `route` (the route template, never the raw path, so ids and typos stay out of
/// logs), `status`, `duration_ms` and the request id. Headers and bodies are never logged.
public struct RequestLogMiddleware: RouterMiddleware {
    public typealias Context = AppRequestContext

    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        let elapsed = ContinuousClock.now - start
        let microseconds = elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000
        context.logger.info(
            "request",
            metadata: [
                "method": .string(request.method.rawValue),
                "route": .string(Self.routeTemplate(context.endpointPath)),
                "status": .string(String(response.status.code)),
                "duration_ms": .string(Self.milliseconds(microseconds)),
            ]
        )
        return response
    }

    /// `/tenants/:tenantId` → `/tenants/{tenantId}`, as in the OpenAPI document.
    static func routeTemplate(_ endpointPath: String?) -> String {
        guard let endpointPath, endpointPath.hasPrefix("/") else { return "(unmatched)" }
        return endpointPath.split(separator: "/", omittingEmptySubsequences: false).map { segment in
            segment.hasPrefix(":") ? "{\(segment.dropFirst())}" : String(segment)
        }.joined(separator: "/")
    }

    /// Microseconds as milliseconds with three decimals.
    static func milliseconds(_ microseconds: Int64) -> String {
        let fraction = String(microseconds % 1000)
        return "\(microseconds / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }
}
