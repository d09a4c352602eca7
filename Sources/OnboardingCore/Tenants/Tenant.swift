/// A tenant's life-cycle state, stored in `status`.
///
/// ```
/// ACTIVE ⇄ SUSPENDED
///   ╲        ╱
///   OFFBOARDING → OFFBOARDED
/// ```
public enum TenantStatus: String, Sendable, Hashable, CaseIterable {
    /// Onboarded and in use: its credentials work.
    case active = "ACTIVE"
    /// Paused by the admin: its credentials get `403 tenant-suspended`; its data is untouched.
    case suspended = "SUSPENDED"
    /// Being removed: its items are deleted in batches; its credentials no longer work.
    case offboarding = "OFFBOARDING"
    /// Removed: only a tombstone (id, dates, no name or phone) remains.
    case offboarded = "OFFBOARDED"

    /// Whether a tenant in this state may move to `next`: ACTIVE⇄SUSPENDED,
    /// ACTIVE/SUSPENDED → OFFBOARDING → OFFBOARDED; nothing else (not even to the same state).
    public func canTransition(to next: TenantStatus) -> Bool {
        switch (self, next) {
        case (.active, .suspended), (.suspended, .active): true
        case (.active, .offboarding), (.suspended, .offboarding): true
        case (.offboarding, .offboarded): true
        default: false
        }
    }

    /// Whether items may still be added to the tenant's partition (keys, resources): ACTIVE or
    /// SUSPENDED (the admin still manages a suspended tenant); never once offboarding started.
    public var acceptsNewItems: Bool { self == .active || self == .suspended }
}

/// The sort keys of the items in a tenant's partition and of the reserved partitions.
public enum ResourceKey {
    /// The tenant profile item: `TENANT#<tenantId>`, as in the brief.
    public static func tenantProfile(_ id: TenantID) -> String { "TENANT#\(id.rawValue)" }
}

/// A tenant's profile: the item `TENANT#<tenantId>` in its partition.
public struct Tenant: Sendable, Hashable {
    public var id: TenantID
    /// `nil` only on an ``TenantStatus/offboarded`` tombstone: offboarding erases it.
    public var clientName: ClientName?
    /// `nil` only on an ``TenantStatus/offboarded`` tombstone: offboarding erases it.
    public var clientPhone: PhoneNumber?
    public var status: TenantStatus
    /// RFC 3339 UTC, see ``Timestamp``.
    public var createdAt: String
    public var updatedAt: String
    /// Incremented on every change of the profile or the state; writes are conditional on the
    /// version they read (it is the tenant's `ETag`). Changes of ``apiKeyCount`` do not bump it.
    public var version: Int
    /// Why the admin suspended the tenant (while ``TenantStatus/suspended``).
    public var suspensionReason: String?
    /// When the tenant was suspended (while ``TenantStatus/suspended``).
    public var suspendedAt: String?
    /// When offboarding started (``TenantStatus/offboarding`` and after).
    public var offboardingStartedAt: String?
    /// When offboarding finished (``TenantStatus/offboarded``).
    public var offboardedAt: String?
    /// How many live API keys the tenant holds, kept in the same transaction as each key's
    /// creation and revocation; `nil` on tenants stored before the count existed.
    public var apiKeyCount: Int?

    public init(
        id: TenantID, clientName: ClientName?, clientPhone: PhoneNumber?, status: TenantStatus,
        createdAt: String, updatedAt: String, version: Int,
        suspensionReason: String? = nil, suspendedAt: String? = nil,
        offboardingStartedAt: String? = nil, offboardedAt: String? = nil, apiKeyCount: Int? = nil
    ) {
        self.id = id
        self.clientName = clientName
        self.clientPhone = clientPhone
        self.status = status
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.version = version
        self.suspensionReason = suspensionReason
        self.suspendedAt = suspendedAt
        self.offboardingStartedAt = offboardingStartedAt
        self.offboardedAt = offboardedAt
        self.apiKeyCount = apiKeyCount
    }

    /// The key of the profile item.
    public static func key(_ id: TenantID) -> ItemKey {
        ItemKey(tenantId: id.rawValue, resourceKey: ResourceKey.tenantProfile(id))
    }

