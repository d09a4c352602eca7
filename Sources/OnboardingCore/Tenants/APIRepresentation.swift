/// How the API shows its objects as JSON (the schemas of openapi.yaml): one place for the
/// routes and for the operator CLI's `--json`, so the two cannot drift apart.
public enum APIRepresentation {
    /// A tenant (schema `Tenant`). A tombstone (OFFBOARDED) has no name or phone; the other
    /// dates appear once they exist.
    /// - Parameter itemsDeleted: an `OFFBOARDING` tenant's progress (its offboarding marker's
    ///   count, ``Offboarding/progress(_:)``), shown as `offboardingProgress`; ignored in other
    ///   states.
    public static func tenant(_ tenant: Tenant, itemsDeleted: Int? = nil) -> [String: AttributeValue] {
        var fields: [String: AttributeValue] = [
            "tenantId": .string(tenant.id.rawValue),
            "status": .string(tenant.status.rawValue),
            "createdAt": .string(tenant.createdAt),
            "updatedAt": .string(tenant.updatedAt),
            "version": .int(tenant.version),
        ]
        if let name = tenant.clientName { fields["clientName"] = .string(name.value) }
        if let phone = tenant.clientPhone { fields["clientPhone"] = .string(phone.e164) }
        if let reason = tenant.suspensionReason { fields["suspensionReason"] = .string(reason) }
        if let at = tenant.suspendedAt { fields["suspendedAt"] = .string(at) }
        if let at = tenant.offboardingStartedAt { fields["offboardingStartedAt"] = .string(at) }
        if let at = tenant.offboardedAt { fields["offboardedAt"] = .string(at) }
        if tenant.status == .offboarding, let itemsDeleted {
            fields["offboardingProgress"] = .map(["itemsDeleted": .int(itemsDeleted)])
        }
        return fields
    }

    /// An API key as the API lists it: never the secret.
    public static func apiKey(_ key: ApiKey) -> [String: AttributeValue] {
        var body: [String: AttributeValue] = [
            "keyId": .string(key.keyId), "prefix": .string(key.prefix), "createdAt": .string(key.createdAt),
        ]
        if let lastUsedAt = key.lastUsedAt { body["lastUsedAt"] = .string(lastUsedAt) }
        return body
    }

    /// A newly issued API key (the `201` of a key's creation): the key text shown this once.
    public static func issuedApiKey(_ issued: IssuedApiKey) -> [String: AttributeValue] {
        var body = apiKey(issued.key)
        body["apiKey"] = .string(issued.text)
        return body
    }
}
