import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// An IP network in CIDR notation (`10.0.0.0/8`, `2001:db8::/32`, or one address).
public struct IPNetwork: Sendable, Hashable, CustomStringConvertible {
    /// 4 bytes (IPv4) or 16 (IPv6), host bits cleared.
    let bytes: [UInt8]
    let prefixLength: Int

    /// Parses `address[/prefix]`; `nil` unless both parts are valid.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPNetwork.parseAddress(String(parts[0])) else { return nil }
        let maxPrefix = address.count * 8
        var prefix = maxPrefix
        if parts.count == 2 {
            guard let value = Int(parts[1]), (0...maxPrefix).contains(value), parts[1].allSatisfy(\.isASCII) else { return nil }
            prefix = value
        }
        bytes = IPNetwork.masked(address, prefix: prefix)
        prefixLength = prefix
    }

    /// Whether `address` (text) is in this network.
    public func contains(_ address: String) -> Bool {
        guard let parsed = IPNetwork.parseAddress(address), parsed.count == bytes.count else { return false }
        return IPNetwork.masked(parsed, prefix: prefixLength) == bytes
    }

    public var description: String {
        var text = [UInt8](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = bytes.count == 4 ? AF_INET : AF_INET6
        let rendered = bytes.withUnsafeBytes { source in
            text.withUnsafeMutableBufferPointer { target in
                inet_ntop(family, source.baseAddress, target.baseAddress.map { UnsafeMutableRawPointer($0).assumingMemoryBound(to: CChar.self) }, socklen_t(target.count))
            }
        }
        guard rendered != nil else { return "?" }
        let address = String(decoding: text.prefix { $0 != 0 }, as: UTF8.self)
        return prefixLength == bytes.count * 8 ? address : "\(address)/\(prefixLength)"
    }

    /// The address's bytes: 4 for IPv4 (IPv4-mapped IPv6 included), 16 for IPv6; `nil` for text
    /// that is not an address.
    static func parseAddress(_ text: String) -> [UInt8]? {
        guard !text.isEmpty, text.utf8.count <= 64 else { return nil }
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, text, &v6) == 1 else { return nil }
        let bytes = withUnsafeBytes(of: &v6) { Array($0) }
        // ::ffff:a.b.c.d is the IPv4 address a.b.c.d.
        if bytes[0..<10].allSatisfy({ $0 == 0 }) && bytes[10] == 0xFF && bytes[11] == 0xFF {
            return Array(bytes[12..<16])
        }
        return bytes
    }

    private static func masked(_ bytes: [UInt8], prefix: Int) -> [UInt8] {
        bytes.enumerated().map { index, byte in
            let bits = min(8, max(0, prefix - index * 8))
            return bits == 8 ? byte : byte & UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
        }
    }
}

/// Who the client is, for per-address limits.
public enum ClientAddress {
    /// The client's address: the peer's, unless the peer is a trusted proxy; then the nearest
    /// address in `X-Forwarded-For` (read right to left) that is not itself a trusted proxy.
    /// Addresses a client wrote further left are never believed.
    public static func resolve(peer: String?, forwardedFor: [String], trustedProxies: [IPNetwork]) -> String {
        guard let peer else { return "unknown" }
        // Without trusted proxies the peer is the client, as the socket names it: nothing to parse.
        guard !trustedProxies.isEmpty else { return peer }
        guard let peerBytes = IPNetwork.parseAddress(peer) else { return peer }
        let normalisedPeer = render(peerBytes) ?? peer
        guard trustedProxies.contains(where: { $0.contains(peer) }) else { return normalisedPeer }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        var client = normalisedPeer
        for hop in hops.reversed() {
            guard let bytes = IPNetwork.parseAddress(hop) else { break }  // garbage: trust nothing further left
            client = render(bytes) ?? hop
            if !trustedProxies.contains(where: { $0.contains(hop) }) { break }
        }
        return client
    }

    /// The bucket an address is limited in: an IPv4 address on its own; an IPv6 address by its
    /// network of `ipv6Prefix` bits (`2001:db8:1:2::/64` by default), since one subscriber gets a
    /// whole /64 (RFC 6177) and could otherwise take a fresh bucket per address; anything that is
    /// not an address as it is.
    public static func bucket(_ address: String, ipv6Prefix: Int) -> String {
        guard let bytes = IPNetwork.parseAddress(address) else { return address }
        if bytes.count == 4 { return render(bytes) ?? address }
        return IPNetwork(hex(bytes) + "/\(ipv6Prefix)")?.description ?? address
    }

    /// Whether `peer` is one of `trustedProxies`.
    static func isTrusted(_ peer: String?, _ trustedProxies: [IPNetwork]) -> Bool {
        guard let peer else { return false }
        return trustedProxies.contains { $0.contains(peer) }
    }

    private static func render(_ bytes: [UInt8]) -> String? {
        IPNetwork(bytes.count == 4 ? bytes.map(String.init).joined(separator: ".") : hex(bytes)).map(\.description)
    }

    private static func hex(_ bytes: [UInt8]) -> String {
        stride(from: 0, to: 16, by: 2).map { String(UInt16(bytes[$0]) << 8 | UInt16(bytes[$0 + 1]), radix: 16) }.joined(separator: ":")
    }
}
