import Foundation

/// The rules on keys and items that every store enforces the same way (DynamoDB's limits), so a
/// request the SQLite store accepts is also one DynamoDB accepts.
public enum StoreRules {
    /// DynamoDB: a partition key value is at most 2048 bytes.
    public static let maxPartitionKeyBytes = 2048
    /// DynamoDB: a sort key value is at most 1024 bytes.
    public static let maxSortKeyBytes = 1024
    /// U+10FFFF closes prefix ranges (`prefix ..< prefix + "\u{10FFFF}"`), so no key may contain it.
    public static let prefixRangeEnd: Character = "\u{10FFFF}"

    /// Throws `.invalidRequest` unless the key can be stored.
    public static func validate(_ key: ItemKey) throws {
        try validateKeyPart(key.tenantId, name: KeyAttribute.tenantId, maxBytes: maxPartitionKeyBytes)
        try validateKeyPart(key.resourceKey, name: KeyAttribute.resourceKey, maxBytes: maxSortKeyBytes)
    }

    /// The item as every store keeps it (numbers in canonical form, see ``canonicalNumber(_:)``).
    /// - Throws: `.invalidRequest` unless the item can be stored.
    public static func checked(_ item: Item) throws -> Item {
        try validate(item.key)
        var attributes: [String: AttributeValue] = [:]
        attributes.reserveCapacity(item.attributes.count)
        for (name, value) in item.attributes {
            if ByteExact.equal(name, KeyAttribute.tenantId) || ByteExact.equal(name, KeyAttribute.resourceKey) {
                throw StoreError.invalidRequest("the key attribute \(name) cannot also be an ordinary attribute")
            }
            if name.isEmpty || name.utf8.count > 255 {
                throw StoreError.invalidRequest("attribute names must have 1 to 255 bytes")
            }
            // Another spelling of a key name (`resource\u{212A}ey`, with a Kelvin sign, equals
            // `resourceKey` as a Swift string): DynamoDB would keep it as a separate attribute, but
            // a Swift dictionary holds only one of the two, so such an item could not be read back.
            if let reserved = reservedNames.first(where: { $0 == name && !ByteExact.equal($0, name) }) {
                throw StoreError.invalidRequest("the attribute name \(name) is another Unicode spelling of \(reserved), which is reserved")
            }
            if ByteExact.equal(name, ListIndex.shardAttribute) || ByteExact.equal(name, ListIndex.keyAttribute) {
                // Index keys: DynamoDB accepts only non-empty strings in them.
                guard case .string(let text) = value, !text.isEmpty, text.utf8.count <= maxSortKeyBytes else {
                    throw StoreError.invalidRequest("\(name) is a listing-index key: a non-empty string of at most \(maxSortKeyBytes) bytes")
                }
            }
            attributes[name] = try canonical(value, name: name)
        }
        return Item(key: item.key, attributes: attributes)
    }

    /// The attributes of an update in canonical form, and the condition it is written under:
    /// the item exists, and `condition` holds.
    /// - Throws: `.invalidRequest` unless the update can be applied.
    public static func checkedUpdate(
        _ key: ItemKey, set attributes: [String: AttributeValue], condition: WriteCondition?
    ) throws -> (set: [String: AttributeValue], condition: WriteCondition) {
        let (set, _, condition) = try checkedUpdate(key, set: attributes, add: [:], condition: condition)
        return (set, condition)
    }

    /// ``checkedUpdate(_:set:condition:)`` with numbers to add: at least one attribute in all,
    /// and no attribute both set and added to (DynamoDB refuses overlapping paths).
    public static func checkedUpdate(
        _ key: ItemKey, set attributes: [String: AttributeValue], add: [String: Int], condition: WriteCondition?
    ) throws -> (set: [String: AttributeValue], add: [String: Int], condition: WriteCondition) {
        guard !attributes.isEmpty || !add.isEmpty else { throw StoreError.invalidRequest("an update sets at least one attribute") }
        let item = try checked(Item(key: key, attributes: attributes))
        _ = try checked(Item(key: key, attributes: add.mapValues { .int($0) }))
        for name in add.keys where attributes.keys.contains(where: { $0 == name }) {
            // Canonically equivalent spellings are refused too: a Swift dictionary could not
            // keep both of them in the item read back.
            throw StoreError.invalidRequest("an update cannot both set and add to \(name)")
        }
        let condition = try checked(condition).map { WriteCondition.and(.itemExists, $0) } ?? .itemExists
        return (item.attributes, add, condition)
    }

