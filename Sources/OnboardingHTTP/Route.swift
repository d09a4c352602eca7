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
