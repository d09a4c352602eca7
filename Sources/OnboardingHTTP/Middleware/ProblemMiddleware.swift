import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import OnboardingCore

/// The one place where errors become responses: every error thrown below it, whatever its
/// library, leaves as an RFC 9457 `application/problem+json` body with the request id.
///
/// Errors that are not the caller's fault are logged with the request id; their details never
/// reach the response.
public struct ProblemMiddleware: RouterMiddleware {
    public typealias Context = AppRequestContext

    let knownPaths: KnownPaths

    init(knownPaths: KnownPaths) {
        self.knownPaths = knownPaths
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch {
            let problem = problem(for: error, request: request, context: context)
            return problem.response(path: request.uri.path, requestID: context.requestID)
        }
    }

    func problem(for error: any Error, request: Request, context: Context) -> Problem {
        switch error {
        case let problem as Problem:
            return problem
        case let error as ValidationError:
            return .validation(error)
        case let error as OnboardingError where error.code == .tenantNotFound:
            return .tenantNotFound(TenantController.notFoundDetail)
        case let error as OnboardingError where error.code == .apiKeyNotFound:
            return Problem(.notFound, code: "api-key-not-found", title: "API key not found", detail: "The tenant has no API key with this id")
        case let error as OnboardingError where error.code == .limitReached:
            return Problem(.conflict, code: "limit-reached", title: "Limit reached", detail: error.message)
        case let error as OnboardingError where error.code == .resourceNotFound:
            return Problem(.notFound, code: "resource-not-found", title: "Resource not found", detail: error.message)
        case let error as OnboardingError where error.code == .invalidResourcePath:
            return Problem(.badRequest, code: "invalid-resource-path", title: "Invalid resource type or id", detail: error.message)
        case let error as OnboardingError where error.code == .preconditionFailed:
            return Problem(.preconditionFailed, code: "precondition-failed", title: "Precondition failed", detail: error.message)
        case let error as OnboardingError where error.code == .invalidTransition:
            return Problem(.conflict, code: "invalid-transition", title: "Invalid state transition", detail: error.message)
        case let error as OnboardingError where error.code == .conflict:
            return Problem(.conflict, code: "conflict", title: "Conflict", detail: error.message)
        case let error as OnboardingError where error.code == .invalidCursor:
            return .invalidCursor()
        case let error as OnboardingError where error.code == .storedTooLarge:
            // 413, like a body over the request limit: the remedy is the same (send less), and a
            // distinct code tells the two apart.
            return Problem(.contentTooLarge, code: "stored-too-large", title: "Document too large as stored", detail: error.message)
        case let error as StoreError where error.code == .unavailable:
            context.logger.error("store unavailable", metadata: ["error": "\(error)"])
            return .storeUnavailable()
        case is NIOTooManyBytesError:
            return .tooLarge()
        case let error as HTTPError:
            switch error.status {
            case .notFound:
                // The router found no route for this method and path; if the path is known, it
                // is the method that is wrong.
                if let allowed = knownPaths.allowedMethods(for: request.uri.path) {
                    return .methodNotAllowed(request.method, allowed: allowed)
                }
                return .routeNotFound(request.uri.path)
            case .contentTooLarge: return .tooLarge()
            case .badRequest: return .badRequest(error.body ?? "The request could not be read")
            case .unauthorized: return .unauthorized(error.body ?? "Credentials are required", invalidToken: false)
            default:
                if error.status.kind == .clientError {
                    return Problem(error.status, code: "http-\(error.status.code)", title: error.status.reasonPhrase, detail: error.body ?? error.status.reasonPhrase)
                }
                context.logger.error("request failed", metadata: ["error": "\(error)"])
                return .internalError()
            }
        case let error as HTTPParserError:
            // The body's framing broke after the head was read (a chunk size that is not hex, a
            // chunk longer than its size, a Transfer-Encoding the parser refuses, a client gone
            // mid-body): bad input, not a server failure. The parser's texts are fixed strings.
            return .badRequest("The request body could not be read: \(error)")
        default:
            // Swift errors from the domain or a library: a bug or an outage, never bad input.
            context.logger.error("request failed", metadata: ["error": "\(String(reflecting: type(of: error))): \(error)"])
            return .internalError()
        }
    }
}
