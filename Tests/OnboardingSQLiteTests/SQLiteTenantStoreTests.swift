import Foundation
import GRDB
import OnboardingCore
import OnboardingSQLite
import Testing

@Suite("SQLite store: the file an operator sees")
struct SQLiteTenantStoreTests {
    /// A store on a fresh file, and the file's path.
    func makeStore() throws -> (SQLiteTenantStore, String, URL) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("onboard-sqlite-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("onboarding.sqlite").path
        return (try SQLiteTenantStore(path: path), path, directory)
    }

    @Test("WAL journal and synchronous=FULL on the writer: a commit is on disk when it returns")
    func durabilitySettings() async throws {
        let (store, _, directory) = try makeStore()
        defer { try? FileManager.default.removeItem(at: directory) }
        let settings = try await store.durabilitySettings()
        #expect(settings.journalMode == "wal")
        #expect(settings.synchronous == 2)
    }

    @Test("the table mirrors DynamoDB's: tenantId + resourceKey primary key, WITHOUT ROWID, STRICT, named migrations")
    func schema() throws {
        let (_, path, directory) = try makeStore()
        defer { try? FileManager.default.removeItem(at: directory) }
        try DatabaseQueue(path: path).read { db in
            let columns = try Row.fetchAll(db, sql: "PRAGMA table_info(items)")
            #expect(columns.map { $0["name"] as String } == [
                "tenantId", "resourceKey", "clientName", "clientPhone", "status", "createdAt", "updatedAt", "version", "attributes",
                "listShard", "listKey",
            ])
            let primaryKey = columns.filter { ($0["pk"] as Int) > 0 }.sorted { ($0["pk"] as Int) < ($1["pk"] as Int) }.map { $0["name"] as String }
            #expect(primaryKey == ["tenantId", "resourceKey"])
            let list = try #require(try Row.fetchOne(db, sql: "SELECT * FROM pragma_table_list WHERE name = 'items'"))
            #expect(list["wr"] as Int == 1, "WITHOUT ROWID")
            #expect(list["strict"] as Int == 1, "STRICT")
            let migrations = try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations")
            #expect(migrations == ["v1: single table items", "v2: tenant listing index", "v3: API-key count on tenant profiles"])
            let indexes = try String.fetchAll(db, sql: "SELECT name FROM pragma_index_list('items') WHERE partial = 1")
            #expect(indexes == ["items_list"])
        }
    }

    @Test("known attributes are columns, the rest a JSON object beside them; a row reads back exactly")
    func rowLayout() async throws {
        let (store, path, directory) = try makeStore()
        defer { try? FileManager.default.removeItem(at: directory) }
        let item = Item(tenantId: "t1", resourceKey: "TENANT#t1", attributes: [
            "clientName": .string("Acme"), "version": .int(3), "plan": .string("pro"), "limits": .map(["rps": .int(10)]),
        ])
        try await store.put(item)
        let row = try #require(try DatabaseQueue(path: path).read { db in try Row.fetchOne(db, sql: "SELECT * FROM items") })
        #expect(row["clientName"] as String == "Acme")
        #expect(row["version"] as Int64 == 3)
        #expect(row["status"] as String? == nil)
        #expect(row["attributes"] as String == #"{"limits":{"rps":10},"plan":"pro"}"#)
        #expect(try await store.get(item.key) == item)
    }

    @Test("a reopened file serves everything written before")
    func reopen() async throws {
        let (store, path, directory) = try makeStore()
        defer { try? FileManager.default.removeItem(at: directory) }
        let items = (0..<50).map { Item(tenantId: "t\($0 % 5)", resourceKey: "THING#\($0)", attributes: ["n": .int($0)]) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for item in items { group.addTask { try await store.put(item) } }
            try await group.waitForAll()
        }
        let reopened = try SQLiteTenantStore(path: path)
        for item in items {
            #expect(try await reopened.get(item.key) == item)
        }
    }

    @Test("a file that is not a database is reported as unavailable, not crashed on")
    func notADatabase() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("onboard-sqlite-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("junk.sqlite").path
        try Data(repeating: 0x41, count: 8192).write(to: URL(fileURLWithPath: path))
        let error = #expect(throws: StoreError.self) { try SQLiteTenantStore(path: path) }
        #expect(error?.code == .unavailable)
        #expect(error?.message.contains(path) == true)
    }

    @Test("group commit: in one burst, failing writes are undone alone and the others commit")
    func groupCommitIsolation() async throws {
        let (store, _, directory) = try makeStore()
        defer { try? FileManager.default.removeItem(at: directory) }
        let existing = Item(tenantId: "t", resourceKey: "TAKEN#1", attributes: [:])
        try await store.put(existing)
        let outcomes = await withTaskGroup(of: (Int, Bool).self) { group in
            for index in 0..<400 {
                group.addTask {
                    // Every fourth write collides with the existing item and must fail alone.
                    let item = index % 4 == 0
                        ? Item(key: existing.key, attributes: ["i": .int(index)])
                        : Item(tenantId: "t", resourceKey: "NEW#\(index)", attributes: ["i": .int(index)])
                    do {
                        try await store.put(item, condition: .itemNotExists)
                        return (index, true)
                    } catch {
                        return (index, false)
                    }
                }
            }
            var outcomes: [Int: Bool] = [:]
            for await (index, succeeded) in group { outcomes[index] = succeeded }
            return outcomes
        }
        #expect(outcomes.filter { $0.key % 4 == 0 }.allSatisfy { !$0.value })
        #expect(outcomes.filter { $0.key % 4 != 0 }.allSatisfy { $0.value })
        #expect(try await store.get(existing.key) == existing)
        let written = try await store.query(ItemQuery(tenantId: "t", prefix: "NEW#", limit: 1000))
        #expect(written.items.count == 300)
    }
}

