import Hummingbird
import OnboardingCore

/// Binds ``ChangeContext/current`` (who acts, and the request id) around the rest of the chain,
/// so every event a change of this request records names its actor and request
/// (CloudEvents extensions `actor` and `requestid`). Runs after authentication.
///
/// The actor is the authenticated credential's (``AppRequestContext/actor``); an anonymous
/// request (an open `POST /onboard`) acts as `anonymous`.
public struct ChangeContextMiddleware: RouterMiddleware {
    public typealias Context = AppRequestContext

    /// The actor of requests without credentials.
    public static let anonymousActor = "anonymous"

    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let actor = context.actor ?? context.identity.map { VerifiedCredential(principal: $0).actor } ?? Self.anonymousActor
        let change = ChangeContext(actor: actor, requestID: context.requestID.isEmpty ? nil : context.requestID)
        return try await ChangeContext.$current.withValue(change) {
            try await next(request, context)
        }
    }
}