    /// The item after an update: `set` replaces attributes, `add` adds to numbers (an absent
    /// attribute counts as 0), as DynamoDB's `SET` and `if_not_exists(n, 0) + d` do.
    /// - Throws: `.invalidRequest` when an attribute to add to is not a number, or the sum is
    ///   outside DynamoDB's range.
    public static func applying(set attributes: [String: AttributeValue], add: [String: Int], to item: Item) throws -> Item {
        var item = item
        for (name, value) in attributes {
            // Replace the member with exactly these bytes (a subscript would keep an equivalent old name).
            item.attributes.removeValue(forKey: name)
            item.attributes[name] = value
        }
        for (name, delta) in add {
            let sum: String?
            switch item.attributes.valueForExactKey(name) {
            case nil:
                sum = String(delta)
            case .number(let text)?:
                if let current = Int(text), case (let total, false) = current.addingReportingOverflow(delta) {
                    sum = String(total)
                } else if let current = Decimal(string: text, locale: Locale(identifier: "en_US_POSIX")) {
                    sum = canonicalNumber("\(current + Decimal(delta))")
                } else {
                    sum = nil
                }
            case let other?:
                throw StoreError.invalidRequest("cannot add to \(name): it holds \(other.typeDescription), not a number")
            }
            guard let sum, let canonical = canonicalNumber(sum) else {
                throw StoreError.invalidRequest("adding \(delta) to \(name) leaves DynamoDB's range of numbers")
            }
            item.attributes.removeValue(forKey: name)
            item.attributes[name] = .number(canonical)
        }
        return item
    }

    /// Compares two numbers in canonical form (``canonicalNumber(_:)``): negative when `lhs` is
    /// smaller, 0 when equal, positive when larger.
    public static func compareCanonicalNumbers(_ lhs: String, _ rhs: String) -> Int {
        let lhsNegative = lhs.hasPrefix("-")
        let rhsNegative = rhs.hasPrefix("-")
        if lhsNegative != rhsNegative { return lhsNegative ? -1 : 1 }
        // Magnitudes: the longer integer part is larger; then digit by digit. A canonical
        // fraction has no trailing zeros, so comparing fraction digits as text is exact.
        func parts(_ text: String) -> (integer: Substring.UTF8View, fraction: Substring.UTF8View) {
            let digits = text.drop { $0 == "-" }
            guard let point = digits.firstIndex(of: ".") else { return (digits.utf8, ""[...].utf8) }
            return (digits[..<point].utf8, digits[digits.index(after: point)...].utf8)
        }
        let (lhsInteger, lhsFraction) = parts(lhs)
        let (rhsInteger, rhsFraction) = parts(rhs)
        var magnitude = 0
        if lhsInteger.count != rhsInteger.count {
            magnitude = lhsInteger.count < rhsInteger.count ? -1 : 1
        } else if !lhsInteger.elementsEqual(rhsInteger) {
            magnitude = lhsInteger.lexicographicallyPrecedes(rhsInteger) ? -1 : 1
        } else if !lhsFraction.elementsEqual(rhsFraction) {
            magnitude = lhsFraction.lexicographicallyPrecedes(rhsFraction) ? -1 : 1
        }
        return lhsNegative ? -magnitude : magnitude
    }

    /// The names of the key attributes of the table and of its listing index.
    private static let reservedNames = [KeyAttribute.tenantId, KeyAttribute.resourceKey, ListIndex.shardAttribute, ListIndex.keyAttribute]

    /// The condition with its values in canonical form, so it compares as DynamoDB compares.
    public static func checked(_ condition: WriteCondition?) throws -> WriteCondition? {
        guard let condition else { return nil }
        return try checked(condition)
    }