    /// The profile as a single-table item.
    ///
    /// Write it whole only when the tenant is created (or its tombstone replaces it); after that
    /// change single attributes with `update`, so that concurrent changes of different
    /// attributes (``apiKeyCount`` and the profile) cannot undo each other.
    public var item: Item {
        var attributes: [String: AttributeValue] = [
            Attribute.status: .string(status.rawValue),
            Attribute.createdAt: .string(createdAt),
            Attribute.updatedAt: .string(updatedAt),
            Attribute.version: .int(version),
            ListIndex.shardAttribute: .string(Self.listShard(id)),
            ListIndex.keyAttribute: .string(Self.listKey(createdAt: createdAt, id: id)),
        ]
        if let clientName { attributes[Attribute.clientName] = .string(clientName.value) }
        if let clientPhone { attributes[Attribute.clientPhone] = .string(clientPhone.e164) }
        if let suspensionReason { attributes[Attribute.suspensionReason] = .string(suspensionReason) }
        if let suspendedAt { attributes[Attribute.suspendedAt] = .string(suspendedAt) }
        if let offboardingStartedAt { attributes[Attribute.offboardingStartedAt] = .string(offboardingStartedAt) }
        if let offboardedAt { attributes[Attribute.offboardedAt] = .string(offboardedAt) }
        if let apiKeyCount { attributes[Attribute.apiKeyCount] = .int(apiKeyCount) }
        return Item(key: Self.key(id), attributes: attributes)
    }

    /// The listing-index shard of a tenant: its id's last hex digit, which is random.
    public static func listShard(_ id: TenantID) -> String { "TENANTS#\(id.rawValue.last!)" }

    /// The listing-index key: creation time, then the id (unique, and in creation order).
    public static func listKey(createdAt: String, id: TenantID) -> String { "\(createdAt)#\(id.rawValue)" }

    /// Reads a profile item back.
    /// - Throws: ``OnboardingError`` `.corruptItem` when an attribute is missing or malformed.
    public init(item: Item) throws(OnboardingError) {
        func string(_ name: String) throws(OnboardingError) -> String {
            guard let value = item[name]?.stringValue else { throw .corruptItem(item.key, attribute: name) }
            return value
        }
        guard let id = TenantID(item.key.tenantId), item.key.resourceKey == ResourceKey.tenantProfile(id) else {
            throw .corruptItem(item.key, attribute: KeyAttribute.resourceKey)
        }
        guard let status = TenantStatus(rawValue: try string(Attribute.status)) else {
            throw .corruptItem(item.key, attribute: Attribute.status)
        }
        guard let version = item[Attribute.version]?.intValue else {
            throw .corruptItem(item.key, attribute: Attribute.version)
        }
        // Name and phone are erased only from a tombstone; anywhere else their absence is damage.
        let erased = status == .offboarded
        let name = erased ? item[Attribute.clientName]?.stringValue : try string(Attribute.clientName)
        let phone = erased ? item[Attribute.clientPhone]?.stringValue : try string(Attribute.clientPhone)
        self.init(
            id: id,
            clientName: name.map { ClientName(stored: $0) },
            clientPhone: phone.map { PhoneNumber(stored: $0) },
            status: status,
            createdAt: try string(Attribute.createdAt),
            updatedAt: try string(Attribute.updatedAt),
            version: version,
            suspensionReason: item[Attribute.suspensionReason]?.stringValue,
            suspendedAt: item[Attribute.suspendedAt]?.stringValue,
            offboardingStartedAt: item[Attribute.offboardingStartedAt]?.stringValue,
            offboardedAt: item[Attribute.offboardedAt]?.stringValue,
            apiKeyCount: item[Attribute.apiKeyCount]?.intValue
        )
    }

    /// The attribute names of a profile item.
    public enum Attribute {
        public static let clientName = "clientName"
        public static let clientPhone = "clientPhone"
        public static let status = "status"
        public static let createdAt = "createdAt"
        public static let updatedAt = "updatedAt"
        public static let version = "version"
        public static let suspensionReason = "suspensionReason"
        public static let suspendedAt = "suspendedAt"
        public static let offboardingStartedAt = "offboardingStartedAt"
        public static let offboardedAt = "offboardedAt"
        public static let apiKeyCount = "apiKeyCount"
        /// The id of the tenant's latest event (never shown in the API). Every transaction that
        /// records an event of the tenant requires the value it read and sets the new id, so
        /// events commit one at a time per tenant and their ids increase in commit order.
        public static let lastEventId = "lastEventId"
    }
}

extension Tenant {
    /// The tenant's latest event id as its profile item has it (`nil` for a tenant stored
    /// before events were ordered by it).
    public static func lastEventId(of profile: Item) -> String? {
        profile[Attribute.lastEventId]?.stringValue
    }

    /// The condition that the profile's ``Attribute/lastEventId`` is still `read` (absent when
    /// `read` is `nil`): no other event of the tenant committed since the profile was read.
    public static func lastEventIdUnchanged(_ read: String?) -> WriteCondition {
        read.map { .attributeEquals(Attribute.lastEventId, .string($0)) } ?? .attributeNotExists(Attribute.lastEventId)
    }
}
