import Foundation
import SigV4

/// Credentials from the container credential endpoint: ECS task roles
/// (`AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`, served on 169.254.170.2) and EKS Pod Identity
/// (`AWS_CONTAINER_CREDENTIALS_FULL_URI` with `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`).
///
/// `GET <url>` with `Authorization: <token>` when a token is configured; the answer is
/// `{"AccessKeyId", "SecretAccessKey", "Token", "Expiration"}`.
public struct ContainerCredentialSource: AWSCredentialSource {
    /// `nil`: not running with a container endpoint.
    public let settings: AWSEnvironment.ContainerCredentialSettings?
    /// Per request (botocore: 2 s).
    public var timeout: Duration = .seconds(2)
    public var attempts = 2
    var http = CredentialHTTP()

    public init(settings: AWSEnvironment.ContainerCredentialSettings?) {
        self.settings = settings
    }

    public var lookedAt: String { "or a container endpoint (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or AWS_CONTAINER_CREDENTIALS_FULL_URI)" }

    public func fetch() async throws -> ExpiringCredentials? {
        guard let settings else { return nil }
        let where_ = "the container credential endpoint \(CredentialHTTP.origin(of: settings.url))"
        var headers: [(String, String)] = [("Accept", "application/json")]
        if let token = try authorizationToken(settings) { headers.append(("Authorization", token)) }
        let answer: CredentialHTTP.Answer
        do {
            answer = try await http.request(settings.url, headers: headers, timeout: timeout, attempts: attempts)
        } catch let error as CredentialHTTP.NoAnswer {
            throw AWSCredentialsError(message: "\(where_): \(error)")
        }
        guard answer.status == 200 else {
            throw AWSCredentialsError(message: "\(where_) answered HTTP \(answer.status)\(Self.errorMessage(answer.body).map { ": \($0)" } ?? "")")
        }
        return try MetadataCredentials.decode(answer.body, from: where_)
    }

    /// The file's content (re-read at every fetch: EKS rotates it), else the variable's.
    func authorizationToken(_ settings: AWSEnvironment.ContainerCredentialSettings) throws -> String? {
        var token = settings.authorizationToken
        if let file = settings.authorizationTokenFile {
            do {
                token = try String(contentsOfFile: file, encoding: .utf8)
            } catch {
                throw AWSCredentialsError(message: "cannot read AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE \(file): \(error.localizedDescription)")
            }
        }
        // A trailing newline (a file written by `echo`) is not part of the token; one inside is
        // not a legal header value.
        guard let token = token?.trimmingCharacters(in: .whitespacesAndNewlines), !token.isEmpty else { return nil }
        guard !token.contains("\r"), !token.contains("\n") else {
            throw AWSCredentialsError(message: "the container authorization token contains a line break: not a legal header value")
        }
        return token
    }

    /// `message` / `Message` of a JSON error answer, else the start of the body; never a token.
    static func errorMessage(_ body: [UInt8]) -> String? {
        if let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any],
            let message = (object["message"] ?? object["Message"]) as? String
        {
            return message
        }
        let text = String(decoding: body.prefix(200), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        return text.isEmpty || text.contains("SecretAccessKey") ? nil : text
    }
}

extension MetadataCredentials {
    /// Decodes the credentials JSON; an IMDS `Code` other than `Success` is an error.
    static func decode(_ body: [UInt8], from where_: String) throws -> ExpiringCredentials {
        let decoded: MetadataCredentials
        do {
            decoded = try JSONDecoder().decode(MetadataCredentials.self, from: Data(body))
        } catch {
            throw AWSCredentialsError(message: "\(where_) answered something that is not credentials JSON (AccessKeyId, SecretAccessKey, Token, Expiration)")
        }
        if let code = decoded.Code, code != "Success" {
            throw AWSCredentialsError(message: "\(where_) answered \(code)\(decoded.Message.map { ": \($0)" } ?? "")")
        }
        var expiration: Date?
        if let text = decoded.Expiration {
            guard let date = CredentialTimestamp.parse(text) else {
                throw AWSCredentialsError(message: "\(where_) answered an unreadable Expiration: \(text)")
            }
            expiration = date
        }
        return ExpiringCredentials(
            AWSCredentials(accessKeyId: decoded.AccessKeyId, secretAccessKey: decoded.SecretAccessKey, sessionToken: decoded.Token),
            expiration: expiration
        )
    }
}
