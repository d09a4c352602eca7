import ArgumentParser
import Foundation
import Logging
import OnboardingCore
import OnboardingHTTP

/// The options every operator command (`onboard tenants …`, `onboard keys …`) takes: where the
/// store is, as for `serve`, and whether to print JSON for scripts instead of a table for people.
struct OperatorOptions: ParsableArguments {
    @OptionGroup var storeOptions: StoreOptions

    @Flag(help: "Print JSON for scripts: one document, or one line per item for lists (JSON lines).")
    var json = false
}

/// The exit codes of the operator commands (sysexits.h where one fits).
enum OperatorExit {
    /// Done.
    static let ok = ExitCode.success
    /// Not found, or a conflict: an invalid transition, a limit reached, a concurrent change.
    static let notFoundOrConflict = ExitCode.failure
    /// EX_USAGE: bad arguments, bad field values (ArgumentParser's own validation exits 64 too).
    static let usage = ExitCode.validationFailure
    /// EX_UNAVAILABLE: the store cannot be opened or reached.
    static let unavailable = ExitCode(69)
}

extension StoreOptions {
    /// For the operator commands: resolves the settings (exit 64 when invalid), opens the store
    /// (exit 69 when it cannot be opened or reached), runs `body` and closes the store; an error
    /// of `body` is printed on standard error and exits with the code ``OperatorFailure`` gives it.
    ///
    /// Unlike ``withStore(kind:checkTable:_:)`` (exit 1 for every failure), the exit code says
    /// what happened, so scripts can tell a missing tenant (1) from a store that is down (69).
    ///
    /// `body` runs as the actor `operator`: the events of its changes say so.
    func withOperatorStore(_ body: (OpenedStore) async throws -> Void) async throws {
        let configuration: StoreConfiguration
        do {
            configuration = try StoreConfiguration.resolve(SettingsReader(flags: flags, environment: ProcessInfo.processInfo.environment))
        } catch {
            throw Console.fail(error.description, exitCode: OperatorExit.usage)
        }
        // Standard output carries the result (a table or JSON); the store's warnings go to
        // standard error, and nothing below warning is logged (no key text is ever logged).
        LoggingSystem.bootstrap { label in
            var handler = LineLogHandler(label: label, fileDescriptor: STDERR_FILENO)
            handler.logLevel = .warning
            return handler
        }
        let logger = Logger(label: "onboard")
        let opened: OpenedStore
        do {
            opened = try await OpenedStore.open(configuration, logger: logger)
        } catch {
            throw Console.fail("cannot open the store: \(error)", exitCode: OperatorExit.unavailable)
        }
        do {
            try await ChangeContext.$current.withValue(ChangeContext(actor: "operator")) { try await body(opened) }
            await opened.close()
        } catch {
            await opened.close()
            throw OperatorFailure.exitCode(for: error)
        }
    }
}

/// Records the events of the operator commands' changes, in each change's transaction like the
/// server does (a running server's dispatcher delivers them from the outbox); their `source` is
/// `ONBOARD_EVENT_SOURCE` when set (as `serve` reads it), else `urn:onboard:<host>`.
let operatorEvents = EventRecorder(
    source: ProcessInfo.processInfo.environment["ONBOARD_EVENT_SOURCE"].flatMap { $0.isEmpty ? nil : $0 } ?? EventRecorder.defaultSource
)

/// Turns the errors of the services into a message on standard error and an exit code.
enum OperatorFailure {
    /// Prints what went wrong and returns the exit code to throw.
    static func exitCode(for error: any Error) -> ExitCode {
        switch error {
        case let exit as ExitCode:
            return exit
        case let invalid as OnboardingCore.ValidationError:
            // Every bad field, one line each, named by the option that carries it.
            for field in invalid.errors {
                Console.error("\(option(for: field.field)): \(field.detail)")
            }
            return OperatorExit.usage
        case let failure as OnboardingError:
            switch failure.code {
            case .invalidCursor: return Console.fail(failure.message, exitCode: OperatorExit.usage)
            default: return Console.fail(failure.message, exitCode: OperatorExit.notFoundOrConflict)
            }
        case let failure as StoreError where failure.code == .unavailable:
            return Console.fail("the store is unavailable: \(failure.message)", exitCode: OperatorExit.unavailable)
        case let failure as StoreError:
            return Console.fail(failure.message, exitCode: OperatorExit.notFoundOrConflict)
        default:
            return Console.fail("\(error)", exitCode: OperatorExit.notFoundOrConflict)
        }
    }

    /// The command-line option of a request field (`clientPhone` → `--phone`).
    static func option(for field: String) -> String {
        switch field {
        case "clientName": "--name"
        case "clientPhone": "--phone"
        case "reason": "--reason"
        default: field
        }
    }
}

extension Console {
    /// Prints `onboard: error: <message>` on standard error (one of several lines; no exit code).
    static func error(_ message: String) {
        let oneLine = message.split(whereSeparator: \.isNewline).joined(separator: " ")
        FileHandle.standardError.write(Data("onboard: error: \(oneLine)\n".utf8))
    }

    /// Prints a note for people on standard error (standard output stays the result).
    static func note(_ message: String) {
        FileHandle.standardError.write(Data((message + "\n").utf8))
    }
}

/// A tenant id argument: any UUID text; anything else is a usage error (exit 64).
func parseTenantID(_ text: String) throws -> TenantID {
    guard let id = TenantID(text) else {
        throw ArgumentParser.ValidationError("'\(text)' is not a tenant id (a UUID such as 0195f3c4-7a1e-7b2c-9d3e-4f5a6b7c8d9e)")
    }
    return id
}

/// The `<tenant-id>` argument of the commands that act on one tenant, checked when it is parsed.
struct TenantArgument: ParsableArguments {
    @Argument(help: ArgumentHelp("The tenant's id.", valueName: "tenant-id"))
    var text: String

    func validate() throws { _ = try parseTenantID(text) }

    /// The parsed id (``validate()`` has accepted it).
    func id() throws -> TenantID { try parseTenantID(text) }
}

extension OperatorOptions {
    /// Opens the store, gets a tenant from `body` (a read or a change) and prints it: its JSON
    /// document with `--json`, else its record.
    func showTenant(_ body: (any TenantStore) async throws -> Tenant) async throws {
        let json = self.json
        try await storeOptions.withOperatorStore { opened in TenantView.show(try await body(opened.store), json: json) }
    }
}
