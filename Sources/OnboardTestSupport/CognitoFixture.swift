import AWSClient
import Foundation
import JWTKit
import OnboardingCore
import Synchronization

/// A Cognito user pool on moto's server, set up as the `template.yaml` one is: a custom attribute
/// `tenantId` (claim `custom:tenantId`), an app client allowing `ADMIN_USER_PASSWORD_AUTH`, and an
/// `admin` group. Users are created with `AdminCreateUser` + `AdminSetUserPassword` (permanent)
/// and signed in with `AdminInitiateAuth`, so the tokens are the real ones moto issues.
///
/// For attacks that need a validly signed token with one wrong claim, ``resign(_:modify:)``
/// signs with moto's own private key (shipped in the moto package, `kid` `dummy`), the key its
/// JWKS serves.
public struct CognitoFixture: Sendable {
    public let moto: MotoServer
    public let userPoolId: String
    public let clientId: String
    /// The region of the pool (the tests' AWS client's region), part of the issuer.
    public let region: String

    /// The Cognito attribute holding the tenant id, and the claim it appears as in ID tokens.
    public static let tenantAttribute = "tenantId"
    public static let tenantClaim = "custom:tenantId"
    public static let adminGroup = "admin"
    public static let groupsClaim = "cognito:groups"

    /// The `iss` of the pool's tokens: the real AWS URL (moto does not use its own address).
    public var issuer: String { "https://cognito-idp.\(region).amazonaws.com/\(userPoolId)" }
    /// Where moto serves the pool's JWKS.
    public var jwksURL: String { "\(moto.endpoint)/\(userPoolId)/.well-known/jwks.json" }

    /// A real ID token and access token of one user.
    public struct Tokens: Sendable {
        public let idToken: String
        public let accessToken: String
    }

