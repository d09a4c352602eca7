import Foundation
import Logging
import OnboardingHTTP
import SigV4

extension Setting {
    public static let oidcIssuer = Setting(key: "oidc_issuer", isSecret: false)
    public static let oidcJWKSURL = Setting(key: "oidc_jwks_url", isSecret: false)
    public static let oidcClientIDs = Setting(key: "oidc_client_ids", isSecret: false)
    public static let oidcTenantClaim = Setting(key: "oidc_tenant_claim", isSecret: false)
    public static let oidcAdminGroupClaim = Setting(key: "oidc_admin_group_claim", isSecret: false)
    public static let oidcAdminGroup = Setting(key: "oidc_admin_group", isSecret: false)
    public static let oidcTokenUse = Setting(key: "oidc_token_use", isSecret: false)
    public static let oidcJWKSMaxAge = Setting(key: "oidc_jwks_max_age", isSecret: false)
    public static let oidcJWKSGrace = Setting(key: "oidc_jwks_grace", isSecret: false)

    public static let oidc: [Setting] = [
        .oidcIssuer, .oidcJWKSURL, .oidcClientIDs, .oidcTenantClaim, .oidcAdminGroupClaim, .oidcAdminGroup, .oidcTokenUse,
        .oidcJWKSMaxAge, .oidcJWKSGrace,
    ]
}

/// OIDC / Cognito JWT authentication: off unless the issuer is set.
///
/// The claim names apply also to claims an API Gateway Cognito authorizer verified (Lambda), so
/// they can be set without an issuer; the issuer's own settings (JWKS URL, client ids, token
/// use) cannot.
public struct OIDCConfiguration: Sendable {
    /// How verified claims make a principal (JWTs and API Gateway authorizer claims alike).
    public var claims = ClaimMapping()
    /// The JWT verifier's settings; `nil` when no issuer is configured.
    public var verifier: JWTVerifier.Configuration?

    public init() {}

