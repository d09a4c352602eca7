import Foundation
import NIOHTTP1
import SigV4

/// Credentials for a role assumed with a web identity token (EKS IRSA, GitHub's OIDC token):
/// STS `AssumeRoleWithWebIdentity` in the Query protocol, unsigned (the token is the proof),
/// `POST /` with a form body; the token file is read at every fetch (it rotates).
public struct WebIdentityCredentialSource: AWSCredentialSource {
    /// `nil`: `AWS_WEB_IDENTITY_TOKEN_FILE` / `AWS_ROLE_ARN` are not set.
    public let settings: AWSEnvironment.WebIdentitySettings?
    /// For the regional STS endpoint when none is configured.
    public let region: String
    public var timeout: Duration = .seconds(5)
    public var attempts = 2
    var http = CredentialHTTP()

    public init(settings: AWSEnvironment.WebIdentitySettings?, region: String) {
        self.settings = settings
        self.region = region
    }

    public var lookedAt: String { "or a web identity token (AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN)" }

    /// The STS endpoint calls go to.
    public var endpoint: String {
        if let configured = settings?.stsEndpoint { return configured }
        return "https://sts.\(region).amazonaws.com\(region.hasPrefix("cn-") ? ".cn" : "")"
    }

    public func fetch() async throws -> ExpiringCredentials? {
        guard let settings else { return nil }
        let token: String
        do {
            token = try String(contentsOfFile: settings.tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            throw AWSCredentialsError(message: "cannot read AWS_WEB_IDENTITY_TOKEN_FILE \(settings.tokenFile): \(error.localizedDescription)")
        }
        let sessionName = settings.sessionName ?? "onboard-\(Int(Date().timeIntervalSince1970))"
        let body = CredentialHTTP.form([
            ("Action", "AssumeRoleWithWebIdentity"), ("Version", "2011-06-15"), ("RoleArn", settings.roleARN),
            ("RoleSessionName", sessionName), ("WebIdentityToken", token),
        ])
        let url = endpoint.hasSuffix("/") ? endpoint : endpoint + "/"
        let where_ = "STS AssumeRoleWithWebIdentity at \(CredentialHTTP.origin(of: url)) for \(settings.roleARN)"
        let answer: CredentialHTTP.Answer
        do {
            answer = try await http.request(
                url, method: .POST, headers: [("Content-Type", "application/x-www-form-urlencoded; charset=utf-8"), ("Accept", "text/xml")],
                body: body, timeout: timeout, attempts: attempts
            )
        } catch let error as CredentialHTTP.NoAnswer {
            throw AWSCredentialsError(message: "\(where_): \(error)")
        }
        guard answer.status == 200 else {
            throw AWSCredentialsError(message: "\(where_): \(AWSServiceError(status: answer.status, body: answer.body, requestID: nil))")
        }
        let text = answer.text
        guard let keyId = Self.element("AccessKeyId", in: text), let secret = Self.element("SecretAccessKey", in: text),
            let sessionToken = Self.element("SessionToken", in: text)
        else {
            throw AWSCredentialsError(message: "\(where_) answered without Credentials (AccessKeyId, SecretAccessKey, SessionToken)")
        }
        let expiration = Self.element("Expiration", in: text).flatMap(CredentialTimestamp.parse)
        return ExpiringCredentials(AWSCredentials(accessKeyId: keyId, secretAccessKey: secret, sessionToken: sessionToken), expiration: expiration)
    }

    /// An element's text with XML's five entities decoded.
    static func element(_ name: String, in text: String) -> String? {
        AWSServiceError.xmlElement(name, in: text).map {
            $0.replacingOccurrences(of: "&lt;", with: "<").replacingOccurrences(of: "&gt;", with: ">")
                .replacingOccurrences(of: "&quot;", with: "\"").replacingOccurrences(of: "&apos;", with: "'")
                .replacingOccurrences(of: "&amp;", with: "&")
        }
    }
}
