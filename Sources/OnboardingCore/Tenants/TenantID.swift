/// A tenant's id: a lowercase UUID (version 7 when generated here, so ids sort by creation time).
public struct TenantID: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The canonical text: 36 characters, lowercase hex, hyphens at 8-4-4-4-12.
    public let rawValue: String

    /// Accepts any UUID text (either case) and keeps its lowercase form; `nil` for anything else.
    public init?(_ text: some StringProtocol) {
        let utf8 = Array(text.utf8)
        guard utf8.count == 36 else { return nil }
        var canonical = [UInt8]()
        canonical.reserveCapacity(36)
        for (offset, byte) in utf8.enumerated() {
            switch offset {
            case 8, 13, 18, 23:
                guard byte == UInt8(ascii: "-") else { return nil }
                canonical.append(byte)
            default:
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "a")...UInt8(ascii: "f"): canonical.append(byte)
                case UInt8(ascii: "A")...UInt8(ascii: "F"): canonical.append(byte + 32)
                default: return nil
                }
            }
        }
        self.rawValue = String(decoding: canonical, as: UTF8.self)
    }

    /// Formats 16 bytes as a UUID.
    public init(bytes: [UInt8]) {
        precondition(bytes.count == 16, "a UUID has 16 bytes")
        let hex = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(36)
        for (offset, byte) in bytes.enumerated() {
            if offset == 4 || offset == 6 || offset == 8 || offset == 10 { text.append(UInt8(ascii: "-")) }
            text.append(hex[Int(byte >> 4)])
            text.append(hex[Int(byte & 0x0F)])
        }
        self.rawValue = String(decoding: text, as: UTF8.self)
    }

    public var description: String { rawValue }

    public static func < (lhs: TenantID, rhs: TenantID) -> Bool { lhs.rawValue < rhs.rawValue }
}
