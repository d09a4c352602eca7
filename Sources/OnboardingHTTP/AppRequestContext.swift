import Hummingbird
import HummingbirdAuth
import OnboardingCore

/// The per-request state every route and middleware sees.
public struct AppRequestContext: AuthRequestContext, RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The authenticated caller, set by ``BearerAuthenticator``; `nil` for anonymous requests.
    public var identity: Principal?
    /// The request id (`X-Request-Id`), set by ``RequestIDMiddleware`` and in every log line.
    public var requestID: String

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.identity = nil
        self.requestID = ""
    }

    /// Every request body the API accepts fits in 64 KiB; larger ones get `413`.
    public var maxUploadSize: Int { AppLimits.maxBodyBytes }
}

/// The API's size limits.
public enum AppLimits {
    /// Largest request body accepted.
    public static let maxBodyBytes = 64 * 1024
}
