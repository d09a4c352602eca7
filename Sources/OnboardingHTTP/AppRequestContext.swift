import Hummingbird
import HummingbirdAuth
import Logging
import OnboardingCore

/// The per-request state every route and middleware sees.
public struct AppRequestContext: AuthRequestContext, RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The authenticated caller, set by ``BearerAuthenticator``; `nil` for anonymous requests.
    public var identity: Principal?
    /// How the events of this request's changes name the caller (``VerifiedCredential/actor``:
    /// `admin`, `apikey:<keyId>`, `jwt:<sub>`, `tenant:<tenantId>`), set with ``identity``;
    /// `nil` for anonymous requests.
    public var actor: String?
    /// The request id (`X-Request-Id`), set by ``RequestIDMiddleware`` and in every log line.
    public var requestID: String

    /// Claims an authorizer in front of the service already verified (API Gateway with a
    /// Cognito or JWT authorizer); empty when there is none.
    public var authorizerClaims: AuthorizerClaims

    /// The address of the peer that sent the request (a proxy's, behind one); rate limiting
    /// derives the client's address from it (see ``ClientAddress``).
    public var peerAddress: String?
    /// The client's address as the rate limits see it (``ClientAddress``), once resolved.
    public var clientAddress: String?
    /// Whether ``peerAddress`` is the connection's peer (the HTTP server; perhaps a proxy that
    /// sends `X-Forwarded-For`) rather than a client API Gateway already named (Lambda).
    public var peerIsConnection = true

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.identity = nil
        self.requestID = ""
        self.authorizerClaims = .none
        self.peerAddress = source.channel.remoteAddress?.ipAddress
    }

    /// A context for a request that did not come through the HTTP server (an API Gateway event
    /// in Lambda).
    public init(logger: Logger, authorizerClaims: AuthorizerClaims = .none, peerAddress: String? = nil) {
        self.coreContext = .init(source: LoggerSource(logger: logger))
        self.identity = nil
        self.requestID = ""
        self.authorizerClaims = authorizerClaims
        self.peerAddress = peerAddress
        self.peerIsConnection = false
    }

    private struct LoggerSource: RequestContextSource {
        let logger: Logger
    }

    /// Every request body the API accepts fits in 64 KiB; larger ones get `413`.
    public var maxUploadSize: Int { AppLimits.maxBodyBytes }
}

/// The API's size limits.
public enum AppLimits {
    /// Largest request body accepted.
    public static let maxBodyBytes = 64 * 1024
}
