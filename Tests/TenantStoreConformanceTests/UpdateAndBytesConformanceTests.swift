import Foundation
import OnboardingCore
import Testing

/// NFC "é" (U+00E9) and NFD "e" + U+0301: equal Swift strings, different bytes.
private let nfc = "caf\u{E9}"
private let nfd = "cafe\u{301}"

extension TenantStoreConformanceTests {
    @Test("the NFC and NFD spellings of a string are equal in Swift but not to a store")
    func spellingsDiffer() {
        // The premise of the tests below: if Swift stopped treating them as equal, they would test nothing.
        #expect(nfc == nfd)
        #expect(!nfc.utf8.elementsEqual(nfd.utf8))
        #expect(ItemKey(tenantId: "t", resourceKey: nfc) != ItemKey(tenantId: "t", resourceKey: nfd))
        #expect(AttributeValue.string(nfc) != .string(nfd))
        #expect(AttributeValue.map([nfc: .int(1)]) != .map([nfd: .int(1)]))
        #expect(Set([ItemKey(tenantId: "t", resourceKey: nfc), ItemKey(tenantId: "t", resourceKey: nfd)]).count == 2)
    }

    @Test("keys that differ only by Unicode normalisation name two items", arguments: StoreUnderTest.all)
    func normalisationKeys(_ subject: StoreUnderTest) async throws {
        let store = try await subject.make()
        let tenant = freshTenant()
        let composed = Item(tenantId: tenant, resourceKey: "DOC#\(nfc)", attributes: ["form": .string("NFC")])
        let decomposed = Item(tenantId: tenant, resourceKey: "DOC#\(nfd)", attributes: ["form": .string("NFD")])
        try await store.put(composed, condition: .itemNotExists)
        try await store.put(decomposed, condition: .itemNotExists)
        #expect(try await store.get(composed.key) == composed)
        #expect(try await store.get(decomposed.key) == decomposed)
        let page = try await store.query(ItemQuery(tenantId: tenant, prefix: "DOC#"))
        #expect(page.items.count == 2)
        // Byte order: "e" (0x65) sorts before "é" (0xC3 0xA9).
        #expect(page.items.map { $0["form"] } == [.string("NFD"), .string("NFC")])
        try await store.delete(decomposed.key)
        #expect(try await store.get(composed.key) == composed, "deleting one spelling leaves the other")
        #expect(try await store.get(decomposed.key) == nil)
    }

