import Foundation

/// The settings of the credential sources that need the network, read from the environment as
/// the AWS SDKs read them. Fetching is `AWSClient`'s job; this only says what is configured.
extension AWSEnvironment {
    /// Web identity: `AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN` (and optionally
    /// `AWS_ROLE_SESSION_NAME`), exchanged with STS `AssumeRoleWithWebIdentity` (EKS IRSA, GitHub
    /// OIDC). STS is `AWS_ENDPOINT_URL_STS`, then `AWS_ENDPOINT_URL`, else the regional endpoint.
    public struct WebIdentitySettings: Sendable, Equatable {
        public let tokenFile: String
        public let roleARN: String
        public let sessionName: String?
        /// `nil`: `https://sts.<region>.amazonaws.com`.
        public let stsEndpoint: String?

        public init(tokenFile: String, roleARN: String, sessionName: String? = nil, stsEndpoint: String? = nil) {
            self.tokenFile = tokenFile
            self.roleARN = roleARN
            self.sessionName = sessionName
            self.stsEndpoint = stsEndpoint
        }
    }

    /// The web identity settings; `nil` when neither variable is set.
    /// - Throws: ``AWSConfigurationError`` when only one of the two is.
    public func webIdentity() throws -> WebIdentitySettings? {
        switch (nonEmpty("AWS_WEB_IDENTITY_TOKEN_FILE"), nonEmpty("AWS_ROLE_ARN")) {
        case (let tokenFile?, let roleARN?):
            return WebIdentitySettings(
                tokenFile: tokenFile, roleARN: roleARN, sessionName: nonEmpty("AWS_ROLE_SESSION_NAME"), stsEndpoint: try endpointURL(serviceVariable: "STS")
            )
        case (nil, nil):
            return nil
        case (nil, _?):
            // AWS_ROLE_ARN alone is also how other tools are configured; it is not ours to refuse.
            return nil
        case (_?, nil):
            throw AWSConfigurationError(message: "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not: web identity needs both")
        }
    }

    /// The container credential endpoint (ECS task roles, EKS Pod Identity).
    public struct ContainerCredentialSettings: Sendable, Equatable {
        /// The full URL to `GET`.
        public let url: String
        /// `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`: read at every fetch (EKS rotates it); wins
        /// over ``authorizationToken``.
        public let authorizationTokenFile: String?
        /// `AWS_CONTAINER_AUTHORIZATION_TOKEN`.
        public let authorizationToken: String?

        public init(url: String, authorizationTokenFile: String? = nil, authorizationToken: String? = nil) {
            self.url = url
            self.authorizationTokenFile = authorizationTokenFile
            self.authorizationToken = authorizationToken
        }
    }

    /// The address ECS serves `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` on.
    public static let containerCredentialsHost = "http://169.254.170.2"
    /// Hosts a plain-HTTP `AWS_CONTAINER_CREDENTIALS_FULL_URI` may name, besides loopback
    /// addresses (ECS, EKS Pod Identity over IPv4 and IPv6), as in botocore.
    static let allowedContainerHosts: Set<String> = ["169.254.170.2", "169.254.170.23", "fd00:ec2::23", "[fd00:ec2::23]", "localhost"]

    /// The container endpoint: `http://169.254.170.2` + `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`,
    /// else `AWS_CONTAINER_CREDENTIALS_FULL_URI`; `nil` when neither is set.
    /// - Throws: ``AWSConfigurationError`` for a full URI the SDKs would refuse: plain HTTP to a
    ///   host that is neither loopback nor a container credential address (credentials must not
    ///   be fetched from just anywhere over cleartext).
    public func containerCredentials() throws -> ContainerCredentialSettings? {
        let url: String
        if let relative = nonEmpty("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
            url = Self.containerCredentialsHost + (relative.hasPrefix("/") ? relative : "/" + relative)
        } else if let full = nonEmpty("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
            guard let components = URLComponents(string: full), let scheme = components.scheme?.lowercased(), let host = components.host?.lowercased() else {
                throw AWSConfigurationError(message: "AWS_CONTAINER_CREDENTIALS_FULL_URI is not a URL: \(full)")
            }
            let allowed = scheme == "https" || (scheme == "http" && (Self.isLoopback(host) || Self.allowedContainerHosts.contains(host)))
            guard allowed else {
                throw AWSConfigurationError(
                    message: "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or http to a loopback address or 169.254.170.2, 169.254.170.23, fd00:ec2::23 (it names \(host))"
                )
            }
            url = full
        } else {
            return nil
        }
        return ContainerCredentialSettings(
            url: url, authorizationTokenFile: nonEmpty("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"), authorizationToken: nonEmpty("AWS_CONTAINER_AUTHORIZATION_TOKEN")
        )
    }

