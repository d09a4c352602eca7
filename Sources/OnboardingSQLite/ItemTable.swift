import GRDB
import OnboardingCore

/// The SQLite table `items`, the one-to-one mirror of the DynamoDB table.
///
/// ```
/// tenantId | resourceKey | clientName | clientPhone | status | createdAt | updatedAt | version | attributes | listShard | listKey
/// ```
/// The key columns carry DynamoDB's key names. The attributes the service uses are columns of
/// their own, so an operator reads them with the `sqlite3` shell; any other attribute lives in
/// `attributes`, a JSON object. A column holds an attribute only when its type matches (a text
/// column a string, an integer column an integer written canonically); anything else goes to
/// `attributes`, so every item round-trips exactly and moves between the stores unchanged.
enum ItemTable {
    static let name = "items"

    enum Kind {
        case text
        case integer
    }

    /// The attribute columns, in table order. A migration that adds a column appends it here.
    static let columns: [(name: String, kind: Kind)] = [
        ("clientName", .text),
        ("clientPhone", .text),
        ("status", .text),
        ("createdAt", .text),
        ("updatedAt", .text),
        ("version", .integer),
        ("listShard", .text),
        ("listKey", .text),
    ]

    static let columnNames = [KeyAttribute.tenantId, KeyAttribute.resourceKey] + columns.map(\.name) + ["attributes"]
    static let selectList = columnNames.map { "\"\($0)\"" }.joined(separator: ", ")

    private static let intoClause = "INTO \(name) (\(selectList)) VALUES (\(columnNames.map { _ in "?" }.joined(separator: ", ")))"
    /// Creates or replaces the item.
    static let upsertSQL = "INSERT OR REPLACE " + intoClause
    /// Fails with SQLITE_CONSTRAINT_PRIMARYKEY when the key exists: `itemNotExists` without a read.
    static let insertSQL = "INSERT " + intoClause
    static let selectOneSQL = "SELECT \(selectList) FROM \(name) WHERE tenantId = ? AND resourceKey = ?"
    static let deleteSQL = "DELETE FROM \(name) WHERE tenantId = ? AND resourceKey = ?"

    /// The statement arguments that store `item` (in `columnNames` order).
    static func arguments(for item: Item) -> StatementArguments {
        var rest = item.attributes
        var values: [(any DatabaseValueConvertible)?] = [item.key.tenantId, item.key.resourceKey]
        for column in columns {
            switch (column.kind, rest.valueForExactKey(column.name)) {
            case (.text, .string(let text)?):
                values.append(text)
                rest[column.name] = nil
            case (.integer, .number(let text)?):
                if let integer = Int64(text), String(integer) == text {
                    values.append(integer)
                    rest[column.name] = nil
                } else {
                    values.append(nil)
                }
            default:
                values.append(nil)
            }
        }
        values.append(rest.isEmpty ? "{}" : JSONCodec.serialize(.map(rest)))
        return StatementArguments(values)
    }

    /// Rebuilds an item from a row selected with `selectList`.
    static func item(from row: Row) throws -> Item {
        let tenantId: String = row[0]
        let resourceKey: String = row[1]
        var attributes: [String: AttributeValue] = [:]
        let attributesJSON: String = row[columns.count + 2]
        switch try? JSONCodec.parse(attributesJSON) {
        case .map(let extra)?: attributes = extra
        default:
            throw StoreError(.unavailable, "the attributes of \(tenantId)/\(resourceKey) are not a JSON object")
        }
        for (offset, column) in columns.enumerated() {
            let value = row[offset + 2] as DatabaseValue
            switch (column.kind, value.storage) {
            case (_, .null): continue
            case (.text, .string(let text)): attributes[column.name] = .string(text)
            case (.integer, .int64(let integer)): attributes[column.name] = .number(String(integer))
            default:
                throw StoreError(.unavailable, "the column \(column.name) of \(tenantId)/\(resourceKey) holds an unexpected type")
            }
        }
        return Item(tenantId: tenantId, resourceKey: resourceKey, attributes: attributes)
    }
}
