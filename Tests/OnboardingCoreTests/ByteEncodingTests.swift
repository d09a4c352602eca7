import Foundation
import OnboardingCore
import Testing

@Suite("Hex and base64url encoding")
struct ByteEncodingTests {
    @Test("hex and base64url agree with Foundation's encoders for every length up to 70 bytes")
    func agreesWithFoundation() {
        var generator = SystemRandomNumberGenerator()
        for length in 0...70 {
            let bytes = (0..<length).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
            #expect(ByteEncoding.hex(bytes) == bytes.map { String(format: "%02x", $0) }.joined())
            let foundation = Data(bytes).base64EncodedString()
                .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
            #expect(ByteEncoding.base64URL(bytes) == foundation)
            #expect(ByteEncoding.base64URLDecoded(foundation) == bytes)
        }
        #expect(ByteEncoding.hex([0x00, 0x0f, 0xf0, 0xff]) == "000ff0ff")
        #expect(ByteEncoding.base64URL(Array("any carnal pleas".utf8)) == "YW55IGNhcm5hbCBwbGVhcw")
        #expect(ByteEncoding.base64URL([0xfb, 0xff]) == "-_8")
    }

    @Test("base64url decoding refuses what is not base64url; constant-time equality is equality")
    func decodingAndComparing() {
        #expect(ByteEncoding.base64URLDecoded("-_8") == [0xfb, 0xff])
        #expect(ByteEncoding.base64URLDecoded("ab*d") == nil)
        #expect(ByteEncoding.base64URLDecoded("abcde") == nil)
        #expect(ConstantTime.equals([1, 2, 3], [1, 2, 3]))
        #expect(!ConstantTime.equals([1, 2, 3], [1, 2, 4]))
        #expect(!ConstantTime.equals([1, 2, 3], [1, 2]))
    }
}
