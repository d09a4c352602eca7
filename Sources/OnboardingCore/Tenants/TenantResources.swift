import Foundation
import RequestBudget

/// Where a tenant's own resource lives: its type and id, the item `<type>#<resourceId>` in the
/// tenant's partition.
///
/// Types start with a lower-case letter, so they can never name the service's own items
/// (`TENANT#…`, `APIKEY#…`, all upper case): a tenant cannot read or overwrite its profile or
/// keys through the resources API.
public struct ResourceRef: Sendable, Hashable {
    public let type: String
    public let resourceId: String

    /// 1-64 characters of `a-z 0-9 - _ .`, starting with a letter.
    public static let maxTypeLength = 64
    /// 1-200 characters of `A-Z a-z 0-9 - _ . ~` (URI "unreserved": never percent-encoded, so
    /// the id in a path is the id), not `.` or `..`.
    public static let maxIdLength = 200

    /// - Throws: ``OnboardingError`` `.invalidResourcePath` naming what is wrong.
    public init(type: String, resourceId: String) throws(OnboardingError) {
        try Self.validate(type: type)
        guard (1...Self.maxIdLength).contains(resourceId.utf8.count),
            resourceId.utf8.allSatisfy(Self.isIdByte), resourceId != ".", resourceId != ".."
        else {
            throw OnboardingError(
                .invalidResourcePath,
                "a resource id is 1 to \(Self.maxIdLength) characters of A-Z a-z 0-9 - _ . ~ (not '.' or '..')"
            )
        }
        self.type = type
        self.resourceId = resourceId
    }

    /// - Throws: ``OnboardingError`` `.invalidResourcePath` unless `type` is a valid type.
    public static func validate(type: String) throws(OnboardingError) {
        guard (1...maxTypeLength).contains(type.utf8.count), let first = type.utf8.first,
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first), type.utf8.allSatisfy(isTypeByte)
        else {
            throw OnboardingError(
                .invalidResourcePath,
                "a resource type is 1 to \(maxTypeLength) characters of a-z 0-9 - _ . starting with a lower-case letter"
            )
        }
    }

    /// The sort key: `<type>#<resourceId>`.
    public var resourceKey: String { "\(type)#\(resourceId)" }

    private static func isTypeByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."):
            true
        default: false
        }
    }

    private static func isIdByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
            true
        default: false
        }
    }
}

/// A tenant's resource as stored: the document and its metadata.
public struct TenantResource: Sendable, Hashable {
    public var ref: ResourceRef
    /// The JSON document, as the client sent it (numbers in canonical form).
    public var document: AttributeValue
    /// Opaque and new on every write: the entity tag `If-Match` compares (without quotes).
    public var etag: String
    public var createdAt: String
    public var updatedAt: String

    static let documentAttribute = "data"

    func item(_ tenantId: TenantID) -> Item {
        Item(
            key: ItemKey(tenantId: tenantId.rawValue, resourceKey: ref.resourceKey),
            attributes: [
                "resourceType": .string(ref.type), "resourceId": .string(ref.resourceId),
                Self.documentAttribute: document, "etag": .string(etag),
                "createdAt": .string(createdAt), "updatedAt": .string(updatedAt),
            ]
        )
    }

    init(ref: ResourceRef, document: AttributeValue, etag: String, createdAt: String, updatedAt: String) {
        self.ref = ref
        self.document = document
        self.etag = etag
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    init(item: Item) throws(OnboardingError) {
        guard let type = item["resourceType"]?.stringValue, let id = item["resourceId"]?.stringValue,
            let document = item[Self.documentAttribute], let etag = item["etag"]?.stringValue,
            let createdAt = item["createdAt"]?.stringValue, let updatedAt = item["updatedAt"]?.stringValue,
            let ref = try? ResourceRef(type: type, resourceId: id)
        else { throw .corruptItem(item.key, attribute: "resourceType/resourceId/document/etag/createdAt/updatedAt") }
        self.init(ref: ref, document: document, etag: etag, createdAt: createdAt, updatedAt: updatedAt)
    }
}

/// A conditional request's preconditions (RFC 9110 §13), as a write or read evaluates them.
public struct ResourcePreconditions: Sendable, Hashable {
    /// `If-Match`: `nil` when absent; `.any` for `*`.
    public var ifMatch: EntityTagList?
    /// `If-None-Match`: `nil` when absent; `.any` for `*`.
    public var ifNoneMatch: EntityTagList?

    public init(ifMatch: EntityTagList? = nil, ifNoneMatch: EntityTagList? = nil) {
        self.ifMatch = ifMatch
        self.ifNoneMatch = ifNoneMatch
    }

