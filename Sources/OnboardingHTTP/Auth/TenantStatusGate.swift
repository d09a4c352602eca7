import Hummingbird
import OnboardingCore

/// Lets a tenant's credentials act only while the tenant is `ACTIVE`; runs after authentication.
///
/// For a tenant principal (an API key, or a JWT naming the tenant) it looks at the tenant's
/// status (from the ``CredentialCache`` when read less than a second ago, see there for the
/// bounds; otherwise from the profile):
/// - `SUSPENDED`: `403` problem `tenant-suspended`, on every route (the tenant's data stays as it
///   is; the admin reactivates it);
/// - `OFFBOARDING`, `OFFBOARDED`, or no such tenant: `401`, exactly as a credential that is not
///   valid (same problem, same `WWW-Authenticate`), so a removed tenant's key learns nothing.
///
/// The admin and anonymous callers pass untouched (routes decide what they may do).
struct TenantStatusGate: RouterMiddleware {
    typealias Context = AppRequestContext

    let store: any TenantStore
    let cache: CredentialCache

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard case .tenant(let id)? = context.identity else { return try await next(request, context) }
        let status: TenantStatus?
        if let kept = cache.status(id) {
            status = kept
        } else {
            let ticket = cache.ticket()
            let item = try await store.get(Tenant.key(id))
            status = item?[Tenant.Attribute.status]?.stringValue.flatMap(TenantStatus.init(rawValue:))
            if let status { cache.keep(status, tenant: id, ticket: ticket) }
        }
        try Self.admit(status)
        return try await next(request, context)
    }

    /// Passes an `ACTIVE` tenant; refuses any other status (or none) as described above. Routes
    /// that read the profile anyway check what they read with this too.
    static func admit(_ status: TenantStatus?) throws {
        switch status {
        case .active?:
            return
        case .suspended?:
            throw Problem.tenantSuspended()
        case .offboarding?, .offboarded?, nil:
            // The words BearerAuthenticator uses for a token no verifier accepts.
            throw Problem.unauthorized("The bearer token is not valid", invalidToken: true)
        }
    }
}

extension Problem {
    /// A suspended tenant's credentials, on any route.
    static func tenantSuspended() -> Problem {
        Problem(
            .forbidden, code: "tenant-suspended", title: "Tenant suspended",
            detail: "The tenant is suspended: its API keys and tokens are refused until the admin reactivates it"
        )
    }
}
