import AWSClient
import Foundation
import Logging
import OnboardingApp
import OnboardingHTTP
import SigV4
import Testing

/// URLs the service trusts (the OIDC issuer and its JWKS, the DynamoDB, SNS and EventBridge
/// endpoints) are `https://`, or plain `http://` only to this machine; a configured admin token
/// carries at least 128 bits by the documented estimate.
@Suite("Endpoint URLs and the configured admin token")
struct EndpointAndAdminTokenSettingsTests {
    /// The one-line error `onboard serve` would print for these settings, or `nil` when they resolve.
    func error(flags: [String: String] = [:], environment: [String: String] = [:]) -> String? {
        do {
            _ = try ServeConfiguration.resolve(flags: flags, environment: environment)
            return nil
        } catch {
            return error.description
        }
    }

    static let refusedHTTP = [
        "http://idp.example.com/pool", "http://10.0.0.7:8000", "http://192.168.1.2", "http://128.0.0.1", "http://127.0.0.1.example.com",
        "http://localhost.example.com", "http://[::2]:5000", "http://[fe80::1]/", "http://0.0.0.0:8000",
    ]
    static let loopbackHTTP = ["http://127.0.0.1:5000", "http://127.255.0.9", "http://localhost:4566", "http://[::1]:5000"]
    static let https = ["https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_abc", "https://10.0.0.7:8443", "https://idp.example.com"]