    /// Whether a write may go ahead given the current resource (`nil`: none).
    func allowWrite(current: TenantResource?) -> Bool {
        if let ifMatch {
            // Strong comparison: a weak tag never matches (RFC 9110 §13.1.1).
            guard let current, ifMatch.matches(current.etag, weak: false) else { return false }
        }
        if let ifNoneMatch, let current, ifNoneMatch.matches(current.etag, weak: true) { return false }
        return true
    }

    /// Whether the client asked to write only on a condition (then a concurrent change is a 412,
    /// not a retry).
    var isConditional: Bool { ifMatch != nil || ifNoneMatch != nil }
}

/// The value of `If-Match` or `If-None-Match`: `*` or a list of entity tags.
public enum EntityTagList: Sendable, Hashable {
    case any
    /// The tags' opaque parts (without quotes), with whether each was weak (`W/`).
    case tags([(opaque: String, weak: Bool)])

    public static func == (lhs: EntityTagList, rhs: EntityTagList) -> Bool {
        switch (lhs, rhs) {
        case (.any, .any): true
        case (.tags(let a), .tags(let b)): a.count == b.count && zip(a, b).allSatisfy { $0.opaque == $1.opaque && $0.weak == $1.weak }
        default: false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .any: hasher.combine(0)
        case .tags(let tags):
            for tag in tags {
                hasher.combine(tag.opaque)
                hasher.combine(tag.weak)
            }
        }
    }

    /// Parses a header value; `nil` when it is not `*` or a comma-separated list of
    /// `"tag"`/`W/"tag"`.
    public init?(header: String) {
        let trimmed = header.trimmingCharacters(in: .whitespaces)
        if trimmed == "*" {
            self = .any
            return
        }
        // #entity-tag (RFC 9110 §8.8.3, §5.6.1): tags separated by commas and optional white
        // space; an opaque tag may itself contain commas, so this reads quote to quote.
        var tags: [(String, Bool)] = []
        let scalars = Array(trimmed.unicodeScalars)
        var index = 0
        func skipSeparators() {
            while index < scalars.count, scalars[index] == "," || scalars[index] == " " || scalars[index] == "\t" { index += 1 }
        }
        skipSeparators()
        while index < scalars.count {
            var weak = false
            if index + 1 < scalars.count, scalars[index] == "W", scalars[index + 1] == "/" {
                weak = true
                index += 2
            }
            guard index < scalars.count, scalars[index] == "\"" else { return nil }
            index += 1
            var opaque = String.UnicodeScalarView()
            while index < scalars.count, scalars[index] != "\"" {
                // etagc = %x21 / %x23-7E / obs-text
                let value = scalars[index].value
                guard value == 0x21 || (0x23...0x7E).contains(value) || value >= 0x80 else { return nil }
                opaque.append(scalars[index])
                index += 1
            }
            guard index < scalars.count else { return nil }  // no closing quote
            index += 1
            tags.append((String(opaque), weak))
            // After a tag: optional white space, then a comma or the end.
            while index < scalars.count, scalars[index] == " " || scalars[index] == "\t" { index += 1 }
            guard index == scalars.count || scalars[index] == "," else { return nil }
            skipSeparators()
        }
        guard !tags.isEmpty else { return nil }
        self = .tags(tags)
    }

    /// Whether the current tag (always strong) matches; `weak` allows weak comparison
    /// (`If-None-Match`), else a `W/` tag never matches (`If-Match`).
    public func matches(_ current: String, weak weakAllowed: Bool) -> Bool {
        switch self {
        case .any: true
        case .tags(let tags): tags.contains { $0.opaque == current && (weakAllowed || !$0.weak) }
        }
    }
}

/// One page of a type's resources.
public struct ResourcePage: Sendable, Hashable {
    public var resources: [TenantResource]
    public var nextCursor: String?
}

/// A tenant's own resources: JSON documents of any type the tenant names, each the item
/// `<type>#<resourceId>` in the tenant's partition (the brief's "various data types").
///
/// Every operation names the tenant whose partition it reads or writes; the HTTP layer takes that
/// tenant from the authenticated principal. Writes are conditional on the tenant existing and
/// accepting new items (not offboarding: ``WriteCondition/tenantAcceptsNewItems``) and on the
/// entity tag the client saw (optimistic concurrency).
public struct TenantResources: Sendable {
    /// The largest document, in bytes of JSON.
    public static let maxDocumentBytes = 64 * 1024
    /// The deepest nesting of arrays and objects in a document (DynamoDB allows 32 levels in an
    /// item; the document is one attribute).
    public static let maxDepth = 30
    public static let maxPageSize = 100
    // Unconditional writes that lose a race are retried while the request's ``RetryBudget``
    // allows (RetryBudget.pauseAfterLostRace), then answered `409 conflict`.

    private let store: any TenantStore
    private let clock: any WallClock

    public init(store: any TenantStore, clock: any WallClock = SystemWallClock()) {
        self.store = store
        self.clock = clock
    }

