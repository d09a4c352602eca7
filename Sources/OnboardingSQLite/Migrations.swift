import GRDB

/// The schema, as named migrations applied in order on every start (each exactly once per file).
enum Migrations {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        // A migration that fails leaves the file as it was: each runs in its own transaction.
        migrator.registerMigration("v1: single table items") { db in
            // STRICT enforces column types; WITHOUT ROWID makes the key the storage order, as in
            // DynamoDB, so a partition's items sit together sorted by resourceKey.
            try db.execute(
                sql: """
                    CREATE TABLE items (
                        tenantId    TEXT NOT NULL,
                        resourceKey TEXT NOT NULL,
                        clientName  TEXT,
                        clientPhone TEXT,
                        status      TEXT,
                        createdAt   TEXT,
                        updatedAt   TEXT,
                        version     INTEGER,
                        attributes  TEXT NOT NULL DEFAULT '{}'
                            CHECK (json_valid(attributes) AND json_type(attributes) = 'object'),
                        PRIMARY KEY (tenantId, resourceKey)
                    ) STRICT, WITHOUT ROWID
                    """
            )
        }
        return migrator
    }
}
