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
        migrator.registerMigration("v2: tenant listing index") { db in
            // The listing index's attributes become columns, and a partial index over them plays
            // the part of DynamoDB's sparse global secondary index.
            try db.execute(sql: "ALTER TABLE items ADD COLUMN listShard TEXT")
            try db.execute(sql: "ALTER TABLE items ADD COLUMN listKey TEXT")
            try db.execute(sql: "CREATE INDEX items_list ON items (listShard, listKey) WHERE listShard IS NOT NULL AND listKey IS NOT NULL")
            // Tenants stored before this migration join the index (shard: the id's last hex digit).
            try db.execute(sql: """
                UPDATE items SET listShard = 'TENANTS#' || substr(tenantId, -1), listKey = createdAt || '#' || tenantId
                WHERE resourceKey = 'TENANT#' || tenantId AND createdAt IS NOT NULL
                """)
        }
        migrator.registerMigration("v3: API-key count on tenant profiles") { db in
            // Profiles stored before the count existed get it from their APIKEY# items, so the
            // key limit holds from the first request on. (The service also counts lazily, as it
            // must on DynamoDB, for a profile without the count.) `APIKEY#` ..< `APIKEY$`: every
            // key starting with `APIKEY#` (`$` follows `#`).
            try db.execute(sql: """
                UPDATE items SET attributes = json_set(attributes, '$.apiKeyCount', (
                    SELECT count(*) FROM items AS k
                    WHERE k.tenantId = items.tenantId AND k.resourceKey >= 'APIKEY#' AND k.resourceKey < 'APIKEY$'))
                WHERE resourceKey = 'TENANT#' || tenantId AND json_type(attributes, '$.apiKeyCount') IS NULL
                """)
        }
        return migrator
    }
}
