import Foundation
import WireFormat

/// The body of `POST /onboard` before validation.
public struct OnboardingRequest: Sendable, Hashable {
    public var clientName: RawField
    public var clientPhone: RawField
    /// Fields the request carried that onboarding does not know (rejected, to catch typos).
    public var unknownFields: [String]

    public static let fieldNames: Set<String> = ["clientName", "clientPhone"]

    public init(clientName: RawField, clientPhone: RawField, unknownFields: [String] = []) {
        self.clientName = clientName
        self.clientPhone = clientPhone
        self.unknownFields = unknownFields
    }

    /// Reads the fields of a JSON object.
    public init(json object: [String: AttributeValue]) {
        self.init(
            clientName: RawField(object, "clientName"),
            clientPhone: RawField(object, "clientPhone"),
            unknownFields: object.keys.filter { !Self.fieldNames.contains($0) }.sorted()
        )
    }

    /// Checks every field and returns all problems at once.
    public func validated() -> Result<(ClientName, PhoneNumber), ValidationError> {
        var errors: [FieldError] = []
        let name = ClientName.validate(clientName)
        let phone = PhoneNumber.validate(clientPhone)
        if case .failure(let error) = name { errors.append(error) }
        if case .failure(let error) = phone { errors.append(error) }
        for field in unknownFields {
            errors.append(FieldError(
                field: field, code: .unknownField,
                detail: "\(field) is not a field of this request; send only clientName and clientPhone"
            ))
        }
        guard errors.isEmpty, case .success(let validName) = name, case .success(let validPhone) = phone else {
            return .failure(ValidationError(errors))
        }
        return .success((validName, validPhone))
    }
}

/// What onboarding produced: the tenant and its first API key (its text shown this once).
public struct Onboarded: Sendable {
    public let tenant: Tenant
    public let apiKey: IssuedApiKey
}

/// Turns a client into a tenant: validates, allocates the id, writes the profile, the first
/// API key and the `tenant.onboarded` event in one transaction (nothing half-onboarded is ever
/// visible).
public struct OnboardingService: Sendable {
    private let store: any TenantStore
    private let ids: any TenantIDGenerator
    private let clock: any WallClock
    private let apiKeys: ApiKeys
    private let events: EventRecorder

    /// - Parameter events: makes and records the `tenant.onboarded` event (default: one on `clock`
    ///   that wakes no dispatcher).
    public init(
        store: any TenantStore, hasher: any SecretHasher, ids: any TenantIDGenerator = UUIDv7Generator(),
        clock: any WallClock = SystemWallClock(), events: EventRecorder? = nil
    ) {
        let events = events ?? EventRecorder(clock: clock)
        self.store = store
        self.ids = ids
        self.clock = clock
        self.events = events
        self.apiKeys = ApiKeys(store: store, hasher: hasher, clock: clock, events: events)
    }

    /// Onboards a client, recording `tenant.onboarded` (the tenant and its first key's `apiKey`
    /// {keyId, prefix, createdAt}; the first key has no `apikey.created` of its own).
    /// - Returns: the new tenant and its first API key, durably stored.
    /// - Parameter alsoWrite: one more write for the onboarding's transaction, made from its
    ///   result (an idempotency record's completion): written with the tenant or not at all.
    /// - Throws: ``ValidationError`` listing every bad field (nothing is stored), ``StoreError``
    ///   (`.transactionCanceled` at once when the extra write's condition failed).
    public func onboard(
        _ request: OnboardingRequest, alsoWrite: (Onboarded) throws -> TransactionWrite? = { _ in nil }
    ) async throws -> Onboarded {
        let (name, phone) = try request.validated().get()
        let now = Timestamp.format(clock.now())
        // Every item is written only if no item has its key, so a (practically impossible) id
        // collision can never overwrite another tenant's: it is retried with fresh ids.
        for _ in 0..<3 {
            let tenant = Tenant(
                id: ids.newTenantID(), clientName: name, clientPhone: phone, status: .active,
                createdAt: now, updatedAt: now, version: 1, apiKeyCount: 1
            )
            let (apiKey, keyWrites) = apiKeys.newKey(for: tenant.id, at: now)
            let onboarded = Onboarded(tenant: tenant, apiKey: apiKey)
            let extra = try alsoWrite(onboarded)
            let event = events.event(.tenantOnboarded, tenantId: tenant.id, data: [
                "tenant": .map(APIRepresentation.tenant(tenant)), "apiKey": .map(ApiKeys.eventData(apiKey.key)),
            ])
            // The extra write stays last: its refusal is told by the last cancellation reason.
            // The tenant's first event: later ones must follow its id (Tenant.Attribute.lastEventId).
            var profile = tenant.item
            profile.attributes[Tenant.Attribute.lastEventId] = .string(event.id)
            let writes = [.put(profile, condition: .itemNotExists)] + keyWrites + events.writes(for: event) + (extra.map { [$0] } ?? [])
            do {
                try await store.transact(writes)
                events.recorded(event)
                return onboarded
            } catch let error as StoreError where error.code == .transactionCanceled {
                // Fresh ids cannot help when the extra write's own condition failed.
                if extra != nil, error.cancellationReasons.last == .conditionFailed { throw error }
                continue
            }
        }
        throw OnboardingError(.idExhausted, "three generated tenant ids were already taken")
    }
}

