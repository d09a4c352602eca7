import Foundation
import HTTPTypes
import Hummingbird
import LambdaRuntime
import Logging
import NIOCore
import OnboardingApp
import OnboardingCore
import OnboardingHTTP
import OnboardingSQLite
import Testing

/// A sample event from `sam local generate-event`, adapted (Tests/LambdaRuntimeTests/Events).
func sampleEvent(_ name: String) throws -> [String: Any] {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Events/\(name).json")
    return try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
}

func invocation(_ event: [String: Any]) throws -> LambdaInvocation {
    LambdaInvocation(
        requestID: UUID().uuidString, deadline: Date() + 30, invokedFunctionARN: "arn:aws:lambda:us-east-1:123456789012:function:onboard",
        traceID: "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1", payload: Array(try JSONSerialization.data(withJSONObject: event))
    )
}

func proxyResponse(_ bytes: [UInt8]) throws -> [String: Any] {
    try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
}

/// The function's application (``buildApplication(_:runtime:overrides:)``) on a real SQLite file, behind the adapter.
func withAdapter(_ body: (APIGatewayAdapter<RouterResponder<AppRequestContext>>) async throws -> Void) async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("onboard-lambda-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let store = try SQLiteTenantStore(path: directory.appendingPathComponent("lambda.sqlite").path)
    var configuration = ServeConfiguration()
    configuration.adminToken = adminToken
    let app = try await buildApplication(configuration, runtime: .lambda, overrides: AppOverrides(store: store))
    try await body(APIGatewayAdapter(responder: app.responder) { info, logger in
        AppRequestContext(logger: logger, authorizerClaims: info.authorizerClaims)
    })
}

let adminToken = "lambda-admin-token-0123456789abcdef"

@Suite("API Gateway events through the one router")
struct APIGatewayAdapterTests {
    @Test("REST API (1.0): POST /Prod/onboard/ as sam generates it creates a tenant; GET reads it back")
    func restAPI() async throws {
        try await withAdapter { adapter in
            let created = try proxyResponse(try await adapter.handle(try invocation(try sampleEvent("rest-v1")), logger: Logger(label: "test")))
            #expect(created["statusCode"] as? Int == 201)
            #expect(created["isBase64Encoded"] as? Bool == false)
            let body = try #require(created["body"] as? String)
            let json = try JSONCodec.parse(body).mapValue ?? [:]
            #expect(json["message"] == .string("Client onboarded successfully"))
            let tenantId = try #require(json["tenantId"]?.stringValue)
            let headers = try #require(created["multiValueHeaders"] as? [String: [String]])
            #expect(headers["Location"] == ["/tenants/\(tenantId)"])
            #expect(headers["Content-Type"] == ["application/json"])
            #expect((created["headers"] as? [String: String])?["Location"] == "/tenants/\(tenantId)")

            var read = try sampleEvent("rest-v1")
            read["httpMethod"] = "GET"
            read["path"] = "/tenants/\(tenantId)"
            read["body"] = NSNull()
            read["isBase64Encoded"] = false
            read["multiValueHeaders"] = ["Authorization": ["Bearer \(adminToken)"], "Host": ["example.execute-api.us-east-1.amazonaws.com"]]
            let profile = try proxyResponse(try await adapter.handle(try invocation(read), logger: Logger(label: "test")))
            #expect(profile["statusCode"] as? Int == 200)
            #expect((profile["body"] as? String)?.contains("\"clientName\":\"Acme Corp\"") == true)

            read["path"] = "/tenants"
            read["multiValueQueryStringParameters"] = ["limit": ["1"], "order": ["oldest"]]
            let listing = try proxyResponse(try await adapter.handle(try invocation(read), logger: Logger(label: "test")))
            #expect(listing["statusCode"] as? Int == 200)
            #expect((listing["body"] as? String)?.contains(tenantId) == true)
        }
    }

    @Test("HTTP API (2.0): the stage prefix and cookies; problems come back as problem+json")
    func httpAPI() async throws {
        try await withAdapter { adapter in
            let created = try proxyResponse(try await adapter.handle(try invocation(try sampleEvent("http-v2")), logger: Logger(label: "test")))
            #expect(created["statusCode"] as? Int == 201)
            #expect((created["headers"] as? [String: String])?["Location"]?.hasPrefix("/tenants/") == true)

            var bad = try sampleEvent("http-v2")
            bad["body"] = "{\"clientName\": \"\"}"
            bad["isBase64Encoded"] = false
            let problem = try proxyResponse(try await adapter.handle(try invocation(bad), logger: Logger(label: "test")))
            #expect(problem["statusCode"] as? Int == 422)
            #expect((problem["headers"] as? [String: String])?["Content-Type"] == "application/problem+json")

            var unknown = try sampleEvent("http-v2")
            unknown["rawPath"] = "/Prod/nowhere/"
            let missing = try proxyResponse(try await adapter.handle(try invocation(unknown), logger: Logger(label: "test")))
            #expect(missing["statusCode"] as? Int == 404)
        }
    }

