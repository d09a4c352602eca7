import Foundation
import NIOHTTP1
import SigV4

/// Credentials of the EC2 instance's role from the instance metadata service, IMDSv2 only:
/// `PUT /latest/api/token` (with `X-aws-ec2-metadata-token-ttl-seconds`) first, then
/// `GET /latest/meta-data/iam/security-credentials/` for the role's name and
/// `GET …/security-credentials/<role>` for its credentials, each with `X-aws-ec2-metadata-token`.
///
/// Timeouts are short (1 s by default) because off EC2 nothing answers. Inside a container on
/// EC2, the token's answer needs a hop limit of 2 (`HttpPutResponseHopLimit`); with the default 1
/// the `PUT` times out, and this source says so. There is no fallback to IMDSv1.
public struct InstanceMetadataCredentialSource: AWSCredentialSource {
    /// `nil`: disabled (`AWS_EC2_METADATA_DISABLED=true`).
    public let settings: AWSEnvironment.InstanceMetadataSettings?
    var http = CredentialHTTP()

    static let tokenTTLSeconds = "21600"
    static let rolePath = "/latest/meta-data/iam/security-credentials/"

    public init(settings: AWSEnvironment.InstanceMetadataSettings?) {
        self.settings = settings
    }

    public var lookedAt: String {
        guard let settings else { return "or an EC2 instance role (instance metadata disabled by AWS_EC2_METADATA_DISABLED)" }
        return "or an EC2 instance role (instance metadata at \(settings.endpoint))"
    }

    /// Off EC2 nothing answers: that is "no credentials here", not a failure that stops a chain.
    public var failureMeansAbsent: Bool { true }

    public func fetch() async throws -> ExpiringCredentials? {
        guard let settings else { return nil }
        let base = settings.endpoint.hasSuffix("/") ? String(settings.endpoint.dropLast()) : settings.endpoint
        let where_ = "the instance metadata service at \(CredentialHTTP.origin(of: base))"
        do {
            let tokenAnswer = try await http.request(
                base + "/latest/api/token", method: .PUT, headers: [("X-aws-ec2-metadata-token-ttl-seconds", Self.tokenTTLSeconds)],
                timeout: settings.timeout, attempts: settings.attempts
            )
            guard tokenAnswer.status == 200, !tokenAnswer.body.isEmpty else {
                throw AWSCredentialsError(message: "\(where_) answered HTTP \(tokenAnswer.status) to the IMDSv2 token request")
            }
            let token = [("X-aws-ec2-metadata-token", tokenAnswer.text.trimmingCharacters(in: .whitespacesAndNewlines))]
            let roleAnswer = try await http.request(base + Self.rolePath, headers: token, timeout: settings.timeout, attempts: settings.attempts)
            guard roleAnswer.status != 404 else { throw AWSCredentialsError(message: "\(where_): no IAM role is attached to this instance") }
            guard roleAnswer.status == 200,
                let role = roleAnswer.text.split(whereSeparator: \.isNewline).first.map({ $0.trimmingCharacters(in: .whitespaces) }), !role.isEmpty
            else {
                throw AWSCredentialsError(message: "\(where_) answered HTTP \(roleAnswer.status) for the instance's role")
            }
            let encodedRole = SigV4Signer.percentEncode(role)
            let credentialsAnswer = try await http.request(
                base + Self.rolePath + encodedRole, headers: token, timeout: settings.timeout, attempts: settings.attempts
            )
            guard credentialsAnswer.status == 200 else {
                throw AWSCredentialsError(message: "\(where_) answered HTTP \(credentialsAnswer.status) for the credentials of role \(role)")
            }
            return try MetadataCredentials.decode(credentialsAnswer.body, from: where_)
        } catch let error as CredentialHTTP.NoAnswer {
            throw AWSCredentialsError(message: "\(error)")
        }
    }
}
