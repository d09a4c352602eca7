import Crypto
import Foundation
import OnboardingCore

/// SHA-256 from swift-crypto, for the domain's ``SecretHasher``.
public struct CryptoSecretHasher: SecretHasher {
    public init() {}

    public func sha256Hex(_ secret: String) -> String {
        ByteEncoding.hex(SHA256.hash(data: Array(secret.utf8)))
    }
}

/// Accepts tenant API keys (`onb_<keyId>_<secret>`): each use reads the key's look-up item, so a
/// revoked key is refused at once. Each accepted use is noted in the ``KeyUsageRecorder``, which
/// writes `lastUsedAt` later, never on the request's path.
public final class ApiKeyVerifier: CredentialVerifier {
    private let apiKeys: ApiKeys
    private let usage: KeyUsageRecorder?

    /// - Parameter usage: where uses are noted; `nil` records no `lastUsedAt`.
    public init(apiKeys: ApiKeys, usage: KeyUsageRecorder?) {
        self.apiKeys = apiKeys
        self.usage = usage
    }

    public func principal(for token: String) async throws -> Principal? {
        try await credential(for: token)?.principal
    }

    /// The key's tenant, acting as `apikey:<keyId>`.
    public func credential(for token: String) async throws -> VerifiedCredential? {
        guard let (tenantId, keyId) = try await apiKeys.verify(token) else { return nil }
        usage?.record(keyId: keyId, tenantId: tenantId)
        return VerifiedCredential(principal: .tenant(tenantId), actor: "apikey:" + keyId)
    }
}