    public static func resolve(_ settings: SettingsReader) throws(ConfigurationError) -> OIDCConfiguration {
        var configuration = OIDCConfiguration()
        if let (claim, source) = settings.read(.oidcTenantClaim) {
            configuration.claims.tenantClaim = try name(claim, source: source, what: "a claim name")
        }
        if let (claim, source) = settings.read(.oidcAdminGroupClaim) {
            configuration.claims.groupsClaim = try name(claim, source: source, what: "a claim name")
        }
        if let (group, source) = settings.read(.oidcAdminGroup) {
            configuration.claims.adminGroup = try name(group, source: source, what: "a group name")
        }

        guard let (issuer, issuerSource) = settings.read(.oidcIssuer) else {
            for setting in [Setting.oidcJWKSURL, .oidcClientIDs, .oidcTokenUse, .oidcJWKSMaxAge, .oidcJWKSGrace] {
                if let (_, source) = settings.read(setting) {
                    throw ConfigurationError(
                        description: "invalid \(source): it needs \(Setting.oidcIssuer.flag) / \(Setting.oidcIssuer.environmentVariable) (OIDC is off without an issuer)"
                    )
                }
            }
            return configuration
        }
        try checkURL(issuer, source: issuerSource, what: "the issuer's URL (https://cognito-idp.<region>.amazonaws.com/<poolId>)")

        var jwksURL: String?
        if let (url, source) = settings.read(.oidcJWKSURL) {
            try checkURL(url, source: source, what: "the URL of the issuer's JWKS")
            jwksURL = url
        }

        guard let (list, listSource) = settings.read(.oidcClientIDs) else {
            throw ConfigurationError(
                description: "invalid \(issuerSource): OIDC needs the app client ids too (\(Setting.oidcClientIDs.flag) / \(Setting.oidcClientIDs.environmentVariable))"
            )
        }
        let clientIDs = list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        guard !clientIDs.isEmpty else {
            throw ConfigurationError(description: "invalid \(listSource): expected a comma-separated list of app client ids")
        }
        for id in clientIDs {
            guard id.utf8.count <= 256, id.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F }) else {
                throw ConfigurationError(description: "invalid \(listSource) '\(list)': a client id is printable ASCII without spaces")
            }
        }

        var tokenUses: Set<JWTVerifier.TokenUse>? = [.id, .access]
        if let (text, source) = settings.read(.oidcTokenUse) {
            let words = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }.filter { !$0.isEmpty }
            if words == ["any"] {
                tokenUses = nil
            } else {
                let parsed = words.compactMap(JWTVerifier.TokenUse.init(rawValue:))
                guard !words.isEmpty, parsed.count == words.count else {
                    throw ConfigurationError(description: "invalid \(source) '\(text)': expected id, access, id,access, or any (no token_use check)")
                }
                tokenUses = Set(parsed)
            }
        }

        // How long fetched signing keys are used: refreshed in the background after the maximum
        // age, no longer trusted after the grace period more without a successful fetch.
        func keyDuration(_ setting: Setting, default value: Duration, minimum: Int64) throws(ConfigurationError) -> Duration {
            guard let (text, source) = settings.read(setting) else { return value }
            guard let duration = ServeConfiguration.parseDuration(text), duration >= .seconds(minimum), duration <= .seconds(7 * 24 * 3600) else {
                throw ConfigurationError(description: "invalid \(source) '\(text)': expected a duration from \(minimum)s to 604800s (7 days), e.g. 3600s")
            }
            return duration
        }
        let maximumKeyAge = try keyDuration(.oidcJWKSMaxAge, default: JWTVerifier.Configuration.defaultMaximumKeyAge, minimum: 60)
        let keyGracePeriod = try keyDuration(.oidcJWKSGrace, default: JWTVerifier.Configuration.defaultKeyGracePeriod, minimum: 0)

        configuration.verifier = JWTVerifier.Configuration(
            issuer: issuer, jwksURL: jwksURL, clientIDs: Set(clientIDs), tokenUses: tokenUses, claims: configuration.claims,
            maximumKeyAge: maximumKeyAge, keyGracePeriod: keyGracePeriod
        )
        return configuration
    }

    private static func name(_ text: String, source: String, what: String) throws(ConfigurationError) -> String {
        guard !text.isEmpty, text.utf8.count <= 128, text.unicodeScalars.allSatisfy({ $0.value > 0x20 && $0.value < 0x7F && $0 != "," }) else {
            throw ConfigurationError(description: "invalid \(source) '\(text)': expected \(what) (printable ASCII, no spaces or commas)")
        }
        return text
    }

    /// The issuer and its JWKS decide which tokens are trusted: `https://`, or plain `http://`
    /// only to this machine (a local test issuer; ``EndpointURLRule``).
    private static func checkURL(_ text: String, source: String, what: String) throws(ConfigurationError) {
        guard let url = URL(string: text), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host?.isEmpty == false,
            url.query == nil, url.fragment == nil
        else {
            throw ConfigurationError(description: "invalid \(source) '\(EndpointURLRule.redacted(text))': expected \(what), an https:// URL without query or fragment")
        }
        if let problem = EndpointURLRule.problem(with: text) {
            throw ConfigurationError(description: "invalid \(source) '\(EndpointURLRule.redacted(text))': \(problem)")
        }
    }

    /// The verifiers OIDC adds: a ``JWTVerifier`` when an issuer is configured.
    public func verifiers(logger: Logger) -> [any CredentialVerifier] {
        verifier.map { [JWTVerifier(configuration: $0, logger: logger)] } ?? []
    }

    /// The line `serve` prints at start.
    public var summary: String {
        guard let verifier else { return "oidc: off (--oidc-issuer / ONBOARD_OIDC_ISSUER turns it on)" }
        let uses = verifier.tokenUses.map { $0.map(\.rawValue).sorted().joined(separator: ",") } ?? "any"
        return "oidc: issuer \(verifier.issuer), JWKS \(verifier.jwksURL), clients \(verifier.clientIDs.sorted().joined(separator: ",")), token_use \(uses)"
    }
}
