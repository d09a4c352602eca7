import Foundation
import OnboardingCore
import Testing

@Suite("Validation rules")
struct ValidationRuleTests {
    @Test("client names are trimmed and NFC-normalised")
    func nameNormalisation() throws {
        let name = try ClientName.validate(.string("  Socie\u{301}te\u{301}\t\n")).get()
        #expect(name.value == "Société")
        #expect(name.value.unicodeScalars.count == 7)
    }

    @Test("200 characters as sent are fine, 201 are not, white space included; combining marks count")
    func nameLength() {
        #expect((try? ClientName.validate(.string(String(repeating: "é", count: 200))).get()) != nil)
        #expect(throws: FieldError.self) { try ClientName.validate(.string(String(repeating: "é", count: 201))).get() }
        #expect(throws: FieldError.self) { try ClientName.validate(.string(String(repeating: "a", count: 199) + "  ")).get() }
        #expect(throws: FieldError.self) { try ClientName.validate(.string("a" + String(repeating: "\u{301}", count: 200))).get() }
    }

    @Test("white space at the edges is trimmed, as ECMAScript's \\s defines it; NEL is a control, not space")
    func trimming() throws {
        #expect(try ClientName.validate(.string("\u{FEFF}\u{3000}\tAcme\u{2028}\u{A0}")).get().value == "Acme")
        #expect(throws: FieldError.self) { try ClientName.validate(.string("Acme\u{85}")).get() }
        #expect(throws: FieldError.self) { try ClientName.validate(.string("\u{2003}\u{FEFF}")).get() }
    }

    @Test("control, separator and bidi-override scalars are refused inside a name", arguments: [
        0x0, 0x7, 0x9, 0xA, 0x1B, 0x1F, 0x7F, 0x80, 0x85, 0x9F, 0x2028, 0x2029, 0x202A, 0x202E, 0x2066, 0x2069,
    ] as [UInt32])
    func forbiddenScalars(_ value: UInt32) {
        let scalar = String(Character(Unicode.Scalar(value)!))
        let result = ClientName.validate(.string("Ac\(scalar)me"))
        guard case .failure(let error) = result else {
            Issue.record("accepted U+\(String(value, radix: 16))")
            return
        }
        #expect(error.code == .invalidCharacters)
        #expect(error.detail.contains("U+"))
    }

    @Test("joiners and marks used by real scripts are accepted")
    func realScripts() {
        for name in ["नमस्ते", "می‌خواهم", "👩‍💻 Devs", "Zoë", "Ærøskøbing"] {
            #expect((try? ClientName.validate(.string(name)).get()) != nil, "\(name)")
        }
    }

    @Test("phones: separators removed, E.164 enforced")
    func phones() throws {
        #expect(try PhoneNumber.validate(.string("+1 (415) 555-0123")).get().e164 == "+14155550123")
        #expect(try PhoneNumber.validate(.string("+44.20.7946.0958")).get().e164 == "+442079460958")
        for bad in ["14155550123", "+", "+1234567", "+1234567890123456", "+0123456789", "+1 415 555 O123", "+1/415/5550123", "+1-800-FLOWERS"] {
            #expect(throws: FieldError.self, "\(bad)") { try PhoneNumber.validate(.string(bad)).get() }
        }
    }

    @Test("masking keeps the country code's start and the last two digits")
    func masking() throws {
        let phone = try PhoneNumber.validate(.string("+14155550123")).get()
        #expect(phone.masked == "+14*******23")
        #expect("\(phone)" == phone.masked, "string interpolation never shows the number")
        #expect(PhoneNumber.mask("12") == "**")
    }

    @Test("every bad field is reported at once")
    func allErrors() {
        let request = OnboardingRequest(json: ["clientName": .number("1"), "clientPhone": .string("x"), "zzz": .null, "aaa": .bool(true)])
        guard case .failure(let error) = request.validated() else {
            Issue.record("accepted")
            return
        }
        #expect(error.errors.map(\.field) == ["clientName", "clientPhone", "aaa", "zzz"])
        #expect(error.errors.map(\.code) == [.wrongType, .invalidFormat, .unknownField, .unknownField])
    }
}

