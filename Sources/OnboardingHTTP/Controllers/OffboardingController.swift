import Hummingbird
import Logging
import OnboardingCore

/// `DELETE /tenants/{tenantId}` (admin): starts the tenant's offboarding and hands the rest to the
/// ``OffboardingWorker``.
///
/// Answers `202 Accepted` with the tenant in `OFFBOARDING` (its `ETag`, and `Location` where
/// `GET` shows it `OFFBOARDING` until the worker has deleted every item of its partition (but its
/// events, unless `?purgeEvents=true`) and left the tombstone: `OFFBOARDED`, `offboardedAt`, no
/// name or phone). Repeating the request while it
/// is `OFFBOARDING` answers the same; once it is `OFFBOARDED` it is `409 invalid-transition`.
struct OffboardingController: Sendable {
    let worker: OffboardingWorker

    var routes: [Route] {
        [Route(.delete, "/tenants/{tenantId}", access: .admin, handler: offboard)]
    }

    /// The query parameters `DELETE /tenants/{tenantId}` accepts.
    static let parameters: Set<String> = ["purgeEvents"]

    @Sendable func offboard(_ request: Request, context: AppRequestContext) async throws -> Response {
        let id = try TenantController.tenantID(context)
        let purgeEvents = try Self.purgeEvents(request)
        let tenant = try await worker.offboarding.start(id, purgeEvents: purgeEvents)
        worker.enqueue(id)
        context.logger.info("tenant offboarding started", metadata: ["tenantId": .string(id.rawValue), "purgeEvents": "\(purgeEvents)"])
        var response = TenantController.tenantResponse(tenant, status: .accepted)
        response.headers[.location] = TenantController.location(id)
        return response
    }

    /// `?purgeEvents=true|false` (default `false`: the tenant's events stay as its audit record).
    static func purgeEvents(_ request: Request) throws -> Bool {
        var value: Bool?
        for (name, text) in request.uri.queryParameters {
            guard Self.parameters.contains(String(name)) else {
                throw Problem.badRequest("Unknown query parameter '\(name)'; DELETE /tenants/{tenantId} takes purgeEvents")
            }
            guard value == nil else { throw Problem.badRequest("The query parameter 'purgeEvents' is given twice") }
            switch text {
            case "true": value = true
            case "false": value = false
            default: throw Problem.badRequest("purgeEvents must be 'true' or 'false'")
            }
        }
        return value ?? false
    }
}
