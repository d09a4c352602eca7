import Foundation
import OnboardingCore
import Testing
import WireFormat

@Suite("WireFormat: the one base64 codec and the one JSON writer")
struct WireFormatTests {
    static func randomBytes(_ count: Int, _ random: inout SplitMix64) -> [UInt8] {
        (0..<count).map { _ in UInt8(truncatingIfNeeded: random.next()) }
    }

    @Test("both alphabets agree with Foundation, encoding and decoding, for every length up to 70 bytes")
    func agreesWithFoundation() {
        var random = SplitMix64(seed: 64)
        for length in 0...70 {
            let bytes = Self.randomBytes(length, &random)
            let standard = Data(bytes).base64EncodedString()
            let url = standard.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                .replacingOccurrences(of: "=", with: "")
            #expect(Base64.encode(bytes) == standard)
            #expect(Base64.encode(bytes, alphabet: .url) == url)
            #expect(Base64.decode(standard, alphabet: .standard) == bytes)
            #expect(Base64.decode(url, alphabet: .url) == bytes)
            // Padding is optional in both alphabets.
            #expect(Base64.decode(standard.replacingOccurrences(of: "=", with: ""), alphabet: .standard) == bytes)
            #expect(Base64.decode(url + String(repeating: "=", count: (4 - url.count % 4) % 4), alphabet: .url) == bytes)
        }
    }

    @Test("decoding refuses other alphabets' characters, a lone final character and wrong padding", arguments: [
        ("ab*d", Base64.Alphabet.url), ("ab+d", .url), ("ab/d", .url), ("ab-d", .standard), ("ab_d", .standard),
        ("abcde", .url), ("a", .standard), ("ab=", .standard), ("ab===", .standard), ("abc==", .standard), ("=abc", .url),
        ("ab=c", .url), ("ab\u{0}c", .url), ("ab c", .standard), ("é", .url),
    ])
    func refuses(_ text: String, _ alphabet: Base64.Alphabet) {
        #expect(Base64.decode(text, alphabet: alphabet) == nil)
    }

    @Test("lenient decoding (list cursors): any text over the url alphabet is bytes, leftover bits dropped")
    func lenient() {
        #expect(Base64.decode("A", alphabet: .url, lenient: true) == [])
        #expect(Base64.decode("abcde", alphabet: .url, lenient: true) == Base64.decode("abcd", alphabet: .url))
        #expect(Base64.decode("-_8", alphabet: .url, lenient: true) == [0xfb, 0xff])
        #expect(Base64.decode("ab==", alphabet: .url, lenient: true) == nil)
        #expect(Base64.decode("ab+/", alphabet: .url, lenient: true) == nil)
    }

    @Test("the writer escapes what RFC 8259 requires, and Foundation reads back every string")
    func writerEscapes() throws {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("s", "q\"b\\s/\n\r\t\u{8}\u{C}\u{0}\u{1F}\u{7F}é🚀\u{2028}")
        writer.key("l")
        writer.beginArray()
        writer.number("-1.5e3")
        writer.null()
        writer.bool(true)
        writer.int(-7)
        writer.beginObject()
        writer.endObject()
        writer.endArray()
        writer.endObject()
        let text = String(decoding: writer.bytes, as: UTF8.self)
        #expect(text == #"{"s":"q\"b\\s/\n\r\t\b\f\u0000\u001f"# + "\u{7F}é🚀\u{2028}" + #"","l":[-1.5e3,null,true,-7,{}]}"#)
        let read = try #require(JSONSerialization.jsonObject(with: Data(writer.bytes)) as? [String: Any])
        #expect(read["s"] as? String == "q\"b\\s/\n\r\t\u{8}\u{C}\u{0}\u{1F}\u{7F}é🚀\u{2028}")
        var random = SplitMix64(seed: 7)
        for _ in 0..<500 {
            let scalars = (0..<Int(random.next() % 12)).compactMap { _ in Unicode.Scalar(UInt32(random.next() % 0x300)) }
            let string = String(String.UnicodeScalarView(scalars))
            var one = JSONWriter()
            one.string(string)
            let back = try JSONSerialization.jsonObject(with: Data(one.bytes), options: [.fragmentsAllowed]) as? String
            #expect(back.map { Array($0.utf8) } == Array(string.utf8))
            #expect(try JSONCodec.parse(one.bytes) == .string(string))
        }
    }

    @Test("JSONCodec orders members by UTF-8 bytes, whatever Swift's canonical-equivalence order says")
    func memberOrder() {
        // NFD é ("e" + U+0301) sorts before "f" by bytes, after it by Swift's `<` (which compares
        // the NFC forms); "é-" (NFC) and NFD "é" are neither `<` nor `==` to each other in Swift.
        #expect(JSONCodec.serialize(.map(["f": .int(2), "e\u{301}": .int(1)])) == "{\"e\u{301}\":1,\"f\":2}")
        #expect(JSONCodec.serialize(.map(["\u{E9}-": .int(1), "e\u{301}": .int(2), "a": .null])) == "{\"a\":null,\"e\u{301}\":2,\"\u{E9}-\":1}")
    }

    @Test("the fuzz corpus round-trips (JSONRoundTrip.check), as the fuzzer and CI's replay check it")
    func corpusRoundTrips() throws {
        var accepted = 0
        for (name, bytes) in try JSONDifferentialTests.corpus() {
            do {
                if try JSONRoundTrip.check(bytes) == .accepted { accepted += 1 }
            } catch {
                Issue.record("\(name): \(error)")
            }
        }
        #expect(accepted >= 30)
    }
}
