import Foundation
import OnboardingCore
import OnboardingSQLite
import Testing

/// A tenant left `OFFBOARDING` in a SQLite file, as a process that crashed after the first batch
/// leaves it: created by `onboard tenants create`, given `resources` documents, its offboarding
/// started and stopped after one batch by the test process (the store closed again).
/// - Returns: the tenant's id and the items its first batch deleted.
func unfinishedOffboarding(database: String, resources: Int = 250) async throws -> (id: String, itemsDeleted: Int) {
    let created = try await onboardCLI(["tenants", "create", "--name", "Crashed Ltd", "--phone", "+447700900199", "--json", "--database", database])
    try #require(created.status == 0, "\(created)")
    let id = try #require(try created.object()["tenantId"]?.stringValue)
    let tenantId = try #require(TenantID(id))
    let store = try SQLiteTenantStore(path: database)
    var writes: [TransactionWrite] = []
    for index in 0..<resources {
        writes.append(.put(Item(tenantId: id, resourceKey: "doc#\(index)", attributes: ["n": .int(index)]), condition: nil))
    }
    for start in stride(from: 0, to: writes.count, by: 50) { try await store.transact(Array(writes[start..<min(start + 50, writes.count)])) }
    let offboarding = Offboarding(store: store)
    _ = try await offboarding.start(tenantId)
    let stopped = try await offboarding.finish(tenantId, maxBatches: 1)
    try #require(stopped.outcome == .unfinished && stopped.itemsDeleted > 0, "the first batch should leave items behind")
    return (id, stopped.itemsDeleted)
}

/// What is left in the tenant's partition (its events aside: offboarding keeps them, its audit
/// record) and of its offboarding marker, read from the file.
func partitionLeft(database: String, id: String) async throws -> (resourceKeys: [String], marked: Bool) {
    let store = try SQLiteTenantStore(path: database)
    let items = try await store.query(ItemQuery(tenantId: id, prefix: "", limit: 1000)).items.map(\.key.resourceKey)
        .filter { !$0.hasPrefix(EventOutboxLayout.prefix) }
    let marked = try await Offboarding(store: store).pending().contains { $0.rawValue == id }
    return (items, marked)
}

@Suite("The onboard binary finishes offboardings a crash left unfinished")
struct OffboardingResumeBinaryTests {
    @Test("serve, started on a file with a tenant left OFFBOARDING after one batch, finishes it: GET shows OFFBOARDED and only the tombstone is left")
    func serveResumes() async throws {
        let folder = try temporaryFolder()
        defer { try? FileManager.default.removeItem(at: folder) }
        let database = folder.appendingPathComponent("crashed.sqlite").path
        let (id, firstBatch) = try await unfinishedOffboarding(database: database)
        #expect(try await partitionLeft(database: database, id: id).resourceKeys.count > 1)

        let token = "resume-admin-token-abcdefghijklmn"
        let server = try OnboardProcess(["serve", "--port", "0", "--database", database], environment: ["ONBOARD_ADMIN_TOKEN": token])
        let base = try await server.waitUntilListening()
        let (states, final) = try await HTTP.with(base) { http in
            var states: [String] = []
            for _ in 0..<600 {
                let reply = try await http.tenant(id, token: token)
                #expect(reply.status == 200, "\(reply.body)")
                let state = try JSONCodec.parse(reply.body).mapValue ?? [:]
                states.append(state["status"]?.stringValue ?? "?")
                if states.last == "OFFBOARDED" { return (states, state) }
                #expect(states.last == "OFFBOARDING", "\(reply.body)")
                let progress = state["offboardingProgress"]?.mapValue?["itemsDeleted"]?.intValue
                #expect((progress ?? -1) >= firstBatch, "\(reply.body)")
                try await Task.sleep(for: .milliseconds(50))
            }
            return (states, [:])
        }
        _ = try await server.terminate()
        #expect(states.last == "OFFBOARDED", "still \(states.last ?? "?") after 30 s; server output: \(server.stdout.text)")
        #expect(final["clientName"] == nil && final["clientPhone"] == nil && final["offboardedAt"] != nil)
        #expect(server.stdout.text.contains("resuming unfinished offboardings"), "\(server.stdout.text)")

        let left = try await partitionLeft(database: database, id: id)
        #expect(left.resourceKeys == ["TENANT#\(id)"])
        #expect(left.marked == false)
    }
}
