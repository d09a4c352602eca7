import OnboardingCore
import Testing

@Suite("JSONCodec: strict RFC 8259 parsing that keeps numbers exact")
struct JSONCodecTests {
    @Test("parses every JSON type")
    func parsesTypes() throws {
        let value = try JSONCodec.parse(#" {"s": "x", "n": -12.5e3, "t": true, "f": false, "z": null, "l": [1, "2", []], "m": {"k": {}}} "#)
        #expect(value == .map([
            "s": .string("x"), "n": .number("-12.5e3"), "t": .bool(true), "f": .bool(false), "z": .null,
            "l": .list([.number("1"), .string("2"), .list([])]), "m": .map(["k": .map([:])]),
        ]))
    }

    @Test("numbers keep their exact text, beyond Double and Int64")
    func exactNumbers() throws {
        let big = "123456789012345678901234567890.000000000000000000001"
        #expect(try JSONCodec.parse("[\(big), 9007199254740993, 0.1, -0, 1E+2]")
            == .list([.number(big), .number("9007199254740993"), .number("0.1"), .number("-0"), .number("1E+2")]))
    }

    @Test("escapes, including surrogate pairs, decode to the right scalars")
    func escapes() throws {
        #expect(try JSONCodec.parse(#""a\"b\\c\/d\b\f\n\r\t\u00e9\u0000""#) == .string("a\"b\\c/d\u{08}\u{0C}\n\r\té\u{0}"))
        #expect(try JSONCodec.parse(#""\ud83d\ude80 \u682a""#) == .string("🚀 株"))
        #expect(try JSONCodec.parse("\"Société 株式会社\"") == .string("Société 株式会社"))
    }

    @Test("rejects what RFC 8259 forbids, saying where", arguments: [
        "", " ", "{", "[1,]", "{\"a\":1,}", "{'a':1}", "{a:1}", "01", "1.", ".5", "-", "+1", "1e", "NaN", "Infinity",
        "tru", "nul", "\"abc", "\"a\tb\"", "\"\\x\"", "\"\\u12\"", "\"\\ud83d\"", "\"\\ude80\"", "\"\\ud83d\\u0041\"",
        "{} {}", "[1] x", "{\"a\" 1}", "[1 2]", "{\"a\":1 \"b\":2}", "{1:2}",
    ])
    func rejectsInvalid(_ text: String) {
        #expect(throws: JSONSyntaxError.self) { try JSONCodec.parse(text) }
    }

    @Test("rejects duplicate keys, invalid UTF-8 and excessive nesting")
    func rejectsAmbiguousInput() throws {
        let duplicate = #expect(throws: JSONSyntaxError.self) { try JSONCodec.parse(#"{"a": 1, "a": 2}"#) }
        #expect(duplicate?.message.contains("duplicate key") == true)
        #expect(throws: JSONSyntaxError.self) { try JSONCodec.parse([0x22, 0xC3, 0x28, 0x22]) }
        #expect(throws: JSONSyntaxError.self) { try JSONCodec.parse([0x22, 0xED, 0xA0, 0x80, 0x22]) }
        let deep = String(repeating: "[", count: JSONCodec.maxDepth + 1) + String(repeating: "]", count: JSONCodec.maxDepth + 1)
        #expect(throws: JSONSyntaxError.self) { try JSONCodec.parse(deep) }
        let deepest = String(repeating: "[", count: JSONCodec.maxDepth) + String(repeating: "]", count: JSONCodec.maxDepth)
        #expect(throws: Never.self) { try JSONCodec.parse(deepest) }
    }

    @Test("the error names the byte offset")
    func errorOffset() {
        let error = #expect(throws: JSONSyntaxError.self) { try JSONCodec.parse(#"{"a": tru}"#) }
        #expect(error?.offset == 6)
    }

    @Test("serialise then parse gives the same value; keys are sorted")
    func roundTrip() throws {
        let value: AttributeValue = .map([
            "b": .list([.string("line\nbreak \"quoted\" \\ tab\t \u{01} é 🚀"), .number("1e-7"), .null]),
            "a": .map(["x": .bool(false), "y": .number("-0.5")]),
        ])
        let text = JSONCodec.serialize(value)
        #expect(text.hasPrefix(#"{"a":{"x":false,"y":-0.5},"b":["#))
        #expect(text.contains(#"\u0001"#))
        #expect(try JSONCodec.parse(text) == value)
    }
}

@Suite("Canonical numbers (DynamoDB's N normalisation)")
struct CanonicalNumberTests {
    @Test("numbers are normalised as DynamoDB does", arguments: [
        ("0", "0"), ("-0", "0"), ("0.000", "0"), ("1", "1"), ("1.0", "1"), ("1.50", "1.5"), ("-1.50", "-1.5"),
        ("1e3", "1000"), ("1E+3", "1000"), ("1.5e-3", "0.0015"), ("25e-4", "0.0025"), ("123.456e1", "1234.56"),
        ("0.1", "0.1"), ("100", "100"), ("1e125", "1" + String(repeating: "0", count: 125)), ("1e-130", "0." + String(repeating: "0", count: 129) + "1"),
        ("12345678901234567890123456789012345678", "12345678901234567890123456789012345678"),
        ("1234567890123456789012345678901234567800000", "1234567890123456789012345678901234567800000"),
    ])
    func canonical(text: String, expected: String) {
        #expect(StoreRules.canonicalNumber(text) == expected)
    }

    @Test("what is not a number DynamoDB stores is refused", arguments: [
        "", "-", "01", "1.", ".1", "+1", "1e", "1e+", "NaN", "1 ", " 1", "0x10", "1e126", "9.99e125x", "1e-131",
        "123456789012345678901234567890123456789",
    ])
    func refused(_ text: String) {
        #expect(StoreRules.canonicalNumber(text) == nil)
    }
}
