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

/// Accepts tenant API keys (`onb_<keyId>_<secret>`): the key's look-up item names its owner
/// and the hash its text must have. The item comes from the ``CredentialCache`` when it was read
/// less than a second ago and no revocation happened in this process since; otherwise from the
/// store. Either way the presented key is hashed and compared in constant time. Each accepted use
/// is noted in the ``KeyUsageRecorder``, which writes `lastUsedAt` later, never on the request's path.
public final class ApiKeyVerifier: CredentialVerifier {
    private let apiKeys: ApiKeys
    private let usage: KeyUsageRecorder?
    private let cache: CredentialCache

    /// - Parameters:
    ///   - usage: where uses are noted; `nil` records no `lastUsedAt`.
    ///   - cache: where look-up items read lately are kept (default: none kept).
    public init(apiKeys: ApiKeys, usage: KeyUsageRecorder?, cache: CredentialCache = CredentialCache(configuration: .off)) {
        self.apiKeys = apiKeys
        self.usage = usage
        self.cache = cache
    }

    public func principal(for token: String) async throws -> Principal? {
        try await credential(for: token)?.principal
    }

    /// The key's tenant, acting as `apikey:<keyId>`.
    public func credential(for token: String) async throws -> VerifiedCredential? {
        guard let keyId = ApiKeys.keyId(of: token) else { return nil }
        let lookup: ApiKeyLookup
        if let kept = cache.key(keyId) {
            lookup = kept
        } else {
            let ticket = cache.ticket()
            guard let read = try await apiKeys.lookup(keyId: keyId) else { return nil }
            cache.keep(read, keyId: keyId, ticket: ticket)
            lookup = read
        }
        guard apiKeys.matches(token, lookup) else { return nil }
        usage?.record(keyId: keyId, tenantId: lookup.owner)
        return VerifiedCredential(principal: .tenant(lookup.owner), actor: "apikey:" + keyId)
    }
}
