import Hummingbird
import Logging
import NIOCore
import OnboardingCore

/// `GET /health` and `GET /openapi.yaml`.
struct SystemController: Sendable {
    let store: any TenantStore
    let version: String

    var routes: [Route] {
        [
            Route(.get, "/health", access: .anyone, handler: health),
            Route(.get, "/openapi.yaml", access: .anyone, handler: openAPI),
        ]
    }

    /// Liveness and a store check: `200` when the store answers a read, `503` when it does not.
    @Sendable func health(_ request: Request, context: AppRequestContext) async throws -> Response {
        do {
            try await store.checkHealth()
            return JSONBody.response(.ok, Self.body(status: "ok", store: "ok", version: version))
        } catch {
            context.logger.error("health check: store unavailable", metadata: ["error": "\(error)"])
            return JSONBody.response(.serviceUnavailable, Self.body(status: "unavailable", store: "unavailable", version: version))
        }
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
