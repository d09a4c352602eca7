/// An error of the domain services, translated to HTTP in one place by the HTTP layer.
public struct OnboardingError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong; a struct so new codes do not break callers.
    public struct Code: RawRepresentable, Sendable, Hashable {
        public let rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }

        /// No tenant has this id.
        public static let tenantNotFound = Code(rawValue: "tenant_not_found")
        /// A stored item does not have the shape this version expects.
        public static let corruptItem = Code(rawValue: "corrupt_item")
        /// A listing cursor that was not issued by the listing (or is damaged).
        public static let invalidCursor = Code(rawValue: "invalid_cursor")
        /// No such API key (for this tenant).
        public static let apiKeyNotFound = Code(rawValue: "api_key_not_found")
        /// A per-tenant limit (API keys, …) is reached.
        public static let limitReached = Code(rawValue: "limit_reached")
        /// No such resource (for this tenant).
        public static let resourceNotFound = Code(rawValue: "resource_not_found")
        /// A resource type or id in a path that breaks the naming rules.
        public static let invalidResourcePath = Code(rawValue: "invalid_resource_path")
        /// `If-Match` / `If-None-Match` did not hold; nothing was changed.
        public static let preconditionFailed = Code(rawValue: "precondition_failed")
        /// Concurrent writers kept changing the item; nothing was changed.
        public static let conflict = Code(rawValue: "conflict")
        /// A unique id could not be allocated (id collisions kept happening).
        public static let idExhausted = Code(rawValue: "id_exhausted")
        /// A client's document is larger as stored than the store accepts (its numbers written
        /// out in full): nothing was stored.
        public static let storedTooLarge = Code(rawValue: "stored_too_large")
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public static func tenantNotFound(_ id: String) -> OnboardingError {
        OnboardingError(.tenantNotFound, "no tenant has the id \(id)")
    }

    public static func corruptItem(_ key: ItemKey, attribute: String) -> OnboardingError {
        OnboardingError(.corruptItem, "the item \(key) has a missing or malformed \(attribute)")
    }

    public static func resourceNotFound(_ ref: ResourceRef) -> OnboardingError {
        OnboardingError(.resourceNotFound, "the tenant has no \(ref.type) resource \(ref.resourceId)")
    }

    public static func preconditionFailed(_ ref: ResourceRef, exists: Bool) -> OnboardingError {
        OnboardingError(
            .preconditionFailed,
            exists ? "the resource \(ref.type)/\(ref.resourceId) is not in the state the request's If-Match/If-None-Match expects"
                : "the resource \(ref.type)/\(ref.resourceId) does not exist, and If-Match requires it"
        )
    }

    /// A document of `bytes` bytes as stored, over the `limit`.
    public static func storedTooLarge(bytes: Int, limit: Int) -> OnboardingError {
        OnboardingError(
            .storedTooLarge,
            "The document takes \(bytes) bytes as stored, more than the limit of \(limit) bytes (\(limit / 1024) KiB). "
                + "Numbers are stored written out in full, without exponent (1e125 takes 126 digits), so a body within the "
                + "request size limit can be too large once stored: send fewer or shorter numbers, or split the document"
        )
    }

    public var description: String { "\(code.rawValue): \(message)" }
}
