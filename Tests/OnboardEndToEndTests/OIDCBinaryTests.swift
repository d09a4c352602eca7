import Foundation
import OnboardTestSupport
import Testing

@Suite("The onboard binary with OIDC / Cognito settings")
struct OIDCBinaryTests {
    static let issuer = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc"

    @Test("invalid OIDC settings exit with code 64 and one line naming the setting", arguments: [
        (["--oidc-issuer", "not a url"], ["ONBOARD_OIDC_CLIENT_IDS": "client"], "--oidc-issuer"),
        ([], ["ONBOARD_OIDC_ISSUER": "ftp://example.com/pool", "ONBOARD_OIDC_CLIENT_IDS": "client"], "ONBOARD_OIDC_ISSUER"),
        (["--oidc-issuer", issuer], [String: String](), "--oidc-issuer"),  // no client ids
        (["--oidc-issuer", issuer, "--oidc-client-ids", " , ,"], [:], "--oidc-client-ids"),
        ([], ["ONBOARD_OIDC_ISSUER": issuer, "ONBOARD_OIDC_CLIENT_IDS": "a b"], "ONBOARD_OIDC_CLIENT_IDS"),
        (["--oidc-issuer", issuer, "--oidc-client-ids", "c", "--oidc-jwks-url", "localhost:5000/jwks"], [:], "--oidc-jwks-url"),
        (["--oidc-issuer", issuer, "--oidc-client-ids", "c", "--oidc-token-use", "refresh"], [:], "--oidc-token-use"),
        (["--oidc-issuer", issuer, "--oidc-client-ids", "c", "--oidc-token-use", ""], [:], "--oidc-token-use"),
        (["--oidc-tenant-claim", ""], [:], "--oidc-tenant-claim"),
        ([], ["ONBOARD_OIDC_ADMIN_GROUP_CLAIM": "has space"], "ONBOARD_OIDC_ADMIN_GROUP_CLAIM"),
        (["--oidc-admin-group", "a,b"], [:], "--oidc-admin-group"),
        (["--oidc-client-ids", "client"], [:], "--oidc-client-ids"),  // no issuer
        ([], ["ONBOARD_OIDC_JWKS_URL": "https://example.com/jwks.json"], "ONBOARD_OIDC_JWKS_URL"),  // no issuer
        // Plain http:// only to this machine.
        (["--oidc-issuer", "http://idp.example.com/pool", "--oidc-client-ids", "c"], [:], "--oidc-issuer"),
        ([], ["ONBOARD_OIDC_ISSUER": "http://10.0.0.7/pool", "ONBOARD_OIDC_CLIENT_IDS": "c"], "ONBOARD_OIDC_ISSUER"),
        (["--oidc-issuer", issuer, "--oidc-client-ids", "c", "--oidc-jwks-url", "http://keys.example.com/jwks.json"], [:], "--oidc-jwks-url"),
        (["--oidc-issuer", issuer, "--oidc-client-ids", "c", "--oidc-jwks-url", "http://127.0.0.1.example.com/jwks"], [:], "--oidc-jwks-url"),
    ])
    func invalidSettings(arguments: [String], environment: [String: String], named: String) async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        var environment = environment
        environment["ONBOARD_DATABASE"] = folder.appendingPathComponent("db.sqlite").path
        let process = try OnboardProcess(["serve", "--port", "0"] + arguments, environment: environment)
        #expect(try await process.waitForExit() == 64)
        let errorLines = process.stderr.lines
        #expect(errorLines.count == 1, "one line: \(errorLines)")
        #expect(errorLines.first?.hasPrefix("onboard: error: invalid \(named)") == true, "\(errorLines)")
        #expect(!process.stdout.text.contains("listening"))
    }

    @Test(
        "serve with a moto Cognito pool: a tenant's ID token reads its tenant, a forged one is refused, no token is printed",
        .requires(.moto)
    )
    func serveWithCognito() async throws {
        let cognito = try await CognitoFixture.make()
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let server = try OnboardProcess(
            ["serve", "--port", "0", "--oidc-issuer", cognito.issuer, "--oidc-jwks-url", cognito.jwksURL],
            environment: [
                "ONBOARD_DATABASE": folder.appendingPathComponent("db.sqlite").path,
                "ONBOARD_OIDC_CLIENT_IDS": "some-other-client, \(cognito.clientId)",
                "ONBOARD_LOG_LEVEL": "debug",
            ]
        )
        let base = try await server.waitUntilListening()
        #expect(server.stdout.lines.contains { $0.hasPrefix("oidc: issuer \(cognito.issuer), JWKS \(cognito.jwksURL)") })
        var tokens: [String] = []
        try await HTTP.with(base) { http in
            let created = try await http.onboard(name: "Binary Corp", phone: "+14155550123")
            let id = try #require(jsonField("tenantId", in: created.body))
            let token = try await cognito.idToken(forTenant: id)
            let forged = try CognitoFixture.tamper(token) { $0["exp"] = 4_000_000_000 }
            tokens = [token, forged]
            #expect(try await http.tenant(id, token: token).status == 200)
            let refused = try await http.tenant(id, token: forged)
            #expect(refused.status == 401)
            #expect(refused.body.contains("signature"))
        }
        _ = try await server.terminate()
        for token in tokens {
            #expect(!server.stdout.text.contains(token) && !server.stderr.text.contains(token), "no token in the output")
        }
    }
}
