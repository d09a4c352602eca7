import Foundation
import HTTPTypes
import InMemoryLogging
import JWTKit
import Logging
import OnboardTestSupport
import OnboardingCore
import OnboardingHTTP
import Synchronization
import Testing

/// A clock the test moves.
private final class TestClock: Sendable {
    private let current = Mutex(Date())
    var now: Date { current.withLock { $0 } }
    func advance(seconds: Double) { current.withLock { $0 += seconds } }
}

/// Onboards a client anonymously and returns its tenant id.
private func onboardTenant(_ api: APIClient, _ name: String) async throws -> String {
    let created = try await api.onboard(#"{"clientName": "\#(name)", "clientPhone": "+1234567890"}"#)
    return try #require(created["tenantId"])
}

private func bearer(_ token: String) -> HTTPFields { [.authorization: "Bearer \(token)"] }

@Suite("OIDC / Cognito JWT authentication (tokens from moto's Cognito)", .testStoreAvailable)
struct JWTAuthTests {
    @Test("a tenant's ID token reads its own tenant and gets 404 for another; admin-group tokens read both", .requires(.moto))
    func tenantAndAdminTokens() async throws {
        let cognito = try await CognitoFixture.make()
        try await TestServer.run(oidc: cognito) { api, fixture in
            let tenantA = try await onboardTenant(api, "Tenant A")
            let tenantB = try await onboardTenant(api, "Tenant B")
            let tokensA = try await cognito.tokens(forTenant: tenantA)
            let admin = try await cognito.adminTokens()

            let own = try await api.tenant(tenantA, token: tokensA.idToken)
            #expect(own.status == 200)
            #expect(own["tenantId"] == tenantA)
            #expect(own["clientName"] == "Tenant A")
            let other = try await api.tenant(tenantB, token: tokensA.idToken)
            #expect(other.status == 404, "another tenant is answered exactly as an unknown one")
            #expect(!other.text.contains("Tenant B"))
            let uppercase = try await api.tenant(tenantA, token: try await cognito.idToken(forTenant: tenantA.uppercased()))
            #expect(uppercase.status == 200, "the tenant claim is a tenant id in any letter case")

            let list = try await api.send(.get, "/tenants", headers: bearer(tokensA.idToken))
            #expect(list.status == 403, "listing tenants is for the admin")

            for token in [admin.idToken, admin.accessToken] {
                #expect(try await api.tenant(tenantA, token: token).status == 200)
                #expect(try await api.tenant(tenantB, token: token).status == 200)
                #expect(try await api.send(.get, "/tenants", headers: bearer(token)).status == 200)
            }

            // Cognito access tokens carry no custom attributes: a tenant's access token names
            // no tenant, and the answer says to use the ID token.
            let access = try await api.tenant(tenantA, token: tokensA.accessToken)
            #expect(access.status == 401)
            #expect(access.headers[.wwwAuthenticate] == #"Bearer realm="onboard", error="invalid_token""#)
            #expect(access["detail"]?.contains("ID token") == true, "\(access.text)")

            // The other credentials still work beside JWTs.
            #expect(try await api.tenant(tenantA).status == 200, "the admin token")
            for token in [tokensA.idToken, tokensA.accessToken, admin.idToken, admin.accessToken] {
                #expect(!fixture.logText.contains(token), "no token is logged")
            }
        }
    }

    @Test("a member of the admin group with a tenant attribute is the admin", .requires(.moto))
    func adminWinsOverTenant() async throws {
        let cognito = try await CognitoFixture.make()
        try await TestServer.run(oidc: cognito) { api, _ in
            let tenantA = try await onboardTenant(api, "Tenant A")
            let tenantB = try await onboardTenant(api, "Tenant B")
            let user = try await cognito.createUser(tenant: tenantA, admin: true)
            let tokens = try await cognito.signIn(username: user.username, password: user.password)
            #expect(try await api.tenant(tenantB, token: tokens.idToken).status == 200)
        }
    }

    @Test("token_use can be limited to ID tokens", .requires(.moto))
    func idTokensOnly() async throws {
        let cognito = try await CognitoFixture.make()
        let verifier = JWTVerifier(configuration: cognito.verifierConfiguration(tokenUses: [.id]))
        try await TestServer.run(jwtVerifier: verifier) { api, _ in
            let tenant = try await onboardTenant(api, "Tenant A")
            let admin = try await cognito.adminTokens()
            #expect(try await api.tenant(tenant, token: admin.idToken).status == 200)
            let access = try await api.tenant(tenant, token: admin.accessToken)
            #expect(access.status == 401)
            #expect(access["detail"]?.contains("token_use") == true)
        }
    }

    /// A token that must be refused, and a phrase of the detail saying why.
    struct Attack: Sendable, CustomTestStringConvertible {
        let name: String
        let detail: String
        let make: @Sendable (CognitoFixture, _ tenant: String, _ otherTenant: String) async throws -> String
        var testDescription: String { name }
    }

    static let attacks: [Attack] = [
        Attack(name: "alg none, no signature", detail: "signing algorithm") { cognito, tenant, _ in
            let real = try await cognito.idToken(forTenant: tenant)
            return try await CognitoFixture.sign(
                header: ["alg": "none", "typ": "JWT", "kid": "dummy"], claims: try CognitoFixture.claims(of: real), with: .none
            )
        },
        Attack(name: "alg None with the real signature", detail: "signing algorithm") { cognito, tenant, _ in
            let real = try await cognito.idToken(forTenant: tenant)
            let parts = real.split(separator: ".")
            let header = CognitoFixture.base64URL(Data(#"{"alg":"None","kid":"dummy","typ":"JWT"}"#.utf8))
            return "\(header).\(parts[1]).\(parts[2])"
        },
        Attack(name: "HS256 keyed with the JWKS modulus", detail: "signing algorithm") { cognito, tenant, _ in
            let real = try await cognito.idToken(forTenant: tenant)
            return try await CognitoFixture.sign(
                header: ["alg": "HS256", "typ": "JWT", "kid": "dummy"], claims: try CognitoFixture.claims(of: real),
                with: .hmacSHA256(secret: Array(try CognitoFixture.motoPublicModulus().utf8))
            )
        },
        Attack(name: "HS256 keyed with the public key's PEM", detail: "signing algorithm") { cognito, tenant, _ in
            let real = try await cognito.idToken(forTenant: tenant)
            let pem = try Insecure.RSA.PublicKey(modulus: try CognitoFixture.motoPublicModulus(), exponent: "AQAB").pemRepresentation
            return try await CognitoFixture.sign(
                header: ["alg": "HS256", "typ": "JWT", "kid": "dummy"], claims: try CognitoFixture.claims(of: real),
                with: .hmacSHA256(secret: Array(pem.utf8))
            )
        },
        Attack(name: "RS512 (not allowed) with RS256 signature bytes", detail: "signing algorithm") { cognito, tenant, _ in
            let real = try await cognito.idToken(forTenant: tenant)
            let parts = real.split(separator: ".")
            let header = CognitoFixture.base64URL(Data(#"{"alg":"RS512","kid":"dummy","typ":"JWT"}"#.utf8))
            return "\(header).\(parts[1]).\(parts[2])"
        },
        Attack(name: "expired (signed by moto's key)", detail: "expired") { cognito, tenant, _ in
            try await cognito.expiredIdToken(forTenant: tenant)
        },
        Attack(name: "no exp (signed by moto's key)", detail: "expired") { cognito, tenant, _ in
            try await cognito.resign(try await cognito.idToken(forTenant: tenant)) { $0["exp"] = nil }
        },
        Attack(name: "nbf 10 minutes ahead (signed by moto's key)", detail: "not valid yet") { cognito, tenant, _ in
            try await cognito.resign(try await cognito.idToken(forTenant: tenant)) { $0["nbf"] = Int(Date().timeIntervalSince1970) + 600 }
        },
        Attack(name: "wrong issuer (signed by moto's key)", detail: "issuer") { cognito, tenant, _ in
            try await cognito.resign(try await cognito.idToken(forTenant: tenant)) {
                $0["iss"] = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_someotherpool"
            }
        },
        Attack(name: "issuer with a trailing slash (exact match only)", detail: "issuer") { cognito, tenant, _ in
            try await cognito.resign(try await cognito.idToken(forTenant: tenant)) { $0["iss"] = cognito.issuer + "/" }
        },
        Attack(name: "ID token of another app client (real)", detail: "client") { cognito, tenant, _ in
            try await cognito.tokens(forTenant: tenant, clientId: try await cognito.makeOtherClient()).idToken
        },
        Attack(name: "admin access token of another app client (real)", detail: "client") { cognito, _, _ in
            let user = try await cognito.createUser(tenant: nil, admin: true)
            return try await cognito.signIn(username: user.username, password: user.password, clientId: try await cognito.makeOtherClient()).accessToken
        },
        Attack(name: "ID token whose aud is the client id in client_id only", detail: "client") { cognito, tenant, _ in
            try await cognito.resign(try await cognito.idToken(forTenant: tenant)) { claims in
                claims["client_id"] = claims["aud"]
                claims["aud"] = "another-client"
            }
        },
        Attack(name: "token_use refresh (signed by moto's key)", detail: "token_use") { cognito, tenant, _ in
            try await cognito.resign(try await cognito.idToken(forTenant: tenant)) { $0["token_use"] = "refresh" }
        },
        Attack(name: "unknown kid (signed by moto's key)", detail: "not signed with a key") { cognito, tenant, _ in
            let real = try await cognito.idToken(forTenant: tenant)
            return try await CognitoFixture.sign(
                header: ["alg": "RS256", "typ": "JWT", "kid": "rotated-\(UUID().uuidString)"], claims: try CognitoFixture.claims(of: real),
                with: .motoKey
            )
        },
        Attack(name: "no kid", detail: "kid") { cognito, tenant, _ in
            let real = try await cognito.idToken(forTenant: tenant)
            return try await CognitoFixture.sign(header: ["alg": "RS256", "typ": "JWT"], claims: try CognitoFixture.claims(of: real), with: .motoKey)
        },
        Attack(name: "tampered payload: another tenant id, original signature", detail: "signature") { cognito, tenant, other in
            try CognitoFixture.tamper(try await cognito.idToken(forTenant: tenant)) { $0[CognitoFixture.tenantClaim] = other }
        },
        Attack(name: "tampered payload: added to the admin group, original signature", detail: "signature") { cognito, tenant, _ in
            try CognitoFixture.tamper(try await cognito.idToken(forTenant: tenant)) { $0[CognitoFixture.groupsClaim] = [CognitoFixture.adminGroup] }
        },
        Attack(name: "signature stripped", detail: "signature") { cognito, tenant, _ in
            let real = try await cognito.idToken(forTenant: tenant)
            return String(real[...real.lastIndex(of: ".")!])
        },
        Attack(name: "valid token with an invalid tenant id (signed by moto's key)", detail: "not a tenant id") { cognito, tenant, _ in
            try await cognito.resign(try await cognito.idToken(forTenant: tenant)) { $0[CognitoFixture.tenantClaim] = "../\(tenant)" }
        },
        Attack(name: "header that is not JSON", detail: "well-formed") { _, _, _ in
            "bm90IGpzb24.eyJzdWIiOiJ4In0.c2ln"
        },
    ]

    @Test("attacks are answered 401 problem+json naming the failed check, never echoing the token", .requires(.moto), arguments: attacks)
    func attack(_ attack: Attack) async throws {
        let cognito = try await CognitoFixture.make()
        try await TestServer.run(oidc: cognito) { api, fixture in
            let tenant = try await onboardTenant(api, "Victim Corp")
            let other = try await onboardTenant(api, "Other Corp")
            let token = try await attack.make(cognito, tenant, other)
            for id in [tenant, other] {
                let response = try await api.tenant(id, token: token)
                #expect(response.status == 401)
                #expect(response["code"] == "unauthorized")
                #expect(response.headers[.contentType] == "application/problem+json")
                #expect(response.headers[.wwwAuthenticate] == #"Bearer realm="onboard", error="invalid_token""#)
                #expect(response["detail"]?.contains(attack.detail) == true, "\(response["detail"] ?? "")")
                #expect(!response.text.contains("Corp"), "nothing of a tenant leaks")
                #expect(!response.text.contains(token) && !response.text.contains(String(token.split(separator: ".").first ?? "")))
            }
            // Rejected on public routes as well, like every bad credential.
            #expect(try await api.send(.get, "/health", headers: bearer(token)).status == 401)
            #expect(!fixture.logText.contains(token), "the token is not logged")
        }
    }

    @Test("an unknown kid refetches the JWKS at most once per 30 seconds", .requires(.moto))
    func unknownKidIsRateLimited() async throws {
        let cognito = try await CognitoFixture.make()
        let clock = TestClock()
        let verifier = JWTVerifier(configuration: cognito.verifierConfiguration(), now: { clock.now })
        try await TestServer.run(jwtVerifier: verifier) { api, fixture in
            let tenant = try await onboardTenant(api, "Tenant A")
            let real = try await cognito.idToken(forTenant: tenant)
            #expect(try await api.tenant(tenant, token: real).status == 200)
            #expect(await verifier.jwksFetchCount == 1)

            let claims = try CognitoFixture.claims(of: real)
            func randomKid() async throws -> String {
                try await CognitoFixture.sign(
                    header: ["alg": "RS256", "typ": "JWT", "kid": UUID().uuidString], claims: claims, with: .motoKey
                )
            }
            for _ in 0..<20 {
                #expect(try await api.tenant(tenant, token: try await randomKid()).status == 401)
            }
            #expect(await verifier.jwksFetchCount == 1, "20 made-up kids within 30 s fetch nothing")

            clock.advance(seconds: 31)
            #expect(try await api.tenant(tenant, token: try await randomKid()).status == 401)
            #expect(await verifier.jwksFetchCount == 2, "after 30 s an unknown kid may refetch once (key rotation)")
            for _ in 0..<5 {
                #expect(try await api.tenant(tenant, token: try await randomKid()).status == 401)
            }
            #expect(await verifier.jwksFetchCount == 2)
            #expect(try await api.tenant(tenant, token: real).status == 200, "known keys keep working")
            #expect(await verifier.jwksFetchCount == 2)
            _ = fixture
        }
    }

    @Test("concurrent first requests share one JWKS fetch", .requires(.moto))
    func concurrentFetchesCoalesce() async throws {
        let cognito = try await CognitoFixture.make()
        let admin = try await cognito.adminIdToken()
        let verifier = JWTVerifier(configuration: cognito.verifierConfiguration())
        let principals = try await withThrowingTaskGroup(of: Principal?.self) { group in
            for _ in 0..<16 {
                group.addTask { try await verifier.principal(for: admin) }
            }
            return try await group.reduce(into: [Principal?]()) { $0.append($1) }
        }
        #expect(principals.count == 16)
        #expect(principals.allSatisfy { $0 == .admin })
        #expect(await verifier.jwksFetchCount == 1)
    }

    @Test(
        "when the JWKS cannot be fetched, JWTs are refused with 401 (no crash, no token in the logs) and the fetch is retried later",
        .requires(.moto)
    )
    func jwksUnavailable() async throws {
        let cognito = try await CognitoFixture.make()
        let clock = TestClock()
        var configuration = cognito.verifierConfiguration()
        configuration.jwksURL = "http://127.0.0.1:\(try MotoServer.freePort())/\(cognito.userPoolId)/.well-known/jwks.json"
        let logs = InMemoryLogHandler()
        let verifier = JWTVerifier(configuration: configuration, logger: Logger(label: "onboard.jwt", factory: { _ in logs }), now: { clock.now })
        try await TestServer.run(jwtVerifier: verifier) { api, fixture in
            let tenant = try await onboardTenant(api, "Tenant A")
            let token = try await cognito.idToken(forTenant: tenant)
            let response = try await api.tenant(tenant, token: token)
            #expect(response.status == 401)
            #expect(response["detail"]?.contains("signing keys could not be fetched") == true)
            #expect(try await api.tenant(tenant, token: token).status == 401)
            #expect(await verifier.jwksFetchCount == 1, "a failed fetch is not retried at once")
            clock.advance(seconds: 6)
            #expect(try await api.tenant(tenant, token: token).status == 401)
            #expect(await verifier.jwksFetchCount == 2, "it is retried 5 s later")
            let verifierLog = logs.entries.map { "\($0.level) \($0.message) \($0.metadata)" }.joined(separator: "\n")
            #expect(verifierLog.contains("error cannot fetch the OIDC issuer's JWKS"))
            #expect(!verifierLog.contains(token) && !fixture.logText.contains(token))
            #expect(try await api.tenant(tenant).status == 200, "the admin token does not depend on the JWKS")
        }
    }

    @Test("tokens that are not JWTs are left to the other verifiers", .requires(.moto))
    func notJWTs() async throws {
        let cognito = try await CognitoFixture.make()
        let verifier = JWTVerifier(configuration: cognito.verifierConfiguration())
        for token in ["abc", "onb_0123456789abcdef_secret", "a.b", "a.b.c.d", ".b.c", "a..c", "a b.c.d", "a+b.c.d", "a.b/c.d", TestServer.adminToken] {
            #expect(try await verifier.principal(for: token) == nil, "\(token)")
        }
        #expect(await verifier.jwksFetchCount == 0, "no fetch for tokens that are not JWTs")
        await #expect(throws: (any Error).self) { try await verifier.principal(for: "a.b.c") }
        try await TestServer.run(oidc: cognito) { api, _ in
            let created = try await api.onboard(#"{"clientName": "Key Corp", "clientPhone": "+1234567890"}"#)
            let id = try #require(created["tenantId"])
            let key = try #require(created["apiKey"])
            #expect(try await api.tenant(id, token: key).status == 200, "tenant API keys still work with OIDC on")
        }
    }

    @Test("claims map to principals the same way for JWTs and API Gateway authorizer claims")
    func claimMapping() {
        let tenant = "0195f3c4-7a1e-7b2c-9d3e-4f5a6b7c8d9e"
        let mapping = ClaimMapping()
        #expect(mapping.outcome(groups: ["admin"], tenant: nil) == .principal(.admin))
        #expect(mapping.outcome(groups: ["staff", "admin"], tenant: tenant) == .principal(.admin))
        #expect(mapping.outcome(groups: [], tenant: tenant.uppercased()) == .principal(.tenant(TenantID(tenant)!)))
        #expect(mapping.outcome(groups: ["administrators"], tenant: nil) == .none)
        #expect(mapping.outcome(groups: [], tenant: "not-a-uuid") == .invalidTenant)
        let cognito = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc"
        func rest(_ strings: [String: String], lists: [String: [String]] = [:]) -> AuthorizerClaims {
            AuthorizerClaims(format: .restAPI, strings: strings, lists: lists)
        }
        func http(_ strings: [String: String]) -> AuthorizerClaims { AuthorizerClaims(format: .httpAPI, strings: strings) }
        #expect(mapping.outcome(authorizerClaims: http(["cognito:groups": "[support admin]", "iss": cognito])) == .principal(.admin))
        #expect(mapping.outcome(authorizerClaims: http(["cognito:groups": "[support admin]"])) == .none)
        #expect(mapping.outcome(authorizerClaims: http(["cognito:groups": "[x,admin support]", "iss": cognito])) == .none)
        #expect(mapping.outcome(authorizerClaims: rest(["cognito:groups": "admin"])) == .principal(.admin))
        #expect(mapping.outcome(authorizerClaims: rest(["cognito:groups": "x,admin"])) == .none)
        #expect(mapping.outcome(authorizerClaims: rest([:], lists: ["cognito:groups": ["x", "admin"]])) == .principal(.admin))
        #expect(mapping.outcome(authorizerClaims: rest([:], lists: ["cognito:groups": ["x,admin"]])) == .none)
        #expect(mapping.outcome(authorizerClaims: rest(["cognito:groups": "support", "custom:tenantId": tenant])) == .principal(.tenant(TenantID(tenant)!)))
        #expect(mapping.outcome(authorizerClaims: rest(["cognito:groups": "x,admin", "custom:tenantId": tenant])) == .principal(.tenant(TenantID(tenant)!)))
        #expect(mapping.outcome(authorizerClaims: rest(["sub": "u"])) == .none)

        let custom = ClaimMapping(tenantClaim: "tid", groupsClaim: "roles", adminGroup: "ops")
        #expect(custom.outcome(authorizerClaims: rest(["roles": "ops"])) == .principal(.admin))
        #expect(custom.outcome(authorizerClaims: rest(["roles": "ops,dev"])) == .none)
        #expect(custom.outcome(authorizerClaims: rest(["cognito:groups": "admin"])) == .none)
        #expect(custom.outcome(authorizerClaims: rest(["tid": tenant])) == .principal(.tenant(TenantID(tenant)!)))
    }
}
