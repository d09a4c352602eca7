import Hummingbird
import OnboardingCore

/// A tenant's API keys: create another, list them (prefix and dates only), revoke one.
struct ApiKeyController: Sendable {
    let apiKeys: ApiKeys
    /// `Idempotency-Key` on `POST /tenants/{tenantId}/api-keys`.
    let idempotency: Idempotency

    var routes: [Route] {
        [
            Route(.post, "/tenants/{tenantId}/api-keys", access: .ownTenant, handler: create),
            Route(.get, "/tenants/{tenantId}/api-keys", access: .ownTenant, handler: list),
            Route(.delete, "/tenants/{tenantId}/api-keys/{keyId}", access: .ownTenant, handler: revoke),
        ]
    }

    @Sendable func create(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try TenantController.tenantID(context)
        // The request takes no body; an Idempotency-Key's fingerprint covers whatever was sent.
        let bytes = try await request.body.collect(upTo: context.maxUploadSize)
        return try await idempotency.respond(to: request, context: context, body: bytes) { completion in
            var created: StoredResponse?
            let issued = try await apiKeys.issue(for: tenantId) { issued in
                // Built before the transaction commits: the idempotency record holds it.
                let response = Self.created(issued)
                created = response
                return try completion?.write(response)
            }
            return created ?? Self.created(issued)
        }
    }

    /// The `201` of a new key: the key text shown this once.
    static func created(_ issued: IssuedApiKey) -> StoredResponse {
        StoredResponse.json(
            .created, APIRepresentation.issuedApiKey(issued), headers: [.location: "/tenants/\(issued.key.tenantId.rawValue)/api-keys/\(issued.key.keyId)"]
        )
    }

    /// The query parameters the listing accepts.
    static let listParameters: Set<String> = ["limit", "cursor"]

    @Sendable func list(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try TenantController.tenantID(context)
        let query = try ListingQuery(request, accepts: Self.listParameters, maxPageSize: ApiKeys.maxPageSize, usage: "this listing takes limit and cursor")
        let page = try await apiKeys.list(tenantId, limit: query.limit, cursor: query.cursor)
        var body: [String: AttributeValue] = ["apiKeys": .list(page.keys.map { .map(APIRepresentation.apiKey($0)) })]
        if let next = page.nextCursor { body["nextCursor"] = .string(next) }
        return JSONBody.response(.ok, body)
    }

    @Sendable func revoke(_ request: Request, context: AppRequestContext) async throws -> Response {
        let tenantId = try TenantController.tenantID(context)
        guard let keyId = context.parameters.get("keyId"), keyId.count == 16, keyId.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
            throw OnboardingError(.apiKeyNotFound, "no such key")
        }
        try await apiKeys.revoke(keyId, of: tenantId)
        return Response(status: .noContent)
    }
}
