import Crypto
import Foundation
import Logging
import OnboardingCore
import Synchronization

/// SHA-256 from swift-crypto, for the domain's ``SecretHasher``.
public struct CryptoSecretHasher: SecretHasher {
    public init() {}

    public func sha256Hex(_ secret: String) -> String {
        ByteEncoding.hex(SHA256.hash(data: Array(secret.utf8)))
    }
}

/// Accepts tenant API keys (`onb_<keyId>_<secret>`): each use reads the key's look-up item, so a
/// revoked key is refused at once. `lastUsedAt` is written at most once a minute per key, after
/// the request, never on its path.
public final class ApiKeyVerifier: CredentialVerifier {
    private let apiKeys: ApiKeys
    private let logger: Logger
    private let lastTouched = Mutex<[String: ContinuousClock.Instant]>([:])

    public init(apiKeys: ApiKeys, logger: Logger = Logger(label: "onboard.apikeys")) {
        self.apiKeys = apiKeys
        self.logger = logger
    }

    public func principal(for token: String) async throws -> Principal? {
        guard let (tenantId, keyId) = try await apiKeys.verify(token) else { return nil }
        let now = ContinuousClock.now
        let due = lastTouched.withLock { touched in
            guard touched[keyId].map({ now - $0 >= .seconds(ApiKeys.lastUsedResolution) }) ?? true else { return false }
            touched[keyId] = now
            if touched.count > 10_000 { touched.removeAll() }  // bounded; a forgotten key is touched once more
            return true
        }
        if due {
            let apiKeys = self.apiKeys
            let logger = self.logger
            Task.detached {
                do {
                    try await apiKeys.touch(keyId, of: tenantId)
                } catch {
                    logger.warning("could not record an API key's use", metadata: ["keyId": .string(keyId), "error": "\(error)"])
                }
            }
        }
        return .tenant(tenantId)
    }
}
