import ArgumentParser
import Foundation
import OnboardingCore
import OnboardingHTTP

/// `onboard tenants …`: the admin's tenant operations from a terminal, through the same services
/// the API uses (nothing here writes to the store directly).
struct TenantsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tenants",
        abstract: "List, show, create and manage tenants in the store (the admin's operations, from a terminal).",
        discussion: """
            Store options as for `serve` (flags or ONBOARD_* variables). Output: a table for people, or \
            --json for scripts. Exit codes: 0 done, 1 not found or conflict (e.g. an invalid transition), \
            64 usage (bad arguments or field values), 69 store unavailable.
            """,
        subcommands: [List.self, Show.self, Create.self, Update.self, Suspend.self, Reactivate.self, Offboard.self]
    )

    /// `onboard tenants list`.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List tenants, newest first.",
            discussion: "With --json, one JSON object per line (JSON lines). Without --all, a note on standard error says when more tenants exist."
        )

        @OptionGroup var options: OperatorOptions

        @Option(help: ArgumentHelp("Only tenants in this state: ACTIVE, SUSPENDED, OFFBOARDING or OFFBOARDED.", valueName: "status"))
        var status: String?

        @Option(help: ArgumentHelp("How many tenants to show at most.", valueName: "count"))
        var limit: Int = 50

        @Flag(help: "Every tenant (pages through the whole listing; a progress count on standard error when it is a terminal).")
        var all = false

        func validate() throws {
            guard limit >= 1 else { throw ArgumentParser.ValidationError("--limit must be 1 or more") }
            _ = try parsedStatus()
        }

        func parsedStatus() throws -> TenantStatus? {
            guard let status else { return nil }
            guard let parsed = TenantStatus(rawValue: status.uppercased()) else {
                throw ArgumentParser.ValidationError("--status must be one of \(TenantStatus.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return parsed
        }

        func run() async throws {
            let status = try parsedStatus()
            let json = options.json
            let all = self.all
            let limit = self.limit
            try await options.storeOptions.withOperatorStore { opened in
                let service = TenantService(store: opened.store)
                let progress = all ? ProgressBar("listing tenants", unit: "tenants") : nil
                var shown: [Tenant] = []
                var cursor: String?
                repeat {
                    let wanted = all ? TenantService.maxPageSize : min(limit - shown.count, TenantService.maxPageSize)
                    let page = try await service.tenants(limit: wanted, cursor: cursor, status: status)
                    let matching = page.tenants
                    // JSON lines go out as they come (a script can stream a large listing).
                    if json {
                        for tenant in matching { CLIOutput.json(APIRepresentation.tenant(tenant)) }
                    }
                    shown += matching
                    cursor = page.nextCursor
                    progress?.update(done: shown.count)
                } while cursor != nil && (all || shown.count < limit)
                progress?.finish()
                let more = cursor != nil && !all
                if !json { CLIOutput.print(TenantView.table(shown)) }
                if more {
                    Console.note("(more tenants exist: show them with --limit \(limit * 2) or --all)")
                }
            }
        }
    }

    /// `onboard tenants show ID`.
    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show one tenant, whatever its state (an offboarded one is a tombstone).")

        @OptionGroup var options: OperatorOptions

        @OptionGroup var tenant: TenantArgument

        func run() async throws {
            let id = try tenant.id()
            try await options.showTenant { store in try await TenantService(store: store).tenant(id) }
        }
    }

    /// `onboard tenants create --name --phone`.
    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Onboard a client: create a tenant and its first API key, as POST /onboard does.",
            discussion: "The API key is printed this once on standard output; the store keeps only its hash."
        )

        @OptionGroup var options: OperatorOptions

        @Option(help: ArgumentHelp("The client's name (as clientName of POST /onboard).", valueName: "name"))
        var name: String

        @Option(help: ArgumentHelp("The client's phone number in E.164, e.g. +447700900123 (as clientPhone).", valueName: "phone"))
        var phone: String

        func run() async throws {
            let request = OnboardingRequest(clientName: .string(name), clientPhone: .string(phone))
            // Field errors before the store is opened: a typo needs no database.
            if case .failure(let invalid) = request.validated() { throw OperatorFailure.exitCode(for: invalid) }
            let json = options.json
            try await options.storeOptions.withOperatorStore { opened in
                let onboarded = try await OnboardingService(store: opened.store, hasher: CryptoSecretHasher(), events: operatorEvents).onboard(request)
                if json {
                    CLIOutput.json([
                        "tenantId": .string(onboarded.tenant.id.rawValue),
                        "apiKey": .string(onboarded.apiKey.text),
                        "tenant": .map(APIRepresentation.tenant(onboarded.tenant)),
                    ])
                } else {
                    CLIOutput.print(TenantView.record(onboarded.tenant))
                    Console.line("")
                    Console.line("API key: \(onboarded.apiKey.text)")
                    Console.line("  (shown only this once: the store keeps only its hash)")
                }
            }
        }
    }
}

