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
            Route(.get, "/tenants/{tenantId}", access: .admin, handler: tenant),
        ]
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