    static func isLoopback(_ host: String) -> Bool {
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        if bare == "::1" { return true }
        let octets = bare.split(separator: ".", omittingEmptySubsequences: false)
        return octets.count == 4 && octets.allSatisfy { UInt8($0) != nil } && octets.first == "127"
    }

    /// The EC2 instance metadata service (IMDSv2).
    public struct InstanceMetadataSettings: Sendable, Equatable {
        /// `http://169.254.169.254`, or `AWS_EC2_METADATA_SERVICE_ENDPOINT`.
        public let endpoint: String
        /// Per HTTP request: `AWS_METADATA_SERVICE_TIMEOUT` seconds, default 1.
        public let timeout: Duration
        /// Attempts per HTTP request: `AWS_METADATA_SERVICE_NUM_ATTEMPTS`, default 2.
        public let attempts: Int

        public init(endpoint: String = InstanceMetadataSettings.defaultEndpoint, timeout: Duration = .seconds(1), attempts: Int = 2) {
            self.endpoint = endpoint
            self.timeout = timeout
            self.attempts = max(1, attempts)
        }

        public static let defaultEndpoint = "http://169.254.169.254"
    }

    /// The instance metadata settings; `nil` when `AWS_EC2_METADATA_DISABLED=true`.
    public func instanceMetadata() -> InstanceMetadataSettings? {
        guard nonEmpty("AWS_EC2_METADATA_DISABLED")?.lowercased() != "true" else { return nil }
        let timeout = nonEmpty("AWS_METADATA_SERVICE_TIMEOUT").flatMap(Double.init).map { Duration.milliseconds(Int64(max(0.05, $0) * 1000)) }
        return InstanceMetadataSettings(
            endpoint: nonEmpty("AWS_EC2_METADATA_SERVICE_ENDPOINT") ?? InstanceMetadataSettings.defaultEndpoint,
            timeout: timeout ?? .seconds(1),
            attempts: nonEmpty("AWS_METADATA_SERVICE_NUM_ATTEMPTS").flatMap { Int($0) } ?? 2
        )
    }
}

/// `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`), read at every fetch.
public struct EnvironmentCredentialSource: AWSCredentialSource {
    public let environment: AWSEnvironment
    public init(environment: AWSEnvironment) { self.environment = environment }

    public var lookedAt: String { AWSEnvironment.lookedAtEnvironment }

    public func fetch() async throws -> ExpiringCredentials? {
        do {
            return try environment.environmentCredentials().map { ExpiringCredentials($0) }
        } catch let error as AWSConfigurationError {
            throw AWSCredentialsError(message: error.message)
        }
    }
}

/// The profile's keys in `~/.aws/credentials` or `~/.aws/config`, read at every fetch (so a
/// rotated file is picked up when AWS rejects the old keys).
public struct SharedFilesCredentialSource: AWSCredentialSource {
    public let environment: AWSEnvironment
    public init(environment: AWSEnvironment) { self.environment = environment }

    public var lookedAt: String { environment.lookedAtSharedFiles }

    public func fetch() async throws -> ExpiringCredentials? {
        do {
            return try environment.sharedFileCredentials().map { ExpiringCredentials($0) }
        } catch let error as AWSConfigurationError {
            throw AWSCredentialsError(message: error.message)
        }
    }
}
