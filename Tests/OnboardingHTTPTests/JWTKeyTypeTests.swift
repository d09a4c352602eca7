import Foundation
import Hummingbird
import HummingbirdTesting
import JWTKit
import NIOCore
import OnboardTestSupport
import OnboardingCore
import OnboardingHTTP
import Testing

/// An issuer other than Cognito (which signs RS256 only): ES256 keys, mixed key types and a
/// symmetric key in the JWKS, served by a local HTTP server.
@Suite("JWT verification with ES256 and mixed JWKS key types")
struct JWTKeyTypeTests {
    static let issuer = "https://issuer.example"
    static let tenant = "0195f3c4-7a1e-7b2c-9d3e-4f5a6b7c8d9e"

    /// A compact JWT signed by `algorithm` (`nil`: no signature).
    func token(header: [String: Any], claims: [String: Any], signer: (any JWTAlgorithm)?) throws -> String {
        let input =
            CognitoFixture.base64URL(try JSONSerialization.data(withJSONObject: header))
            + "." + CognitoFixture.base64URL(try JSONSerialization.data(withJSONObject: claims))
        let signature = try signer?.sign(Array(input.utf8)) ?? []
        return input + "." + CognitoFixture.base64URL(Data(signature))
    }

    func claims(_ changes: [String: Any] = [:]) -> [String: Any] {
        let now = Int(Date().timeIntervalSince1970)
        var claims: [String: Any] = [
            "iss": Self.issuer, "aud": "client-1", "token_use": "id", "iat": now, "exp": now + 600, "custom:tenantId": Self.tenant,
        ]
        claims.merge(changes) { $1 }
        return claims
    }

    @Test("ES256 tokens verify against an EC key; a key of the wrong type, or a symmetric one, never does", .requires(.moto))
    func es256AndKeyTypes() async throws {
        let ecKey = ES256PrivateKey()
        let parameters = try #require(ecKey.parameters)
        let signers = JWTKeyCollection()
        await signers.add(ecdsa: ecKey, kid: "ec-1")
        let ecSigner = try await signers.getKey(for: "ec-1")
        // An RSA key to sign with: moto's (the test needs moto's package, not its server).
        let rsaJWK = try CognitoFixture.motoPrivateJWK()
        let rsaSigners = JWTKeyCollection()
        try await rsaSigners.add(jwk: try JSONDecoder().decode(JWK.self, from: Data(rsaJWK.utf8)))
        let motoRSA = try await rsaSigners.getKey(for: "dummy")
        let jwks: [String: Any] = [
            "keys": [
                ["kty": "EC", "crv": "P-256", "kid": "ec-1", "x": parameters.x, "y": parameters.y, "use": "sig", "alg": "ES256"],
                ["kty": "RSA", "kid": "rsa-1", "n": try CognitoFixture.motoPublicModulus(), "e": "AQAB", "use": "sig", "alg": "RS256"],
                ["kty": "RSA", "kid": "rsa-enc", "n": try CognitoFixture.motoPublicModulus(), "e": "AQAB", "use": "enc"],
                ["kty": "oct", "kid": "oct-1", "k": CognitoFixture.base64URL(Data("a-shared-secret-of-32-bytes-long".utf8))],
            ]
        ]
        let body = try JSONSerialization.data(withJSONObject: jwks)
        let router = Router()
        router.get("/jwks.json") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
        }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let verifier = JWTVerifier(configuration: .init(
                issuer: Self.issuer, jwksURL: "http://127.0.0.1:\(client.port ?? 0)/jwks.json", clientIDs: ["client-1"]
            ))
            let expected = Principal.tenant(try #require(TenantID(Self.tenant)))

            let es256 = try token(header: ["alg": "ES256", "kid": "ec-1", "typ": "JWT"], claims: claims(), signer: ecSigner)
            #expect(try await verifier.principal(for: es256) == expected)
            let rs256 = try token(header: ["alg": "RS256", "kid": "rsa-1", "typ": "JWT"], claims: claims(), signer: motoRSA)
            #expect(try await verifier.principal(for: rs256) == expected)
            #expect(await verifier.jwksFetchCount == 1)

            let refused: [(String, String)] = [
                // An RS256 header naming the EC key, and the other way round.
                (try token(header: ["alg": "RS256", "kid": "ec-1"], claims: claims(), signer: motoRSA), "not signed with a key"),
                (try token(header: ["alg": "ES256", "kid": "rsa-1"], claims: claims(), signer: ecSigner), "not signed with a key"),
                // Keys for encryption and symmetric keys are not signing keys of the issuer.
                (try token(header: ["alg": "RS256", "kid": "rsa-enc"], claims: claims(), signer: motoRSA), "not signed with a key"),
                (try token(header: ["alg": "ES256", "kid": "oct-1"], claims: claims(), signer: ecSigner), "not signed with a key"),
                // A tampered ES256 token.
                (try CognitoFixture.tamper(es256) { $0["custom:tenantId"] = "0195f3c4-7a1e-7b2c-9d3e-000000000000" }, "signature"),
                // ES384 is not on the allow-list.
                (try token(header: ["alg": "ES384", "kid": "ec-1"], claims: claims(), signer: ecSigner), "signing algorithm"),
                // Audience checks without token_use: issuers other than Cognito need tokenUses nil.
                (try token(header: ["alg": "ES256", "kid": "ec-1"], claims: claims(["token_use": NSNull()]), signer: ecSigner), "token_use"),
            ]
            for (token, detail) in refused {
                do {
                    _ = try await verifier.principal(for: token)
                    Issue.record("accepted a token that must be refused (\(detail))")
                } catch let problem as Problem {
                    #expect(problem.status == .unauthorized)
                    #expect(problem.detail.contains(detail), "\(problem.detail)")
                    #expect(!problem.detail.contains(token))
                }
            }
        }
    }
}
