import Hummingbird

/// One entry of the route table: method, path, who may call it, and the handler.
///
/// The table is the single list of what the API serves: ``buildRouter(_:)`` registers it,
/// answers `405` with `Allow` for the other methods of each path, and a test checks that the
/// OpenAPI document describes exactly these operations.
public struct Route: Sendable {
    public typealias Handler = @Sendable (Request, AppRequestContext) async throws -> Response

    public let method: HTTPRequest.Method
    /// The path as OpenAPI writes it: `/tenants/{tenantId}`.
    public let path: String
    public let access: Access
    let handler: Handler

    public init(_ method: HTTPRequest.Method, _ path: String, access: Access, handler: @escaping Handler) {
        self.method = method
        self.path = path
        self.access = access
        self.handler = handler
    }

    /// The path in Hummingbird's syntax: `/tenants/:tenantId`.
    var routerPath: String {
        path.split(separator: "/", omittingEmptySubsequences: false).map { segment in
            segment.hasPrefix("{") && segment.hasSuffix("}") ? ":" + segment.dropFirst().dropLast() : String(segment)
        }.joined(separator: "/")
    }
}

/// The paths of the route table and their methods, to tell `405` (known path, other method)
/// from `404` (unknown path) for any method, `TRACE` and inventions included.
struct KnownPaths: Sendable {
    private let entries: [(segments: [String], methods: [HTTPRequest.Method])]

    init(_ routes: [Route]) {
        var order: [String] = []
        var methods: [String: [HTTPRequest.Method]] = [:]
        for route in routes {
            if methods[route.path] == nil { order.append(route.path) }
            methods[route.path, default: []].append(route.method)
        }
        entries = order.map { path in
            let registered = methods[path]!
            let allowed = registered.contains(.get) && !registered.contains(.head) ? registered + [.head] : registered
            return (Self.segments(path), allowed)
        }
    }

    /// The methods served on `path`, or `nil` when no route has this path.
    func allowedMethods(for path: String) -> [HTTPRequest.Method]? {
        let segments = Self.segments(path)
        return entries.first { entry in
            entry.segments.count == segments.count
                && zip(entry.segments, segments).allSatisfy { template, segment in template.hasPrefix("{") || template == segment }
        }?.methods
    }

    /// Path segments as the router sees them: empty ones (a trailing slash) ignored.
    private static func segments(_ path: String) -> [String] {
        path.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
    }
}