extension TenantsCommand {
    /// `onboard tenants update ID [--name] [--phone]`.
    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a tenant's name and/or phone, validated as onboarding validates them (as PATCH /tenants/{id})."
        )

        @OptionGroup var options: OperatorOptions

        @OptionGroup var tenant: TenantArgument

        @Option(help: ArgumentHelp("The new name.", valueName: "name"))
        var name: String?

        @Option(help: ArgumentHelp("The new phone number in E.164.", valueName: "phone"))
        var phone: String?

        func validate() throws {
            guard name != nil || phone != nil else { throw ArgumentParser.ValidationError("give --name, --phone or both") }
        }

        func run() async throws {
            let id = try tenant.id()
            let patch = TenantPatch(clientName: name.map(RawField.string), clientPhone: phone.map(RawField.string))
            if case .failure(let invalid) = patch.validated() { throw OperatorFailure.exitCode(for: invalid) }
            try await options.showTenant { store in try await TenantLifecycle(store: store, events: operatorEvents).update(id, patch: patch) }
        }
    }

    /// `onboard tenants suspend ID --reason`.
    struct Suspend: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Suspend an ACTIVE tenant: its API keys and tokens get 403 tenant-suspended until it is reactivated; its data is kept."
        )

        @OptionGroup var options: OperatorOptions

        @OptionGroup var tenant: TenantArgument

        @Option(help: ArgumentHelp("Why (1 to 500 characters); shown to the admin with the tenant.", valueName: "text"))
        var reason: String

        func run() async throws {
            let id = try tenant.id()
            if case .failure(let invalid) = TenantLifecycle.validatedReason(.string(reason)) { throw OperatorFailure.exitCode(for: invalid) }
            let reason = self.reason
            try await options.showTenant { store in try await TenantLifecycle(store: store, events: operatorEvents).suspend(id, reason: reason) }
        }
    }

    /// `onboard tenants reactivate ID`.
    struct Reactivate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Reactivate a SUSPENDED tenant: its credentials work again.")

        @OptionGroup var options: OperatorOptions

        @OptionGroup var tenant: TenantArgument

        func run() async throws {
            let id = try tenant.id()
            try await options.showTenant { store in try await TenantLifecycle(store: store, events: operatorEvents).reactivate(id) }
        }
    }

    /// `onboard tenants offboard ID`.
    struct Offboard: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Offboard a tenant: delete every item of its partition (its API keys, its resources) and keep a tombstone without name or phone.",
            discussion: """
                Runs to the end here, in batches, with a progress bar on standard error when it is a terminal. \
                Interrupted, the tenant stays OFFBOARDING: run the command again (or start `serve`) to finish it. \
                The tenant's events (its audit trail, `onboard events list --tenant`) are kept unless --purge-events \
                is given when the offboarding starts. Cannot be undone.
                """
        )

        @OptionGroup var options: OperatorOptions

        @OptionGroup var tenant: TenantArgument

        @Flag(help: "Delete the tenant's events too (its audit trail); only tenant.offboarded is left. Default: they are kept.")
        var purgeEvents = false

        func run() async throws {
            let id = try tenant.id()
            let json = options.json
            let purgeEvents = self.purgeEvents
            try await options.storeOptions.withOperatorStore { opened in
                let offboarding = Offboarding(store: opened.store, events: operatorEvents)
                // Already OFFBOARDING (an interrupted run): `start` returns it as it is (purging the
                // events or not as it was started), and this run finishes it.
                _ = try await offboarding.start(id, purgeEvents: purgeEvents)
                let progress = ProgressBar("offboarding \(id.rawValue)", unit: "items deleted")
                if ProgressBar.isEnabled {
                    // The total only matters for the bar: counted only when one is drawn.
                    let remaining = try await Self.countItems(id, store: opened.store, countingEvents: purgeEvents)
                    let earlier = try await offboarding.progress(id) ?? 0
                    progress.update(done: earlier, total: earlier + remaining)
                }
                let run = try await offboarding.finish(id) { deleted in progress.update(done: deleted) }
                progress.finish()
                switch run.outcome {
                case .finished(let tombstone):
                    if json {
                        TenantView.show(tombstone, json: true)
                    } else {
                        Console.line("offboarded: \(ProgressBar.grouped(run.itemsDeleted)) \(run.itemsDeleted == 1 ? "item" : "items") deleted")
                        TenantView.show(tombstone, json: false)
                    }
                case .unfinished:
                    throw OnboardingError(.conflict, "the offboarding of \(id.rawValue) stopped before the end (\(run.itemsDeleted) items deleted); run the command again to finish it")
                case .notOffboarding:
                    throw OnboardingError(.conflict, "the tenant \(id.rawValue) is not being offboarded (changed meanwhile?); nothing was deleted")
                }
            }
        }

        /// Items of the tenant's partition other than its profile (what offboarding deletes;
        /// an API key's look-up item lives elsewhere and counts with its key), by reading the
        /// partition's keys a page at a time.
        /// The items an offboarding deletes: all but the profile, and the events only when purged.
        static func countItems(_ id: TenantID, store: any TenantStore, countingEvents: Bool = false) async throws -> Int {
            var count = 0
            var start: ItemKey?
            repeat {
                let page = try await store.query(ItemQuery(tenantId: id.rawValue, prefix: "", limit: ItemQuery.maxLimit, exclusiveStartKey: start))
                count += page.items.filter { $0.key != Tenant.key(id) && (countingEvents || !$0.key.resourceKey.hasPrefix(EventOutboxLayout.prefix)) }.count
                start = page.lastEvaluatedKey
            } while start != nil
            return count
        }
    }
}

