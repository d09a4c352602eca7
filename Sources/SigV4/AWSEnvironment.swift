import Foundation

/// Where the AWS SDKs find credentials and the region, reproduced for this project: the
/// environment first (what Lambda provides), then the shared files `~/.aws/credentials` and
/// `~/.aws/config` for the profile `AWS_PROFILE` (default `default`), then the settings of the
/// sources that need the network (web identity, container endpoint, instance metadata; see
/// `AWSEnvironment+CredentialSources.swift`).
public struct AWSEnvironment: Sendable {
    public let variables: [String: String]
    /// The user's home folder (`~`), where `.aws/` is looked for.
    public let homeDirectory: String

    public init(
        variables: [String: String] = ProcessInfo.processInfo.environment,
        homeDirectory: String = ProcessInfo.processInfo.environment["HOME"] ?? FileManager.default.homeDirectoryForCurrentUser.path
    ) {
        self.variables = variables
        self.homeDirectory = homeDirectory
    }

    /// The profile the shared files are read for.
    public var profile: String { nonEmpty("AWS_PROFILE") ?? nonEmpty("AWS_DEFAULT_PROFILE") ?? "default" }

    var credentialsFile: String { nonEmpty("AWS_SHARED_CREDENTIALS_FILE") ?? homeDirectory + "/.aws/credentials" }
    var configFile: String { nonEmpty("AWS_CONFIG_FILE") ?? homeDirectory + "/.aws/config" }

    /// The static credentials: `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`),
    /// else the profile's `aws_access_key_id` / `aws_secret_access_key` / `aws_session_token` in
    /// the credentials file, else in the config file. (The other sources, which need the network,
    /// are in `AWSClient`'s `AWSCredentialChain`.)
    /// - Throws: ``AWSConfigurationError`` saying where credentials were looked for.
    public func credentials() throws -> AWSCredentials {
        if let found = try environmentCredentials() ?? sharedFileCredentials() { return found }
        throw AWSConfigurationError(message: "no AWS credentials: \(Self.lookedAtEnvironment), \(lookedAtSharedFiles)")
    }

    /// `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`); `nil` when neither is set.
    /// - Throws: ``AWSConfigurationError`` when only one of the two is set.
    public func environmentCredentials() throws -> AWSCredentials? {
        let keyId = nonEmpty("AWS_ACCESS_KEY_ID")
        let secret = nonEmpty("AWS_SECRET_ACCESS_KEY")
        switch (keyId, secret) {
        case (let keyId?, let secret?):
            return AWSCredentials(accessKeyId: keyId, secretAccessKey: secret, sessionToken: nonEmpty("AWS_SESSION_TOKEN"))
        case (nil, nil):
            return nil
        default:
            throw AWSConfigurationError(
                message: "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together (only \(keyId == nil ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID") is)"
            )
        }
    }

    /// The profile's keys in the credentials file, else in the config file; `nil` when neither has them.
    /// - Throws: ``AWSConfigurationError`` when a file cannot be read or has half of the keys.
    public func sharedFileCredentials() throws -> AWSCredentials? {
        for (file, section) in [(credentialsFile, profile), (configFile, profile == "default" ? "default" : "profile \(profile)")] {
            guard let values = try Self.iniSection(section, inFile: file) else { continue }
            switch (values["aws_access_key_id"], values["aws_secret_access_key"]) {
            case (let keyId?, let secret?):
                return AWSCredentials(accessKeyId: keyId, secretAccessKey: secret, sessionToken: values["aws_session_token"])
            case (nil, nil):
                continue
            default:
                throw AWSConfigurationError(message: "profile '\(profile)' in \(file) needs both aws_access_key_id and aws_secret_access_key")
            }
        }
        return nil
    }

    /// What to set, said when no credentials were found.
    static let lookedAtEnvironment = "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    var lookedAtSharedFiles: String { "or give profile '\(profile)' keys in \(credentialsFile) (AWS_PROFILE picks another profile)" }

    /// The region: `AWS_REGION`, `AWS_DEFAULT_REGION`, or the profile's `region` in the config file.
    public func region() throws -> String? {
        if let region = nonEmpty("AWS_REGION") ?? nonEmpty("AWS_DEFAULT_REGION") { return region }
        return try Self.iniSection(profile == "default" ? "default" : "profile \(profile)", inFile: configFile)?["region"]
    }

    // endpointURL(serviceVariable:): AWSEnvironment+Endpoints.swift.

    func nonEmpty(_ name: String) -> String? {
        guard let value = variables[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        return value
    }

    /// The `key = value` pairs of `[section]` in an INI file; `nil` when the file or the section
    /// does not exist. Comments (`#`, `;`) and blank lines are ignored; keys are lower-cased.
    static func iniSection(_ section: String, inFile path: String) throws -> [String: String]? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw AWSConfigurationError(message: "cannot read \(path): \(error.localizedDescription)")
        }
        var current: String?
        var values: [String: String]?
        for rawLine in text.split(whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("["), line.hasSuffix("]") {
                current = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                if current == section, values == nil { values = [:] }
                continue
            }
            guard current == section, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            values?[key] = value
        }
        return values
    }
}

/// Credentials or settings that cannot be found or used; the message says where to fix it.
public struct AWSConfigurationError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}
