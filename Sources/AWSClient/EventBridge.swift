import Foundation
import WireFormat

/// Amazon EventBridge's JSON 1.1 API (`AWSEvents.*`): the operations this project uses, typed.
public struct EventBridge: Sendable {
    public let client: AWSClient
    /// The service endpoint (`https://events.<region>.amazonaws.com` unless configured).
    public let endpoint: String

    /// The most entries one `PutEvents` call takes.
    public static let maxEntriesPerPut = 10

    public init(client: AWSClient, endpoint: String? = nil) {
        self.client = client
        self.endpoint = endpoint ?? "https://events.\(client.region).amazonaws.com"
    }

    /// One operation: `body` is the input's JSON; returns the output's JSON.
    /// - Throws: ``AWSServiceError`` (`ResourceNotFoundException`, …), ``AWSTransportError``.
    public func call(_ operation: String, body: [UInt8]) async throws -> [UInt8] {
        try await client.jsonCall(
            endpoint: endpoint, signingName: "events", target: "AWSEvents.\(operation)", contentType: "application/x-amz-json-1.1", body: body
        )
    }

    /// One event for ``putEvents(_:)``.
    public struct Entry: Sendable, Hashable, Codable {
        public var source: String
        public var detailType: String
        /// A JSON object, as text.
        public var detail: String
        /// The bus's name or ARN; `nil`: the account's default bus.
        public var eventBusName: String?
        public var resources: [String]

        public init(source: String, detailType: String, detail: String, eventBusName: String? = nil, resources: [String] = []) {
            self.source = source
            self.detailType = detailType
            self.detail = detail
            self.eventBusName = eventBusName
            self.resources = resources
        }

        enum CodingKeys: String, CodingKey {
            case source = "Source"
            case detailType = "DetailType"
            case detail = "Detail"
            case eventBusName = "EventBusName"
            case resources = "Resources"
        }
    }

    /// What became of one entry: an `eventId` when accepted, an `errorCode` when not.
    public struct ResultEntry: Sendable, Hashable, Decodable {
        public var eventId: String?
        public var errorCode: String?
        public var errorMessage: String?

        public init(eventId: String? = nil, errorCode: String? = nil, errorMessage: String? = nil) {
            self.eventId = eventId
            self.errorCode = errorCode
            self.errorMessage = errorMessage
        }

        /// Whether EventBridge accepted the entry.
        public var succeeded: Bool { errorCode == nil && eventId != nil }

        enum CodingKeys: String, CodingKey {
            case eventId = "EventId"
            case errorCode = "ErrorCode"
            case errorMessage = "ErrorMessage"
        }
    }

    /// `PutEvents`' answer: one result per entry, in the entries' order.
    public struct PutEventsOutput: Sendable, Hashable, Decodable {
        public var failedEntryCount: Int
        public var entries: [ResultEntry]

        public init(failedEntryCount: Int, entries: [ResultEntry]) {
            self.failedEntryCount = failedEntryCount
            self.entries = entries
        }

        enum CodingKeys: String, CodingKey {
            case failedEntryCount = "FailedEntryCount"
            case entries = "Entries"
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            failedEntryCount = try container.decodeIfPresent(Int.self, forKey: .failedEntryCount) ?? 0
            entries = try container.decodeIfPresent([ResultEntry].self, forKey: .entries) ?? []
        }
    }

    /// `{"Entries": [...]}`, the members as `Entry`'s Encodable conformance names them.
    private struct PutEventsInput: JSONWritable {
        let entries: [Entry]

        func write(to writer: inout JSONWriter) {
            writer.beginObject()
            writer.key("Entries")
            writer.beginArray()
            for entry in entries {
                writer.beginObject()
                writer.field("Source", entry.source)
                writer.field("DetailType", entry.detailType)
                writer.field("Detail", entry.detail)
                writer.field("EventBusName", entry.eventBusName)
                writer.key("Resources")
                writer.beginArray()
                for resource in entry.resources { writer.string(resource) }
                writer.endArray()
                writer.endObject()
            }
            writer.endArray()
            writer.endObject()
        }
    }

    /// PutEvents: at most ``maxEntriesPerPut`` entries. Entries can fail one by one (throttled,
    /// internal errors) while the call succeeds: read ``PutEventsOutput/entries``.
    /// - Throws: ``AWSServiceError`` for the whole call, ``AWSTransportError``; an answer that
    ///   does not have one result per entry is an ``AWSServiceError`` `InvalidResponse`.
    public func putEvents(_ entries: [Entry]) async throws -> PutEventsOutput {
        let answer = try await call("PutEvents", body: PutEventsInput(entries: entries).jsonBytes)
        guard let output = try? JSONDecoder().decode(PutEventsOutput.self, from: Data(answer)), output.entries.count == entries.count else {
            throw AWSServiceError(
                status: 200, body: Array(#"{"__type":"InvalidResponse","message":"PutEvents answered without one result per entry"}"#.utf8),
                requestID: nil
            )
        }
        return output
    }
}
