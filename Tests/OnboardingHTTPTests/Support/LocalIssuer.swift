import Foundation
import Hummingbird
import HummingbirdTesting
import JWTKit
import NIOCore
import OnboardTestSupport
import OnboardingCore
import OnboardingHTTP
import Synchronization

/// An OIDC issuer of the test's own (as in ``JWTKeyTypeTests``): ES256 keys, and their JWKS served
/// by a Hummingbird server on 127.0.0.1 that answers as the test says: the keys, a hang until the
/// test releases it, or `500`.
final class LocalIssuer: Sendable {
    static let issuer = "https://issuer.example"
    static let clientID = "client-1"

    /// How the JWKS endpoint answers.
    enum Mode: Sendable {
        case serve
        /// Waits until ``release()``, then serves the keys as they are then.
        case hang
        case fail
    }

    private struct State {
        var mode: Mode = .serve
        var keys: [String: ES256PrivateKey] = [:]
        var waiting: [CheckedContinuation<Void, Never>] = []
        var requests = 0
    }

    private let state = Mutex(State())

    /// How many times the JWKS was requested.
    var requests: Int { state.withLock { $0.requests } }

    func setMode(_ mode: Mode) { state.withLock { $0.mode = mode } }

    /// A new signing key named `kid`, served from the next answer on.
    func addKey(_ kid: String) { state.withLock { $0.keys[kid] = ES256PrivateKey() } }

    /// Ends every hang: waiting and later requests are served.
    func release() {
        let waiting = state.withLock { state in
            state.mode = .serve
            defer { state.waiting = [] }
            return state.waiting
        }
        for continuation in waiting { continuation.resume() }
    }

    /// A token of this issuer for `tenant`, signed with `kid`'s key.
    func token(kid: String, tenant: String) async throws -> String {
        guard let key = state.withLock({ $0.keys[kid] }) else { throw LocalIssuerError(description: "no key \(kid)") }
        let signers = JWTKeyCollection()
        await signers.add(ecdsa: key, kid: JWKIdentifier(string: kid))
        let signer = try await signers.getKey(for: JWKIdentifier(string: kid))
        let now = Int(Date().timeIntervalSince1970)
        let header: [String: Any] = ["alg": "ES256", "kid": kid, "typ": "JWT"]
        let claims: [String: Any] = [
            "iss": Self.issuer, "aud": Self.clientID, "token_use": "id", "iat": now, "exp": now + 3600, "custom:tenantId": tenant,
        ]
        let input =
            CognitoFixture.base64URL(try JSONSerialization.data(withJSONObject: header))
            + "." + CognitoFixture.base64URL(try JSONSerialization.data(withJSONObject: claims))
        return input + "." + CognitoFixture.base64URL(Data(try signer.sign(Array(input.utf8))))
    }

    /// The verifier configuration for this issuer (default claims; `custom:tenantId` names the tenant).
    func configuration(jwksURL: String, maximumKeyAge: Duration, keyGracePeriod: Duration) -> JWTVerifier.Configuration {
        // A fetch is only ended by the issuer's answer (or its failure), never by a timeout: a busy
        // test process may take longer than the default 5 s to read a hanging issuer's release.
        JWTVerifier.Configuration(
            issuer: Self.issuer, jwksURL: jwksURL, clientIDs: [Self.clientID], fetchTimeout: .seconds(300),
            maximumKeyAge: maximumKeyAge, keyGracePeriod: keyGracePeriod
        )
    }

    private func answer() async -> Response {
        let hang = state.withLock { state -> Bool in
            state.requests += 1
            return state.mode == .hang
        }
        if hang {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state -> Bool in
                    guard state.mode == .hang else { return true }
                    state.waiting.append(continuation)
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }
        let (mode, keys) = state.withLock { ($0.mode, $0.keys) }
        if mode == .fail { return Response(status: .internalServerError) }
        var entries: [[String: Any]] = []
        for (kid, key) in keys.sorted(by: { $0.key < $1.key }) {
            guard let parameters = key.parameters else { continue }
            entries.append(["kty": "EC", "crv": "P-256", "kid": kid, "x": parameters.x, "y": parameters.y, "use": "sig", "alg": "ES256"])
        }
        let body = (try? JSONSerialization.data(withJSONObject: ["keys": entries])) ?? Data()
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// Runs `body` with an issuer holding key `k1` whose JWKS is served at the URL passed; every
    /// hang is released before the server stops.
    static func run<Value: Sendable>(_ body: @Sendable (LocalIssuer, _ jwksURL: String) async throws -> Value) async throws -> Value {
        let issuer = LocalIssuer()
        issuer.addKey("k1")
        let router = Router()
        router.get("/jwks.json") { _, _ in await issuer.answer() }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        return try await app.test(.live) { client in
            do {
                let value = try await body(issuer, "http://127.0.0.1:\(client.port ?? 0)/jwks.json")
                issuer.release()
                return value
            } catch {
                issuer.release()
                throw error
            }
        }
    }
}

struct LocalIssuerError: Error, CustomStringConvertible {
    let description: String
}

/// A clock the test moves (token lifetimes and the JWKS cache's ages).
final class MovableClock: Sendable {
    private let current = Mutex(Date())
    var now: Date { current.withLock { $0 } }
    func advance(seconds: Double) { current.withLock { $0 += seconds } }
}
