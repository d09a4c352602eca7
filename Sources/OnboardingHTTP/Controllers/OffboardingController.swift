import Hummingbird
import Logging
import OnboardingCore

/// `DELETE /tenants/{tenantId}` (admin): starts the tenant's offboarding and hands the rest to the
/// ``OffboardingWorker``.
///
/// Answers `202 Accepted` with the tenant in `OFFBOARDING` (its `ETag`, and `Location` where
/// `GET` shows it `OFFBOARDING` until the worker has deleted every item of its partition and left
/// the tombstone: `OFFBOARDED`, `offboardedAt`, no name or phone). Repeating the request while it
/// is `OFFBOARDING` answers the same; once it is `OFFBOARDED` it is `409 invalid-transition`.
struct OffboardingController: Sendable {
    let worker: OffboardingWorker

    var routes: [Route] {
        [Route(.delete, "/tenants/{tenantId}", access: .admin, handler: offboard)]
    }

    @Sendable func offboard(_ request: Request, context: AppRequestContext) async throws -> Response {
        let id = try TenantController.tenantID(context)
        let tenant = try await worker.offboarding.start(id)
        worker.enqueue(id)
        context.logger.info("tenant offboarding started", metadata: ["tenantId": .string(id.rawValue)])
        var response = TenantController.tenantResponse(tenant, status: .accepted)
        response.headers[.location] = TenantController.location(id)
        return response
    }
}
