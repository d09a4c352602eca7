import Foundation
import RequestBudget

/// A change of a tenant's profile before validation: an RFC 7396 merge patch of
/// `clientName` and `clientPhone` (`PATCH /tenants/{tenantId}`, `onboard tenants update`).
///
/// A field left out is left as it is; a field given is validated as onboarding validates it.
/// Both fields are required on a tenant, so `null` (which a merge patch uses to delete) is a
/// field error for them.
public struct TenantPatch: Sendable, Hashable {
    /// The new name; `nil` leaves it as it is, ``RawField/missing`` asks to remove it (refused).
    public var clientName: RawField?
    /// The new phone number; `nil` leaves it as it is, ``RawField/missing`` asks to remove it (refused).
    public var clientPhone: RawField?
    /// Fields the patch carried that a tenant does not have (rejected, to catch typos).
    public var unknownFields: [String]

    /// The fields a patch may carry.
    public static let fieldNames: Set<String> = ["clientName", "clientPhone"]

    public init(clientName: RawField? = nil, clientPhone: RawField? = nil, unknownFields: [String] = []) {
        self.clientName = clientName
        self.clientPhone = clientPhone
        self.unknownFields = unknownFields
    }

    /// Reads a merge patch (a JSON object): absent fields stay as they are, `null` removes.
    public init(json object: [String: AttributeValue]) {
        func field(_ name: String) -> RawField? {
            object[name] == nil ? nil : RawField(object, name)  // `null` reads as `.missing`
        }
        self.init(
            clientName: field("clientName"),
            clientPhone: field("clientPhone"),
            unknownFields: object.keys.filter { !Self.fieldNames.contains($0) }.sorted()
        )
    }

    /// Checks every field and returns all problems at once.
    /// - Returns: the new name and phone (`nil`: unchanged).
    public func validated() -> Result<(ClientName?, PhoneNumber?), ValidationError> {
        var errors: [FieldError] = []
        func check<Value>(_ raw: RawField?, _ name: String, _ validate: (RawField) -> Result<Value, FieldError>) -> Value? {
            guard let raw else { return nil }
            if raw == .missing {
                errors.append(FieldError(
                    field: name, code: .missing, detail: "\(name) cannot be removed (null): a tenant must have one; send a new value or leave the field out"
                ))
                return nil
            }
            switch validate(raw) {
            case .success(let value): return value
            case .failure(let error):
                errors.append(error)
                return nil
            }
        }
        let name = check(clientName, "clientName") { ClientName.validate($0) }
        let phone = check(clientPhone, "clientPhone") { PhoneNumber.validate($0) }
        for field in unknownFields {
            errors.append(FieldError(
                field: field, code: .unknownField,
                detail: "\(field) is not a field a tenant's update accepts; send only clientName and clientPhone"
            ))
        }
        guard errors.isEmpty else { return .failure(ValidationError(errors)) }
        return .success((name, phone))
    }
}

extension OnboardingError.Code {
    /// The tenant's state does not allow the change (e.g. suspending a suspended tenant); the
    /// message names the current state. Nothing was changed.
    public static let invalidTransition = OnboardingError.Code(rawValue: "invalid_transition")
}

extension OnboardingError {
    /// A change the tenant's current state does not allow.
    public static func invalidTransition(_ tenant: Tenant, _ doing: String) -> OnboardingError {
        OnboardingError(.invalidTransition, "The tenant is \(tenant.status.rawValue): it cannot \(doing)")
    }

    /// `If-Match` named another version than the tenant's.
    public static func staleVersion(_ id: TenantID, expected: Int) -> OnboardingError {
        OnboardingError(
            .preconditionFailed,
            "The tenant \(id.rawValue) is no longer at version \(expected) (If-Match): read it again, then retry with its ETag"
        )
    }
}