    /// The resource.
    /// - Throws: `.resourceNotFound`, or `.tenantNotFound` when the tenant does not exist.
    public func get(_ ref: ResourceRef, of tenantId: TenantID) async throws -> TenantResource {
        guard let item = try await store.get(ItemKey(tenantId: tenantId.rawValue, resourceKey: ref.resourceKey)) else {
            try await requireTenant(tenantId)
            throw OnboardingError.resourceNotFound(ref)
        }
        return try TenantResource(item: item)
    }

    /// Creates or replaces a resource.
    /// - Returns: the stored resource and whether it was created (rather than replaced).
    /// - Throws: `ValidationError` for a document a store cannot keep; `.preconditionFailed`;
    ///   `.tenantNotFound`.
    public func put(
        _ ref: ResourceRef, of tenantId: TenantID, document: AttributeValue, preconditions: ResourcePreconditions = .init()
    ) async throws -> (resource: TenantResource, created: Bool) {
        let document = try Self.validated(document)
        let key = ItemKey(tenantId: tenantId.rawValue, resourceKey: ref.resourceKey)
        return try await RetryBudget.withCurrent { budget in
            var attempt = 0
            while true {
                attempt += 1
                let current = try await store.get(key).map { item throws(OnboardingError) in try TenantResource(item: item) }
                guard preconditions.allowWrite(current: current) else {
                    if current == nil { try await requireTenant(tenantId) }
                    throw OnboardingError.preconditionFailed(ref, exists: current != nil)
                }
                let now = Timestamp.format(clock.now())
                let resource = TenantResource(
                    ref: ref, document: document, etag: Self.newEntityTag(), createdAt: current?.createdAt ?? now, updatedAt: now
                )
                let condition: WriteCondition = current.map { .attributeEquals("etag", .string($0.etag)) } ?? .itemNotExists
                do {
                    // The tenant must accept new items: once its offboarding started, no write
                    // lands in its partition (a condition on the check this transaction already
                    // made for the tenant's existence, so it costs nothing more).
                    try await store.transact([
                        .conditionCheck(Tenant.key(tenantId), condition: .tenantAcceptsNewItems),
                        .put(resource.item(tenantId), condition: condition),
                    ])
                    return (resource, current == nil)
                } catch let error as StoreError where error.code == .transactionCanceled {
                    if error.cancellationReasons.first == .conditionFailed { throw OnboardingError.tenantNotFound(tenantId.rawValue) }
                    // Someone else wrote in between: a conditional request saw a state that is gone.
                    if preconditions.isConditional { throw OnboardingError.preconditionFailed(ref, exists: true) }
                }
                try await budget.pauseAfterLostRace(attempt: attempt, conflict: "the resource \(ref.resourceKey) kept changing while it was written; retry")
            }
        }
    }

    /// Deletes a resource.
    /// - Throws: `.resourceNotFound`, `.preconditionFailed`, `.tenantNotFound`.
    public func delete(_ ref: ResourceRef, of tenantId: TenantID, preconditions: ResourcePreconditions = .init()) async throws {
        let key = ItemKey(tenantId: tenantId.rawValue, resourceKey: ref.resourceKey)
        try await RetryBudget.withCurrent { budget in
            var attempt = 0
            while true {
                attempt += 1
                guard let current = try await store.get(key).map({ item throws(OnboardingError) in try TenantResource(item: item) }) else {
                    try await requireTenant(tenantId)
                    throw OnboardingError.resourceNotFound(ref)
                }
                guard preconditions.allowWrite(current: current) else { throw OnboardingError.preconditionFailed(ref, exists: true) }
                do {
                    try await store.delete(key, condition: .attributeEquals("etag", .string(current.etag)))
                    return
                } catch let error as StoreError where error.code == .conditionFailed {
                    if preconditions.isConditional { throw OnboardingError.preconditionFailed(ref, exists: true) }
                }
                try await budget.pauseAfterLostRace(attempt: attempt, conflict: "the resource \(ref.resourceKey) kept changing while it was deleted; retry")
            }
        }
    }



    /// The tenant's resources of one type, in `resourceId` order (bytewise), a page at a time.
    /// - Throws: `.tenantNotFound`, `.invalidCursor`.
    public func list(type: String, of tenantId: TenantID, limit: Int, cursor: String?) async throws -> ResourcePage {
        try ResourceRef.validate(type: type)
        precondition((1...Self.maxPageSize).contains(limit), "the caller checks the page size")
        let prefix = type + "#"
        let position = try ListCursor.position(cursor, prefix: prefix, in: tenantId)
        try await requireTenant(tenantId)
        guard case .after(let start) = position else { return ResourcePage(resources: [], nextCursor: nil) }
        let page = try await store.query(ItemQuery(tenantId: tenantId.rawValue, prefix: prefix, limit: limit + 1, exclusiveStartKey: start))
        let (items, next) = ListCursor.page(page, limit: limit)
        let resources = try items.map { item throws(OnboardingError) in try TenantResource(item: item) }
        return ResourcePage(resources: resources, nextCursor: next)
    }

