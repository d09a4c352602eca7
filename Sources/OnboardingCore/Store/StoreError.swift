/// An error a ``TenantStore`` reports, the same for every store.
///
/// A struct with a code rather than an enum, so new codes do not break callers.
public struct StoreError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What went wrong.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        fileprivate enum Base: String, Sendable, Hashable {
            case conditionFailed
            case transactionCanceled
            case invalidRequest
            case unavailable
        }

        fileprivate let base: Base

        /// A write's condition did not hold; nothing was written.
        public static let conditionFailed = Code(base: .conditionFailed)
        /// A transaction was not applied; `cancellationReasons` says which writes failed.
        public static let transactionCanceled = Code(base: .transactionCanceled)
        /// The request breaks a rule of the store (key too long, too many writes, …).
        public static let invalidRequest = Code(base: .invalidRequest)
        /// The store could not be reached or failed; the request may be retried.
        public static let unavailable = Code(base: .unavailable)

        public var description: String { base.rawValue }
    }

    /// Why one write of a canceled transaction failed.
    public enum CancellationReason: Sendable, Hashable {
        /// This write was fine; another one failed.
        case none
        /// This write's condition did not hold.
        case conditionFailed
        /// This write failed for another reason.
        case other(String)
    }

    public let code: Code
    /// A sentence for operators; never shown with secrets or personal data in it.
    public let message: String
    /// For `.transactionCanceled`: one reason per write, in the order the writes were given.
    public let cancellationReasons: [CancellationReason]

    public init(_ code: Code, _ message: String, cancellationReasons: [CancellationReason] = []) {
        self.code = code
        self.message = message
        self.cancellationReasons = cancellationReasons
    }

    public static func conditionFailed(_ key: ItemKey) -> StoreError {
        StoreError(.conditionFailed, "the condition on \(key.resourceKey) does not hold")
    }

    public static func invalidRequest(_ message: String) -> StoreError {
        StoreError(.invalidRequest, message)
    }

    public var description: String { "StoreError.\(code): \(message)" }
}