/// Changes existing tenants: their profile (``update(_:patch:ifMatch:)``) and their state
/// (``suspend(_:reason:ifMatch:)``, ``reactivate(_:ifMatch:)``). The HTTP routes and the operator
/// CLI both call it.
///
/// Every change is one transaction: a conditional `update` of the profile item on the `version` it
/// read, which it bumps together with `updatedAt` (the version is the tenant's `ETag`), and the
/// change's event (`tenant.updated`, `tenant.suspended`, `tenant.reactivated`); attributes it does
/// not change (the API-key count) are left alone. A change that loses a race with another writer is
/// retried (read again, check the state again, write again) while the request's ``RetryBudget``
/// allows, unless the caller named the version it saw (`ifMatch`): then a lost race is a
/// `.preconditionFailed`, since the caller decided on a state that is gone.
public struct TenantLifecycle: Sendable {
    /// The longest suspension reason, in characters (Unicode code points) after trimming.
    public static let maxReasonCharacters = 500

    private let store: any TenantStore
    private let clock: any WallClock
    private let events: EventRecorder

    /// - Parameter events: makes and records the changes' events (default: one on `clock` that
    ///   wakes no dispatcher).
    public init(store: any TenantStore, clock: any WallClock = SystemWallClock(), events: EventRecorder? = nil) {
        self.store = store
        self.clock = clock
        self.events = events ?? EventRecorder(clock: clock)
    }

    /// Changes the tenant's name and/or phone, validated as onboarding validates them.
    /// - Parameters:
    ///   - clientName: the new name (`nil`: unchanged).
    ///   - clientPhone: the new phone number (`nil`: unchanged).
    ///   - ifMatch: the version the caller saw; the change is made only at that version.
    /// - Returns: the tenant as stored after the change.
    /// - Throws: ``ValidationError`` listing every bad field; ``OnboardingError``
    ///   `.tenantNotFound`, `.preconditionFailed` (stale `ifMatch`), `.invalidTransition`
    ///   (offboarding or offboarded), `.conflict` (kept losing races); ``StoreError``.
    public func update(_ id: TenantID, clientName: RawField?, clientPhone: RawField?, ifMatch: Int? = nil) async throws -> Tenant {
        try await update(id, patch: TenantPatch(clientName: clientName, clientPhone: clientPhone), ifMatch: ifMatch)
    }

    /// Applies a merge patch to the tenant's profile; see ``update(_:clientName:clientPhone:ifMatch:)``.
    /// An empty patch changes nothing (the version stays, no event) but still checks `ifMatch`.
    /// Records `tenant.updated` (`changed`: the fields the patch set).
    public func update(_ id: TenantID, patch: TenantPatch, ifMatch: Int? = nil) async throws -> Tenant {
        let (name, phone) = try patch.validated().get()
        return try await change(id, ifMatch: ifMatch, event: .tenantUpdated) { tenant throws(OnboardingError) in
            guard name != nil || phone != nil else { return nil }
            guard tenant.status == .active || tenant.status == .suspended else {
                throw .invalidTransition(tenant, "be changed any more")
            }
            var changed = tenant
            var set: [String: AttributeValue] = [:]
            if let name {
                changed.clientName = name
                set[Tenant.Attribute.clientName] = .string(name.value)
            }
            if let phone {
                changed.clientPhone = phone
                set[Tenant.Attribute.clientPhone] = .string(phone.e164)
            }
            return (changed, set)
        }
    }

    /// Suspends an `ACTIVE` tenant: its API keys and JWTs get `403 tenant-suspended` until it is
    /// reactivated; its data is untouched. Records `tenant.suspended` (with the `reason`).
    /// - Parameter reason: why (required: 1 to 500 characters after trimming; stored trimmed).
    /// - Returns: the tenant as stored, `SUSPENDED`, with `suspensionReason` and `suspendedAt`.
    /// - Throws: ``ValidationError`` (field `reason`); ``OnboardingError`` `.tenantNotFound`,
    ///   `.preconditionFailed`, `.invalidTransition` (not `ACTIVE`), `.conflict`; ``StoreError``.
    public func suspend(_ id: TenantID, reason: RawField, ifMatch: Int? = nil) async throws -> Tenant {
        let reason = try Self.validatedReason(reason).get()
        return try await change(id, ifMatch: ifMatch, event: .tenantSuspended, data: ["reason": .string(reason)]) { tenant throws(OnboardingError) in
            guard tenant.status.canTransition(to: .suspended) else { throw .invalidTransition(tenant, "be suspended (only an ACTIVE tenant can)") }
            var changed = tenant
            changed.status = .suspended
            changed.suspensionReason = reason
            changed.suspendedAt = Timestamp.format(clock.now())
            return (changed, [
                Tenant.Attribute.status: .string(TenantStatus.suspended.rawValue),
                Tenant.Attribute.suspensionReason: .string(reason),
                Tenant.Attribute.suspendedAt: .string(changed.suspendedAt!),
            ])
        }
    }