    @Test("events that are not API Gateway events are refused with a clear error")
    func malformedEvents() async throws {
        try await withAdapter { adapter in
            for payload in ["not json", "[1,2]", #"{"hello": "world"}"#, #"{"version": "2.0", "rawPath": "/x"}"#] {
                let broken = LambdaInvocation(requestID: "r", deadline: Date() + 30, invokedFunctionARN: "", traceID: nil, payload: Array(payload.utf8))
                await #expect(throws: APIGatewayEventError.self) { try await adapter.handle(broken, logger: Logger(label: "test")) }
            }
        }
    }

    @Test("authorizer claims reach the request context; binary bodies go out base64")
    func claimsAndBinary() async throws {
        let router = Router(context: AppRequestContext.self)
        router.get("/claims") { _, context -> Response in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: JSONCodec.serialize(.map(context.authorizerClaims.strings.mapValues { .string($0) })))))
        }
        router.get("/bytes") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "application/octet-stream"], body: .init(byteBuffer: ByteBuffer(bytes: [0, 255, 1])))
        }
        let adapter = APIGatewayAdapter(responder: router.buildResponder()) { info, logger in
            AppRequestContext(logger: logger, authorizerClaims: info.authorizerClaims)
        }
        var rest = try sampleEvent("rest-v1")
        rest["httpMethod"] = "GET"
        rest["path"] = "/claims"
        rest["body"] = NSNull()
        var context = rest["requestContext"] as? [String: Any] ?? [:]
        context["authorizer"] = ["claims": ["sub": "user-1", "custom:tenantId": "t-1", "cognito:groups": "admin"]]
        rest["requestContext"] = context
        let claims = try proxyResponse(try await adapter.handle(try invocation(rest), logger: Logger(label: "test")))
        #expect(claims["body"] as? String == #"{"cognito:groups":"admin","custom:tenantId":"t-1","sub":"user-1"}"#)

        var http = try sampleEvent("http-v2")
        http["rawPath"] = "/Prod/claims"
        var httpContext = http["requestContext"] as? [String: Any] ?? [:]
        httpContext["http"] = ["method": "GET", "path": "/Prod/claims"]
        http["requestContext"] = httpContext
        let jwtClaims = try proxyResponse(try await adapter.handle(try invocation(http), logger: Logger(label: "test")))
        #expect(jwtClaims["body"] as? String == #"{"claim1":"value1","claim2":"value2"}"#)

        http["rawPath"] = "/Prod/bytes"
        httpContext["http"] = ["method": "GET", "path": "/Prod/bytes"]
        http["requestContext"] = httpContext
        let binary = try proxyResponse(try await adapter.handle(try invocation(http), logger: Logger(label: "test")))
        #expect(binary["isBase64Encoded"] as? Bool == true)
        #expect(binary["body"] as? String == "AP8B")
    }

    @Test("the caller's address is API Gateway's sourceIp (1.0 and 2.0), never a header the client sets")
    func sourceAddress() async throws {
        let router = Router(context: AppRequestContext.self)
        router.get("/peer") { _, context -> String in context.peerAddress ?? "none" }
        let adapter = APIGatewayAdapter(responder: router.buildResponder()) { info, logger in
            AppRequestContext(logger: logger, authorizerClaims: info.authorizerClaims, peerAddress: info.sourceIP)
        }
        var rest = try sampleEvent("rest-v1")
        rest["httpMethod"] = "GET"
        rest["path"] = "/peer"
        rest["body"] = NSNull()
        rest["multiValueHeaders"] = ["X-Forwarded-For": ["6.6.6.6"]]
        var context = rest["requestContext"] as? [String: Any] ?? [:]
        context["identity"] = ["sourceIp": "203.0.113.9"]
        rest["requestContext"] = context
        #expect(try proxyResponse(try await adapter.handle(try invocation(rest), logger: Logger(label: "test")))["body"] as? String == "203.0.113.9")

        var http = try sampleEvent("http-v2")
        http["rawPath"] = "/Prod/peer"
        var httpContext = http["requestContext"] as? [String: Any] ?? [:]
        httpContext["http"] = ["method": "GET", "path": "/Prod/peer", "sourceIp": "2001:db8::7"]
        http["requestContext"] = httpContext
        #expect(try proxyResponse(try await adapter.handle(try invocation(http), logger: Logger(label: "test")))["body"] as? String == "2001:db8::7")
    }

    @Test("behind a Cognito authorizer, members of the admin group are the admin; others are not")
    func cognitoAdmin() async throws {
        try await withAdapter { adapter in
            let created = try proxyResponse(try await adapter.handle(try invocation(try sampleEvent("rest-v1")), logger: Logger(label: "test")))
            let body = try JSONCodec.parse(try #require(created["body"] as? String)).mapValue ?? [:]
            let tenantId = try #require(body["tenantId"]?.stringValue)
            // Lists in every format: AuthorizerGroupClaimTests.
            for (groups, status) in [("admin", 200), ("support", 401)] {
                var read = try sampleEvent("rest-v1")
                read["httpMethod"] = "GET"
                read["path"] = "/tenants/\(tenantId)"
                read["body"] = NSNull()
                var context = read["requestContext"] as? [String: Any] ?? [:]
                context["authorizer"] = ["claims": ["sub": "u-1", "cognito:groups": groups]]
                read["requestContext"] = context
                let response = try proxyResponse(try await adapter.handle(try invocation(read), logger: Logger(label: "test")))
                #expect(response["statusCode"] as? Int == status, "\(groups)")
            }
        }
    }

    @Test("behind a Cognito authorizer, the custom:tenantId claim names the tenant (the JWT verifier's mapping)")
    func cognitoTenant() async throws {
        try await withAdapter { adapter in
            func onboard() async throws -> String {
                let created = try proxyResponse(try await adapter.handle(try invocation(try sampleEvent("rest-v1")), logger: Logger(label: "test")))
                let body = try JSONCodec.parse(try #require(created["body"] as? String)).mapValue ?? [:]
                return try #require(body["tenantId"]?.stringValue)
            }
            let tenantA = try await onboard()
            let tenantB = try await onboard()
            let cases: [([String: String], String, Int)] = [
                (["custom:tenantId": tenantA], tenantA, 200),
                (["custom:tenantId": tenantA.uppercased(), "cognito:groups": "support"], tenantA, 200),
                (["custom:tenantId": tenantA], tenantB, 404),
                (["custom:tenantId": "not-a-tenant-id"], tenantA, 401),
                (["email": "someone@example.com"], tenantA, 401),
            ]
            for (claims, tenant, status) in cases {
                var read = try sampleEvent("rest-v1")
                read["httpMethod"] = "GET"
                read["path"] = "/tenants/\(tenant)"
                read["body"] = NSNull()
                var context = read["requestContext"] as? [String: Any] ?? [:]
                context["authorizer"] = ["claims": claims.merging(["sub": "u-1"]) { $1 }]
                read["requestContext"] = context
                let response = try proxyResponse(try await adapter.handle(try invocation(read), logger: Logger(label: "test")))
                #expect(response["statusCode"] as? Int == status, "\(claims) reading \(tenant == tenantA ? "A" : "B")")
            }
        }
    }

    /// An adapter over a router whose one route answers with the request's X-Amzn-Trace-Id.
    func traceEchoAdapter() -> APIGatewayAdapter<RouterResponder<AppRequestContext>> {
        let router = Router(context: AppRequestContext.self)
        router.get("/trace") { request, _ in request.headers[HTTPField.Name("X-Amzn-Trace-Id")!] ?? "none" }
        return APIGatewayAdapter(responder: router.buildResponder()) { info, logger in AppRequestContext(logger: logger, authorizerClaims: info.authorizerClaims) }
    }

    @Test("the invocation's trace header reaches the router as X-Amzn-Trace-Id, replacing the one in the event")
    func traceHeader() async throws {
        var event = try sampleEvent("rest-v1")
        event["httpMethod"] = "GET"
        event["path"] = "/trace"
        event["body"] = NSNull()
        var headers = try #require(event["multiValueHeaders"] as? [String: [String]])
        headers["X-Amzn-Trace-Id"] = ["Root=1-00000000-from-api-gateway"]
        event["multiValueHeaders"] = headers
        let traced = try invocation(event)
        let answer = try proxyResponse(try await traceEchoAdapter().handle(traced, logger: Logger(label: "test")))
        #expect(answer["body"] as? String == traced.traceID)

        let untraced = LambdaInvocation(requestID: "r", deadline: Date() + 30, invokedFunctionARN: "", traceID: nil, payload: traced.payload)
        let kept = try proxyResponse(try await traceEchoAdapter().handle(untraced, logger: Logger(label: "test")))
        #expect(kept["body"] as? String == "Root=1-00000000-from-api-gateway", "without Lambda's header, the event's stays")
    }

    @Test("a timeout response is the given response in the event's format (1.0 and 2.0); none for an event that is not API Gateway's")
    func timeoutResponse() async throws {
        let adapter = traceEchoAdapter()
        for name in ["rest-v1", "http-v2"] {
            let bytes = try #require(await adapter.timeoutResponse(for: try invocation(try sampleEvent(name))) { request, info in
                Response(status: .serviceUnavailable, headers: [.retryAfter: "1", .contentType: "text/plain"], body: ResponseBody(byteBuffer: ByteBuffer(string: "\(request.uri.path) \(info.version.rawValue)")))
            })
            let answer = try proxyResponse(bytes)
            #expect(answer["statusCode"] as? Int == 503)
            #expect((answer["headers"] as? [String: String])?["Retry-After"] == "1")
            #expect(answer["body"] as? String == (name == "rest-v1" ? "/onboard/ 1.0" : "/onboard 2.0"))
        }
        let notAnEvent = LambdaInvocation(requestID: "r", deadline: Date() + 30, invokedFunctionARN: "", traceID: nil, payload: Array("[]".utf8))
        #expect(await adapter.timeoutResponse(for: notAnEvent) { _, _ in Response(status: .serviceUnavailable) } == nil)
    }
}
