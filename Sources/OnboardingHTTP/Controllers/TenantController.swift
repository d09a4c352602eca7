import Hummingbird
import Logging
import OnboardingCore

/// `POST /onboard` and the tenant routes.
struct TenantController: Sendable {
    /// `.anyone` (open sign-up) or `.admin`.
    let onboardingAccess: Access
    let onboarding: OnboardingService
    let tenants: TenantService
    /// Profile changes, suspension, reactivation (TenantController+Lifecycle.swift).
    let lifecycle: TenantLifecycle
    /// `Idempotency-Key` on `POST /onboard`.
    let idempotency: Idempotency
    /// Reads an `OFFBOARDING` tenant's progress for `GET /tenants/{tenantId}`.
    let offboarding: Offboarding

    var routes: [Route] {
        [
            Route(.post, "/onboard", access: onboardingAccess, handler: onboard),
            Route(.get, "/tenants", access: .admin, handler: list),
            Route(.get, "/tenants/{tenantId}", access: .ownTenant, handler: tenant),
            Route(.patch, "/tenants/{tenantId}", access: .ownTenant, handler: update),
            Route(.post, "/tenants/{tenantId}/suspend", access: .admin, handler: suspend),
            Route(.post, "/tenants/{tenantId}/reactivate", access: .admin, handler: reactivate),
        ]
    }

    /// The query parameters `GET /tenants` accepts.
    static let listParameters: Set<String> = ["limit", "order", "cursor", "status"]

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> Response {
        let query = try ListingQuery(
            request, accepts: Self.listParameters, maxPageSize: TenantService.maxPageSize, usage: "GET /tenants takes limit, order, cursor and status"
        )
        let newestFirst: Bool
        switch query.parameters["order"] {
        case nil, "newest"?: newestFirst = true
        case "oldest"?: newestFirst = false
        default: throw Problem.badRequest("order must be 'newest' or 'oldest'")
        }
        var status: TenantStatus?
        if let text = query.parameters["status"] {
            guard let parsed = TenantStatus(rawValue: String(text)) else {
                throw Problem.badRequest("status must be one of \(TenantStatus.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            status = parsed
        }
        let page = try await tenants.tenants(limit: query.limit, cursor: query.cursor, newestFirst: newestFirst, status: status)
        var body: [String: AttributeValue] = ["tenants": .list(page.tenants.map { .map(APIRepresentation.tenant($0)) })]
        if let next = page.nextCursor { body["nextCursor"] = .string(next) }
        return JSONBody.response(.ok, body)
    }

    @Sendable func onboard(_ request: Request, context: AppRequestContext) async throws -> Response {
        try JSONBody.requireJSONContentType(request)
        // The bytes as received: an Idempotency-Key's fingerprint covers them.
        let bytes = try await request.body.collect(upTo: context.maxUploadSize)
        var request = request
        request.body = .init(buffer: bytes)
        let fields = OnboardingRequest(json: try await JSONBody.object(request, context: context))
        // Invalid fields are refused before any Idempotency-Key is claimed (nothing to replay).
        _ = try fields.validated().get()
        return try await idempotency.respond(to: request, context: context, body: bytes) { completion in
            var created: StoredResponse?
            let onboarded = try await onboarding.onboard(fields) { onboarded in
                // Built before the transaction commits: the idempotency record holds it.
                let response = Self.created(onboarded)
                created = response
                return try completion?.write(response)
            }
            let tenant = onboarded.tenant
            context.logger.debug(
                "tenant onboarded",
                metadata: ["tenantId": .string(tenant.id.rawValue), "clientPhone": .string(tenant.clientPhone?.masked ?? "-")]
            )
            return created ?? Self.created(onboarded)
        }
    }

    /// The `201` of an onboarding.
    static func created(_ onboarded: Onboarded) -> StoredResponse {
        let tenant = onboarded.tenant
        return StoredResponse.json(
            .created,
            [
                "message": .string("Client onboarded successfully"),
                "tenantId": .string(tenant.id.rawValue),
                // Shown this once: only its SHA-256 is kept (and, under an Idempotency-Key, a
                // copy sealed with a key derived from it, for the replay).
                "apiKey": .string(onboarded.apiKey.text),
                "tenant": .map(APIRepresentation.tenant(tenant)),
            ],
            headers: [.location: Self.location(tenant.id)]
        )
    }

    /// The one detail of every tenant-not-found, so unknown and forbidden tenants look alike.
    static let notFoundDetail = "No tenant with this id exists (or it is not yours to see)"

    /// The path's `{tenantId}`; a text that is not one is a tenant that does not exist.
    static func tenantID(_ context: AppRequestContext) throws -> TenantID {
        guard let id = context.parameters.get("tenantId").flatMap(TenantID.init) else { throw Problem.tenantNotFound(notFoundDetail) }
        return id
    }

    @Sendable func tenant(_ request: Request, context: AppRequestContext) async throws -> Response {
        let id = try Self.tenantID(context)
        let tenant = try await tenants.tenant(id)
        // The gate may have admitted the tenant on a status read up to a second ago (another
        // process's suspension not seen yet): what was just read decides.
        if case .tenant? = context.identity { try TenantStatusGate.admit(tenant.status) }
        // Only the admin sees an OFFBOARDING tenant (its own credentials are refused), so the
        // marker's extra read is paid only on that rare answer.
        guard tenant.status == .offboarding else { return Self.tenantResponse(tenant) }
        let itemsDeleted = try await offboarding.progress(id) ?? 0
        return JSONBody.response(.ok, APIRepresentation.tenant(tenant, itemsDeleted: itemsDeleted), headers: [.eTag: Self.etag(tenant)])
    }

    static func location(_ id: TenantID) -> String { "/tenants/\(id.rawValue)" }
}
