import Foundation
import HTTPTypes
import Hummingbird
import OnboardingCore

/// A tenant's own resources: JSON documents under `/tenants/{tenantId}/resources/{type}/{resourceId}`,
/// with entity tags for optimistic concurrency (`If-Match` → `412`).
struct ResourceController: Sendable {
    let resources: TenantResources

    static let collectionPath = "/tenants/{tenantId}/resources/{type}"
    static let itemPath = "/tenants/{tenantId}/resources/{type}/{resourceId}"

    var routes: [Route] {
        [
            Route(.get, Self.collectionPath, access: .ownTenant, handler: list),
            Route(.get, Self.itemPath, access: .ownTenant, handler: get),
            Route(.put, Self.itemPath, access: .ownTenant, handler: put),
            Route(.delete, Self.itemPath, access: .ownTenant, handler: delete),
        ]
    }

    @Sendable func get(_ request: Request, context: AppRequestContext) async throws -> Response {
        let (tenantId, ref) = try Self.target(context)
        let preconditions = try Self.preconditions(request)
        let resource = try await resources.get(ref, of: tenantId)
        if let ifMatch = preconditions.ifMatch, !ifMatch.matches(resource.etag, weak: false) {
            throw OnboardingError.preconditionFailed(ref, exists: true)
        }
        // A read answers 304 when the client's copy is current (weak comparison, RFC 9110 §13.1.2).
        if let ifNoneMatch = preconditions.ifNoneMatch, ifNoneMatch.matches(resource.etag, weak: true) {
            return Response(status: .notModified, headers: [.eTag: Self.quoted(resource.etag), .cacheControl: "no-store"])
        }
        return JSONBody.response(.ok, Self.representation(resource), headers: [.eTag: Self.quoted(resource.etag)])
    }

    @Sendable func put(_ request: Request, context: AppRequestContext) async throws -> Response {
        let (tenantId, ref) = try Self.target(context)
        let preconditions = try Self.preconditions(request)
        let document = try await JSONBody.object(request, context: context)
        let (resource, created) = try await resources.put(ref, of: tenantId, document: .map(document), preconditions: preconditions)
        var headers: HTTPFields = [.eTag: Self.quoted(resource.etag)]
        if created { headers[.location] = "/tenants/\(tenantId.rawValue)/resources/\(ref.type)/\(ref.resourceId)" }
        return JSONBody.response(created ? .created : .ok, Self.representation(resource), headers: headers)
    }

    @Sendable func delete(_ request: Request, context: AppRequestContext) async throws -> Response {
        let (tenantId, ref) = try Self.target(context)
        try await resources.delete(ref, of: tenantId, preconditions: try Self.preconditions(request))
        return Response(status: .noContent)
    }

    /// The query parameters the listing accepts.
    static let listParameters: Set<String> = ["limit", "cursor"]

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try TenantController.tenantID(context)
        let type = context.parameters.get("type") ?? ""
        let query = try ListingQuery(
            request, accepts: Self.listParameters, maxPageSize: TenantResources.maxPageSize, usage: "this listing takes limit and cursor"
        )
        let page = try await resources.list(type: type, of: tenantId, limit: query.limit, cursor: query.cursor)
        var body: [String: AttributeValue] = ["resources": .list(page.resources.map { .map(Self.representation($0)) })]
        if let next = page.nextCursor { body["nextCursor"] = .string(next) }
        return JSONBody.response(.ok, body)
    }

    static func target(_ context: AppRequestContext) throws -> (TenantID, ResourceRef) {
        let tenantId = try TenantController.tenantID(context)
        let ref = try ResourceRef(type: context.parameters.get("type") ?? "", resourceId: context.parameters.get("resourceId") ?? "")
        return (tenantId, ref)
    }

    /// `If-Match` and `If-None-Match`, each at most once; a malformed one is a `400`, not ignored.
    static func preconditions(_ request: Request) throws -> ResourcePreconditions {
        func header(_ name: HTTPField.Name) throws -> EntityTagList? {
            // An empty field value is no precondition (RFC 9110 §5.6.1: empty list elements are ignored).
            let values = request.headers[values: name].filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
            guard !values.isEmpty else { return nil }
            guard let list = EntityTagList(header: values.joined(separator: ", ")) else {
                throw Problem.badRequest("\(name.rawName) must be * or a list of entity tags such as \"1f2e3d4c5b6a7988\"")
            }
            if case .any = list, values.count > 1 { throw Problem.badRequest("\(name.rawName): * cannot be combined with tags") }
            return list
        }
        return ResourcePreconditions(ifMatch: try header(.ifMatch), ifNoneMatch: try header(.ifNoneMatch))
    }

    static func quoted(_ etag: String) -> String { "\"\(etag)\"" }

    /// A resource as the API shows it.
    static func representation(_ resource: TenantResource) -> [String: AttributeValue] {
        [
            "type": .string(resource.ref.type),
            "resourceId": .string(resource.ref.resourceId),
            "data": resource.document,
            "etag": .string(quoted(resource.etag)),
            "createdAt": .string(resource.createdAt),
            "updatedAt": .string(resource.updatedAt),
        ]
    }
}
