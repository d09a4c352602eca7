import WireFormat

/// A request body the JSON protocol sends.
public protocol JSONWritable: Sendable {
    func write(to writer: inout JSONWriter)
}

extension JSONWritable {
    /// The body's bytes.
    public var jsonBytes: [UInt8] {
        var writer = JSONWriter()
        write(to: &writer)
        return writer.bytes
    }
}