/// One page of the tenant listing.
public struct TenantPage: Sendable, Hashable {
    public var tenants: [Tenant]
    /// Pass back to get the next page; `nil` on the last page.
    public var nextCursor: String?
}

/// Reads and manages existing tenants.
public struct TenantService: Sendable {
    // Internal: the filtered listing (TenantLifecycle.swift) reads the index too.
    let store: any TenantStore

    public init(store: any TenantStore) {
        self.store = store
    }

    /// The tenant with this id.
    /// - Throws: ``OnboardingError`` `.tenantNotFound`.
    public func tenant(_ id: TenantID) async throws -> Tenant {
        guard let item = try await store.get(Tenant.key(id)) else { throw OnboardingError.tenantNotFound(id.rawValue) }
        return try Tenant(item: item)
    }

    /// The most tenants a page holds.
    public static let maxPageSize = 100

    /// Tenants in creation order (newest first unless `newestFirst` is false), a page at a time.
    ///
    /// Merges the 16 shards of the listing index: each is asked for one more tenant than the
    /// page holds, so the merged order is exact and a next page exists exactly when more were
    /// found. The cursor is opaque (the last tenant's index key and the order, base64url).
    /// - Throws: ``OnboardingError`` `.invalidCursor` for a cursor this listing did not issue.
    public func tenants(limit: Int, cursor: String?, newestFirst: Bool = true) async throws -> TenantPage {
        let limit = min(max(limit, 1), Self.maxPageSize)
        var decoded = try cursor.map { cursor throws(OnboardingError) in try ListCursor.decode(cursor) }
        if decoded?.isEmpty == true {
            // The empty key sorts before every index key (and DynamoDB refuses it in a query):
            // after it comes everything, before it nothing.
            guard !newestFirst else { return TenantPage(tenants: [], nextCursor: nil) }
            decoded = nil
        }
        let (entries, more) = try await listIndexBatch(after: decoded, count: limit, newestFirst: newestFirst)
        let tenants = try entries.map { try Tenant(item: $0.item) }
        let next = more ? entries.last.map { ListCursor.encode($0.key) } : nil
        return TenantPage(tenants: tenants, nextCursor: next)
    }

    /// The next `count` entries of the merged listing index after `position` (exclusive), in
    /// order, and whether more follow. Each shard is asked for `count + 1`: every entry among
    /// the first `count` of the merged order is then certain (no shard can hold an earlier one
    /// it did not return).
    func listIndexBatch(after position: String?, count: Int, newestFirst: Bool) async throws -> (entries: [(key: String, item: Item)], more: Bool) {
        let store = self.store
        let items = try await withThrowingTaskGroup(of: [Item].self) { group in
            for shard in ListIndex.shards {
                group.addTask {
                    try await store.queryListIndex(ListIndexQuery(shard: shard, exclusiveStartKey: position, limit: count + 1, ascending: !newestFirst))
                }
            }
            var all: [Item] = []
            for try await items in group { all += items }
            return all
        }
        let keyed = items.compactMap { item in item[ListIndex.keyAttribute]?.stringValue.map { (key: $0, item: item) } }
        // Byte order, as both stores sort index keys.
        let sorted = keyed.sorted { lhs, rhs in
            newestFirst ? rhs.key.utf8.lexicographicallyPrecedes(lhs.key.utf8) : lhs.key.utf8.lexicographicallyPrecedes(rhs.key.utf8)
        }
        return (Array(sorted.prefix(count)), sorted.count > count)
    }
}

/// The listing's opaque cursor: the last index key of a page, base64url without padding.
///
/// Any text over the base64url alphabet (1-512 characters, what openapi.yaml documents) is a
/// cursor: it decodes to some key, and the listing continues after that key in the order asked.
/// So a cursor never fails for being "foreign", and a client that follows `nextCursor` gets
/// every tenant once. Bytes that are not UTF-8 are repaired (U+FFFD), a key longer than an index
/// key can be (1024 bytes) is cut to that length, and the empty key (cursor `A`) is the position
/// before every tenant.
enum ListCursor {
    static let maxLength = 512

    static func encode(_ key: String) -> String {
        Base64.encode(key.utf8, alphabet: .url)
    }

    static func decode(_ cursor: String) throws(OnboardingError) -> String {
        // Lenient: every length decodes, leftover bits (fewer than 8) are padding.
        guard (1...maxLength).contains(cursor.utf8.count), let bytes = Base64.decode(cursor, alphabet: .url, lenient: true) else {
            throw invalid
        }
        // Bytes that are not UTF-8 are repaired, which can make the text longer (one byte becomes
        // the three of U+FFFD).
        let key = String(decoding: bytes, as: UTF8.self)
        guard key.utf8.count > StoreRules.maxSortKeyBytes else { return key }
        var cut = ""
        var byteCount = 0
        for scalar in key.unicodeScalars {
            byteCount += UTF8.width(scalar)
            guard byteCount <= StoreRules.maxSortKeyBytes else { break }
            cut.unicodeScalars.append(scalar)
        }
        return cut
    }

    private static var invalid: OnboardingError {
        OnboardingError(.invalidCursor, "a cursor is 1 to \(maxLength) characters of A-Z a-z 0-9 - _ (pass nextCursor as it was given)")
    }
}
