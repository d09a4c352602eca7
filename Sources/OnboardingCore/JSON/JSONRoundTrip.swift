/// The property the JSON fuzzer checks (`Sources/onboard-fuzz-json`, `scripts/fuzz.sh`), and what
/// its corpus replay and the tests check with it.
///
/// For any bytes: ``JSONCodec/parse(_:)-(Sequence<UInt8>)`` either throws ``JSONSyntaxError`` or
/// returns a value whose serialisation parses back to an equal value and serialises to the same
/// bytes again. A crash (trap, overflow, out-of-bounds index) anywhere on the way is a failure too;
/// that one the process itself reports.
public enum JSONRoundTrip {
    /// What broke the property for one input.
    public struct Failure: Error, Sendable, CustomStringConvertible {
        public let description: String
    }

    /// What one input did: refused by the parser, or accepted and round-tripped.
    public enum Outcome: Sendable, Equatable {
        case rejected
        case accepted
    }

    /// Checks the round trip for one input.
    /// - Throws: ``Failure`` when the property does not hold.
    @discardableResult
    public static func check(_ bytes: [UInt8]) throws(Failure) -> Outcome {
        let first: AttributeValue
        do {
            first = try JSONCodec.parse(bytes)
        } catch {
            return .rejected
        }
        let serialised = JSONCodec.serializeBytes(first)
        let second: AttributeValue
        do {
            second = try JSONCodec.parse(serialised)
        } catch {
            throw Failure(description: "the serialisation of an accepted value does not parse: \(error); serialised: \(preview(serialised))")
        }
        guard second == first else {
            throw Failure(description: "the serialisation parses to another value; serialised: \(preview(serialised))")
        }
        let again = JSONCodec.serializeBytes(second)
        guard again == serialised else {
            throw Failure(description: "serialising the value again gives other bytes: \(preview(serialised)) then \(preview(again))")
        }
        return .accepted
    }

    private static func preview(_ bytes: [UInt8]) -> String {
        let text = String(decoding: bytes.prefix(200), as: UTF8.self)
        return bytes.count > 200 ? text + "… (\(bytes.count) bytes)" : text
    }
}