    /// ``suspend(_:reason:ifMatch:)`` with the reason as text (the CLI's `--reason`).
    public func suspend(_ id: TenantID, reason: String, ifMatch: Int? = nil) async throws -> Tenant {
        try await suspend(id, reason: .string(reason), ifMatch: ifMatch)
    }

    /// Reactivates a `SUSPENDED` tenant: its credentials work again; the suspension's reason and
    /// date are cleared (stored as `null`, read back as absent). Records `tenant.reactivated`.
    /// - Returns: the tenant as stored, `ACTIVE`.
    /// - Throws: ``OnboardingError`` `.tenantNotFound`, `.preconditionFailed`,
    ///   `.invalidTransition` (not `SUSPENDED`), `.conflict`; ``StoreError``.
    public func reactivate(_ id: TenantID, ifMatch: Int? = nil) async throws -> Tenant {
        try await change(id, ifMatch: ifMatch, event: .tenantReactivated) { tenant throws(OnboardingError) in
            guard tenant.status == .suspended, tenant.status.canTransition(to: .active) else {
                throw .invalidTransition(tenant, "be reactivated (only a SUSPENDED tenant can)")
            }
            var changed = tenant
            changed.status = .active
            changed.suspensionReason = nil
            changed.suspendedAt = nil
            // `update` sets attributes only: null clears them on both stores (Tenant reads null as absent).
            return (changed, [
                Tenant.Attribute.status: .string(TenantStatus.active.rawValue),
                Tenant.Attribute.suspensionReason: .null,
                Tenant.Attribute.suspendedAt: .null,
            ])
        }
    }

    /// A suspension reason: a string of 1 to ``maxReasonCharacters`` characters after trimming
    /// white space, without control characters other than tab and line breaks.
    public static func validatedReason(_ raw: RawField) -> Result<String, ValidationError> {
        let field = "reason"
        let text: String
        switch raw.string(field: field) {
        case .failure(let error): return .failure(ValidationError([error]))
        case .success(let value): text = value.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        if text.isEmpty {
            return .failure(ValidationError([FieldError(field: field, code: .empty, detail: "\(field) must not be empty")]))
        }
        if text.unicodeScalars.count > maxReasonCharacters {
            return .failure(ValidationError([FieldError(
                field: field, code: .tooLong, detail: "\(field) must have at most \(maxReasonCharacters) characters"
            )]))
        }
        let allowedControls: Set<Unicode.Scalar> = ["\t", "\n", "\r"]
        if text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control && !allowedControls.contains($0) }) {
            return .failure(ValidationError([FieldError(
                field: field, code: .invalidCharacters, detail: "\(field) must not contain control characters (other than tab and line breaks)"
            )]))
        }
        return .success(text)
    }

    /// Reads the tenant, lets `decide` say what to change, and writes that change on the version
    /// it read (bumping it and `updatedAt`) with its event, in one transaction; on a lost race,
    /// reads and decides again.
    /// - Parameters:
    ///   - event: the change's event type; its data: the tenant after the change (`tenant`), the
    ///     names of the fields the change set (`changed`: the attribute names, which are the
    ///     API's; `version` and `updatedAt`, set by every change, are left out), and `data`.
    ///   - decide: the changed tenant and the attributes to set, or `nil` for no change;
    ///     throws when the tenant's state does not allow the change.
    private func change(
        _ id: TenantID, ifMatch: Int?, event type: TenantEventType, data: [String: AttributeValue] = [:],
        _ decide: (Tenant) throws(OnboardingError) -> (Tenant, [String: AttributeValue])?
    ) async throws -> Tenant {
        try await RetryBudget.withCurrent { budget in
            var attempt = 0
            while true {
                attempt += 1
                guard let item = try await store.get(Tenant.key(id)) else { throw OnboardingError.tenantNotFound(id.rawValue) }
                let current = try Tenant(item: item)
                // Preconditions first (RFC 9110 §13.2.2): a stale version is a 412 whatever the change.
                if let ifMatch, current.version != ifMatch { throw OnboardingError.staleVersion(id, expected: ifMatch) }
                guard var (changed, set) = try decide(current) else { return current }
                let changedFields = set.keys.sorted()
                changed.version = current.version + 1
                changed.updatedAt = Timestamp.format(clock.now())
                set[Tenant.Attribute.version] = .int(changed.version)
                set[Tenant.Attribute.updatedAt] = .string(changed.updatedAt)
                var eventData = data
                eventData["tenant"] = .map(APIRepresentation.tenant(changed))
                eventData["changed"] = .list(changedFields.map { .string($0) })
                // Made after the read, above the tenant's latest id: ids follow commit order.
                let lastEventId = Tenant.lastEventId(of: item)
                let event = events.event(type, tenantId: id, data: eventData, after: lastEventId)
                set[Tenant.Attribute.lastEventId] = .string(event.id)
                let condition = WriteCondition.and(
                    .attributeEquals(Tenant.Attribute.version, .int(current.version)), Tenant.lastEventIdUnchanged(lastEventId)
                )
                do {
                    // The profile's update first: its refusal is the first cancellation reason.
                    try await store.transact([.update(Tenant.key(id), set: set, condition: condition)] + events.writes(for: event))
                    events.recorded(event)
                    return changed
                } catch let error as StoreError where error.code == .transactionCanceled && error.cancellationReasons.first == .conditionFailed {
                    // Another change came first (or the tenant is gone): the caller's version is
                    // gone, unless only a key's event came first (the version is unchanged).
                    if let ifMatch, try await store.get(Tenant.key(id)).flatMap({ $0[Tenant.Attribute.version]?.intValue }) != ifMatch {
                        throw OnboardingError.staleVersion(id, expected: ifMatch)
                    }
                }
                try await budget.pauseAfterLostRace(attempt: attempt, conflict: "the tenant \(id.rawValue) kept changing while it was being changed; retry")
            }
        }
    }
}