    @Test("conditions compare values and attribute names by their bytes", arguments: StoreUnderTest.all)
    func normalisationConditions(_ subject: StoreUnderTest) async throws {
        let store = try await subject.make()
        let key = ItemKey(tenantId: freshTenant(), resourceKey: "DOC#1")
        let item = Item(key: key, attributes: ["name": .string(nfc), nfc: .int(1)])
        try await store.put(item)
        let replacement = Item(key: key, attributes: ["name": .string("other")])
        for condition: WriteCondition in [.attributeEquals("name", .string(nfd)), .attributeEquals(nfd, .int(1))] {
            await #expect(throws: StoreError.conditionFailed(key), "\(condition)") {
                try await store.put(replacement, condition: condition)
            }
            await #expect(throws: StoreError.conditionFailed(key), "\(condition)") { try await store.delete(key, condition: condition) }
            let error = await #expect(throws: StoreError.self, "\(condition)") {
                try await store.transact([.conditionCheck(key, condition: condition)])
            }
            #expect(error?.cancellationReasons == [.conditionFailed])
        }
        #expect(try await store.get(key) == item, "nothing was written")
        try await store.put(replacement, condition: .and(.attributeEquals("name", .string(nfc)), .attributeEquals(nfc, .int(1))))
        #expect(try await store.get(key) == replacement)
    }

    @Test("a transaction may write both spellings of a key: they are not the same item", arguments: StoreUnderTest.all)
    func normalisationTransaction(_ subject: StoreUnderTest) async throws {
        let store = try await subject.make()
        let tenant = freshTenant()
        let writes: [TransactionWrite] = [nfc, nfd].map {
            .put(Item(tenantId: tenant, resourceKey: "DOC#\($0)", attributes: [:]), condition: .itemNotExists)
        }
        try await store.transact(writes)
        #expect(try await store.query(ItemQuery(tenantId: tenant, prefix: "DOC#")).items.count == 2)
    }

    @Test("an attribute name that is another Unicode spelling of a key attribute is refused", arguments: StoreUnderTest.all)
    func otherSpellingsOfKeyNames(_ subject: StoreUnderTest) async throws {
        let store = try await subject.make()
        // U+212A KELVIN SIGN is canonically equivalent to "K".
        for name in ["resource\u{212A}ey", "list\u{212A}ey"] {
            #expect(name == KeyAttribute.resourceKey || name == ListIndex.keyAttribute)
            let error = await #expect(throws: StoreError.self, "\(name)") {
                try await store.put(Item(tenantId: freshTenant(), resourceKey: "A#1", attributes: [name: .string("x")]))
            }
            #expect(error?.code == .invalidRequest)
        }
    }

    @Test("update sets attributes of an existing item and keeps the others", arguments: StoreUnderTest.all)
    func updateSets(_ subject: StoreUnderTest) async throws {
        let store = try await subject.make()
        let key = ItemKey(tenantId: freshTenant(), resourceKey: "APIKEY#1")
        try await store.put(Item(key: key, attributes: ["createdAt": .string("2026-01-01"), "prefix": .string("onb_"), "version": .int(1)]))
        try await store.update(key, set: ["lastUsedAt": .string("2026-02-02"), "version": .number("2.0")], condition: nil)
        #expect(try await store.get(key) == Item(key: key, attributes: [
            "createdAt": .string("2026-01-01"), "prefix": .string("onb_"), "version": .int(2), "lastUsedAt": .string("2026-02-02"),
        ]))
        try await store.update(key, set: ["lastUsedAt": .string("2026-03-03")], condition: .attributeEquals("version", .int(2)))
        #expect(try await store.get(key)?["lastUsedAt"] == .string("2026-03-03"))
        #expect(try await store.get(key)?["prefix"] == .string("onb_"))
    }

    @Test("update never creates an item and writes nothing when its condition fails", arguments: StoreUnderTest.all)
    func updateConditions(_ subject: StoreUnderTest) async throws {
        let store = try await subject.make()
        let absent = ItemKey(tenantId: freshTenant(), resourceKey: "APIKEY#gone")
        await #expect(throws: StoreError.conditionFailed(absent)) {
            try await store.update(absent, set: ["lastUsedAt": .string("now")], condition: nil)
        }
        #expect(try await store.get(absent) == nil, "an absent item is not created")

        let key = ItemKey(tenantId: freshTenant(), resourceKey: "DOC#1")
        let item = Item(key: key, attributes: ["version": .int(1), "name": .string(nfc)])
        try await store.put(item)
        for condition: WriteCondition in [.attributeEquals("version", .int(2)), .attributeEquals("name", .string(nfd))] {
            await #expect(throws: StoreError.conditionFailed(key)) {
                try await store.update(key, set: ["version": .int(3)], condition: condition)
            }
        }
        #expect(try await store.get(key) == item)
        try await store.delete(key)
        await #expect(throws: StoreError.conditionFailed(key)) {
            try await store.update(key, set: ["version": .int(3)], condition: .attributeEquals("version", .int(1)))
        }
        #expect(try await store.get(key) == nil, "a deleted item is not brought back")
    }

    @Test("update obeys the item rules: no key attributes, at least one attribute, valid values", arguments: StoreUnderTest.all)
    func updateRules(_ subject: StoreUnderTest) async throws {
        let store = try await subject.make()
        let key = ItemKey(tenantId: freshTenant(), resourceKey: "DOC#1")
        try await store.put(Item(key: key, attributes: ["v": .int(1)]))
        let invalid: [[String: AttributeValue]] = [
            [:], [KeyAttribute.resourceKey: .string("DOC#2")], ["n": .number("1e200")], [ListIndex.keyAttribute: .string("")],
        ]
        for attributes in invalid {
            let error = await #expect(throws: StoreError.self, "\(attributes)") {
                try await store.update(key, set: attributes, condition: nil)
            }
            #expect(error?.code == .invalidRequest)
        }
        #expect(try await store.get(key) == Item(key: key, attributes: ["v": .int(1)]))
    }

    @Test("concurrent updates of different attributes of one item lose neither", arguments: StoreUnderTest.all)
    func updatesDoNotClobber(_ subject: StoreUnderTest) async throws {
        let store = try await subject.make()
        let key = ItemKey(tenantId: freshTenant(), resourceKey: "DOC#1")
        try await store.put(Item(key: key, attributes: ["v": .int(0)]))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<10 {
                group.addTask { try await store.update(key, set: ["a\(index)": .int(index)], condition: nil) }
            }
            try await group.waitForAll()
        }
        let stored = try #require(try await store.get(key))
        #expect(stored.attributes.count == 11)
        for index in 0..<10 { #expect(stored["a\(index)"] == .int(index)) }
    }

    @Test("the listing index refuses a start key DynamoDB would refuse: empty or over 1024 bytes", arguments: StoreUnderTest.all)
    func listIndexStartKeys(_ subject: StoreUnderTest) async throws {
        let store = try await subject.make()
        for start in ["", String(repeating: "x", count: StoreRules.maxSortKeyBytes + 1)] {
            for ascending in [true, false] {
                let error = await #expect(throws: StoreError.self) {
                    try await store.queryListIndex(ListIndexQuery(shard: "TEST#\(freshTenant())", exclusiveStartKey: start, limit: 5, ascending: ascending))
                }
                #expect(error?.code == .invalidRequest)
            }
        }
        // Keys DynamoDB does take: control characters, the largest scalar, exactly 1024 bytes.
        for start in ["\u{0}", "\u{1}a", "\u{FFFD}", String(repeating: "x", count: StoreRules.maxSortKeyBytes)] {
            _ = try await store.queryListIndex(ListIndexQuery(shard: "TEST#\(freshTenant())", exclusiveStartKey: start, limit: 5))
        }
    }
}
