import ArgumentParser
import Foundation
import OnboardingCore
import OnboardingHTTP

/// `onboard keys …`: a tenant's API keys from a terminal, through ``ApiKeys`` (as the API).
struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "List, create and revoke a tenant's API keys.",
        discussion: """
            Store options as for `serve`. Exit codes: 0 done, 1 not found or conflict (e.g. the key \
            limit reached), 64 usage, 69 store unavailable.
            """,
        subcommands: [List.self, Create.self, Revoke.self]
    )

    /// `onboard keys list TENANT`.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List a tenant's API keys (prefix and dates; the secrets are not stored).",
            discussion: "With --json, one JSON object per line (JSON lines)."
        )

        @OptionGroup var options: OperatorOptions

        @OptionGroup var tenant: TenantArgument

        func run() async throws {
            let tenantId = try tenant.id()
            try await options.withApiKeys { apiKeys, json in
                let keys = try await apiKeys.list(tenantId)
                if json {
                    for key in keys { CLIOutput.json(APIRepresentation.apiKey(key)) }
                } else {
                    CLIOutput.print(KeyView.table(keys))
                }
            }
        }
    }

    /// `onboard keys create TENANT`.
    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue another API key for a tenant.",
            discussion: "The key is printed this once on standard output and never logged; the store keeps only its hash."
        )

        @OptionGroup var options: OperatorOptions

        @OptionGroup var tenant: TenantArgument

        func run() async throws {
            let tenantId = try tenant.id()
            try await options.withApiKeys { apiKeys, json in
                let issued = try await apiKeys.issue(for: tenantId)
                if json {
                    CLIOutput.json(APIRepresentation.issuedApiKey(issued))
                } else {
                    CLIOutput.print(CLIOutput.record([
                        ("key id", issued.key.keyId), ("tenant id", tenantId.rawValue), ("created", CLIOutput.readableDate(issued.key.createdAt)),
                    ]))
                    Console.line("")
                    Console.line("API key: \(issued.text)")
                    Console.line("  (shown only this once: the store keeps only its hash)")
                }
            }
        }
    }

    /// `onboard keys revoke TENANT KEYID`.
    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a tenant's API key: it is refused from then on.")

        @OptionGroup var options: OperatorOptions

        @OptionGroup var tenant: TenantArgument

        @Argument(help: ArgumentHelp("The key's id (16 hex digits: the part after onb_ in the key and its prefix).", valueName: "key-id"))
        var keyId: String

        func validate() throws {
            guard keyId.count == 16, keyId.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else {
                throw ArgumentParser.ValidationError("'\(keyId)' is not a key id (16 lowercase hex digits, as `onboard keys list` shows)")
            }
        }

        func run() async throws {
            let tenantId = try tenant.id()
            let keyId = self.keyId
            try await options.withApiKeys { apiKeys, json in
                try await apiKeys.revoke(keyId, of: tenantId)
                if json {
                    CLIOutput.json(["tenantId": .string(tenantId.rawValue), "keyId": .string(keyId), "revoked": .bool(true)])
                } else {
                    Console.line("revoked API key \(keyId) of tenant \(tenantId.rawValue)")
                }
            }
        }
    }
}

extension OperatorOptions {
    /// Opens the store and runs `body` with the tenants' API keys (as the API reaches them) and
    /// whether `--json` was asked for.
    func withApiKeys(_ body: (ApiKeys, _ json: Bool) async throws -> Void) async throws {
        let json = self.json
        try await storeOptions.withOperatorStore { opened in try await body(ApiKeys(store: opened.store, hasher: CryptoSecretHasher(), events: operatorEvents), json) }
    }
}

/// How the operator commands show API keys.
enum KeyView {
    static func table(_ keys: [ApiKey]) -> [String] {
        guard !keys.isEmpty else { return ["no API keys"] }
        return CLIOutput.table(
            header: ["KEY ID", "PREFIX", "CREATED", "LAST USED"],
            rows: keys.map { [$0.keyId, $0.prefix, CLIOutput.readableDate($0.createdAt), $0.lastUsedAt.map(CLIOutput.readableDate) ?? "never"] }
        )
    }
}
