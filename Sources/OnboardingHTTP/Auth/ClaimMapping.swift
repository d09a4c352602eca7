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

    /// Maps claims as an API Gateway authorizer passes them (``AuthorizerClaims``). Group names
    /// match exactly; a list that arrived as one string and could be split more than one way
    /// never makes the admin (see ``AuthorizerClaims/groups(in:)``), though its tenant claim
    /// still counts.
    public func outcome(authorizerClaims claims: AuthorizerClaims) -> Outcome {
        let groups = claims.groups(in: groupsClaim)
        let tenant = claims[tenantClaim]?.trimmingCharacters(in: .whitespaces)
        if !groups.exact, groups.names.contains(adminGroup) {
            return outcome(groups: [], tenant: tenant)
        }
        return outcome(groups: groups.names, tenant: tenant)
    }

    /// Whether the groups claim names the admin group only in a string that can be split more
    /// than one way (`support,admin` may be one group): the claims then never make the admin,
    /// but the token itself, verified by this service, may (its groups are a JSON array).
    public func adminGroupIsAmbiguous(in claims: AuthorizerClaims) -> Bool {
        let groups = claims.groups(in: groupsClaim)
        return !groups.exact && groups.names.contains(adminGroup)
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

/// The claims an API Gateway authorizer verified, in the form its payload format passes them.
///
/// - A REST API (payload 1.0) Cognito user-pool authorizer passes every claim as a string; a
///   list such as `cognito:groups` arrives comma-joined: `["a", "b"]` as `a,b`.
/// - An HTTP API (payload 2.0) JWT authorizer passes every claim as a string; a list arrives
///   bracketed and space-separated: `["a", "b"]` as `[a b]`.
/// - A REST API JWT authorizer passes each claim with its JSON type: a list is a JSON array
///   (``lists``), read exactly.
public struct AuthorizerClaims: Sendable, Hashable {
    /// Which payload format the string claims came in (how a list was turned into a string).
    public enum Format: Sendable, Hashable {
        /// REST API (1.0): lists comma-joined.
        case restAPI
        /// HTTP API (2.0): lists as `[a b]`.
        case httpAPI
    }

    /// How lists were turned into strings.
    public var format: Format
    /// Claims passed as strings (scalars rendered as text).
    public var strings: [String: String]
    /// Claims passed as JSON arrays: their string elements.
    public var lists: [String: [String]]

    /// Claims of one event.
    public init(format: Format, strings: [String: String], lists: [String: [String]] = [:]) {
        self.format = format
        self.strings = strings
        self.lists = lists
    }

    /// No authorizer (the HTTP server: clients can never set claims).
    public static let none = AuthorizerClaims(format: .restAPI, strings: [:])

    /// Whether there are no claims at all.
    public var isEmpty: Bool { strings.isEmpty && lists.isEmpty }

    /// A claim passed as a string.
    public subscript(name: String) -> String? { strings[name] }

    /// The group names of list claim `name`, and whether they are exact.
    ///
    /// A JSON array is exact. A list passed as a string is exact when it holds one name
    /// (`admin`, `[admin]`). Several names are exact only when no name can hold the separator:
    /// Cognito group names never hold whitespace (pattern `[\p{L}\p{M}\p{S}\p{N}\p{P}]+`), so
    /// `[a b]` from a Cognito user pool (an `iss` of `https://cognito-idp.<region>.amazonaws.com/…`)
    /// is exact; they may hold commas and brackets, so `a,b` never is (`a,b` may be one group
    /// named `a,b`), and neither is `[a b]` from another issuer (one group named `a b`).
    public func groups(in name: String) -> (names: [String], exact: Bool) {
        if let list = lists[name] { return (list, true) }
        guard let text = strings[name], !text.isEmpty else { return ([], true) }
        switch format {
        case .restAPI:
            let names = text.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            return (names, names.count == 1)
        case .httpAPI:
            guard text.count >= 2, text.first == "[", text.last == "]" else { return ([text], true) }
            let names = text.dropFirst().dropLast().split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            if names.count <= 1 { return (names.filter { !$0.isEmpty }, true) }
            return (names, Self.isCognitoIssuer(strings["iss"]))
        }
    }

    /// Whether `issuer` is a Cognito user pool's (`https://cognito-idp.<region>.amazonaws.com/<pool id>`).
    static func isCognitoIssuer(_ issuer: String?) -> Bool {
        guard let issuer, issuer.hasPrefix("https://cognito-idp.") else { return false }
        let rest = issuer.dropFirst("https://cognito-idp.".count)
        guard let slash = rest.firstIndex(of: "/") else { return false }
        let host = rest[..<slash]
        return (host.hasSuffix(".amazonaws.com") || host.hasSuffix(".amazonaws.com.cn")) && !host.contains("@")
            && rest[rest.index(after: slash)...].allSatisfy { $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }
    }
}