    @Test("a refused URL is quoted without its user information (no password in an error message)")
    func refusedURLsHideTheirPassword() async throws {
        let issuer = error(flags: [Setting.oidcIssuer.key: "http://alice:s3cret-pw@idp.example.com/pool", Setting.oidcClientIDs.key: "c"])
        #expect(issuer?.hasPrefix("invalid --oidc-issuer 'http://…@idp.example.com/pool': plain http:// is refused") == true, "\(issuer ?? "accepted")")
        let store = await #expect(throws: ConfigurationError.self) {
            _ = try await OpenedStore.dynamoDBClient(
                StoreConfiguration(), environment: awsEnvironment(["AWS_ENDPOINT_URL": "http://bob:pw-0123@10.0.0.7:8000"]), logger: Logger(label: "test")
            )
        }
        #expect(store?.description.contains("pw-0123") == false, "\(store?.description ?? "")")
        #expect(store?.description.contains("http://…@10.0.0.7:8000") == true, "\(store?.description ?? "")")
    }

    @Test("the OIDC issuer and JWKS URL: http:// refused unless loopback, naming the setting; https:// accepted")
    func oidcURLs() {
        for url in Self.refusedHTTP {
            let issuer = error(flags: [Setting.oidcIssuer.key: url, Setting.oidcClientIDs.key: "c"])
            #expect(issuer?.hasPrefix("invalid --oidc-issuer '\(url)': plain http:// is refused") == true, "\(issuer ?? "accepted")")
            let jwks = error(environment: [
                "ONBOARD_OIDC_ISSUER": Self.https[0], "ONBOARD_OIDC_CLIENT_IDS": "c", "ONBOARD_OIDC_JWKS_URL": url + "/jwks.json",
            ])
            #expect(jwks?.hasPrefix("invalid ONBOARD_OIDC_JWKS_URL") == true && jwks?.contains("127.0.0.0/8, ::1 or localhost") == true, "\(jwks ?? "accepted")")
        }
        for url in Self.loopbackHTTP + Self.https {
            #expect(error(flags: [Setting.oidcIssuer.key: url + "/pool", Setting.oidcClientIDs.key: "c"]) == nil, "\(url)")
            #expect(error(flags: [Setting.oidcIssuer.key: Self.https[0], Setting.oidcClientIDs.key: "c", Setting.oidcJWKSURL.key: url + "/jwks"]) == nil, "\(url)")
        }
    }

    @Test("--dynamodb-endpoint: http:// refused unless loopback, naming the setting; https:// accepted")
    func dynamoDBEndpoint() {
        for url in Self.refusedHTTP {
            let message = error(flags: [Setting.dynamoDBEndpoint.key: url])
            #expect(message?.hasPrefix("invalid --dynamodb-endpoint '\(url)': plain http:// is refused") == true, "\(message ?? "accepted")")
            #expect(error(environment: ["ONBOARD_DYNAMODB_ENDPOINT": url])?.hasPrefix("invalid ONBOARD_DYNAMODB_ENDPOINT") == true)
        }
        for url in Self.loopbackHTTP + Self.https {
            #expect(error(flags: [Setting.dynamoDBEndpoint.key: url]) == nil, "\(url)")
        }
    }

    /// An AWS environment of its own: static keys (no network), a region, no shared files.
    func awsEnvironment(_ variables: [String: String]) -> AWSEnvironment {
        AWSEnvironment(
            variables: ["AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "AWS_REGION": "us-east-1"]
                .merging(variables) { $1 },
            homeDirectory: FileManager.default.temporaryDirectory.appendingPathComponent("no-home-\(UUID().uuidString)").path
        )
    }

    @Test("AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE> for DynamoDB, SNS and EventBridge: http:// refused unless loopback, naming the variable")
    func awsEndpointVariables() async throws {
        let events = try ServeConfiguration.resolve(
            flags: [Setting.snsTopicARN.key: "arn:aws:sns:us-east-1:123456789012:t", Setting.eventBridgeBus.key: "onboard-bus"], environment: [:]
        ).events
        for url in Self.refusedHTTP {
            for variable in ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"] {
                let store = await #expect(throws: ConfigurationError.self, "\(variable)=\(url)") {
                    _ = try await OpenedStore.dynamoDBClient(StoreConfiguration(), environment: awsEnvironment([variable: url]), logger: Logger(label: "test"))
                }
                #expect(store?.description.hasPrefix("invalid environment variable \(variable) '\(url)'") == true, "\(store?.description ?? "")")
            }
            for variable in ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SNS", "AWS_ENDPOINT_URL_EVENTBRIDGE"] {
                let sinks = await #expect(throws: ConfigurationError.self, "\(variable)=\(url)") {
                    _ = try await events.makeSinks(region: nil, environment: awsEnvironment([variable: url]), logger: Logger(label: "test"))
                }
                #expect(sinks?.description.contains(variable) == true, "\(sinks?.description ?? "")")
            }
        }
        for url in Self.loopbackHTTP + Self.https {
            let client = try await OpenedStore.dynamoDBClient(StoreConfiguration(), environment: awsEnvironment(["AWS_ENDPOINT_URL": url]), logger: Logger(label: "test"))
            #expect(client.endpoint == url)
            try await client.client.shutdown()
            let built = try await events.makeSinks(region: nil, environment: awsEnvironment(["AWS_ENDPOINT_URL": url]), logger: Logger(label: "test"))
            #expect(built.sinks.count == 2)
            await built.shutdown()
        }
    }

    @Test("a configured admin token needs 128 bits by the documented estimate; the message explains it and never quotes the token")
    func adminTokenEntropy() {
        let weak = [
            String(repeating: "a", count: 64),
            "abcdefghijklmnopqrstuvwxyzabcdef",
            "password-password-password-password",
            "e2e-admin-token-abcdefghijklmnop",
            "0123456789012345678901234567890123456789",
            "xq7Rxq7Rxq7Rxq7Rxq7Rxq7Rxq7Rxq7R",
            String(repeating: "1", count: 23) + "2",
        ]
        for token in weak {
            for (flags, environment, source) in [
                ([Setting.adminToken.key: token], [String: String](), "--admin-token"), ([:], ["ONBOARD_ADMIN_TOKEN": token], "ONBOARD_ADMIN_TOKEN"),
            ] {
                let message = error(flags: flags, environment: environment)
                #expect(message?.hasPrefix("invalid \(source): the admin token") == true, "\(message ?? "accepted")")
                #expect(message?.contains(token) == false)
            }
        }
        let explained = error(environment: ["ONBOARD_ADMIN_TOKEN": "e2e-admin-token-abcdefghijklmnop"]) ?? ""
        #expect(explained.contains("bits of entropy, at least 128 needed"), "\(explained)")
        #expect(explained.contains("log2 of the character classes"), "\(explained)")
        #expect(error(environment: ["ONBOARD_ADMIN_TOKEN": String(repeating: "z", count: 30)])?.contains("one character repeated") == true)

        // Every token this repository configures (tests, scripts, .ci/run, README), and random ones.
        let configured = [
            "ci-schemathesis-admin-token-0123456789", "bench-admin-token-0123456789abcdef", "lambda-admin-token-0123456789abcdef",
            "test-admin-token-0123456789abcdef", "cli-compare-admin-token-abcdefgh", "events-e2e-admin-token-0123456789abcdef",
            "e2e-admin-token-k3Qz9vLw2Xr8TmN4", "bad-input-corpus-admin-token-0123456789", "resume-admin-token-abcdefghijklmn",
            "lost-answer-admin-token-0123456789", "events-cli-admin-token-0123456789",
            "crash-rounds-admin-token-00000000000000000000000000000000", "long-schemathesis-admin-token-ffffffffffffffffffffffffffffffff",
            AdminCredential.generateToken(),
        ]
        for token in configured {
            #expect(error(environment: ["ONBOARD_ADMIN_TOKEN": token]) == nil, "\(token): \(AdminCredential.estimatedEntropyBits(token)) bits")
        }
        // `openssl rand -hex 16` (128 random bits) passes: its estimate is about 165 bits.
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<200 {
            let hex = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: .min ... .max, using: &generator)) }.joined()
            #expect(AdminCredential.estimatedEntropyBits(hex) >= 128, "\(hex)")
        }
    }
}