    private static func checked(_ condition: WriteCondition) throws -> WriteCondition {
        switch condition {
        case .itemExists, .itemNotExists: return condition
        case .attributeEquals(let name, let value):
            try validateConditionName(name)
            return .attributeEquals(name, try canonical(value, name: name))
        case .attributeNotExists(let name), .attributeExists(let name), .attributeLessThan(let name, _):
            try validateConditionName(name)
            return condition
        case .and(let lhs, let rhs): return .and(try checked(lhs), try checked(rhs))
        case .or(let lhs, let rhs): return .or(try checked(lhs), try checked(rhs))
        }
    }

    /// DynamoDB refuses an empty attribute name in an expression.
    private static func validateConditionName(_ name: String) throws {
        guard !name.isEmpty else { throw StoreError.invalidRequest("a condition names an attribute of 1 or more bytes") }
    }

    /// The writes of a transaction in canonical form.
    /// - Throws: `.invalidRequest` unless the transaction can be applied.
    public static func checked(_ writes: [TransactionWrite]) throws -> [TransactionWrite] {
        guard !writes.isEmpty else { throw StoreError.invalidRequest("a transaction needs at least one write") }
        guard writes.count <= TransactionLimits.maxWrites else {
            throw StoreError.invalidRequest("a transaction holds at most \(TransactionLimits.maxWrites) writes, not \(writes.count)")
        }
        var seen = Set<ItemKey>()
        return try writes.map { write in
            guard seen.insert(write.key).inserted else {
                throw StoreError.invalidRequest("a transaction cannot touch \(write.key) twice")
            }
            switch write {
            case .put(let item, let condition):
                return .put(try checked(item), condition: try checked(condition))
            case .delete(let key, let condition):
                try validate(key)
                return .delete(key, condition: try checked(condition))
            case .conditionCheck(let key, let condition):
                try validate(key)
                return .conditionCheck(key, condition: try checked(condition))
            case .update(let key, let set, let add, let condition):
                let (set, add, condition) = try checkedUpdate(key, set: set, add: add, condition: condition)
                return .update(key, set: set, add: add, condition: condition)
            }
        }
    }

    private static func canonical(_ value: AttributeValue, name: String) throws -> AttributeValue {
        switch value {
        case .number(let text):
            guard let canonical = canonicalNumber(text) else {
                throw StoreError.invalidRequest(
                    "the number in \(name) must be a decimal of at most \(maxNumberDigits) significant digits, 1e-130 to below 1e126 in magnitude"
                )
            }
            return .number(canonical)
        case .list(let elements):
            return .list(try elements.map { try canonical($0, name: name) })
        case .map(let members):
            return .map(try members.mapValues { try canonical($0, name: name) })
        case .string, .bool, .null:
            return value
        }
    }

    /// The most significant digits a number may have (DynamoDB's precision).
    public static let maxNumberDigits = 38

    /// A number in the one form both stores return, as DynamoDB normalises `N` values: plain
    /// decimal, no exponent, no leading or trailing zeros, no `-0` (`"1.50"` → `"1.5"`,
    /// `"1e3"` → `"1000"`). `nil` when the text is not a JSON number or is out of DynamoDB's
    /// range (38 significant digits, magnitude 1e-130 to below 1e126).
    public static func canonicalNumber(_ text: String) -> String? {
        var work = 0
        return canonicalNumber(text, work: &work)
    }

