import Foundation
import Hummingbird
import LambdaRuntime
import Logging
import OnboardingCore
import OnboardingHTTP
import Testing

/// Group claims as API Gateway's authorizers really pass them (the events in
/// Tests/LambdaRuntimeTests/Events/*-authorizer.json): a REST API Cognito authorizer (1.0) joins a
/// list with commas (`support,admin`), an HTTP API JWT authorizer (2.0) writes it `[support admin]`,
/// a REST API JWT authorizer passes a JSON array. Names match exactly; a string that could be split
/// more than one way never makes the admin.
@Suite("API Gateway authorizer group claims")
struct AuthorizerGroupClaimTests {
    /// The status of `GET /tenants/<tenant>` (admin only, or the tenant itself) for an event whose
    /// authorizer claims are `sample`'s with `changes` applied (`NSNull` removes a claim).
    func status(
        _ adapter: APIGatewayAdapter<RouterResponder<AppRequestContext>>, sample: String, tenant: String, changes: [String: Any]
    ) async throws -> Int? {
        var event = try sampleEvent(sample)
        var context = try #require(event["requestContext"] as? [String: Any])
        if sample.hasPrefix("http-v2") {
            event["rawPath"] = "/Prod/tenants/\(tenant)"
            event["body"] = NSNull()
            var http = try #require(context["http"] as? [String: Any])
            http["method"] = "GET"
            http["path"] = "/Prod/tenants/\(tenant)"
            context["http"] = http
            var authorizer = try #require(context["authorizer"] as? [String: Any])
            var jwt = try #require(authorizer["jwt"] as? [String: Any])
            var claims = try #require(jwt["claims"] as? [String: Any])
            for (name, value) in changes { claims[name] = value is NSNull ? nil : value }
            jwt["claims"] = claims
            authorizer["jwt"] = jwt
            context["authorizer"] = authorizer
        } else {
            event["httpMethod"] = "GET"
            event["path"] = "/tenants/\(tenant)"
            event["body"] = NSNull()
            var authorizer = try #require(context["authorizer"] as? [String: Any])
            var claims = try #require(authorizer["claims"] as? [String: Any])
            for (name, value) in changes { claims[name] = value is NSNull ? nil : value }
            authorizer["claims"] = claims
            context["authorizer"] = authorizer
        }
        event["requestContext"] = context
        return try proxyResponse(try await adapter.handle(try invocation(event), logger: Logger(label: "test")))["statusCode"] as? Int
    }

    func onboard(_ adapter: APIGatewayAdapter<RouterResponder<AppRequestContext>>) async throws -> String {
        let created = try proxyResponse(try await adapter.handle(try invocation(try sampleEvent("rest-v1")), logger: Logger(label: "test")))
        let body = try JSONCodec.parse(try #require(created["body"] as? String)).mapValue ?? [:]
        return try #require(body["tenantId"]?.stringValue)
    }

    @Test("REST API Cognito authorizer (1.0): `admin` alone is the admin; a comma list never is (a group may be named `x,admin`)")
    func restAPICognito() async throws {
        try await withAdapter { adapter in
            let tenant = try await onboard(adapter)
            let cases: [(Any, Int)] = [
                ("admin", 200),
                ("x,admin", 401),
                ("support,admin", 401),
                ("admin,support", 401),
                ("[support admin]", 401),
                ("[admin]", 401),
                ("admin ", 401),
                ("administrators", 401),
                ("support", 401),
                // A JSON array (a REST API JWT authorizer passes claims with their JSON types) is exact.
                (["support", "admin"], 200),
                (["x,admin"], 401),
                (["x admin"], 401),
            ]
            for (groups, expected) in cases {
                let got = try await status(adapter, sample: "rest-v1-cognito-authorizer", tenant: tenant, changes: ["cognito:groups": groups])
                #expect(got == expected, "cognito:groups \(groups)")
            }
        }
    }

    @Test("HTTP API JWT authorizer (2.0): `[a b]` splits on spaces only for a Cognito issuer (its group names hold no whitespace)")
    func httpAPIJWT() async throws {
        try await withAdapter { adapter in
            let tenant = try await onboard(adapter)
            let cognito = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_example"
            let other = "https://login.example.com/realms/main"
            let cases: [(String, String, Int)] = [
                ("[support admin]", cognito, 200),
                ("[admin]", cognito, 200),
                ("[admin]", other, 200),
                ("admin", other, 200),
                ("[x,admin other]", cognito, 401),
                ("[x,admin]", cognito, 401),
                ("[[admin]]", cognito, 401),
                ("[admin]x", cognito, 401),
                ("[support admin]", other, 401),
                ("[support admin]", "https://cognito-idp.example.com/us-east-1_example", 401),
                ("[support admin]", "https://cognito-idp.us-east-1.amazonaws.com.example.com/pool", 401),
                ("[support]", cognito, 401),
            ]
            for (groups, issuer, expected) in cases {
                let got = try await status(
                    adapter, sample: "http-v2-jwt-authorizer", tenant: tenant, changes: ["cognito:groups": groups, "iss": issuer]
                )
                #expect(got == expected, "cognito:groups \(groups) from \(issuer)")
            }
        }
    }

    @Test("a group list that is not exact still lets the tenant claim name the tenant")
    func ambiguousGroupsKeepTenant() async throws {
        try await withAdapter { adapter in
            let tenantA = try await onboard(adapter)
            let tenantB = try await onboard(adapter)
            let claims: [String: Any] = ["cognito:groups": "x,admin", "custom:tenantId": tenantA]
            #expect(try await status(adapter, sample: "rest-v1-cognito-authorizer", tenant: tenantA, changes: claims) == 200)
            #expect(try await status(adapter, sample: "rest-v1-cognito-authorizer", tenant: tenantB, changes: claims) == 404)
        }
    }

    @Test("the sample events as recorded: the 1.0 comma list is not the admin, the 2.0 Cognito list is")
    func samplesAsRecorded() async throws {
        try await withAdapter { adapter in
            let tenant = try await onboard(adapter)
            #expect(try await status(adapter, sample: "rest-v1-cognito-authorizer", tenant: tenant, changes: [:]) == 401)
            #expect(try await status(adapter, sample: "http-v2-jwt-authorizer", tenant: tenant, changes: [:]) == 200)
        }
    }
}