extension TenantService {
    /// Tenants in one state, in creation order (newest first unless `newestFirst` is false), a
    /// page at a time; `status` `nil` lists every tenant (as ``tenants(limit:cursor:newestFirst:)``).
    ///
    /// Reads the merged listing index in batches and keeps the tenants in `status` until the
    /// page is full (and one more matching tenant shows a next page exists) or the index is
    /// exhausted, so a page is short only when it is the last, and no matching tenant is ever
    /// skipped. The cursor is the listing's: the last tenant's index key.
    /// - Throws: ``OnboardingError`` `.invalidCursor`.
    public func tenants(limit: Int, cursor: String?, newestFirst: Bool = true, status: TenantStatus?) async throws -> TenantPage {
        guard let status else { return try await tenants(limit: limit, cursor: cursor, newestFirst: newestFirst) }
        let limit = min(max(limit, 1), Self.maxPageSize)
        var position = try cursor.map { cursor throws(OnboardingError) in try ListCursor.decode(cursor) }
        if position?.isEmpty == true {
            // As the unfiltered listing: the empty key is before every tenant.
            guard !newestFirst else { return TenantPage(tenants: [], nextCursor: nil) }
            position = nil
        }
        var matching: [(key: String, tenant: Tenant)] = []
        // Bigger batches than the page: most tenants read may not match.
        let batch = Self.maxPageSize
        while true {
            let (entries, more) = try await listIndexBatch(after: position, count: batch, newestFirst: newestFirst)
            for entry in entries {
                let tenant = try Tenant(item: entry.item)
                guard tenant.status == status else { continue }
                matching.append((entry.key, tenant))
                if matching.count > limit {
                    // A full page, and proof that another one follows.
                    let page = matching.prefix(limit)
                    return TenantPage(tenants: page.map(\.tenant), nextCursor: page.last.map { ListCursor.encode($0.key) })
                }
            }
            guard more, let last = entries.last else { return TenantPage(tenants: matching.map(\.tenant), nextCursor: nil) }
            position = last.key
        }
    }
}
