/// A tenant's life-cycle state, stored in `status`.
public enum TenantStatus: String, Sendable, Hashable, CaseIterable {
    case active = "ACTIVE"
}

/// The sort keys of the items in a tenant's partition and of the reserved partitions.
public enum ResourceKey {
    /// The tenant profile item: `TENANT#<tenantId>`, as in the brief.
    public static func tenantProfile(_ id: TenantID) -> String { "TENANT#\(id.rawValue)" }
}

/// A tenant's profile: the item `TENANT#<tenantId>` in its partition.
public struct Tenant: Sendable, Hashable {
    public var id: TenantID
    public var clientName: ClientName
    public var clientPhone: PhoneNumber
    public var status: TenantStatus
    /// RFC 3339 UTC, see ``Timestamp``.
    public var createdAt: String
    public var updatedAt: String
    /// Incremented on every change; writes are conditional on the version they read.
    public var version: Int

    public init(
        id: TenantID, clientName: ClientName, clientPhone: PhoneNumber, status: TenantStatus,
        createdAt: String, updatedAt: String, version: Int
    ) {
        self.id = id
        self.clientName = clientName
        self.clientPhone = clientPhone
        self.status = status
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.version = version
    }

    /// The key of the profile item.
    public static func key(_ id: TenantID) -> ItemKey {
        ItemKey(tenantId: id.rawValue, resourceKey: ResourceKey.tenantProfile(id))
    }

    /// The profile as a single-table item.
    public var item: Item {
        Item(
            key: Self.key(id),
            attributes: [
                Attribute.clientName: .string(clientName.value),
                Attribute.clientPhone: .string(clientPhone.e164),
                Attribute.status: .string(status.rawValue),
                Attribute.createdAt: .string(createdAt),
                Attribute.updatedAt: .string(updatedAt),
                Attribute.version: .int(version),
                ListIndex.shardAttribute: .string(Self.listShard(id)),
                ListIndex.keyAttribute: .string(Self.listKey(createdAt: createdAt, id: id)),
            ]
        )
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
        self.init(
            id: id,
            clientName: ClientName(stored: try string(Attribute.clientName)),
            clientPhone: PhoneNumber(stored: try string(Attribute.clientPhone)),
            status: status,
            createdAt: try string(Attribute.createdAt),
            updatedAt: try string(Attribute.updatedAt),
            version: version
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
    }
}