@Suite("Ids and time")
struct IdentifierTests {
    @Test("tenant ids parse case-insensitively and print lowercase")
    func tenantIDs() {
        #expect(TenantID("0195F3C4-7A1E-7B2C-9D3E-4F5A6B7C8D9E")?.rawValue == "0195f3c4-7a1e-7b2c-9d3e-4f5a6b7c8d9e")
        for bad in ["", "0195f3c4-7a1e-7b2c-9d3e-4f5a6b7c8d9", "0195f3c47a1e-7b2c-9d3e-4f5a6b7c8d9e-", "g195f3c4-7a1e-7b2c-9d3e-4f5a6b7c8d9e", "_system"] {
            #expect(TenantID(bad) == nil, "\(bad)")
        }
    }

    @Test("UUIDv7: version, variant, the clock's milliseconds first, distinct and time-ordered")
    func uuidV7() {
        struct FixedClock: WallClock {
            let date: Date
            func now() -> Date { date }
        }
        let date = Date(timeIntervalSince1970: 1_764_284_197.125)
        let id = UUIDv7Generator(clock: FixedClock(date: date)).newTenantID().rawValue
        let hex = id.replacingOccurrences(of: "-", with: "")
        #expect(UInt64(hex.prefix(12), radix: 16) == 1_764_284_197_125)
        #expect(Array(id)[14] == "7")
        #expect("89ab".contains(Array(id)[19]))

        let generator = UUIDv7Generator()
        var previous = generator.newTenantID()
        var seen = Set([previous])
        for _ in 0..<10_000 {
            let next = generator.newTenantID()
            #expect(seen.insert(next).inserted)
            #expect(String(next.rawValue.prefix(13)) >= String(previous.rawValue.prefix(13)), "time prefix never goes back")
            previous = next
        }
    }

    @Test("timestamps are RFC 3339 UTC with milliseconds", arguments: [
        (0.0, "1970-01-01T00:00:00.000Z"),
        (1_764_284_197.125, "2025-11-27T22:56:37.125Z"),
        (1_709_164_800.5, "2024-02-29T00:00:00.500Z"),
        (-1.0, "1969-12-31T23:59:59.000Z"),
        (-86_400.125, "1969-12-30T23:59:59.875Z"),
        (253_402_300_799.875, "9999-12-31T23:59:59.875Z"),
    ])
    func timestamps(seconds: Double, expected: String) {
        #expect(Timestamp.format(Date(timeIntervalSince1970: seconds)) == expected)
    }

    @Test("timestamps agree with Foundation's Gregorian calendar, to the millisecond the date was made from")
    func timestampsAgreeWithFoundation() {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<1000 {
            let milliseconds = Int64.random(in: 0...4_102_444_800_000, using: &generator)
            let date = Date(timeIntervalSince1970: Double(milliseconds) / 1000)
            let parts = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
            // Foundation's own ISO 8601 formatter truncates 0.123 stored as 0.12299… to .122, so
            // the calendar fields are compared instead, and the milliseconds with the source.
            let expected = String(
                format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                parts.year!, parts.month!, parts.day!, parts.hour!, parts.minute!, parts.second!, Int(milliseconds % 1000)
            )
            #expect(Timestamp.format(date) == expected, "\(milliseconds)")
        }
    }

    @Test("a tenant survives the trip to an item and back; a damaged item is reported, not crashed on")
    func tenantItems() throws {
        let tenant = Tenant(
            id: TenantID("0195f3c4-7a1e-7b2c-9d3e-4f5a6b7c8d9e")!,
            clientName: try ClientName.validate(.string("Acme")).get(),
            clientPhone: try PhoneNumber.validate(.string("+1234567890")).get(),
            status: .active, createdAt: "2026-01-01T00:00:00.000Z", updatedAt: "2026-01-01T00:00:00.000Z", version: 3
        )
        #expect(tenant.item.key.resourceKey == "TENANT#0195f3c4-7a1e-7b2c-9d3e-4f5a6b7c8d9e")
        #expect(try Tenant(item: tenant.item) == tenant)
        var damaged = tenant.item
        damaged["status"] = .string("EXPLODED")
        #expect(throws: OnboardingError.self) { try Tenant(item: damaged) }
        damaged = tenant.item
        damaged["version"] = nil
        #expect(throws: OnboardingError.self) { try Tenant(item: damaged) }
    }
}
