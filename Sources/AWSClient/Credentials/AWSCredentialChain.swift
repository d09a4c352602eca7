import SigV4
import Synchronization

/// Credential sources asked in order; the first that has credentials wins and is asked again
/// for every refresh (as the SDKs do: a chain resolves once, then sticks to its source).
///
/// A source that is not set up is skipped. A source that is set up but fails stops the chain
/// with its error (a broken container endpoint must not fall through to another identity),
/// except sources whose failure only means absence (the instance metadata service off EC2).
/// When no source has credentials the error names every place that was looked at, in one line.
public final class AWSCredentialChain: AWSCredentialSource {
    public let sources: [any AWSCredentialSource]
    /// The index of the source that delivered, once one has.
    private let chosen = Mutex<Int?>(nil)

    public init(_ sources: [any AWSCredentialSource]) {
        self.sources = sources
    }

    public var lookedAt: String { sources.map(\.lookedAt).joined(separator: ", ") }

    /// The credentials of the first source that has some.
    /// - Throws: ``AWSCredentialsError``: the failing source's error, or "no AWS credentials: …".
    public func fetch() async throws -> ExpiringCredentials? {
        if let index = chosen.withLock({ $0 }), let found = try await sources[index].fetch() {
            return found
        }
        var notes: [String] = []
        for (index, source) in sources.enumerated() {
            do {
                if let found = try await source.fetch() {
                    chosen.withLock { $0 = index }
                    return found
                }
                notes.append(source.lookedAt)
            } catch let error where source.failureMeansAbsent && !(error is CancellationError) {
                notes.append("\(source.lookedAt): \(error)")
            }
        }
        throw AWSCredentialsError(message: "no AWS credentials: " + notes.joined(separator: ", "))
    }

    /// The chain in the order of the AWS SDKs (as aws-sdk-go-v2 orders it): environment
    /// variables, the shared files for the profile, a web identity token (STS), the container
    /// endpoint (ECS, EKS Pod Identity), the EC2 instance metadata service (IMDSv2).
    /// - Parameters:
    ///   - region: for the regional STS endpoint.
    /// - Throws: ``AWSConfigurationError`` for settings that are wrong whatever the network says
    ///   (half of the web identity variables, a container URI that may not be used).
    public static func standard(environment: AWSEnvironment, region: String) throws -> AWSCredentialChain {
        AWSCredentialChain([
            EnvironmentCredentialSource(environment: environment),
            SharedFilesCredentialSource(environment: environment),
            WebIdentityCredentialSource(settings: try environment.webIdentity(), region: region),
            ContainerCredentialSource(settings: try environment.containerCredentials()),
            InstanceMetadataCredentialSource(settings: environment.instanceMetadata()),
        ])
    }
}
