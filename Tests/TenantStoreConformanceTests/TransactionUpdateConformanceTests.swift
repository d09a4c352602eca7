import Foundation
import OnboardingCore
import Testing

/// `TransactionWrite.update` and the conditions counters need (`or`, `attributeNotExists`,
/// `attributeExists`, `attributeLessThan`), on every store.
extension TenantStoreConformanceTests {
    @Test("an update in a transaction sets attributes, adds to numbers (absent counts as 0) and keeps the rest", arguments: StoreUnderTest.all)
    func transactionUpdate(_ subject: StoreUnderTest) async throws {
        let store = try await subject.make()
        let tenant = freshTenant()
        let profile = ItemKey(tenantId: tenant, resourceKey: "TENANT#\(tenant)")
        try await store.put(Item(key: profile, attributes: ["clientName": .string("Ada"), "count": .int(3), "version": .int(1)]))
        let key = Item(tenantId: tenant, resourceKey: "APIKEY#1", attributes: ["prefix": .string("onb_1")])
        try await store.transact([
            .put(key, condition: .itemNotExists),
            .update(profile, set: ["note": .string("x")], add: ["count": 1, "fresh": 5], condition: .attributeLessThan("count", 20)),
        ])
        #expect(try await store.get(profile) == Item(key: profile, attributes: [
            "clientName": .string("Ada"), "count": .int(4), "fresh": .int(5), "note": .string("x"), "version": .int(1),
        ]))
        #expect(try await store.get(key.key) == key)
        // Only numbers to add (no set), and a negative one; decimals add exactly.
        try await store.put(Item(tenantId: tenant, resourceKey: "DEC#1", attributes: ["d": .number("1.25")]))
        try await store.transact([
            .update(profile, set: [:], add: ["count": -4], condition: nil),
            .update(ItemKey(tenantId: tenant, resourceKey: "DEC#1"), set: [:], add: ["d": 2], condition: nil),
        ])
        #expect(try await store.get(profile)?["count"] == .int(0))
        #expect(try await store.get(ItemKey(tenantId: tenant, resourceKey: "DEC#1"))?["d"] == .number("3.25"))
    }

    @Test("an update in a transaction never creates its item, and a failed condition cancels every write", arguments: StoreUnderTest.all)
    func transactionUpdateConditions(_ subject: StoreUnderTest) async throws {
        let store = try await subject.make()
        let tenant = freshTenant()
        let profile = ItemKey(tenantId: tenant, resourceKey: "TENANT#\(tenant)")
        let key = Item(tenantId: tenant, resourceKey: "APIKEY#1", attributes: [:])

        // The item is absent: the update fails (with or without a condition of its own).
        for condition: WriteCondition? in [nil, .attributeNotExists("count")] {
            let error = await #expect(throws: StoreError.self, "\(String(describing: condition))") {
                try await store.transact([.put(key, condition: .itemNotExists), .update(profile, set: [:], add: ["count": 1], condition: condition)])
            }
            #expect(error?.code == .transactionCanceled)
            #expect(error?.cancellationReasons == [.none, .conditionFailed])
        }
        #expect(try await store.get(profile) == nil, "an absent item is not created")
        #expect(try await store.get(key.key) == nil, "the other write of the transaction is not made")

        let stored = Item(key: profile, attributes: ["count": .int(20), "status": .string("ACTIVE")])
        try await store.put(stored)
        let error = await #expect(throws: StoreError.self) {
            try await store.transact([
                .put(key, condition: .itemNotExists),
                .update(profile, set: ["status": .string("X")], add: ["count": 1], condition: .attributeLessThan("count", 20)),
            ])
        }
        #expect(error?.cancellationReasons == [.none, .conditionFailed])
        #expect(try await store.get(profile) == stored)
        #expect(try await store.get(key.key) == nil)

        // Another write's condition failing leaves the update unmade too.
        try await store.put(key)
        let other = await #expect(throws: StoreError.self) {
            try await store.transact([.put(key, condition: .itemNotExists), .update(profile, set: [:], add: ["count": -1], condition: nil)])
        }
        #expect(other?.cancellationReasons == [.conditionFailed, .none])
        #expect(try await store.get(profile) == stored)
    }

    @Test("a transaction's update obeys the rules: something to change, no name both set and added, a number to add to, each item once", arguments: StoreUnderTest.all)
    func transactionUpdateRules(_ subject: StoreUnderTest) async throws {
        let store = try await subject.make()
        let tenant = freshTenant()
        let profile = ItemKey(tenantId: tenant, resourceKey: "TENANT#\(tenant)")
        let stored = Item(key: profile, attributes: ["count": .int(1), "name": .string("Ada")])
        try await store.put(stored)
        let invalid: [[TransactionWrite]] = [
            [.update(profile, set: [:], add: [:], condition: nil)],
            [.update(profile, set: ["count": .int(5)], add: ["count": 1], condition: nil)],
            [.update(profile, set: [KeyAttribute.tenantId: .string("other")], condition: nil)],
            [.update(profile, set: [:], add: [KeyAttribute.resourceKey: 1], condition: nil)],
            [.update(profile, set: ["n": .number("1e200")], condition: nil)],
            [.update(profile, set: [:], add: ["count": 1], condition: .attributeLessThan("", 3))],
            [.put(stored, condition: nil), .update(profile, set: [:], add: ["count": 1], condition: nil)],
            [.update(profile, set: [:], add: ["count": 1], condition: nil), .conditionCheck(profile, condition: .itemExists)],
            [.update(profile, set: [:], add: ["name": 1], condition: nil)],
        ]
        for writes in invalid {
            let error = await #expect(throws: StoreError.self, "\(writes)") { try await store.transact(writes) }
            #expect(error?.code == .invalidRequest, "\(writes)")
        }
        #expect(try await store.get(profile) == stored)
        // 100 writes of which one is an update are still a valid transaction; 101 are not.
        let puts = (0..<99).map { TransactionWrite.put(Item(tenantId: tenant, resourceKey: "N#\($0)", attributes: [:]), condition: .itemNotExists) }
        try await store.transact(puts + [.update(profile, set: [:], add: ["count": 1], condition: nil)])
        let error = await #expect(throws: StoreError.self) {
            try await store.transact(puts + [
                .update(profile, set: [:], add: ["count": 1], condition: nil),
                .put(Item(tenantId: tenant, resourceKey: "N#extra", attributes: [:]), condition: nil),
            ])
        }
        #expect(error?.code == .invalidRequest)
        #expect(try await store.get(profile)?["count"] == .int(2))
    }

    @Test("attributeNotExists and attributeExists look at one attribute; an absent item has none", arguments: StoreUnderTest.all)
    func attributeExistenceConditions(_ subject: StoreUnderTest) async throws {
        let store = try await subject.make()
        let tenant = freshTenant()
        let key = ItemKey(tenantId: tenant, resourceKey: "TENANT#\(tenant)")
        // No item: the attribute does not exist, and an update still needs the item.
        try await store.put(Item(key: key, attributes: ["a": .int(1)]), condition: .attributeNotExists("count"))
        await #expect(throws: StoreError.conditionFailed(key)) {
            try await store.put(Item(key: key, attributes: ["a": .int(2)]), condition: .attributeExists("count"))
        }
        // The item without the attribute.
        try await store.update(key, set: ["count": .int(7)], condition: .attributeNotExists("count"))
        await #expect(throws: StoreError.conditionFailed(key)) {
            try await store.update(key, set: ["count": .int(8)], condition: .attributeNotExists("count"))
        }
        try await store.update(key, set: ["b": .int(1)], condition: .attributeExists("count"))
        await #expect(throws: StoreError.conditionFailed(key)) {
            try await store.update(key, set: ["c": .int(1)], condition: .attributeExists("missing"))
        }
        // Names compare by bytes: another spelling is another attribute.
        try await store.update(key, set: ["caf\u{E9}": .int(1)], condition: nil)
        await #expect(throws: StoreError.conditionFailed(key)) {
            try await store.delete(key, condition: .attributeExists("cafe\u{301}"))
        }
        let check = await #expect(throws: StoreError.self) {
            try await store.transact([.conditionCheck(key, condition: .attributeNotExists("count"))])
        }
        #expect(check?.cancellationReasons == [.conditionFailed])
        #expect(try await store.get(key)?.attributes == ["a": .int(1), "count": .int(7), "b": .int(1), "caf\u{E9}": .int(1)])
        try await store.delete(key, condition: .attributeNotExists("cafe\u{301}"))
        #expect(try await store.get(key) == nil)
    }

    @Test("attributeLessThan holds only for a number below the bound", arguments: StoreUnderTest.all)
    func attributeLessThanCondition(_ subject: StoreUnderTest) async throws {
        let store = try await subject.make()
        let key = ItemKey(tenantId: freshTenant(), resourceKey: "COUNTER#1")
        let cases: [(AttributeValue?, Bool)] = [
            (.int(19), true), (.int(20), false), (.int(21), false), (.number("19.99"), true), (.number("20.01"), false),
            (.int(-3), true), (.number("-25.5"), true), (.int(0), true), (.number("123456789012345678901234567890"), false),
            (.number("0.000001"), true), (.string("1"), false), (.bool(true), false), (nil, false),
        ]
        for (value, holds) in cases {
            var attributes: [String: AttributeValue] = ["other": .int(1)]
            attributes["n"] = value
            try await store.put(Item(key: key, attributes: attributes))
            do {
                try await store.transact([.conditionCheck(key, condition: .attributeLessThan("n", 20))])
                #expect(holds, "\(String(describing: value)) < 20 should not hold")
            } catch let error as StoreError {
                #expect(!holds && error.cancellationReasons == [.conditionFailed], "\(String(describing: value)) < 20: \(error)")
            }
        }
        // Negative bounds, and an absent item.
        try await store.put(Item(key: key, attributes: ["n": .int(-10)]))
        try await store.put(Item(key: key, attributes: ["n": .int(-10)]), condition: .attributeLessThan("n", -9))
        await #expect(throws: StoreError.conditionFailed(key)) {
            try await store.put(Item(key: key, attributes: ["n": .int(-10)]), condition: .attributeLessThan("n", -10))
        }
        try await store.delete(key)
        await #expect(throws: StoreError.conditionFailed(key)) {
            try await store.put(Item(key: key, attributes: ["n": .int(1)]), condition: .attributeLessThan("n", 20))
        }
    }

    @Test("or holds when either side does, and nests with and", arguments: StoreUnderTest.all)
    func orCondition(_ subject: StoreUnderTest) async throws {
        let store = try await subject.make()
        let key = ItemKey(tenantId: freshTenant(), resourceKey: "TENANT#1")
        let activeOrSuspended = WriteCondition.or(.attributeEquals("status", .string("ACTIVE")), .attributeEquals("status", .string("SUSPENDED")))
        let guarded = WriteCondition.and(.attributeLessThan("count", 2), activeOrSuspended)
        for (status, count, holds) in [("ACTIVE", 1, true), ("SUSPENDED", 1, true), ("OFFBOARDING", 1, false), ("ACTIVE", 2, false)] {
            try await store.put(Item(key: key, attributes: ["status": .string(status), "count": .int(count)]))
            do {
                try await store.update(key, set: ["seen": .bool(true)], condition: guarded)
                #expect(holds, "\(status), \(count)")
            } catch let error as StoreError {
                #expect(!holds && error == .conditionFailed(key), "\(status), \(count): \(error)")
            }
            #expect(try await store.get(key)?["seen"] == (holds ? .bool(true) : nil))
        }
        // Either side alone: the item absent satisfies attributeNotExists.
        try await store.delete(key)
        try await store.put(Item(key: key, attributes: ["v": .int(1)]), condition: .or(.attributeEquals("v", .int(9)), .attributeNotExists("v")))
        try await store.put(Item(key: key, attributes: ["v": .int(2)]), condition: .or(.attributeEquals("v", .int(1)), .attributeNotExists("v")))
        await #expect(throws: StoreError.conditionFailed(key)) {
            try await store.put(Item(key: key, attributes: ["v": .int(3)]), condition: .or(.attributeEquals("v", .int(1)), .attributeNotExists("v")))
        }
        #expect(try await store.get(key)?["v"] == .int(2))
    }

    @Test("concurrent transactions bounded by a counter's condition never pass the bound", arguments: StoreUnderTest.all)
    func counterBound(_ subject: StoreUnderTest) async throws {
        let store = try await subject.make()
        let tenant = freshTenant()
        let profile = ItemKey(tenantId: tenant, resourceKey: "TENANT#\(tenant)")
        try await store.put(Item(key: profile, attributes: ["count": .int(0)]))
        let accepted = try await withThrowingTaskGroup(of: Bool.self) { group in
            for index in 0..<40 {
                group.addTask {
                    do {
                        try await store.transact([
                            .put(Item(tenantId: tenant, resourceKey: "KEY#\(index)", attributes: [:]), condition: .itemNotExists),
                            .update(profile, set: [:], add: ["count": 1], condition: .attributeLessThan("count", 10)),
                        ])
                        return true
                    } catch let error as StoreError where error.code == .transactionCanceled {
                        #expect(error.cancellationReasons == [.none, .conditionFailed])
                        return false
                    }
                }
            }
            return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
        }
        #expect(accepted == 10)
        #expect(try await store.get(profile)?["count"] == .int(10))
        #expect(try await store.query(ItemQuery(tenantId: tenant, prefix: "KEY#", limit: 100)).items.count == 10)
    }

    @Test("numbers in canonical form compare by value")
    func canonicalNumberOrder() {
        let ascending = ["-1000", "-20.5", "-20", "-19.99", "-1", "-0.5", "-0.05", "0", "0.0001", "0.5", "0.51", "0.6", "1", "9", "10", "19.99", "20", "100"]
        for (i, lhs) in ascending.enumerated() {
            for (j, rhs) in ascending.enumerated() {
                let expected = i < j ? -1 : (i == j ? 0 : 1)
                #expect(StoreRules.compareCanonicalNumbers(lhs, rhs).signum() == expected, "\(lhs) vs \(rhs)")
            }
        }
    }
}
