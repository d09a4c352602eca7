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
        /// A unique id could not be allocated (id collisions kept happening).
        public static let idExhausted = Code(rawValue: "id_exhausted")
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

    public var description: String { "\(code.rawValue): \(message)" }
}
