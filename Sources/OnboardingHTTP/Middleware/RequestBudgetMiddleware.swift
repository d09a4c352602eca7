import Hummingbird
import RequestBudget

/// Gives every request one ``RetryBudget``: the time (`--request-deadline` on `serve`) and the
/// retries that all its store calls may spend together. Inside Lambda the runtime has already
/// bound a budget ending shortly before the invocation's deadline; that one is kept.
///
/// When the budget runs out the store answers `unavailable`, which the API answers `503` with
/// `Retry-After`, before a platform timeout could cut the request off unanswered.
public struct RequestBudgetMiddleware: RouterMiddleware {
    public typealias Context = AppRequestContext
    /// How long a request may take.
    public let deadline: Duration
    /// How many retries its calls may make in all.
    public let maxRetries: Int

    public init(deadline: Duration, maxRetries: Int = RetryBudget.defaultMaxRetries) {
        self.deadline = deadline
        self.maxRetries = maxRetries
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        try await RetryBudget.withCurrent(orNew: RetryBudget(timeout: deadline, maxRetries: maxRetries)) { _ in
            try await next(request, context)
        }
    }
}
