import Foundation
import OnboardingCore
import Testing

/// The single-table semantics every ``TenantStore`` must have (DynamoDB's), checked on each store.
@Suite("TenantStore conformance")
struct TenantStoreConformanceTests {
    static let everyType: [String: AttributeValue] = [
        "clientName": .string("Société Générale 株式会社 🚀"),
        "status": .string("ACTIVE"),
        "version": .int(7),
        "big": .number("123456789012345678901234567890"),
        "decimal": .number("-0.000125"),
        "flag": .bool(true),
        "nothing": .null,
        "tags": .list([.string("a"), .number("1"), .list([]), .map([:])]),
        "nested": .map(["deep": .map(["deeper": .list([.bool(false), .null])])]),
        "empty": .string(""),
    ]

    @Test("an item comes back exactly as it was put, whatever its attribute types", arguments: StoreUnderTest.all)
    func roundTrip(_ subject: StoreUnderTest) async throws {
        let store = try await subject.make()
        let item = Item(tenantId: freshTenant(), resourceKey: "THING#1", attributes: Self.everyType)
        try await store.put(item)
        #expect(try await store.get(item.key) == item)
        #expect(try await store.get(ItemKey(tenantId: item.key.tenantId, resourceKey: "THING#2")) == nil)
        #expect(try await store.get(ItemKey(tenantId: freshTenant(), resourceKey: "THING#1")) == nil)
    }

    @Test("well-known attribute names with unusual types round-trip too", arguments: StoreUnderTest.all)
    func unusualTypesForKnownNames(_ subject: StoreUnderTest) async throws {
        let store = try await subject.make()
        let item = Item(tenantId: freshTenant(), resourceKey: "TENANT#odd", attributes: [
            "clientName": .map(["first": .string("A")]),
            "status": .number("1"),
            "version": .number("-2.5"),
            "createdAt": .null,
            "updatedAt": .list([.string("x")]),
            "clientPhone": .bool(false),
        ])
        try await store.put(item)
        #expect(try await store.get(item.key) == item)
    }

