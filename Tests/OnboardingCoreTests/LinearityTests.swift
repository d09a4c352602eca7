import Testing

@testable import OnboardingCore

/// Body handling (parse, canonical numbers, the stored-size check) does work proportional to the
/// input: checked by counting, never by timing. Each step reports the bytes it reads, copies or
/// writes (`work:`); a step that removes zeros one at a time from the front of an array moves
/// every remaining digit each time and reports that, so it shows up here as quadratic.
@Suite("Linear body handling (counted work, no timing)")
struct LinearityTests {
    /// The work of handling a resource body as the server does: parse it as a client's text, then
    /// validate the document (canonical numbers, pointers for errors, the stored-size check).
    static func work(ofBody body: String) -> (work: Int, outcome: String) {
        var work = 0
        do {
            let document = try JSONCodec.parse(Array(body.utf8), streamSafe: true, work: &work)
            _ = try TenantResources.validated(document, work: &work)
            return (work, "stored")
        } catch let error as ValidationError {
            return (work, "invalid: \(error.errors.first?.detail ?? "")")
        } catch let error as OnboardingError {
            return (work, error.code.rawValue)
        } catch {
            return (work, "\(error)")
        }
    }

    /// `0.000…0001` with `zeros` zeros after the point, and an exponent when given.
    static func tinyNumber(zeros: Int, exponent: Int? = nil) -> String {
        "0." + String(repeating: "0", count: zeros) + "1" + (exponent.map { "e\($0)" } ?? "")
    }

    @Test("canonicalNumber: 65,000 leading zeros cost at most 8 steps a byte, and 10× the zeros at most 20× the work")
    func leadingZeros() {
        var small = 0
        let smallText = Self.tinyNumber(zeros: 65_000)
        #expect(StoreRules.canonicalNumber(smallText, work: &small) == nil)  // 1e-65001: out of DynamoDB's range
        #expect(small <= 8 * smallText.utf8.count, "work \(small) for \(smallText.utf8.count) bytes")

        var large = 0
        #expect(StoreRules.canonicalNumber(Self.tinyNumber(zeros: 650_000), work: &large) == nil)
        #expect(large <= 20 * small, "10× the zeros took \(Double(large) / Double(small))× the work")

        // The same zeros, shifted back into range by the exponent: accepted, as "1".
        var shifted = 0
        let shiftedText = Self.tinyNumber(zeros: 65_000, exponent: 65_001)
        #expect(StoreRules.canonicalNumber(shiftedText, work: &shifted) == "1")
        #expect(shifted <= 8 * shiftedText.utf8.count)
    }

