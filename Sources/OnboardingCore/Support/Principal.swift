/// Who is calling, as established by authentication.
///
/// Authorisation decisions are made on this value alone, in one place (the HTTP layer's route
/// table). No principal at all is the anonymous caller.
public enum Principal: Sendable, Hashable, CustomStringConvertible {
    /// The operator of this deployment: may read and manage every tenant.
    case admin
    /// A tenant (through one of its API keys, or a JWT naming it): may act on its own data only.
    case tenant(TenantID)

    public var description: String {
        switch self {
        case .admin: "admin"
        case .tenant(let id): "tenant \(id)"
        }
    }
}

/// SHA-256, given to the domain by the layer that has a crypto library (Core imports Foundation only).
public protocol SecretHasher: Sendable {
    /// Lower-case hex SHA-256 of the UTF-8 bytes of `secret`.
    func sha256Hex(_ secret: String) -> String
}