    /// A new user pool, app client and admin group on `moto` (default: the shared server).
    /// - Throws: ``UnavailableInThisEnvironment`` when moto is not installed.
    public static func make(moto: MotoServer? = nil) async throws -> CognitoFixture {
        let server: MotoServer
        if let moto { server = moto } else { server = try await MotoServer.pooled() }
        let client = TestAWSClients.client()
        let name = "onboard-\(UUID().uuidString.prefix(8).lowercased())"
        let pool = try await call(server, "CreateUserPool", [
            "PoolName": name,
            "Schema": [["Name": tenantAttribute, "AttributeDataType": "String", "Mutable": true]],
        ])
        guard let userPoolId = (pool["UserPool"] as? [String: Any])?["Id"] as? String else {
            throw CognitoFixtureError(description: "CreateUserPool answered no pool id")
        }
        let appClient = try await call(server, "CreateUserPoolClient", [
            "UserPoolId": userPoolId,
            "ClientName": "onboard",
            "ExplicitAuthFlows": ["ALLOW_ADMIN_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        ])
        guard let clientId = (appClient["UserPoolClient"] as? [String: Any])?["ClientId"] as? String else {
            throw CognitoFixtureError(description: "CreateUserPoolClient answered no client id")
        }
        _ = try await call(server, "CreateGroup", ["UserPoolId": userPoolId, "GroupName": adminGroup])
        return CognitoFixture(moto: server, userPoolId: userPoolId, clientId: clientId, region: client.region)
    }

    /// Another app client of the same pool (tokens issued to it have another `aud`/`client_id`).
    public func makeOtherClient() async throws -> String {
        let appClient = try await Self.call(moto, "CreateUserPoolClient", [
            "UserPoolId": userPoolId, "ClientName": "other", "ExplicitAuthFlows": ["ALLOW_ADMIN_USER_PASSWORD_AUTH"],
        ])
        guard let id = (appClient["UserPoolClient"] as? [String: Any])?["ClientId"] as? String else {
            throw CognitoFixtureError(description: "CreateUserPoolClient answered no client id")
        }
        return id
    }

    /// Creates a confirmed user (permanent password) with the tenant attribute and/or in the admin
    /// group, and returns its name and password.
    public func createUser(tenant: String?, admin: Bool = false) async throws -> (username: String, password: String) {
        let username = "user-\(UUID().uuidString.lowercased())"
        let password = "Pw-\(UUID().uuidString)-x1"
        var attributes: [[String: String]] = []
        if let tenant { attributes.append(["Name": Self.tenantClaim, "Value": tenant]) }
        _ = try await Self.call(moto, "AdminCreateUser", [
            "UserPoolId": userPoolId, "Username": username, "UserAttributes": attributes, "MessageAction": "SUPPRESS",
        ])
        _ = try await Self.call(moto, "AdminSetUserPassword", [
            "UserPoolId": userPoolId, "Username": username, "Password": password, "Permanent": true,
        ])
        if admin {
            _ = try await Self.call(moto, "AdminAddUserToGroup", ["UserPoolId": userPoolId, "Username": username, "GroupName": Self.adminGroup])
        }
        return (username, password)
    }

    /// `AdminInitiateAuth` with `ADMIN_USER_PASSWORD_AUTH`.
    public func signIn(username: String, password: String, clientId: String? = nil) async throws -> Tokens {
        let answer = try await Self.call(moto, "AdminInitiateAuth", [
            "UserPoolId": userPoolId, "ClientId": clientId ?? self.clientId, "AuthFlow": "ADMIN_USER_PASSWORD_AUTH",
            "AuthParameters": ["USERNAME": username, "PASSWORD": password],
        ])
        guard let result = answer["AuthenticationResult"] as? [String: Any], let id = result["IdToken"] as? String,
            let access = result["AccessToken"] as? String
        else {
            throw CognitoFixtureError(description: "AdminInitiateAuth answered no tokens")
        }
        return Tokens(idToken: id, accessToken: access)
    }

    /// A new user whose `custom:tenantId` is `tenant`, signed in.
    public func tokens(forTenant tenant: String, clientId: String? = nil) async throws -> Tokens {
        let user = try await createUser(tenant: tenant)
        return try await signIn(username: user.username, password: user.password, clientId: clientId)
    }

    /// A real ID token of a new user of `tenant`.
    public func idToken(forTenant tenant: String) async throws -> String {
        try await tokens(forTenant: tenant).idToken
    }

    /// A new member of the admin group (no tenant), signed in.
    public func adminTokens() async throws -> Tokens {
        let user = try await createUser(tenant: nil, admin: true)
        return try await signIn(username: user.username, password: user.password)
    }

    /// A real ID token of a new member of the admin group.
    public func adminIdToken() async throws -> String {
        try await adminTokens().idToken
    }

    /// An ID token of `tenant` that expired 10 minutes ago (well past any clock skew), signed
    /// with moto's key: only `exp` (and `iat`, `auth_time`) differ from a real one.
    public func expiredIdToken(forTenant tenant: String) async throws -> String {
        let token = try await idToken(forTenant: tenant)
        let now = Int(Date().timeIntervalSince1970)
        return try await resign(token) { claims in
            claims["iat"] = now - 4200
            claims["auth_time"] = now - 4200
            claims["exp"] = now - 600
        }
    }

    // MARK: - Forging tokens

    /// The claims of a token, unverified.
    public static func claims(of token: String) throws -> [String: Any] {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let data = base64URLDecode(parts[1]),
            let claims = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { throw CognitoFixtureError(description: "not a JWT") }
        return claims
    }

    /// The header of a token, unverified.
    public static func header(of token: String) throws -> [String: Any] {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let data = base64URLDecode(parts[0]),
            let header = try JSONSerialization.jsonObject(with: data) as? [String: Any]
        else { throw CognitoFixtureError(description: "not a JWT") }
        return header
    }

    /// `token`'s claims changed by `modify`, signed again with moto's private key (RS256, `kid`
    /// `dummy`): a validly signed token whose claims are wrong.
    public func resign(_ token: String, modify: (inout [String: Any]) -> Void) async throws -> String {
        var claims = try Self.claims(of: token)
        modify(&claims)
        return try await Self.sign(header: ["typ": "JWT", "kid": "dummy", "alg": "RS256"], claims: claims, with: .motoKey)
    }

    /// `token`'s claims changed by `modify`, with the original header and signature kept.
    public static func tamper(_ token: String, modify: (inout [String: Any]) -> Void) throws -> String {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        var claims = try claims(of: token)
        modify(&claims)
        return "\(parts[0]).\(base64URL(try JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys]))).\(parts[2])"
    }

    /// How a forged token is signed.
    public enum Signature: Sendable {
        /// RS256 with moto's private key (the key behind every pool's JWKS).
        case motoKey
        /// HMAC-SHA256 with this secret (the "public key as HMAC secret" attack).
        case hmacSHA256(secret: [UInt8])
        /// No signature at all (`alg: none`).
        case none
        /// These bytes as the signature.
        case raw([UInt8])
    }

    /// A compact JWT of `header` and `claims`, signed as asked (the header is used as given).
    public static func sign(header: [String: Any], claims: [String: Any], with signature: Signature) async throws -> String {
        let signingInput =
            base64URL(try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])) + "."
            + base64URL(try JSONSerialization.data(withJSONObject: claims, options: [.sortedKeys]))
        let bytes: [UInt8]
        switch signature {
        case .motoKey:
            let keys = JWTKeyCollection()
            try await keys.add(jwk: try JSONDecoder().decode(JWK.self, from: Data(try motoPrivateJWK().utf8)))
            bytes = try await keys.getKey(for: JWKIdentifier(string: "dummy")).sign(Array(signingInput.utf8))
        case .hmacSHA256(let secret):
            let keys = JWTKeyCollection()
            await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
            bytes = try await keys.getKey().sign(Array(signingInput.utf8))
        case .none:
            bytes = []
        case .raw(let raw):
            bytes = raw
        }
        return signingInput + "." + base64URL(Data(bytes))
    }

    /// The public modulus (`n`, base64url) of moto's key, as its JWKS serves it.
    public static func motoPublicModulus() throws -> String {
        guard let object = try JSONSerialization.jsonObject(with: Data(try motoPrivateJWK().utf8)) as? [String: Any],
            let modulus = object["n"] as? String
        else { throw CognitoFixtureError(description: "moto's key has no modulus") }
        return modulus
    }

    /// The private JWK moto signs its Cognito tokens with, read from the installed moto package
    /// (`moto/cognitoidp/resources/jwks-private.json.gz`, loaded the way moto loads it).
    public static func motoPrivateJWK() throws -> String {
        try Requirements.check(.moto)
        return try privateJWK.withLock { cached in
            if let cached { return cached }
            let probe = try ChildProcess.run(
                executable: "/usr/bin/env",
                arguments: [
                    "python3", "-c",
                    "import json; from moto.utilities.utils import load_resource; "
                        + "print(json.dumps(load_resource('moto.cognitoidp.models', 'resources/jwks-private.json')))",
                ],
                standardError: .null
            )
            guard probe.status.isSuccess else {
                throw UnavailableInThisEnvironment(description: "cannot read moto's Cognito signing key (is moto installed?)")
            }
            let text = probe.outputText.trimmingCharacters(in: .whitespacesAndNewlines)
            cached = text
            return text
        }
    }

    private static let privateJWK = Mutex<String?>(nil)

    public static func base64URL(_ data: Data) -> String { ByteEncoding.base64URL(data) }

    public static func base64URLDecode(_ text: some StringProtocol) -> Data? { ByteEncoding.base64URLDecoded(text).map { Data($0) } }

    // MARK: - Calls

    /// One Cognito Identity Provider call on moto.
    @discardableResult
    static func call(_ moto: MotoServer, _ operation: String, _ body: [String: Any]) async throws -> [String: Any] {
        let answer = try await TestAWSClients.client().jsonCall(
            endpoint: moto.endpoint, signingName: "cognito-idp", target: "AWSCognitoIdentityProviderService.\(operation)",
            contentType: "application/x-amz-json-1.1", body: Array(try JSONSerialization.data(withJSONObject: body))
        )
        if answer.isEmpty { return [:] }
        return (try JSONSerialization.jsonObject(with: Data(answer)) as? [String: Any]) ?? [:]
    }
}

/// moto answered something the fixture did not expect.
public struct CognitoFixtureError: Error, CustomStringConvertible {
    public let description: String
}
