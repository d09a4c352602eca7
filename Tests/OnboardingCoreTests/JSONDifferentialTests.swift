import Foundation
import OnboardingCore
import Testing

/// JSONCodec against Foundation's `JSONSerialization`, on the fuzz corpus and on generated texts:
/// where both accept an input they must read the same value (strings byte for byte, numbers by
/// value as far as a `Double` holds them). Where only one accepts, the corpus input must be one
/// of the disagreements listed below, each decided by RFC 8259 (and recorded in TESTING.md).
@Suite("JSONCodec agrees with Foundation's JSONSerialization where both accept")
struct JSONDifferentialTests {
    /// Corpus inputs JSONSerialization accepts and JSONCodec refuses, and why JSONCodec is right.
    static let onlyFoundationAccepts: [String: String] = [
        "bom-then-object": "RFC 8259 §8.1: a parser MAY ignore a byte order mark; a request body has none to ignore",
        "trailing-comma-array": "§5: a comma separates values; [1,] is not JSON",
        "trailing-comma-object": "§4: a comma separates members; {\"a\":1,} is not JSON",
        "duplicate-key": "§4: names SHOULD be unique, and receivers of duplicates behave unpredictably (Foundation keeps the last): refused",
        "duplicate-key-escaped": "§4: \\u0061 is the name a, so the name repeats",
        "duplicate-key-nested": "§4: a repeated name, one level down",
        "duplicate-key-same-value": "§4: a repeated name, even with the same value",
        "duplicate-key-nfc-nfd": "§4 compares names by code units (§8.3), so these differ; JSONCodec's members are Swift strings, equal under canonical equivalence, so one would be lost: refused as duplicates",
        "depth-65-arrays": "§9: a parser may limit nesting; JSONCodec.maxDepth is 64",
        "depth-65-objects": "§9: a parser may limit nesting; JSONCodec.maxDepth is 64",
        "nul-after-value": "§2: a JSON text is one value with whitespace around it; Foundation stops at the NUL byte and ignores what follows",
    ]

    /// Corpus inputs JSONCodec accepts and JSONSerialization refuses: numbers beyond a `Double`.
    static let onlyJSONCodecAccepts: [String: String] = [
        "number-huge-exponent": "§6 lets a parser limit range; JSONCodec keeps the text (StoreRules decides what may be stored)",
        "number-exponent-400": "§6: 1E+400 is valid grammar; Foundation refuses what a Double cannot hold",
        "number-long-integer": "§6: 4,000 nines are valid grammar, beyond a Double",
    ]