@Suite("SQLite migrations")
struct SQLiteMigrationTests {
    @Test("a file written before the listing index gets it, with its tenants in it")
    func listingIndexBackfill() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("onboard-migrate-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let path = directory.appendingPathComponent("old.sqlite").path
        // The file as v1 left it: the table, one tenant, one other item, the migration record.
        let old = try DatabaseQueue(path: path)
        try await old.write { db in
            try db.execute(sql: """
                CREATE TABLE items (
                    tenantId TEXT NOT NULL, resourceKey TEXT NOT NULL, clientName TEXT, clientPhone TEXT, status TEXT,
                    createdAt TEXT, updatedAt TEXT, version INTEGER,
                    attributes TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(attributes) AND json_type(attributes) = 'object'),
                    PRIMARY KEY (tenantId, resourceKey)
                ) STRICT, WITHOUT ROWID;
                CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);
                INSERT INTO grdb_migrations VALUES ('v1: single table items');
                INSERT INTO items (tenantId, resourceKey, clientName, clientPhone, status, createdAt, updatedAt, version)
                VALUES ('0195f3c4-7a1e-7b2c-9d3e-4f5a6b7c8d9e', 'TENANT#0195f3c4-7a1e-7b2c-9d3e-4f5a6b7c8d9e', 'Old Co', '+1234567890',
                        'ACTIVE', '2025-01-02T03:04:05.678Z', '2025-01-02T03:04:05.678Z', 1);
                INSERT INTO items (tenantId, resourceKey) VALUES ('_system', 'ADMIN_TOKEN#current');
                """)
        }
        try old.close()
        let store = try SQLiteTenantStore(path: path)
        let listed = try await store.queryListIndex(ListIndexQuery(shard: "TENANTS#e", limit: 10))
        #expect(listed.map(\.key.tenantId) == ["0195f3c4-7a1e-7b2c-9d3e-4f5a6b7c8d9e"])
        #expect(listed.first?[ListIndex.keyAttribute] == .string("2025-01-02T03:04:05.678Z#0195f3c4-7a1e-7b2c-9d3e-4f5a6b7c8d9e"))
        let tenant = try Tenant(item: try #require(listed.first))
        #expect(tenant.clientName?.value == "Old Co")
        #expect(try await store.get(ItemKey(tenantId: "_system", resourceKey: "ADMIN_TOKEN#current"))?[ListIndex.shardAttribute] == nil)
    }
}
