import Hummingbird
import Logging
import NIOCore
import OnboardingCore

/// `GET /health` and `GET /openapi.yaml`.
struct SystemController: Sendable {
    let storeCheck: CachedStoreCheck
    let version: String

    init(store: any TenantStore, version: String) {
        self.storeCheck = CachedStoreCheck(store: store)
        self.version = version
    }

    var routes: [Route] {
        [
            Route(.get, "/health", access: .anyone, handler: health),
            Route(.get, "/openapi.yaml", access: .anyone, handler: openAPI),
        ]
    }

    /// Liveness and a store check: `200` when the store answers a read, `503` when it does not.
    @Sendable func health(_ request: Request, context: AppRequestContext) async throws -> Response {
        if await storeCheck.isHealthy(logger: context.logger) {
            return JSONBody.response(.ok, Self.body(status: "ok", store: "ok", version: version))
        }
        return JSONBody.response(.serviceUnavailable, Self.body(status: "unavailable", store: "unavailable", version: version))
    }

    static func body(status: String, store: String, version: String) -> [String: AttributeValue] {
        ["status": .string(status), "checks": .map(["store": .string(store)]), "version": .string(version)]
    }

    /// The OpenAPI 3.1 document, compiled into the binary from `Resources/openapi.yaml`.
    @Sendable func openAPI(_ request: Request, context: AppRequestContext) async throws -> Response {
        Response(
            status: .ok,
            headers: [.contentType: MediaTypes.yaml],
            body: .init(byteBuffer: ByteBuffer(bytes: OpenAPIDocument.bytes))
        )
    }
}

/// The API's contract, `Sources/OnboardingHTTP/Resources/openapi.yaml`.
public enum OpenAPIDocument {
    /// The document's bytes (UTF-8 YAML).
    public static var bytes: [UInt8] { PackageResources.openapi_yaml }
}

/// The store check of `GET /health`, run at most once per `maxAge` (the answer is never older
/// than that), and single-flight: when the answer is due, one check runs and every probe that
/// arrives meanwhile awaits it, so a flood of probes puts one query per `maxAge` on the store.
final class CachedStoreCheck: Sendable {
    private let store: any TenantStore
    private let cache: SingleFlightCache<Bool>

    init(store: any TenantStore, maxAge: Duration = .seconds(1)) {
        self.store = store
        self.cache = SingleFlightCache(maxAge: maxAge)
    }

    func isHealthy(logger: Logger) async -> Bool {
        let store = store
        // The check never throws: an unavailable store is an answer (`false`), kept like `true`.
        return (try? await cache.value {
            do {
                try await store.checkHealth()
                return true
            } catch {
                logger.error("health check: store unavailable", metadata: ["error": "\(error)"])
                return false
            }
        }) ?? false
    }
}
