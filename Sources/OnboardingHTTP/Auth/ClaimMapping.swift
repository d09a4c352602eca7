import Foundation
import OnboardingCore

/// Which claims of a verified identity token make a ``Principal``: shared by ``JWTVerifier``
/// (tokens this service verifies itself) and ``BearerAuthenticator`` (claims an API Gateway
/// Cognito authorizer already verified), so both map a token the same way.
///
/// - A member of ``adminGroup`` (listed in the ``groupsClaim``) is the admin.
/// - Otherwise the ``tenantClaim`` names the tenant (a tenant id, any letter case).
/// - A token with neither names no principal and is refused (`401`).
///
/// Cognito puts custom attributes (`custom:tenantId`) in ID tokens only, never in access
/// tokens: tenants authenticate with their ID token; admins may use either (both carry
/// `cognito:groups`).
public struct ClaimMapping: Sendable, Hashable {
    /// The claim holding the tenant id. Default `custom:tenantId` (the Cognito user attribute `tenantId`).
    public var tenantClaim: String
    /// The claim listing the user's groups (an array of strings). Default `cognito:groups`.
    public var groupsClaim: String
    /// The group whose members are the admin. Default `admin`.
    public var adminGroup: String

    /// A mapping; the defaults are Cognito's claims with the `admin` group.
    public init(tenantClaim: String = "custom:tenantId", groupsClaim: String = "cognito:groups", adminGroup: String = "admin") {
        self.tenantClaim = tenantClaim
        self.groupsClaim = groupsClaim
        self.adminGroup = adminGroup
    }

    /// What a verified token's claims amount to.
    public enum Outcome: Sendable, Hashable {
        /// The admin (a member of the admin group) or the tenant the tenant claim names.
        case principal(Principal)
        /// Neither in the admin group nor naming a tenant.
        case none
        /// The tenant claim is there but is not a tenant id.
        case invalidTenant
    }

    /// Maps the groups and tenant claim of a verified token. Admin membership wins over a tenant claim.
    public func outcome(groups: [String], tenant: String?) -> Outcome {
        if groups.contains(adminGroup) { return .principal(.admin) }
        guard let tenant, !tenant.isEmpty else { return .none }
        guard let id = TenantID(tenant) else { return .invalidTenant }
        return .principal(.tenant(id))
    }

    /// Maps claims as API Gateway passes them: every value a string, a list of groups arriving as
    /// `admin`, `admin,other` or `[admin other]`.
    public func outcome(authorizerClaims claims: [String: String]) -> Outcome {
        let groups = claims[groupsClaim].map { text in
            text.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "[" || $0 == "]" }).map(String.init)
        } ?? []
        return outcome(groups: groups, tenant: claims[tenantClaim]?.trimmingCharacters(in: .whitespaces))
    }

    /// The `401` detail for a verified token that names no principal (no token content is echoed).
    func refusal(_ outcome: Outcome) -> String {
        switch outcome {
        case .invalidTenant:
            "The token's \(tenantClaim) claim is not a tenant id"
        default:
            "The token names no tenant (claim \(tenantClaim)) and is not in the \(adminGroup) group; tenants authenticate with their ID token"
        }
    }
}
