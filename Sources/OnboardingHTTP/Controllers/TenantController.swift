import Hummingbird
import Logging
import OnboardingCore

/// `POST /onboard` and the tenant routes.
struct TenantController: Sendable {
    let onboarding: OnboardingService
    let tenants: TenantService

    var routes: [Route] {
        [
            Route(.post, "/onboard", access: .anyone, handler: onboard),
            Route(.get, "/tenants", access: .admin, handler: list),
            Route(.get, "/tenants/{tenantId}", access: .admin, handler: tenant),
        ]
    }

    /// The query parameters `GET /tenants` accepts.
    static let listParameters: Set<String> = ["limit", "order", "cursor"]

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> Response {
        let parameters = request.uri.queryParameters
        var seen = Set<String>()
        for (name, _) in parameters {
            guard Self.listParameters.contains(String(name)) else {
                throw Problem.badRequest("Unknown query parameter '\(name)'; GET /tenants takes limit, order and cursor")
            }
            guard seen.insert(String(name)).inserted else { throw Problem.badRequest("The query parameter '\(name)' is given twice") }
        }
        var limit = 20
        if let text = parameters["limit"] {
            guard let value = Int(text), (1...TenantService.maxPageSize).contains(value) else {
                throw Problem.badRequest("limit must be a whole number from 1 to \(TenantService.maxPageSize)")
            }
            limit = value
        }
        let newestFirst: Bool
        switch parameters["order"] {
        case nil, "newest"?: newestFirst = true
        case "oldest"?: newestFirst = false
        default: throw Problem.badRequest("order must be 'newest' or 'oldest'")
        }
        let page = try await tenants.tenants(limit: limit, cursor: parameters["cursor"].map(String.init), newestFirst: newestFirst)
        var body: [String: AttributeValue] = ["tenants": .list(page.tenants.map { .map(Self.representation($0)) })]
        if let next = page.nextCursor { body["nextCursor"] = .string(next) }
        return JSONBody.response(.ok, body)
    }

    @Sendable func onboard(_ request: Request, context: AppRequestContext) async throws -> Response {
        let body = try await JSONBody.object(request, context: context)
        let tenant = try await onboarding.onboard(OnboardingRequest(json: body))
        context.logger.debug(
            "tenant onboarded",
            metadata: ["tenantId": .string(tenant.id.rawValue), "clientPhone": .string(tenant.clientPhone.masked)]
        )
        return JSONBody.response(
            .created,
            [
                "message": .string("Client onboarded successfully"),
                "tenantId": .string(tenant.id.rawValue),
                "tenant": .map(Self.representation(tenant)),
            ],
            headers: [.location: Self.location(tenant.id)]
        )
    }

    @Sendable func tenant(_ request: Request, context: AppRequestContext) async throws -> Response {
        guard let id = context.parameters.get("tenantId").flatMap(TenantID.init) else {
            throw Problem.tenantNotFound("Tenant ids are UUIDs; no tenant has this one")
        }
        let tenant = try await tenants.tenant(id)
        return JSONBody.response(.ok, Self.representation(tenant))
    }

    static func location(_ id: TenantID) -> String { "/tenants/\(id.rawValue)" }

    /// The tenant as the API shows it (schema `Tenant` in openapi.yaml).
    static func representation(_ tenant: Tenant) -> [String: AttributeValue] {
        [
            "tenantId": .string(tenant.id.rawValue),
            "clientName": .string(tenant.clientName.value),
            "clientPhone": .string(tenant.clientPhone.e164),
            "status": .string(tenant.status.rawValue),
            "createdAt": .string(tenant.createdAt),
            "updatedAt": .string(tenant.updatedAt),
            "version": .int(tenant.version),
        ]
    }
}
