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
    func endpoints() throws {
        let both = AWSEnvironment(variables: ["AWS_ENDPOINT_URL_DYNAMODB": "http://127.0.0.1:5000", "AWS_ENDPOINT_URL": "http://127.0.0.1:4566"], homeDirectory: "/nonexistent")
        #expect(try both.endpointURL(serviceVariable: "DYNAMODB") == "http://127.0.0.1:5000")
        #expect(try both.endpointURL(serviceVariable: "SNS") == "http://127.0.0.1:4566")
        let ignored = AWSEnvironment(
            variables: ["AWS_ENDPOINT_URL": "http://127.0.0.1:4566", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"], homeDirectory: "/nonexistent"
        )
        #expect(try ignored.endpointURL(serviceVariable: "DYNAMODB") == nil)
    }

    @Test("endpoints: https:// anywhere; http:// only to loopback (127.0.0.0/8, ::1, localhost); the error names the variable")
    func endpointSchemes() throws {
        let accepted = [
            "https://dynamodb.eu-west-1.amazonaws.com", "https://10.0.0.5:8443", "http://127.0.0.1:5000", "http://127.8.9.10",
            "http://localhost:4566", "HTTP://LOCALHOST:4566", "http://[::1]:5000", "http://[0:0:0:0:0:0:0:1]/",
        ]
        for url in accepted {
            for variable in ["AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"] {
                let environment = AWSEnvironment(variables: [variable: url], homeDirectory: "/nonexistent")
                #expect(try environment.endpointURL(serviceVariable: "DYNAMODB") == url, "\(variable)=\(url)")
            }
        }
        let refused = [
            "http://dynamodb.eu-west-1.amazonaws.com", "http://10.0.0.5:8000", "http://128.0.0.1", "http://127.0.0.1.example.com",
            "http://localhost.example.com", "http://[::2]:5000", "http://[::ffff:8.8.8.8]", "ftp://127.0.0.1", "127.0.0.1:5000", "http://",
        ]
        for url in refused {
            for (variable, service) in [("AWS_ENDPOINT_URL", "SNS"), ("AWS_ENDPOINT_URL_SNS", "SNS"), ("AWS_ENDPOINT_URL_EVENTBRIDGE", "EVENTBRIDGE"),
                ("AWS_ENDPOINT_URL_STS", "STS"), ("AWS_ENDPOINT_URL_DYNAMODB", "DYNAMODB")]
            {
                let environment = AWSEnvironment(variables: [variable: url], homeDirectory: "/nonexistent")
                let error = #expect(throws: AWSConfigurationError.self, "\(variable)=\(url)") { try environment.endpointURL(serviceVariable: service) }
                #expect(error?.message.contains(variable) == true, "\(error?.message ?? "")")
            }
        }
        // Web identity refuses a plain-http STS endpoint too (its answer is the role's credentials).
        let webIdentity = AWSEnvironment(
            variables: ["AWS_WEB_IDENTITY_TOKEN_FILE": "/t", "AWS_ROLE_ARN": "arn:aws:iam::1:role/r", "AWS_ENDPOINT_URL_STS": "http://sts.example.com"],
            homeDirectory: "/nonexistent"
        )
        #expect(throws: AWSConfigurationError.self) { try webIdentity.webIdentity() }
    }

    @Test("web identity: both variables or none; STS from AWS_ENDPOINT_URL_STS, then AWS_ENDPOINT_URL")
    func webIdentity() throws {
        let both = AWSEnvironment(
            variables: ["AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token", "AWS_ROLE_ARN": "arn:aws:iam::1:role/r", "AWS_ROLE_SESSION_NAME": "s",
                        "AWS_ENDPOINT_URL": "http://127.0.0.1:4566"],
            homeDirectory: "/nonexistent"
        )
        #expect(try both.webIdentity() == .init(tokenFile: "/var/run/token", roleARN: "arn:aws:iam::1:role/r", sessionName: "s", stsEndpoint: "http://127.0.0.1:4566"))
        let sts = AWSEnvironment(
            variables: ["AWS_WEB_IDENTITY_TOKEN_FILE": "/t", "AWS_ROLE_ARN": "arn", "AWS_ENDPOINT_URL_STS": "http://127.0.0.1:1", "AWS_ENDPOINT_URL": "http://127.0.0.1:2"],
            homeDirectory: "/nonexistent"
        )
        #expect(try sts.webIdentity()?.stsEndpoint == "http://127.0.0.1:1")
        #expect(try sts.webIdentity()?.sessionName == nil)
        #expect(try AWSEnvironment(variables: ["AWS_ROLE_ARN": "arn"], homeDirectory: "/nonexistent").webIdentity() == nil)
        #expect(try AWSEnvironment(variables: [:], homeDirectory: "/nonexistent").webIdentity() == nil)
        let half = #expect(throws: AWSConfigurationError.self) {
            try AWSEnvironment(variables: ["AWS_WEB_IDENTITY_TOKEN_FILE": "/t"], homeDirectory: "/nonexistent").webIdentity()
        }
        #expect(half?.message.contains("AWS_ROLE_ARN") == true)
    }

    @Test("container endpoint: the relative URI on 169.254.170.2 first; a full URI only over https or to loopback and container addresses")
    func containerEndpoint() throws {
        func settings(_ variables: [String: String]) throws -> AWSEnvironment.ContainerCredentialSettings? {
            try AWSEnvironment(variables: variables, homeDirectory: "/nonexistent").containerCredentials()
        }
        #expect(try settings([:]) == nil)
        #expect(try settings(["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/abc", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:9/x"])
            == .init(url: "http://169.254.170.2/v2/credentials/abc"))
        let eks = try settings([
            "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/v1/credentials", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": "/var/run/token",
            "AWS_CONTAINER_AUTHORIZATION_TOKEN": "t",
        ])
        #expect(eks == .init(url: "http://169.254.170.23/v1/credentials", authorizationTokenFile: "/var/run/token", authorizationToken: "t"))
        for allowed in ["http://127.0.0.1:8080/c", "http://127.0.0.2/c", "http://localhost:1/c", "http://[::1]:1/c", "http://[fd00:ec2::23]/c", "https://creds.example.com/c"] {
            #expect(try settings(["AWS_CONTAINER_CREDENTIALS_FULL_URI": allowed])?.url == allowed)
        }
        for refused in ["http://203.0.113.9/c", "http://169.254.169.254/c", "http://127.0.0.1.example.com/c", "not a url"] {
            #expect(throws: AWSConfigurationError.self, "\(refused)") { try settings(["AWS_CONTAINER_CREDENTIALS_FULL_URI": refused]) }
        }
    }

    @Test("instance metadata: on by default at 169.254.169.254 (1 s, 2 attempts), moved by AWS_EC2_METADATA_SERVICE_ENDPOINT, off by AWS_EC2_METADATA_DISABLED")
    func instanceMetadata() {
        #expect(AWSEnvironment(variables: [:], homeDirectory: "/nonexistent").instanceMetadata() == .init(endpoint: "http://169.254.169.254", timeout: .seconds(1), attempts: 2))
        let moved = AWSEnvironment(
            variables: ["AWS_EC2_METADATA_SERVICE_ENDPOINT": "http://127.0.0.1:1338", "AWS_METADATA_SERVICE_TIMEOUT": "0.5", "AWS_METADATA_SERVICE_NUM_ATTEMPTS": "3"],
            homeDirectory: "/nonexistent"
        )
        #expect(moved.instanceMetadata() == .init(endpoint: "http://127.0.0.1:1338", timeout: .milliseconds(500), attempts: 3))
        #expect(AWSEnvironment(variables: ["AWS_EC2_METADATA_DISABLED": "TRUE"], homeDirectory: "/nonexistent").instanceMetadata() == nil)
        #expect(AWSEnvironment(variables: ["AWS_EC2_METADATA_DISABLED": "false"], homeDirectory: "/nonexistent").instanceMetadata() != nil)
    }

    @Test("the static sources of the chain: environment first, then the shared files; nil where nothing is set")
    func staticSources() async throws {
        let home = try home(credentials: sharedCredentials, config: nil)
        defer { try? FileManager.default.removeItem(at: home) }
        let filesOnly = AWSEnvironment(variables: [:], homeDirectory: home.path)
        #expect(try await EnvironmentCredentialSource(environment: filesOnly).fetch() == nil)
        #expect(try await SharedFilesCredentialSource(environment: filesOnly).fetch()?.credentials.accessKeyId == "AKIADEFAULT")
        #expect(try await SharedFilesCredentialSource(environment: filesOnly).fetch()?.expiration == nil)
        let half = AWSEnvironment(variables: ["AWS_SECRET_ACCESS_KEY": "s"], homeDirectory: home.path)
        await #expect(throws: AWSCredentialsError.self) { try await EnvironmentCredentialSource(environment: half).fetch() }
    }
}