    static var corpusDirectory: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fuzz/json-corpus")
    }

    static func corpus() throws -> [(name: String, bytes: [UInt8])] {
        let names = try FileManager.default.contentsOfDirectory(atPath: corpusDirectory.path).sorted()
        return try names.map { name in (name, Array(try Data(contentsOf: corpusDirectory.appendingPathComponent(name)))) }
    }

    @Test("the corpus: same values where both accept, and every acceptance disagreement is a listed one")
    func corpusAgrees() throws {
        let inputs = try Self.corpus()
        #expect(inputs.count >= 100)
        var disagreements: [String: Bool] = [:]  // name → JSONCodec accepted
        for (name, bytes) in inputs {
            switch (try? JSONCodec.parse(bytes), Self.foundation(bytes)) {
            case (let ours?, let theirs?):
                let difference = Self.difference(ours, theirs, path: "$")
                #expect(difference == nil, "\(name): \(difference ?? "")")
            case (nil, _?): disagreements[name] = false
            case (_?, nil): disagreements[name] = true
            case (nil, nil): break
            }
        }
        #expect(disagreements.filter { !$0.value }.keys.sorted() == Self.onlyFoundationAccepts.keys.sorted())
        #expect(disagreements.filter { $0.value }.keys.sorted() == Self.onlyJSONCodecAccepts.keys.sorted())
    }

    @Test("generated texts (random values, spaced and escaped at random) read the same in both")
    func generatedAgree() throws {
        var random = SplitMix64(seed: 0x5EED_1234)
        for round in 0..<2_000 {
            var text: [UInt8] = []
            Self.generate(depth: 0, into: &text, random: &random)
            let ours = try JSONCodec.parse(text)
            let theirs = try #require(Self.foundation(text), "round \(round): Foundation refused \(String(decoding: text, as: UTF8.self))")
            let difference = Self.difference(ours, theirs, path: "$")
            #expect(difference == nil, "round \(round): \(difference ?? "") in \(String(decoding: text, as: UTF8.self))")
            // JSONCodec's own serialisation reads the same in Foundation too.
            let serialised = JSONCodec.serializeBytes(ours)
            let reread = try #require(Self.foundation(serialised))
            #expect(Self.difference(ours, reread, path: "$") == nil)
            if difference != nil { return }
        }
    }

    @Test("mutated corpus inputs: where both accept, both read the same value")
    func mutationsAgree() throws {
        var random = SplitMix64(seed: 0xD1FF)
        let inputs = try Self.corpus().map(\.bytes).filter { $0.count < 5_000 }
        let interesting: [UInt8] = Array(#"{}[],:"\-+.0123456789eEtfnu "#.utf8) + [0x00, 0x0A, 0x7F, 0x80, 0xC3, 0xED, 0xFF]
        var bothAccepted = 0
        for round in 0..<5_000 {
            var bytes = inputs[Int(random.next() % UInt64(inputs.count))]
            for _ in 0...Int(random.next() % 3) {
                let position = bytes.isEmpty ? 0 : Int(random.next() % UInt64(bytes.count))
                let byte = interesting[Int(random.next() % UInt64(interesting.count))]
                switch random.next() % 3 {
                case 0: bytes.insert(byte, at: position)
                case 1 where !bytes.isEmpty: bytes[position] = byte
                default: if !bytes.isEmpty { bytes.remove(at: position) }
                }
            }
            guard let ours = try? JSONCodec.parse(bytes), let theirs = Self.foundation(bytes) else { continue }
            bothAccepted += 1
            let difference = Self.difference(ours, theirs, path: "$")
            #expect(difference == nil, "round \(round): \(difference ?? "") in \(String(decoding: bytes, as: UTF8.self).prefix(300))")
        }
        #expect(bothAccepted > 300)
    }

    /// RFC 8259 §7: any character may stand in a string, U+FEFF (zero width no-break space)
    /// included. Foundation drops a raw (unescaped) one that starts a string value or follows an
    /// escape, as if it were a byte order mark; JSONCodec keeps it. The comparison above allows
    /// this one difference.
    @Test("a raw U+FEFF at the start of a string or after an escape: JSONCodec keeps it, Foundation drops it (Foundation is wrong)")
    func leadingFEFF() throws {
        let text = Array("[\"\u{FEFF}x\", \"\\ufeffy\", \"a\u{FEFF}\", \"\\r\u{FEFF}z\"]".utf8)
        #expect(try JSONCodec.parse(text) == .list([.string("\u{FEFF}x"), .string("\u{FEFF}y"), .string("a\u{FEFF}"), .string("\r\u{FEFF}z")]))
        let theirs = try #require(Self.foundation(text) as? [String])
        // Raw at the start or after an escape, it is dropped; escaped (\ufeff) or elsewhere, kept.
        #expect(theirs.map { Array($0.utf8) } == [Array("x".utf8), Array("\u{FEFF}y".utf8), Array("a\u{FEFF}".utf8), Array("\rz".utf8)])
    }

    // MARK: - Foundation's reading, and the structural comparison

    static func foundation(_ bytes: [UInt8]) -> Any? {
        try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed])
    }

    /// Where `theirs` (JSONSerialization's) differs from `ours`; `nil` when they are the same.
    static func difference(_ ours: AttributeValue, _ theirs: Any, path: String) -> String? {
        switch ours {
        case .null:
            return theirs is NSNull ? nil : "\(path): null against \(theirs)"
        case .bool(let flag):
            guard isBoolean(theirs), let value = (theirs as? NSNumber)?.boolValue ?? (theirs as? Bool) else {
                return "\(path): \(flag) against \(theirs)"
            }
            return value == flag ? nil : "\(path): \(flag) against \(value)"
        case .string(let text):
            guard let other = theirs as? String else { return "\(path): a string against \(theirs)" }
            return sameString(text, other) ? nil : "\(path): \(Array(text.utf8)) against \(Array(other.utf8))"
        case .number(let text):
            guard !isBoolean(theirs), let other = numberValue(theirs) else { return "\(path): \(text) against \(theirs)" }
            return sameNumber(text, other) ? nil : "\(path): \(text) against \(other)"
        case .list(let elements):
            guard let other = theirs as? [Any] else { return "\(path): an array against \(theirs)" }
            guard elements.count == other.count else { return "\(path): \(elements.count) elements against \(other.count)" }
            for (index, element) in elements.enumerated() {
                if let difference = difference(element, other[index], path: "\(path)[\(index)]") { return difference }
            }
            return nil
        case .map(let members):
            guard let other = theirs as? [String: Any] else { return "\(path): an object against \(theirs)" }
            guard members.count == other.count else { return "\(path): \(members.count) members against \(other.count)" }
            for (name, value) in members {
                // Names byte for byte: Swift's dictionary lookup alone would match NFC with NFD.
                guard let key = other.keys.first(where: { sameString(name, $0) }) else {
                    return "\(path): member \(Array(name.utf8)) missing"
                }
                if let difference = difference(value, other[key]!, path: "\(path).\(name)") { return difference }
            }
            return nil
        }
    }

    /// The same bytes, but for the raw U+FEFF Foundation drops (see ``leadingFEFF()``).
    static func sameString(_ ours: String, _ theirs: String) -> Bool {
        if ours.utf8.elementsEqual(theirs.utf8) { return true }
        let withoutFEFF = ours.unicodeScalars.filter { $0 != "\u{FEFF}" }.map(\.value)
        return theirs.unicodeScalars.filter { $0 != "\u{FEFF}" }.map(\.value) == withoutFEFF
    }

    /// JSONSerialization gives `true`/`false` as a boolean NSNumber (`__NSCFBoolean` on Linux).
    static func isBoolean(_ value: Any) -> Bool {
        if value is Bool, !(value is NSNumber) { return true }
        return String(describing: type(of: value)).contains("Boolean")
    }

    static func numberValue(_ value: Any) -> Double? {
        if let decimal = value as? Decimal { return NSDecimalNumber(decimal: decimal).doubleValue }
        if let number = value as? NSNumber { return number.doubleValue }
        if let number = value as? Double { return number }
        if let number = value as? Int { return Double(number) }
        return nil
    }

    /// The number text and Foundation's number are the same value as far as a `Double` holds
    /// it: equal `Double`s, or within 1e-12 relative when the text has more significant digits
    /// than a `Double` keeps exactly (Foundation reads long integers as `Decimal`, 38 digits).
    static func sameNumber(_ text: String, _ other: Double) -> Bool {
        guard let ours = Double(text) else { return false }
        if ours == other { return true }
        let digits = text.prefix { $0 != "e" && $0 != "E" }.filter(\.isNumber).drop { $0 == "0" }.count
        guard digits > 15, ours.isFinite, other.isFinite else { return false }
        return abs(ours - other) <= 1e-12 * max(abs(ours), abs(other))
    }

    // MARK: - Generated JSON texts

    /// A random JSON value, written with random whitespace and escapes (what clients may send,
    /// not the canonical form JSONCodec writes).
    static func generate(depth: Int, into text: inout [UInt8], random: inout SplitMix64) {
        let choice = depth >= 5 ? random.next() % 4 : random.next() % 6
        switch choice {
        case 0: text += ["null", "true", "false"][Int(random.next() % 3)].utf8
        case 1: generateNumber(into: &text, random: &random)
        case 2, 3: generateString(into: &text, random: &random)
        case 4:
            text.append(UInt8(ascii: "["))
            for index in 0..<Int(random.next() % 5) {
                if index > 0 { text.append(UInt8(ascii: ",")) }
                space(&text, &random)
                generate(depth: depth + 1, into: &text, random: &random)
                space(&text, &random)
            }
            text.append(UInt8(ascii: "]"))
        default:
            text.append(UInt8(ascii: "{"))
            var names: Set<[UInt8]> = []
            for _ in 0..<Int(random.next() % 5) {
                var name: [UInt8] = []
                generateString(into: &name, random: &random)
                // Distinct names only (duplicates are a listed disagreement), also when escaped,
                // canonically equivalent, or equal but for the U+FEFF Foundation drops.
                guard let parsed = try? JSONCodec.parse(name), let key = parsed.stringValue else { continue }
                let stripped = String(String.UnicodeScalarView(key.unicodeScalars.filter { $0 != "\u{FEFF}" }))
                guard names.allSatisfy({ String(decoding: $0, as: UTF8.self) != stripped }) else { continue }
                if !names.isEmpty { text.append(UInt8(ascii: ",")) }
                names.insert(Array(stripped.utf8))
                space(&text, &random)
                text += name
                space(&text, &random)
                text.append(UInt8(ascii: ":"))
                space(&text, &random)
                generate(depth: depth + 1, into: &text, random: &random)
            }
            text.append(UInt8(ascii: "}"))
        }
    }

    static func space(_ text: inout [UInt8], _ random: inout SplitMix64) {
        for _ in 0..<Int(random.next() % 3) { text.append([0x20, 0x09, 0x0A, 0x0D][Int(random.next() % 4)]) }
    }

    static func generateNumber(into text: inout [UInt8], random: inout SplitMix64) {
        var number = random.next() % 4 == 0 ? "-" : ""
        switch random.next() % 4 {
        case 0: number += String(random.next() % 1_000)
        case 1: number += String(random.next() % 9_007_199_254_740_992)
        case 2: number += "0." + String(random.next() % 1_000_000)
        default:
            number += String(1 + random.next() % 9) + "." + String(random.next() % 1_000)
            number += ["e", "E", "e+", "e-"][Int(random.next() % 4)] + String(random.next() % 300)
        }
        text += number.utf8
    }

    static let shortEscapes: [Unicode.Scalar: String] = [
        "\"": "\\\"", "\\": "\\\\", "/": "\\/", "\u{8}": "\\b", "\u{C}": "\\f", "\u{A}": "\\n", "\u{D}": "\\r", "\u{9}": "\\t",
    ]

    static func generateString(into text: inout [UInt8], random: inout SplitMix64) {
        let pool: [Unicode.Scalar] = [
            "a", "Z", "0", " ", "\"", "\\", "/", "\u{0}", "\u{8}", "\u{9}", "\u{A}", "\u{C}", "\u{D}", "\u{1F}", "\u{7F}",
            "é", "e", "\u{301}", "\u{2028}", "\u{FEFF}", "\u{FFFF}", "株", "🚀", "\u{10FFFF}",
        ]
        text.append(UInt8(ascii: "\""))
        for _ in 0..<Int(random.next() % 8) {
            let scalar = pool[Int(random.next() % UInt64(pool.count))]
            let escape = scalar.value < 0x20 || scalar == "\"" || scalar == "\\" || random.next() % 3 == 0
            if !escape {
                text += Array(String(scalar).utf8)
            } else if random.next() % 2 == 0, let short = shortEscapes[scalar] {
                text += short.utf8
            } else {
                for unit in String(scalar).utf16 {
                    let hex = String(unit, radix: 16)
                    let padded = String(repeating: "0", count: 4 - hex.count) + hex
                    text += ("\\u" + (random.next() % 2 == 0 ? padded : padded.uppercased())).utf8
                }
            }
        }
        text.append(UInt8(ascii: "\""))
    }
}

/// SplitMix64: the same inputs on every run, so a failure can be reproduced.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E4B9
        z = (z ^ (z >> 27)) &* 0x94D0_33D9_49F1_33EB
        return z ^ (z >> 31)
    }
}
