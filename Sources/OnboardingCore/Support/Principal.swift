/// Who is calling, as established by authentication.
///
/// Authorisation decisions are made on this value alone, in one place (the HTTP layer's route
/// table). Tenant principals (API keys, JWTs) join as further cases.
public enum Principal: Sendable, Hashable, CustomStringConvertible {
    /// The operator of this deployment: may read and manage every tenant.
    case admin

    public var description: String {
        switch self {
        case .admin: "admin"
        }
    }
}
