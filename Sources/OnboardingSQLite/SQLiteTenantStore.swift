import Foundation
import GRDB
import Logging
import OnboardingCore

/// The single table in an embedded SQLite file: the default store.
///
/// One `DatabasePool` in WAL mode: readers run concurrently with the writer; every write goes
/// through a ``GroupCommitter`` so concurrent requests share one transaction and one fsync.
public final class SQLiteTenantStore: TenantStore {
    /// The database file's absolute path.
    public let path: String
    /// Internal, not private: tests hold its writer queue to put writes in one batch.
    let pool: DatabasePool
    private let committer: GroupCommitter
    /// Connections of their own for point reads on the calling thread.
    private let pointReaders: PointReaders

    /// Opens (creating if needed) the database file and applies pending migrations.
    /// - Throws: ``StoreError`` `.unavailable` when the file cannot be opened or migrated.
    public convenience init(path: String, logger: Logger = Logger(label: "onboard.sqlite")) throws {
        try self.init(path: path, logger: logger, limits: GroupCommitter.Limits())
    }

    /// The same, with the group committer's limits of a test.
    init(path: String, logger: Logger, limits: GroupCommitter.Limits) throws {
        self.path = URL(fileURLWithPath: path).standardizedFileURL.path
        var configuration = Configuration()
        configuration.label = "onboard"
        // Another process (`onboard admin-token rotate`) may hold the write lock briefly.
        configuration.busyMode = .timeout(5)
        do {
            pool = try DatabasePool(path: self.path, configuration: configuration)
            // Durability: a write is acknowledged (201) only after its COMMIT returns. In WAL mode
            // `synchronous = NORMAL` (GRDB's default for pools) fsyncs only at checkpoints, so a
            // power loss or kernel crash could lose acknowledged tenants; `FULL` fsyncs the WAL at
            // every commit. Group commit shares that fsync between all the writes of a batch,
            // which is what makes FULL affordable. Set on the pool's one writer connection, after
            // GRDB's own WAL set-up (which would otherwise reset it).
            try pool.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA synchronous = FULL")
                // The WAL file keeps the size it once grew to (a large transaction, a time when
                // readers kept checkpoints from resetting it); past this it is cut back to it at
                // the next reset. What keeps it from growing without bound is GroupCommitter's checkpoint.
                try db.execute(sql: "PRAGMA journal_size_limit = \(Self.journalSizeLimit)")
            }
            let migrator = Migrations.migrator
            let applied = try pool.read { db in try migrator.appliedIdentifiers(db) }
            try migrator.migrate(pool)
            for name in migrator.migrations where !applied.contains(name) {
                logger.info("database migrated", metadata: ["path": "\(self.path)", "migration": "\(name)"])
            }
            pointReaders = try PointReaders(path: self.path, count: Self.pointReaderCount)
        } catch let error as DatabaseError {
            throw StoreError(.unavailable, "cannot open the database \(self.path): \(error.message ?? "\(error.resultCode)")")
        }
        committer = GroupCommitter(writer: pool, limits: limits, pointReaders: pointReaders)
    }

    /// Point-read connections: more than the threads that run requests on this machine class.
    static let pointReaderCount = 4

    /// `PRAGMA journal_size_limit` of the writer: 16 MiB.
    static let journalSizeLimit = 16 << 20

    /// The group committer's batches, checkpoints and queued writes (for the tests).
    var commitStatistics: GroupCommitter.Statistics { committer.statistics }

    public func get(_ key: ItemKey) async throws -> Item? {
        try StoreRules.validate(key)
        if let item = try pointRead({ db in try Self.fetch(key, db) }) { return item }
        return try await read { db in try Self.fetch(key, db) }
    }

    public func put(_ item: Item, condition: WriteCondition?) async throws {
        let item = try StoreRules.checked(item)
        let condition = try StoreRules.checked(condition)
        let arguments = ItemTable.arguments(for: item)
        if condition == .itemNotExists {
            // The common create: let the primary key say whether the item exists.
            try await write(needsSavepoint: false) { db in
                do {
                    try db.cachedStatement(sql: ItemTable.insertSQL).execute(arguments: arguments)
                } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_PRIMARYKEY {
                    throw StoreError.conditionFailed(item.key)
                }
            }
            return
        }
        try await write(needsSavepoint: false) { db in
            if let condition, !condition.isSatisfied(by: try Self.fetch(item.key, db)) {
                throw StoreError.conditionFailed(item.key)
            }
            try db.cachedStatement(sql: ItemTable.upsertSQL).execute(arguments: arguments)
        }
    }

    public func delete(_ key: ItemKey, condition: WriteCondition?) async throws {
        try StoreRules.validate(key)
        let condition = try StoreRules.checked(condition)
        try await write(needsSavepoint: false) { db in
            if let condition, !condition.isSatisfied(by: try Self.fetch(key, db)) {
                throw StoreError.conditionFailed(key)
            }
            try db.cachedStatement(sql: ItemTable.deleteSQL).execute(arguments: [key.tenantId, key.resourceKey])
        }
    }

    public func update(_ key: ItemKey, set attributes: [String: AttributeValue], condition: WriteCondition?) async throws {
        let (attributes, condition) = try StoreRules.checkedUpdate(key, set: attributes, condition: condition)
        // Read, check and write in one transaction of the one writer: nothing comes between.
        try await write(needsSavepoint: false) { db in
            guard let item = try Self.fetch(key, db), condition.isSatisfied(by: item) else {
                throw StoreError.conditionFailed(key)
            }
            let updated = try StoreRules.applying(set: attributes, add: [:], to: item)
            try db.cachedStatement(sql: ItemTable.upsertSQL).execute(arguments: ItemTable.arguments(for: updated))
        }
    }

    public func transact(_ writes: [TransactionWrite]) async throws {
        let writes = try StoreRules.checked(writes)
        try await write(needsSavepoint: true) { db in
            // As DynamoDB does: check every condition and report each write's reason. A create
            // (`put` on `itemNotExists`) lets the primary key decide, with no read first; the
            // savepoint undoes whatever was written when any condition fails, and no two writes
            // name the same item (StoreRules), so a write never changes another's condition.
            // An update reads its item here (the read its condition needs anyway) and writes it
            // back changed below: read, modify, write inside the one transaction.
            var reasons = [StoreError.CancellationReason](repeating: .none, count: writes.count)
            var current: [Int: Item] = [:]
            for (index, write) in writes.enumerated() {
                if case .put(_, .itemNotExists?) = write { continue }
                guard let condition = write.condition else { continue }
                let item = try Self.fetch(write.key, db)
                if !condition.isSatisfied(by: item) {
                    reasons[index] = .conditionFailed
                } else if case .update = write {
                    current[index] = item
                }
            }
            for (index, write) in writes.enumerated() {
                switch write {
                case .put(let item, .itemNotExists?):
                    do {
                        try db.cachedStatement(sql: ItemTable.insertSQL).execute(arguments: ItemTable.arguments(for: item))
                    } catch let error as DatabaseError where error.extendedResultCode == .SQLITE_CONSTRAINT_PRIMARYKEY {
                        reasons[index] = .conditionFailed
                    }
                case .put(let item, _):
                    try db.cachedStatement(sql: ItemTable.upsertSQL).execute(arguments: ItemTable.arguments(for: item))
                case .delete(let key, _):
                    try db.cachedStatement(sql: ItemTable.deleteSQL).execute(arguments: [key.tenantId, key.resourceKey])
                case .update(_, let set, let add, _):
                    // The condition (which includes the item's existence) failed: reported below.
                    guard let item = current[index] else { continue }
                    let updated = try StoreRules.applying(set: set, add: add, to: item)
                    try db.cachedStatement(sql: ItemTable.upsertSQL).execute(arguments: ItemTable.arguments(for: updated))
                case .conditionCheck:
                    break
                }
            }
            if reasons.contains(.conditionFailed) {
                throw StoreError(.transactionCanceled, "a condition of the transaction does not hold", cancellationReasons: reasons)
            }
        }
    }

    public func query(_ query: ItemQuery) async throws -> ItemPage {
        try StoreRules.validate(query)
        // Every key starting with the prefix sorts in [prefix, prefix + U+10FFFF): SQLite compares
        // text as UTF-8 bytes (as DynamoDB does), and no key may contain U+10FFFF (StoreRules).
        var sql = "SELECT \(ItemTable.selectList) FROM \(ItemTable.name) WHERE tenantId = ? AND resourceKey >= ? AND resourceKey < ?"
        var arguments: [any DatabaseValueConvertible] = [query.tenantId, query.prefix, query.prefix + String(StoreRules.prefixRangeEnd)]
        if let start = query.exclusiveStartKey {
            sql += query.ascending ? " AND resourceKey > ?" : " AND resourceKey < ?"
            arguments.append(start.resourceKey)
        }
        sql += " ORDER BY resourceKey \(query.ascending ? "ASC" : "DESC") LIMIT ?"
        // One more row than asked tells whether another page exists.
        arguments.append(query.limit + 1)
        let statementSQL = sql
        let statementArguments = StatementArguments(arguments)
        let items = try await read { db in
            try Row.fetchAll(db.cachedStatement(sql: statementSQL), arguments: statementArguments).map(ItemTable.item(from:))
        }
        guard items.count > query.limit else { return ItemPage(items: items, lastEvaluatedKey: nil) }
        let page = Array(items.prefix(query.limit))
        return ItemPage(items: page, lastEvaluatedKey: page.last?.key)
    }

    public func queryListIndex(_ query: ListIndexQuery) async throws -> [Item] {
        try StoreRules.validate(query)
        var sql = "SELECT \(ItemTable.selectList) FROM \(ItemTable.name) WHERE listShard = ? AND listKey IS NOT NULL"
        var arguments: [any DatabaseValueConvertible] = [query.shard]
        if let start = query.exclusiveStartKey {
            sql += query.ascending ? " AND listKey > ?" : " AND listKey < ?"
            arguments.append(start)
        }
        sql += " ORDER BY listKey \(query.ascending ? "ASC" : "DESC") LIMIT ?"
        arguments.append(query.limit)
        let statementSQL = sql
        let statementArguments = StatementArguments(arguments)
        return try await read { db in
            try Row.fetchAll(db.cachedStatement(sql: statementSQL), arguments: statementArguments).map(ItemTable.item(from:))
        }
    }

    public func checkHealth() async throws {
        try await read { db in
            _ = try Row.fetchOne(db.cachedStatement(sql: "SELECT 1 FROM \(ItemTable.name) LIMIT 1"))
        }
    }

    /// The journal mode and `synchronous` level of the writer connection, as SQLite reports them
    /// (`wal` and 2 = FULL): what the durability promise rests on.
    public func durabilitySettings() async throws -> (journalMode: String, synchronous: Int) {
        try await withCheckedThrowingContinuation { continuation in
            pool.asyncWriteWithoutTransaction { db in
                continuation.resume(with: Result {
                    (
                        try String.fetchOne(db, sql: "PRAGMA journal_mode") ?? "",
                        try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1
                    )
                })
            }
        }
    }

    // MARK: - Helpers

    private static func fetch(_ key: ItemKey, _ db: Database) throws -> Item? {
        try Row.fetchOne(db.cachedStatement(sql: ItemTable.selectOneSQL), arguments: [key.tenantId, key.resourceKey])
            .map(ItemTable.item(from:))
    }

    private func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            // One SELECT is its own consistent snapshot in WAL mode, so the explicit read
            // transaction GRDB's `read` adds (BEGIN … COMMIT) buys nothing here.
            return try await pool.unsafeRead(body)
        } catch let error as DatabaseError {
            throw Self.translate(error)
        }
    }

    /// A point read on the calling thread (``PointReaders``); `nil` when no point-read
    /// connection is free, and the caller reads through the pool.
    private func pointRead<T>(_ body: (Database) throws -> T) throws -> T? {
        do {
            return try pointReaders.read(body)
        } catch let error as DatabaseError {
            throw Self.translate(error)
        }
    }

    func write(needsSavepoint: Bool, _ work: @escaping @Sendable (Database) throws -> Void) async throws {
        do {
            try await committer.write(needsSavepoint: needsSavepoint, work)
        } catch let error as DatabaseError {
            throw Self.translate(error)
        }
    }

    /// SQLite's errors become `.unavailable`; the message names the result code, never the
    /// statement's arguments (they may hold personal data).
    private static func translate(_ error: DatabaseError) -> StoreError {
        StoreError(.unavailable, "SQLite error \(error.extendedResultCode.rawValue): \(error.message ?? "unknown")")
    }
}
