import Hummingbird
import OnboardingCore

/// Who may call a route: the authorisation policy. Each entry of the route table carries one,
/// and ``Route`` checks it before the handler runs, for the HTTP server and Lambda alike.
///
/// | access | anonymous | a tenant | the admin |
/// |---|---|---|---|
/// | `anyone` | yes | yes | yes |
/// | `admin` | 401 | 403 | yes |
/// | `ownTenant` | 401 | its own `{tenantId}` only; another's is 404 | yes |
///
/// Another tenant's data answers 404, exactly as a tenant that does not exist, so a caller learns
/// nothing about tenants it cannot see.
public enum Access: Sendable, Hashable, CustomStringConvertible {
    /// Anyone, authenticated or not.
    case anyone
    /// Only the admin.
    case admin
    /// The tenant named by the path's `{tenantId}`, or the admin.
    case ownTenant

    /// Throws `401` when the route needs a caller and there is none, `403` or `404` when the
    /// caller may not.
    func authorize(_ principal: Principal?, parameters: Parameters) throws {
        switch self {
        case .anyone:
            return
        case .admin:
            guard let principal else {
                throw Problem.unauthorized("This route needs the admin's credentials: 'Authorization: Bearer <token>'", invalidToken: false)
            }
            guard principal == .admin else { throw Problem.forbidden("This route is for the admin only") }
        case .ownTenant:
            guard let principal else {
                throw Problem.unauthorized("This route needs the tenant's API key (or a token naming it): 'Authorization: Bearer <key>'", invalidToken: false)
            }
            guard case .tenant(let tenantId) = principal else { return }  // the admin
            let requested = parameters.get("tenantId").flatMap(TenantID.init)
            guard requested == tenantId else {
                throw Problem.tenantNotFound(TenantController.notFoundDetail)
            }
        }
    }

    public var description: String {
        switch self {
        case .anyone: "anyone"
        case .admin: "admin"
        case .ownTenant: "the tenant itself, or the admin"
        }
    }
}