/// How the operator commands show tenants.
enum TenantView {
    /// The listing as a table: id, name, phone (as stored), state, creation date.
    static func table(_ tenants: [Tenant]) -> [String] {
        guard !tenants.isEmpty else { return ["no tenants"] }
        return CLIOutput.table(
            header: ["TENANT ID", "NAME", "PHONE", "STATUS", "CREATED"],
            rows: tenants.map { tenant in
                [
                    tenant.id.rawValue, tenant.clientName?.value ?? "-", tenant.clientPhone?.e164 ?? "-", tenant.status.rawValue,
                    CLIOutput.readableDate(tenant.createdAt),
                ]
            }
        )
    }

    /// One tenant as label/value lines; the lifecycle's fields only when they are set.
    static func record(_ tenant: Tenant) -> [String] {
        var fields: [(String, String)] = [
            ("tenant id", tenant.id.rawValue),
            ("name", tenant.clientName?.value ?? "- (erased)"),
            ("phone", tenant.clientPhone?.e164 ?? "- (erased)"),
            ("status", tenant.status.rawValue),
        ]
        if let reason = tenant.suspensionReason { fields.append(("suspension reason", reason)) }
        if let at = tenant.suspendedAt { fields.append(("suspended", CLIOutput.readableDate(at))) }
        fields.append(("created", CLIOutput.readableDate(tenant.createdAt)))
        fields.append(("updated", CLIOutput.readableDate(tenant.updatedAt)))
        if let at = tenant.offboardingStartedAt { fields.append(("offboarding started", CLIOutput.readableDate(at))) }
        if let at = tenant.offboardedAt { fields.append(("offboarded", CLIOutput.readableDate(at))) }
        fields.append(("version", String(tenant.version)))
        if let count = tenant.apiKeyCount { fields.append(("api keys", String(count))) }
        return CLIOutput.record(fields)
    }

    /// Prints one tenant: its JSON document, or its record.
    static func show(_ tenant: Tenant, json: Bool) {
        if json {
            CLIOutput.json(APIRepresentation.tenant(tenant))
        } else {
            CLIOutput.print(record(tenant))
        }
    }
}