    private func requireTenant(_ tenantId: TenantID) async throws {
        guard try await store.get(Tenant.key(tenantId)) != nil else { throw OnboardingError.tenantNotFound(tenantId.rawValue) }
    }

    /// 64 random bits, hex: a new entity tag.
    static func newEntityTag() -> String {
        var generator = SystemRandomNumberGenerator()
        return String(format: "%016llx", generator.next() as UInt64)
    }

    /// The document in the form every store keeps (numbers canonical), or every reason it cannot
    /// be stored, each with the JSON Pointer of the offending value.
    /// - Throws: ``ValidationError``; ``OnboardingError`` `.storedTooLarge` when the document, as
    ///   stored, exceeds ``maxDocumentBytes``.
    static func validated(_ document: AttributeValue) throws -> AttributeValue {
        var work = 0
        return try validated(document, work: &work)
    }

    /// ``validated(_:)``, adding to `work` the steps it takes: one per value visited plus the
    /// bytes it reads, copies or writes (numbers canonicalised, the document serialised to
    /// measure it). A test checks that this grows linearly with the document.
    static func validated(_ document: AttributeValue, work: inout Int) throws -> AttributeValue {
        var errors: [FieldError] = []
        guard case .map = document else {
            throw ValidationError([FieldError(field: "", code: .wrongType, detail: "a resource is a JSON object, not \(document.typeDescription)")])
        }
        var path: [PathComponent] = []
        let result = canonical(document, path: &path, errors: &errors, work: &work)
        guard errors.isEmpty else { throw ValidationError(Array(errors.prefix(20))) }
        // The size as stored: canonical numbers are written out in full (`1e125` is 126 digits),
        // so a body within the 64 KiB request limit can be far larger once stored, and every
        // read and listing page would return it at that size.
        let stored = JSONCodec.serializeBytes(result).count
        work += stored
        guard stored <= maxDocumentBytes else { throw OnboardingError.storedTooLarge(bytes: stored, limit: maxDocumentBytes) }
        return result
    }

    /// A step of the path to a value: an array index or an object member's name. The path is kept
    /// as a stack and spelled as a JSON Pointer only for an error, so a long member name is not
    /// copied into the pointer of every value below it (that was quadratic).
    private enum PathComponent {
        case index(Int)
        case name(String)
    }

    /// The JSON Pointer of `path`, without its leading `/` (as ``FieldError/field`` holds it).
    private static func pointer(_ path: [PathComponent]) -> String {
        path.map { component in
            switch component {
            case .index(let index): String(index)
            case .name(let name): name.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
            }
        }.joined(separator: "/")
    }

    private static func canonical(
        _ value: AttributeValue, path: inout [PathComponent], errors: inout [FieldError], work: inout Int
    ) -> AttributeValue {
        work += 1
        // Past 20 errors none is reported: spelling more pointers would only cost time.
        func fail(_ code: FieldError.Code, _ detail: String) {
            if errors.count < 20 { errors.append(FieldError(field: pointer(path), code: code, detail: detail)) }
        }
        switch value {
        case .number(let text):
            guard let number = StoreRules.canonicalNumber(text, work: &work) else {
                fail(.invalidFormat, "numbers have at most 38 significant digits and a magnitude from 1e-130 to below 1e126")
                return value
            }
            return .number(number)
        case .string, .bool, .null:
            return value
        case .list(let elements):
            guard path.count < maxDepth else {
                fail(.invalidFormat, "documents nest at most \(maxDepth) levels of arrays and objects")
                return value
            }
            var result: [AttributeValue] = []
            result.reserveCapacity(elements.count)
            for (index, element) in elements.enumerated() {
                path.append(.index(index))
                result.append(canonical(element, path: &path, errors: &errors, work: &work))
                path.removeLast()
            }
            return .list(result)
        case .map(let members):
            guard path.count < maxDepth else {
                fail(.invalidFormat, "documents nest at most \(maxDepth) levels of arrays and objects")
                return value
            }
            var result: [String: AttributeValue] = [:]
            result.reserveCapacity(members.count)
            for (name, member) in members {
                path.append(.name(name))
                defer { path.removeLast() }
                // DynamoDB refuses empty attribute names, nested ones included.
                guard !name.isEmpty else {
                    fail(.empty, "object member names must not be empty")
                    continue
                }
                work += name.utf8.count  // hashed into the result
                result[name] = canonical(member, path: &path, errors: &errors, work: &work)
            }
            return .map(result)
        }
    }
}
