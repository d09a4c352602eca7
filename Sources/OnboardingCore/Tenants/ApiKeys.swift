import Foundation

/// A tenant's API key as the service keeps it: never the secret, only what identifies it.
public struct ApiKey: Sendable, Hashable {
    /// 16 hex digits, random; part of the key text (`onb_<keyId>_<secret>`).
    public var keyId: String
    public var tenantId: TenantID
    /// What may be shown later: `onb_<keyId>_` and the secret's first four characters.
    public var prefix: String
    public var createdAt: String
    public var lastUsedAt: String?

    /// The item in the tenant's partition: `APIKEY#<keyId>`.
    var item: Item {
        var attributes: [String: AttributeValue] = [
            "keyId": .string(keyId), "prefix": .string(prefix), "createdAt": .string(createdAt),
        ]
        if let lastUsedAt { attributes["lastUsedAt"] = .string(lastUsedAt) }
        return Item(key: Self.key(tenantId, keyId), attributes: attributes)
    }

    static func key(_ tenantId: TenantID, _ keyId: String) -> ItemKey {
        ItemKey(tenantId: tenantId.rawValue, resourceKey: "\(ApiKeys.resourceType)#\(keyId)")
    }

    init(item: Item, tenantId: TenantID) throws(OnboardingError) {
        guard let keyId = item["keyId"]?.stringValue, let prefix = item["prefix"]?.stringValue,
            let createdAt = item["createdAt"]?.stringValue
        else { throw .corruptItem(item.key, attribute: "keyId/prefix/createdAt") }
        self.init(keyId: keyId, tenantId: tenantId, prefix: prefix, createdAt: createdAt, lastUsedAt: item["lastUsedAt"]?.stringValue)
    }

    init(keyId: String, tenantId: TenantID, prefix: String, createdAt: String, lastUsedAt: String?) {
        self.keyId = keyId
        self.tenantId = tenantId
        self.prefix = prefix
        self.createdAt = createdAt
        self.lastUsedAt = lastUsedAt
    }
}

/// A key just issued: the only moment its text exists on the server.
public struct IssuedApiKey: Sendable {
    /// `onb_<keyId>_<secret>`: shown once, then only its hash remains.
    public let text: String
    public let key: ApiKey
}

/// Tenant API keys: issued with 256 random bits, stored only as SHA-256, checked in constant time.
///
/// Two items per key, written and deleted together: `APIKEY#<keyId>` in the tenant's partition
/// (prefix and dates, for listing) and a look-up item in the reserved partition
/// `_apikey#<keyId>` (the owning tenant and the secret's hash), which a presented key is checked
/// against. A revoked key has no look-up item, so it is refused on its next use.
public struct ApiKeys: Sendable {
    public static let resourceType = "APIKEY"
    /// The most live keys a tenant may hold.
    public static let maxKeysPerTenant = 20
    /// `lastUsedAt` is written at most this often per key.
    public static let lastUsedResolution: TimeInterval = 60

    private let store: any TenantStore
    private let hasher: any SecretHasher
    private let clock: any WallClock

    public init(store: any TenantStore, hasher: any SecretHasher, clock: any WallClock = SystemWallClock()) {
        self.store = store
        self.hasher = hasher
        self.clock = clock
    }

    /// A new key for a tenant and the two writes that store it (for the caller's transaction).
    public func newKey(for tenantId: TenantID, at now: String) -> (IssuedApiKey, [TransactionWrite]) {
        // 40 bytes from the system CSPRNG, 8 at a time (one getrandom call each, not one per byte).
        var generator = SystemRandomNumberGenerator()
        var random: [UInt8] = []
        random.reserveCapacity(40)
        for _ in 0..<5 { withUnsafeBytes(of: generator.next() as UInt64) { random.append(contentsOf: $0) } }
        let keyId = ByteEncoding.hex(random[0..<8])
        let secret = ByteEncoding.base64URL(random[8..<40])
        let text = "onb_\(keyId)_\(secret)"
        let key = ApiKey(keyId: keyId, tenantId: tenantId, prefix: "onb_\(keyId)_\(secret.prefix(4))…", createdAt: now, lastUsedAt: nil)
        let lookup = Item(key: Self.lookupKey(keyId), attributes: [
            "ownerTenantId": .string(tenantId.rawValue),
            "keyHash": .string("sha256:" + hasher.sha256Hex(text)),
            "createdAt": .string(now),
        ])
        return (IssuedApiKey(text: text, key: key), [.put(key.item, condition: .itemNotExists), .put(lookup, condition: .itemNotExists)])
    }

