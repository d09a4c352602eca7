import ArgumentParser
import Foundation
import Hummingbird
import Logging
import OnboardingCore
import OnboardingHTTP
import OnboardingSQLite
import Synchronization

/// `onboard serve`: the API over HTTP, on a local SQLite file.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the onboarding API over HTTP, storing in a local SQLite file.",
        discussion: "Each option can also be set by its environment variable; a flag wins over the variable."
    )

    // Options are read as text and validated in ServeConfiguration, so a bad flag and a bad
    // environment variable get the same one-line message.
    @Option(help: ArgumentHelp("Address to listen on (ONBOARD_HOST; default 127.0.0.1).", valueName: "address"))
    var host: String?

    @Option(help: ArgumentHelp("TCP port; 0 picks a free one (ONBOARD_PORT; default 8080).", valueName: "port"))
    var port: String?

    @Option(help: ArgumentHelp("SQLite database file (ONBOARD_DATABASE; default ./onboarding.sqlite).", valueName: "path"))
    var database: String?

    @Option(help: ArgumentHelp(
        "Admin bearer token, 24+ characters (ONBOARD_ADMIN_TOKEN, preferred: flags show in ps). Default: generated on first start and stored hashed.",
        valueName: "token"
    ))
    var adminToken: String?

    @Option(help: ArgumentHelp("trace, debug, info, notice, warning, error or critical (ONBOARD_LOG_LEVEL; default info).", valueName: "level"))
    var logLevel: String?

    func run() async throws {
        let flags = [
            Setting.host.key: host, Setting.port.key: port, Setting.database.key: database,
            Setting.adminToken.key: adminToken, Setting.logLevel.key: logLevel,
        ].compactMapValues { $0 }
        let configuration: ServeConfiguration
        do {
            configuration = try ServeConfiguration.resolve(flags: flags, environment: ProcessInfo.processInfo.environment)
        } catch {
            throw Console.fail(error.description, exitCode: .validationFailure)
        }
        let level = configuration.logLevel
        LoggingSystem.bootstrap { label in LineLogHandler.standardOutput(label: label, level: level) }
        let logger = Logger(label: "onboard")

        let store: SQLiteTenantStore
        let admin: (credential: AdminCredential, generatedToken: String?)
        do {
            store = try SQLiteTenantStore(path: configuration.databasePath, logger: logger)
            admin = try await AdminTokenRecord.prepare(store: store, configuredToken: configuration.adminToken)
        } catch {
            throw Console.fail("\(error)", exitCode: .failure)
        }
        let verifier: any CredentialVerifier =
            configuration.adminToken != nil
            ? AdminTokenVerifier(credential: admin.credential)
            : StoredAdminTokenVerifier(store: store, credential: admin.credential)

        Console.line("onboard \(OnboardVersion.current)")
        Console.line("database: \(store.path)")
        if let token = admin.generatedToken {
            Console.line("admin token: \(token)")
            Console.line("  (generated now and shown only this once; the database keeps only its SHA-256 hash. `onboard admin-token rotate` issues a new one.)")
        } else if configuration.adminToken != nil {
            Console.line("admin token: as configured (--admin-token / ONBOARD_ADMIN_TOKEN)")
        } else {
            Console.line("admin token: stored hashed in the database (lost it? `onboard admin-token rotate --database \(store.path)`)")
        }

        let router = buildRouter(AppDependencies(store: store, verifiers: [verifier]))
        let host = configuration.host
        let started = Atomic(false)
        let app = Application(
            router: router,
            configuration: ApplicationConfiguration(address: .hostname(host, port: configuration.port), serverName: "onboard"),
            onServerRunning: { channel in
                started.store(true, ordering: .relaxed)
                let port = channel.localAddress?.port ?? 0
                Console.line("listening on http://\(host.contains(":") ? "[\(host)]" : host):\(port)")
            },
            logger: logger
        )
        do {
            try await app.runService()
        } catch {
            let message = started.load(ordering: .relaxed) ? "the server stopped: \(error)" : "cannot listen on \(host):\(configuration.port): \(error)"
            throw Console.fail(message, exitCode: .failure)
        }
    }
}

/// `onboard admin-token rotate`: replaces the stored admin token.
struct AdminTokenCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "admin-token",
        abstract: "Manage the admin token stored (hashed) in the database.",
        subcommands: [Rotate.self]
    )

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Generate a new admin token, store its hash and print it once. Running servers accept it within 5 seconds; the old one stops working."
        )

        @Option(help: ArgumentHelp("SQLite database file (ONBOARD_DATABASE; default ./onboarding.sqlite).", valueName: "path"))
        var database: String?

        func run() async throws {
            let path: String
            do {
                path = try ServeConfiguration.resolve(
                    flags: database.map { [Setting.database.key: $0] } ?? [:],
                    environment: ProcessInfo.processInfo.environment.filter { $0.key == Setting.database.environmentVariable }
                ).databasePath
            } catch {
                throw Console.fail(error.description, exitCode: .validationFailure)
            }
            do {
                let store = try SQLiteTenantStore(path: path)
                let token = try await AdminTokenRecord.rotate(store: store)
                Console.line(token)
            } catch {
                throw Console.fail("\(error)", exitCode: .failure)
            }
        }
    }
}

/// Unbuffered writes to the terminal (a buffered `print` to a pipe is lost on SIGTERM).
enum Console {
    static func line(_ text: String) {
        FileHandle.standardOutput.write(Data((text + "\n").utf8))
    }

    /// Prints `onboard: error: <message>` on one line to standard error and returns the exit code to throw.
    static func fail(_ message: String, exitCode: ExitCode) -> ExitCode {
        let oneLine = message.split(whereSeparator: \.isNewline).joined(separator: " ")
        FileHandle.standardError.write(Data("onboard: error: \(oneLine)\n".utf8))
        return exitCode
    }
}
