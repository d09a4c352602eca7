import ArgumentParser

/// `serve`'s OIDC options (each also an `ONBOARD_OIDC_*` variable).
struct OIDCOptions: ParsableArguments {
    @Option(help: ArgumentHelp(
        "OIDC issuer whose JWTs are accepted, e.g. https://cognito-idp.<region>.amazonaws.com/<poolId> (ONBOARD_OIDC_ISSUER; default: OIDC off).",
        valueName: "url"
    ))
    var oidcIssuer: String?

    @Option(help: ArgumentHelp("The issuer's JWKS (ONBOARD_OIDC_JWKS_URL; default <issuer>/.well-known/jwks.json).", valueName: "url"))
    var oidcJwksUrl: String?

    @Option(help: ArgumentHelp(
        "App client ids tokens must be issued to: the ID token's aud, the access token's client_id (ONBOARD_OIDC_CLIENT_IDS; required with an issuer).",
        valueName: "id,id"
    ))
    var oidcClientIds: String?

    @Option(help: ArgumentHelp("Claim holding the tenant id (ONBOARD_OIDC_TENANT_CLAIM; default custom:tenantId).", valueName: "claim"))
    var oidcTenantClaim: String?

    @Option(help: ArgumentHelp("Claim listing the user's groups (ONBOARD_OIDC_ADMIN_GROUP_CLAIM; default cognito:groups).", valueName: "claim"))
    var oidcAdminGroupClaim: String?

    @Option(help: ArgumentHelp("Group whose members are the admin (ONBOARD_OIDC_ADMIN_GROUP; default admin).", valueName: "group"))
    var oidcAdminGroup: String?

    @Option(help: ArgumentHelp("Accepted token_use: id, access, id,access or any (ONBOARD_OIDC_TOKEN_USE; default id,access).", valueName: "uses"))
    var oidcTokenUse: String?

    @Option(help: ArgumentHelp(
        "Signing keys older than this are refetched in the background, still used meanwhile (ONBOARD_OIDC_JWKS_MAX_AGE; default 3600s).",
        valueName: "duration"
    ))
    var oidcJwksMaxAge: String?

    @Option(help: ArgumentHelp(
        "How long past the maximum age keys stay trusted while refetches fail; then JWTs are refused until a fetch succeeds (ONBOARD_OIDC_JWKS_GRACE; default 3600s).",
        valueName: "duration"
    ))
    var oidcJwksGrace: String?

    var flags: [String: String] {
        [
            Setting.oidcIssuer.key: oidcIssuer, Setting.oidcJWKSURL.key: oidcJwksUrl, Setting.oidcClientIDs.key: oidcClientIds,
            Setting.oidcTenantClaim.key: oidcTenantClaim, Setting.oidcAdminGroupClaim.key: oidcAdminGroupClaim,
            Setting.oidcAdminGroup.key: oidcAdminGroup, Setting.oidcTokenUse.key: oidcTokenUse,
            Setting.oidcJWKSMaxAge.key: oidcJwksMaxAge, Setting.oidcJWKSGrace.key: oidcJwksGrace,
        ].compactMapValues { $0 }
    }
}