    /// ``canonicalNumber(_:)``, adding to `work` the bytes it reads, copies and writes, so a test
    /// can check that the work grows linearly with the text (without timing anything). Every step
    /// is a single pass over the text: zeros are skipped by moving indices, never by removing
    /// elements one at a time (`removeFirst` in a loop was quadratic in the number of zeros).
    static func canonicalNumber(_ text: String, work: inout Int) -> String? {
        var bytes = Array(text.utf8)[...]
        work += bytes.count
        let negative = bytes.first == UInt8(ascii: "-")
        if negative { bytes = bytes.dropFirst() }
        func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
        let integer = bytes.prefix(while: isDigit)
        guard !integer.isEmpty, integer.count == 1 || integer.first != UInt8(ascii: "0") else { return nil }
        bytes = bytes.dropFirst(integer.count)
        var fraction: ArraySlice<UInt8> = []
        if bytes.first == UInt8(ascii: ".") {
            fraction = bytes.dropFirst().prefix(while: isDigit)
            guard !fraction.isEmpty else { return nil }
            bytes = bytes.dropFirst(1 + fraction.count)
        }
        work += integer.count + fraction.count
        var exponent = 0
        if let marker = bytes.first, marker == UInt8(ascii: "e") || marker == UInt8(ascii: "E") {
            bytes = bytes.dropFirst()
            var exponentNegative = false
            if let sign = bytes.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
                exponentNegative = sign == UInt8(ascii: "-")
                bytes = bytes.dropFirst()
            }
            let digits = bytes.prefix(while: isDigit)
            guard !digits.isEmpty, digits.count <= 6 else { return nil }
            exponent = Int(String(decoding: digits, as: UTF8.self))! * (exponentNegative ? -1 : 1)
            bytes = bytes.dropFirst(digits.count)
        }
        guard bytes.isEmpty else { return nil }
        // value = 0.<digits> × 10^point
        var digits = Array(integer) + Array(fraction)
        work += digits.count
        var point = integer.count + exponent
        let first = digits.firstIndex { $0 != UInt8(ascii: "0") }
        guard let first else { return "0" }
        let last = digits.lastIndex { $0 != UInt8(ascii: "0") }!
        work += first + (digits.count - last)
        point -= first
        digits = Array(digits[first...last])
        work += digits.count
        guard digits.count <= maxNumberDigits, (-129...126).contains(point) else { return nil }
        var output: [UInt8] = negative ? [UInt8(ascii: "-")] : []
        if point <= 0 {
            output += Array("0.".utf8) + Array(repeating: UInt8(ascii: "0"), count: -point) + digits
        } else if point >= digits.count {
            output += digits + Array(repeating: UInt8(ascii: "0"), count: point - digits.count)
        } else {
            output += Array(digits[..<point]) + [UInt8(ascii: ".")] + Array(digits[point...])
        }
        work += output.count
        return String(decoding: output, as: UTF8.self)
    }

    /// Throws `.invalidRequest` unless the query can be served.
    public static func validate(_ query: ItemQuery) throws {
        try validateKeyPart(query.tenantId, name: KeyAttribute.tenantId, maxBytes: maxPartitionKeyBytes)
        guard (1...ItemQuery.maxLimit).contains(query.limit) else {
            throw StoreError.invalidRequest("a query limit must be between 1 and \(ItemQuery.maxLimit), not \(query.limit)")
        }
        guard !query.prefix.unicodeScalars.contains("\u{10FFFF}") else {
            throw StoreError.invalidRequest("a prefix cannot contain U+10FFFF")
        }
        if let start = query.exclusiveStartKey, !ByteExact.equal(start.tenantId, query.tenantId) {
            throw StoreError.invalidRequest("the start key belongs to another partition")
        }
    }

    /// Throws `.invalidRequest` unless the listing-index query can be served.
    public static func validate(_ query: ListIndexQuery) throws {
        try validateKeyPart(query.shard, name: ListIndex.shardAttribute, maxBytes: maxSortKeyBytes)
        guard (1...ItemQuery.maxLimit).contains(query.limit) else {
            throw StoreError.invalidRequest("a query limit must be between 1 and \(ItemQuery.maxLimit), not \(query.limit)")
        }
        // DynamoDB rejects an empty key value in a key condition; an index key is 1 to 1024 bytes,
        // so no start key outside that range is a position in the index.
        if let start = query.exclusiveStartKey, start.isEmpty || start.utf8.count > maxSortKeyBytes {
            throw StoreError.invalidRequest("a listing start key must have 1 to \(maxSortKeyBytes) bytes")
        }
    }

    private static func validateKeyPart(_ value: String, name: String, maxBytes: Int) throws {
        guard !value.isEmpty, value.utf8.count <= maxBytes else {
            throw StoreError.invalidRequest("\(name) must have 1 to \(maxBytes) bytes")
        }
        guard !value.unicodeScalars.contains("\u{10FFFF}") else {
            throw StoreError.invalidRequest("\(name) cannot contain U+10FFFF")
        }
    }
}