    @Test("numbers come back in DynamoDB's canonical form and compare by value in conditions", arguments: StoreUnderTest.all)
    func canonicalNumbers(_ subject: StoreUnderTest) async throws {
        let store = try await subject.make()
        let key = ItemKey(tenantId: freshTenant(), resourceKey: "NUMBERS#1")
        try await store.put(Item(key: key, attributes: [
            "version": .number("1.0"), "e": .number("1.5e3"), "small": .number("25e-4"), "zero": .number("-0.00"),
            "list": .list([.number("10.10")]),
        ]))
        #expect(try await store.get(key)?.attributes == [
            "version": .number("1"), "e": .number("1500"), "small": .number("0.0025"), "zero": .number("0"),
            "list": .list([.number("10.1")]),
        ])
        try await store.put(Item(key: key, attributes: ["version": .int(2)]), condition: .attributeEquals("version", .number("1.000")))
        #expect(try await store.get(key)?.attributes["version"] == .int(2))
        for bad in ["00", "1.", "abc", "1e1000000", "1e126", "1e-131", "1234567890123456789012345678901234567890"] {
            let error = await #expect(throws: StoreError.self, "\(bad)") {
                try await store.put(Item(key: key, attributes: ["n": .number(bad)]))
            }
            #expect(error?.code == .invalidRequest)
        }
    }

    @Test("put replaces the whole item", arguments: StoreUnderTest.all)
    func putReplaces(_ subject: StoreUnderTest) async throws {
        let store = try await subject.make()
        let key = ItemKey(tenantId: freshTenant(), resourceKey: "THING#1")
        try await store.put(Item(key: key, attributes: ["a": .int(1), "b": .int(2)]))
        try await store.put(Item(key: key, attributes: ["a": .int(3)]))
        #expect(try await store.get(key)?.attributes == ["a": .int(3)])
    }

    @Test("conditional puts: itemNotExists, itemExists, attributeEquals", arguments: StoreUnderTest.all)
    func conditionalPuts(_ subject: StoreUnderTest) async throws {
        let store = try await subject.make()
        let key = ItemKey(tenantId: freshTenant(), resourceKey: "THING#1")
        let first = Item(key: key, attributes: ["version": .int(1)])

        await #expect(throws: StoreError.conditionFailed(key)) {
            try await store.put(first, condition: .itemExists)
        }
        #expect(try await store.get(key) == nil, "a failed condition writes nothing")
        try await store.put(first, condition: .itemNotExists)
        await #expect(throws: StoreError.conditionFailed(key)) {
            try await store.put(Item(key: key, attributes: ["version": .int(99)]), condition: .itemNotExists)
        }
        #expect(try await store.get(key) == first, "the existing item is untouched")

        let second = Item(key: key, attributes: ["version": .int(2)])
        await #expect(throws: StoreError.conditionFailed(key)) {
            try await store.put(second, condition: .attributeEquals("version", .int(5)))
        }
        try await store.put(second, condition: .and(.itemExists, .attributeEquals("version", .int(1))))
        #expect(try await store.get(key) == second)
    }

    @Test("deletes: unconditional, conditional, of absent items", arguments: StoreUnderTest.all)
    func deletes(_ subject: StoreUnderTest) async throws {
        let store = try await subject.make()
        let key = ItemKey(tenantId: freshTenant(), resourceKey: "THING#1")
        try await store.delete(key)  // absent: fine
        await #expect(throws: StoreError.conditionFailed(key)) { try await store.delete(key, condition: .itemExists) }
        try await store.put(Item(key: key, attributes: ["version": .int(1)]))
        await #expect(throws: StoreError.conditionFailed(key)) {
            try await store.delete(key, condition: .attributeEquals("version", .int(2)))
        }
        #expect(try await store.get(key) != nil)
        try await store.delete(key, condition: .attributeEquals("version", .int(1)))
        #expect(try await store.get(key) == nil)
    }

    @Test("a transaction applies every write", arguments: StoreUnderTest.all)
    func transactionCommits(_ subject: StoreUnderTest) async throws {
        let store = try await subject.make()
        let tenant = freshTenant()
        let old = Item(tenantId: tenant, resourceKey: "OLD#1", attributes: ["v": .int(1)])
        let guardItem = Item(tenantId: tenant, resourceKey: "GUARD#1", attributes: ["open": .bool(true)])
        try await store.put(old)
        try await store.put(guardItem)
        let profile = Item(tenantId: tenant, resourceKey: "TENANT#\(tenant)", attributes: ["status": .string("ACTIVE")])
        let other = Item(tenantId: freshTenant(), resourceKey: "INDEX#1", attributes: ["points": .string(tenant)])
        try await store.transact([
            .put(profile, condition: .itemNotExists),
            .put(other, condition: nil),
            .delete(old.key, condition: .itemExists),
            .conditionCheck(guardItem.key, condition: .attributeEquals("open", .bool(true))),
        ])
        #expect(try await store.get(profile.key) == profile)
        #expect(try await store.get(other.key) == other)
        #expect(try await store.get(old.key) == nil)
        #expect(try await store.get(guardItem.key) == guardItem)
    }

    @Test("a transaction with one failing condition applies nothing and says which write failed", arguments: StoreUnderTest.all)
    func transactionRollsBack(_ subject: StoreUnderTest) async throws {
        let store = try await subject.make()
        let tenant = freshTenant()
        let existing = Item(tenantId: tenant, resourceKey: "A#1", attributes: ["v": .int(1)])
        try await store.put(existing)
        let new = Item(tenantId: tenant, resourceKey: "B#1", attributes: ["v": .int(1)])
        let toDelete = Item(tenantId: tenant, resourceKey: "C#1", attributes: ["v": .int(1)])
        try await store.put(toDelete)
        let error = await #expect(throws: StoreError.self) {
            try await store.transact([
                .put(new, condition: .itemNotExists),
                .delete(toDelete.key, condition: nil),
                .put(Item(key: existing.key, attributes: ["v": .int(2)]), condition: .itemNotExists),
                .conditionCheck(ItemKey(tenantId: tenant, resourceKey: "D#1"), condition: .itemExists),
            ])
        }
        #expect(error?.code == .transactionCanceled)
        #expect(error?.cancellationReasons == [.none, .none, .conditionFailed, .conditionFailed])
        #expect(try await store.get(new.key) == nil)
        #expect(try await store.get(toDelete.key) == toDelete)
        #expect(try await store.get(existing.key) == existing)
    }

    @Test("transactions obey DynamoDB's rules: 1 to 100 writes, each item once", arguments: StoreUnderTest.all)
    func transactionLimits(_ subject: StoreUnderTest) async throws {
        let store = try await subject.make()
        let tenant = freshTenant()
        let item = Item(tenantId: tenant, resourceKey: "A#1", attributes: [:])
        for writes in [
            [TransactionWrite](),
            (0...TransactionLimits.maxWrites).map { TransactionWrite.put(Item(tenantId: tenant, resourceKey: "N#\($0)", attributes: [:]), condition: nil) },
            [.put(item, condition: nil), .delete(item.key, condition: nil)],
        ] {
            let error = await #expect(throws: StoreError.self) { try await store.transact(writes) }
            #expect(error?.code == .invalidRequest)
        }
        let hundred = (0..<TransactionLimits.maxWrites).map {
            TransactionWrite.put(Item(tenantId: tenant, resourceKey: "N#\($0)", attributes: [:]), condition: nil)
        }
        try await store.transact(hundred)
        #expect(try await store.query(ItemQuery(tenantId: tenant, prefix: "N#", limit: 1000)).items.count == 100)
    }

    @Test("keys and attribute names are checked the same way everywhere", arguments: StoreUnderTest.all)
    func invalidItems(_ subject: StoreUnderTest) async throws {
        let store = try await subject.make()
        let tenant = freshTenant()
        let invalid: [Item] = [
            Item(tenantId: "", resourceKey: "A#1", attributes: [:]),
            Item(tenantId: tenant, resourceKey: "", attributes: [:]),
            Item(tenantId: tenant, resourceKey: String(repeating: "x", count: StoreRules.maxSortKeyBytes + 1), attributes: [:]),
            Item(tenantId: tenant, resourceKey: "A#\u{10FFFF}", attributes: [:]),
            Item(tenantId: tenant, resourceKey: "A#1", attributes: ["tenantId": .string("other")]),
            Item(tenantId: tenant, resourceKey: "A#1", attributes: ["": .string("x")]),
        ]
        for item in invalid {
            let error = await #expect(throws: StoreError.self) { try await store.put(item) }
            #expect(error?.code == .invalidRequest)
        }
        #expect(try await store.query(ItemQuery(tenantId: tenant, prefix: "")).items.isEmpty)
    }

    @Test("query returns one partition's items with the prefix, in sort-key order, in pages", arguments: StoreUnderTest.all)
    func queryPages(_ subject: StoreUnderTest) async throws {
        let store = try await subject.make()
        let tenant = freshTenant()
        let neighbour = freshTenant()
        let keys = (0..<25).map { String(format: "EVENT#%03d", $0) }
        for key in keys.shuffled() {
            try await store.put(Item(tenantId: tenant, resourceKey: key, attributes: ["n": .string(key)]))
            try await store.put(Item(tenantId: neighbour, resourceKey: key, attributes: ["n": .string("neighbour")]))
        }
        // Keys around the prefix that must not match it.
        for key in ["EVENT", "EVENT$000", "EVENTS#1", "EVENU#1", "APIKEY#1", "TENANT#x"] {
            try await store.put(Item(tenantId: tenant, resourceKey: key, attributes: [:]))
        }

        var collected: [String] = []
        var start: ItemKey?
        var pages = 0
        repeat {
            let page = try await store.query(ItemQuery(tenantId: tenant, prefix: "EVENT#", limit: 10, exclusiveStartKey: start))
            #expect(page.items.count <= 10)
            #expect(page.items.allSatisfy { $0.key.tenantId == tenant && $0.attributes["n"] != .string("neighbour") })
            collected += page.items.map(\.key.resourceKey)
            start = page.lastEvaluatedKey
            pages += 1
        } while start != nil && pages < 10
        #expect(collected == keys, "all 25, in order, none twice, none of the neighbour's")
        #expect(pages >= 3)

        let descending = try await store.query(ItemQuery(tenantId: tenant, prefix: "EVENT#", limit: 5, ascending: false))
        #expect(descending.items.map(\.key.resourceKey) == Array(keys.reversed().prefix(5)))
        let next = try await store.query(ItemQuery(
            tenantId: tenant, prefix: "EVENT#", limit: 5, exclusiveStartKey: descending.lastEvaluatedKey, ascending: false
        ))
        #expect(next.items.map(\.key.resourceKey) == Array(keys.reversed().dropFirst(5).prefix(5)))

        let everything = try await store.query(ItemQuery(tenantId: tenant, prefix: "", limit: 1000))
        #expect(everything.items.count == 31)
        #expect(everything.lastEvaluatedKey == nil)
        #expect(everything.items.map(\.key.resourceKey) == everything.items.map(\.key.resourceKey).sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) })

        let none = try await store.query(ItemQuery(tenantId: freshTenant(), prefix: "EVENT#"))
        #expect(none.items.isEmpty && none.lastEvaluatedKey == nil)
    }

    @Test("query limits are 1 to 1000 and the start key must be in the partition", arguments: StoreUnderTest.all)
    func queryRules(_ subject: StoreUnderTest) async throws {
        let store = try await subject.make()
        let tenant = freshTenant()
        for query in [
            ItemQuery(tenantId: tenant, prefix: "", limit: 0),
            ItemQuery(tenantId: tenant, prefix: "", limit: 1001),
            ItemQuery(tenantId: tenant, prefix: "", exclusiveStartKey: ItemKey(tenantId: freshTenant(), resourceKey: "A")),
        ] {
            let error = await #expect(throws: StoreError.self) { try await store.query(query) }
            #expect(error?.code == .invalidRequest)
        }
    }

    @Test("concurrent writers: every write lands; of racing creates exactly one wins", arguments: StoreUnderTest.all)
    func concurrentWriters(_ subject: StoreUnderTest) async throws {
        let store = try await subject.make()
        let tenant = freshTenant()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<300 {
                group.addTask { try await store.put(Item(tenantId: tenant, resourceKey: "ITEM#\(index)", attributes: ["i": .int(index)])) }
            }
            try await group.waitForAll()
        }
        let all = try await store.query(ItemQuery(tenantId: tenant, prefix: "ITEM#", limit: 1000))
        #expect(all.items.count == 300)

        let contested = ItemKey(tenantId: tenant, resourceKey: "CONTESTED#1")
        let winners = await withTaskGroup(of: Int?.self) { group in
            for index in 0..<50 {
                group.addTask {
                    do {
                        try await store.put(Item(key: contested, attributes: ["winner": .int(index)]), condition: .itemNotExists)
                        return index
                    } catch {
                        #expect((error as? StoreError)?.code == .conditionFailed)
                        return nil
                    }
                }
            }
            var winners: [Int] = []
            for await winner in group { if let winner { winners.append(winner) } }
            return winners
        }
        #expect(winners.count == 1)
        #expect(try await store.get(contested)?.attributes["winner"] == .int(winners.first ?? -1))
    }

    @Test("optimistic concurrency: racing read-modify-write loops lose no update", arguments: StoreUnderTest.all)
    func optimisticCounter(_ subject: StoreUnderTest) async throws {
        let store = try await subject.make()
        let key = ItemKey(tenantId: freshTenant(), resourceKey: "COUNTER#1")
        try await store.put(Item(key: key, attributes: ["version": .int(0)]))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<40 {
                group.addTask {
                    while true {
                        let current = try await store.get(key)?.attributes["version"]?.intValue ?? -1
                        do {
                            try await store.put(Item(key: key, attributes: ["version": .int(current + 1)]), condition: .attributeEquals("version", .int(current)))
                            return
                        } catch let error as StoreError where error.code == .conditionFailed {
                            continue
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        #expect(try await store.get(key)?.attributes["version"] == .int(40))
    }

    @Test("the listing index: one shard's indexed items in key order, sparse, paged by key", arguments: StoreUnderTest.all)
    func listIndex(_ subject: StoreUnderTest) async throws {
        let store = try await subject.make()
        // A shard name of its own per run, as stores may be shared between tests.
        let shard = "TEST#\(freshTenant())"
        let other = "TEST#\(freshTenant())"
        let keys = (0..<12).map { String(format: "2026-01-01T00:00:%02d.000Z#%@", $0, freshTenant()) }
        for (index, key) in keys.enumerated().shuffled() {
            try await store.put(Item(tenantId: freshTenant(), resourceKey: "TENANT#\(index)", attributes: [
                ListIndex.shardAttribute: .string(shard), ListIndex.keyAttribute: .string(key), "n": .int(index),
            ]))
        }
        try await store.put(Item(tenantId: freshTenant(), resourceKey: "TENANT#x", attributes: [
            ListIndex.shardAttribute: .string(other), ListIndex.keyAttribute: .string(keys[0]),
        ]))
        // Not in the index: no key attributes, or only one of them.
        try await store.put(Item(tenantId: freshTenant(), resourceKey: "TENANT#y", attributes: [ListIndex.shardAttribute: .string(shard)]))
        try await store.put(Item(tenantId: freshTenant(), resourceKey: "TENANT#z", attributes: ["n": .int(99)]))

        let all = try await store.queryListIndex(ListIndexQuery(shard: shard, limit: 100))
        #expect(all.compactMap { $0[ListIndex.keyAttribute]?.stringValue } == keys)
        let firstFive = try await store.queryListIndex(ListIndexQuery(shard: shard, limit: 5))
        #expect(firstFive.compactMap { $0[ListIndex.keyAttribute]?.stringValue } == Array(keys.prefix(5)))
        let after = try await store.queryListIndex(ListIndexQuery(shard: shard, exclusiveStartKey: keys[4], limit: 5))
        #expect(after.compactMap { $0[ListIndex.keyAttribute]?.stringValue } == Array(keys[5..<10]))
        let descending = try await store.queryListIndex(ListIndexQuery(shard: shard, exclusiveStartKey: keys[4], limit: 10, ascending: false))
        #expect(descending.compactMap { $0[ListIndex.keyAttribute]?.stringValue } == Array(keys[0..<4].reversed()))
        #expect(try await store.queryListIndex(ListIndexQuery(shard: "TEST#none-\(freshTenant())", limit: 10)).isEmpty)

        for bad: AttributeValue in [.number("1"), .string("")] {
            let error = await #expect(throws: StoreError.self) {
                try await store.put(Item(tenantId: freshTenant(), resourceKey: "TENANT#bad", attributes: [ListIndex.shardAttribute: bad]))
            }
            #expect(error?.code == .invalidRequest)
        }
    }
}