    @Test("a body with a 65,000-zero number: parse and validation together stay linear, and the answer is a validation error")
    func tinyNumberBody() {
        let small = Self.work(ofBody: #"{"n": \#(Self.tinyNumber(zeros: 65_000))}"#)
        #expect(small.outcome.hasPrefix("invalid: numbers have at most 38 significant digits"))
        #expect(small.work <= 16 * 65_000, "work \(small.work)")
        let large = Self.work(ofBody: #"{"n": \#(Self.tinyNumber(zeros: 650_000))}"#)
        #expect(large.work <= 20 * small.work, "10× the zeros took \(Double(large.work) / Double(small.work))× the work")
    }

    @Test("a long member name above many values is not copied into a pointer per value")
    func longNameAboveManyValues() {
        func body(_ scale: Int) -> String {
            let name = String(repeating: "k", count: 8_000 * scale)
            let values = Array(repeating: "0", count: 4_000 * scale).joined(separator: ",")
            return #"{"\#(name)": {"\#(name)": [\#(values), 1e999]}}"#
        }
        let small = Self.work(ofBody: body(1))
        #expect(small.outcome.hasPrefix("invalid: numbers"))  // one error, whose pointer is spelled once
        #expect(small.work <= 16 * body(1).utf8.count, "work \(small.work)")
        let large = Self.work(ofBody: body(10))
        #expect(large.work <= 20 * small.work, "10× the input took \(Double(large.work) / Double(small.work))× the work")
    }

    @Test("numbers written out in full: 64 KiB of 1e125 is refused by its stored size, in work linear in that size")
    func expandingNumbers() {
        func body(count: Int) -> String { #"{"n": ["# + Array(repeating: "1e125", count: count).joined(separator: ",") + "]}" }
        let small = Self.work(ofBody: body(count: 10_900))
        #expect(small.outcome == OnboardingError.Code.storedTooLarge.rawValue)
        // Each 6-byte `1e125,` becomes 127 bytes stored: the stored size bounds the work.
        #expect(small.work <= 8 * 127 * 10_900, "work \(small.work)")
        let large = Self.work(ofBody: body(count: 109_000))
        #expect(large.work <= 20 * small.work)
    }

    @Test("the stored size is checked exactly: 64 KiB as stored is kept, one byte more is refused with both sizes")
    func storedSizeLimit() throws {
        // {"n":[1000,…],"p":"xx…"}: each 3-byte `1e3` is stored as 4 digits.
        func document(padding: Int) -> AttributeValue {
            .map(["n": .list(Array(repeating: .number("1e3"), count: 5_000)), "p": .string(String(repeating: "x", count: padding))])
        }
        let overhead = JSONCodec.serializeBytes(try TenantResources.validated(document(padding: 0))).count
        let fits = try TenantResources.validated(document(padding: TenantResources.maxDocumentBytes - overhead))
        #expect(JSONCodec.serializeBytes(fits).count == 64 * 1024)
        do {
            _ = try TenantResources.validated(document(padding: TenantResources.maxDocumentBytes - overhead + 1))
            Issue.record("a document of 64 KiB + 1 byte as stored was accepted")
        } catch let error as OnboardingError {
            #expect(error.code == .storedTooLarge)
            #expect(error.message.contains("65537 bytes as stored"))
            #expect(error.message.contains("limit of 65536 bytes"))
            #expect(error.message.contains("written out in full"))
        }
    }

    @Test("client strings are stream-safe: at most 30 combining characters in a row, raw or escaped, in names and values")
    func combiningRuns() throws {
        // Alternating classes (230, 220): the order Swift's normalisation must sort, quadratic in the run.
        func marks(_ count: Int, escaped: Bool = false) -> String {
            (0..<count).map { index in
                let scalar = index % 2 == 0 ? "0301" : "0316"
                return escaped ? "\\u\(scalar)" : String(Unicode.Scalar(UInt32(scalar, radix: 16)!)!)
            }.joined()
        }
        for escaped in [false, true] {
            #expect(throws: Never.self) { try JSONCodec.parseUntrusted(Array(#"{"a\#(marks(30, escaped: escaped))": "b\#(marks(30, escaped: escaped))"}"#.utf8)) }
            let name = #"{"a\#(marks(31, escaped: escaped))": 1}"#
            let value = #"{"a": "b\#(marks(31, escaped: escaped))"}"#
            for text in [name, value] {
                let error = #expect(throws: JSONSyntaxError.self) { try JSONCodec.parseUntrusted(Array(text.utf8)) }
                #expect(error?.message.contains("more than 30 combining characters in a row") == true)
            }
        }
        // A starter ends a run; the trusted parser (data the service wrote) keeps any run.
        #expect(throws: Never.self) { try JSONCodec.parseUntrusted(Array(#"["a\#(marks(30))a\#(marks(30))"]"#.utf8)) }
        #expect(throws: Never.self) { try JSONCodec.parse(#"["a\#(marks(100))"]"#) }
        // U+0F73 is a starter that decomposes into two combining characters: it counts twice.
        #expect(throws: JSONSyntaxError.self) { try JSONCodec.parseUntrusted(Array(#"["a\#(String(repeating: "\u{0F73}", count: 16))"]"#.utf8)) }
    }

    @Test("a duplicate key's error quotes at most 100 characters of it")
    func duplicateKeyQuote() {
        let key = String(repeating: "k", count: 5_000)
        let error = #expect(throws: JSONSyntaxError.self) { try JSONCodec.parse(#"{"\#(key)": 1, "\#(key)": 2}"#) }
        #expect(error?.message.hasPrefix("duplicate key") == true)
        #expect((error?.message.count ?? .max) < 150)
    }
}