    /// Issues another key for an existing tenant.
    /// - Throws: `.tenantNotFound`, `.limitReached` when the tenant holds the maximum already.
    public func issue(for tenantId: TenantID) async throws -> IssuedApiKey {
        let existing = try await list(tenantId)
        guard existing.count < Self.maxKeysPerTenant else {
            throw OnboardingError(.limitReached, "a tenant holds at most \(Self.maxKeysPerTenant) API keys; revoke one first")
        }
        let (issued, writes) = newKey(for: tenantId, at: Timestamp.format(clock.now()))
        try await store.transact([.conditionCheck(Tenant.key(tenantId), condition: .itemExists)] + writes)
        return issued
    }

    /// The tenant's keys (prefix and dates only), oldest first.
    /// - Throws: `.tenantNotFound` when there is no such tenant.
    public func list(_ tenantId: TenantID) async throws -> [ApiKey] {
        guard try await store.get(Tenant.key(tenantId)) != nil else { throw OnboardingError.tenantNotFound(tenantId.rawValue) }
        let page = try await store.query(ItemQuery(tenantId: tenantId.rawValue, prefix: "\(Self.resourceType)#", limit: Self.maxKeysPerTenant + 1))
        return try page.items.map { try ApiKey(item: $0, tenantId: tenantId) }.sorted { $0.createdAt < $1.createdAt }
    }

    /// Revokes a key: both items go, in one transaction; the key is refused from then on.
    /// - Throws: `.apiKeyNotFound` when the tenant has no such key.
    public func revoke(_ keyId: String, of tenantId: TenantID) async throws {
        do {
            try await store.transact([
                .delete(ApiKey.key(tenantId, keyId), condition: .itemExists),
                .delete(Self.lookupKey(keyId), condition: .attributeEquals("ownerTenantId", .string(tenantId.rawValue))),
            ])
        } catch let error as StoreError where error.code == .transactionCanceled || error.code == .invalidRequest {
            throw OnboardingError(.apiKeyNotFound, "the tenant has no API key \(keyId)")
        }
    }

    /// The tenant a presented key belongs to, or `nil` when it is not a live key.
    ///
    /// The hash is compared in constant time; the key id only selects the look-up item.
    public func verify(_ text: String) async throws -> (TenantID, keyId: String)? {
        guard let keyId = Self.keyId(of: text) else { return nil }
        guard let lookup = try await store.get(Self.lookupKey(keyId)),
            let stored = lookup["keyHash"]?.stringValue, let owner = lookup["ownerTenantId"]?.stringValue.flatMap(TenantID.init)
        else { return nil }
        let presented = "sha256:" + hasher.sha256Hex(text)
        guard ConstantTime.equals(Array(presented.utf8), Array(stored.utf8)) else { return nil }
        return (owner, keyId)
    }

    /// Records that a key was used at `usedAt` (default: now) in one write, only if the key still
    /// exists: a revoked key is not brought back (callers throttle this to ``lastUsedResolution``).
    public func touch(_ keyId: String, of tenantId: TenantID, at usedAt: Date? = nil) async throws {
        do {
            try await store.update(ApiKey.key(tenantId, keyId), set: ["lastUsedAt": .string(Timestamp.format(usedAt ?? clock.now()))], condition: nil)
        } catch let error as StoreError where error.code == .conditionFailed {
            // Revoked in between: nothing to record.
        }
    }

    /// `onb_<16 hex>_<43 base64url>` → the key id; `nil` for any other text.
    static func keyId(of text: String) -> String? {
        let parts = text.split(separator: "_", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "onb", parts[1].count == 16, parts[1].allSatisfy(\.isHexDigit),
            parts[1].allSatisfy({ !$0.isUppercase }), parts[2].count == 43
        else { return nil }
        return String(parts[1])
    }

    static func lookupKey(_ keyId: String) -> ItemKey {
        ItemKey(tenantId: "_apikey#\(keyId)", resourceKey: resourceType)
    }

}
