import Foundation
import SigV4
import Testing

@Suite("AWS credentials, region and endpoints as the SDKs find them")
struct AWSEnvironmentTests {
    /// A fake home folder with `.aws/credentials` and `.aws/config`.
    func home(credentials: String?, config: String?) throws -> URL {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("aws-home-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: home.appendingPathComponent(".aws"), withIntermediateDirectories: true)
        if let credentials { try credentials.write(to: home.appendingPathComponent(".aws/credentials"), atomically: true, encoding: .utf8) }
        if let config { try config.write(to: home.appendingPathComponent(".aws/config"), atomically: true, encoding: .utf8) }
        return home
    }

    let sharedCredentials = """
        # comment
        [default]
        aws_access_key_id = AKIADEFAULT
        aws_secret_access_key = default/secret

        [staging]
        AWS_ACCESS_KEY_ID=AKIASTAGING
        aws_secret_access_key= staging+secret
        aws_session_token = staging-token
        """
    let sharedConfig = """
        [default]
        region = eu-west-1
        [profile staging]
        region = ap-southeast-2
        ; comment
        [profile keys-in-config]
        aws_access_key_id = AKIACONFIG
        aws_secret_access_key = config-secret
        """

    @Test("the environment wins, as in Lambda")
    func environment() throws {
        let home = try home(credentials: sharedCredentials, config: sharedConfig)
        defer { try? FileManager.default.removeItem(at: home) }
        let environment = AWSEnvironment(
            variables: ["AWS_ACCESS_KEY_ID": "AKIAENV", "AWS_SECRET_ACCESS_KEY": "env-secret", "AWS_SESSION_TOKEN": "env-token", "AWS_REGION": "us-west-2"],
            homeDirectory: home.path
        )
        #expect(try environment.credentials() == AWSCredentials(accessKeyId: "AKIAENV", secretAccessKey: "env-secret", sessionToken: "env-token"))
        #expect(try environment.region() == "us-west-2")
    }

    @Test("the shared files, for the default profile and for AWS_PROFILE")
    func sharedFiles() throws {
        let home = try home(credentials: sharedCredentials, config: sharedConfig)
        defer { try? FileManager.default.removeItem(at: home) }
        let byDefault = AWSEnvironment(variables: [:], homeDirectory: home.path)
        #expect(try byDefault.credentials() == AWSCredentials(accessKeyId: "AKIADEFAULT", secretAccessKey: "default/secret"))
        #expect(try byDefault.region() == "eu-west-1")
        let staging = AWSEnvironment(variables: ["AWS_PROFILE": "staging"], homeDirectory: home.path)
        #expect(try staging.credentials() == AWSCredentials(accessKeyId: "AKIASTAGING", secretAccessKey: "staging+secret", sessionToken: "staging-token"))
        #expect(try staging.region() == "ap-southeast-2")
        let configOnly = AWSEnvironment(variables: ["AWS_PROFILE": "keys-in-config"], homeDirectory: home.path)
        #expect(try configOnly.credentials().accessKeyId == "AKIACONFIG")
        #expect(try AWSEnvironment(variables: ["AWS_DEFAULT_REGION": "sa-east-1"], homeDirectory: home.path).region() == "sa-east-1")
    }

    @Test("no credentials anywhere, or half of them, is a clear error")
    func missing() throws {
        let home = try home(credentials: nil, config: nil)
        defer { try? FileManager.default.removeItem(at: home) }
        let none = #expect(throws: AWSConfigurationError.self) { try AWSEnvironment(variables: [:], homeDirectory: home.path).credentials() }
        #expect(none?.message.contains("AWS_ACCESS_KEY_ID") == true)
        #expect(none?.message.contains(".aws/credentials") == true)
        let half = #expect(throws: AWSConfigurationError.self) {
            try AWSEnvironment(variables: ["AWS_ACCESS_KEY_ID": "AKIA"], homeDirectory: home.path).credentials()
        }
        #expect(half?.message.contains("AWS_SECRET_ACCESS_KEY") == true)
        let otherProfile = #expect(throws: AWSConfigurationError.self) {
            try AWSEnvironment(variables: ["AWS_PROFILE": "nope"], homeDirectory: home.path).credentials()
        }
        #expect(otherProfile?.message.contains("'nope'") == true)
        #expect(try AWSEnvironment(variables: [:], homeDirectory: home.path).region() == nil)
    }

    @Test("endpoints: the service's variable, then the general one, unless ignored")
    func endpoints() {
        let both = AWSEnvironment(variables: ["AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:5000", "AWS_ENDPOINT_URL": "http://127.0.0.1:4566"], homeDirectory: "/nonexistent")
        #expect(both.endpointURL(serviceVariable: "DYNAMODB") == "http://127.0.0.1:5000")
        #expect(both.endpointURL(serviceVariable: "SNS") == "http://127.0.0.1:4566")
        let ignored = AWSEnvironment(
            variables: ["AWS_ENDPOINT_URL": "http://127.0.0.1:4566", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"], homeDirectory: "/nonexistent"
        )
        #expect(ignored.endpointURL(serviceVariable: "DYNAMODB") == nil)
    }
}
