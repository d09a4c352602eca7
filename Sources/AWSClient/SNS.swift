/// Amazon SNS's Query API (version 2010-03-31): the operations this project uses, typed.
public struct SNS: Sendable {
    public let client: AWSClient
    /// The service endpoint (`https://sns.<region>.amazonaws.com` unless configured).
    public let endpoint: String

    /// The API version every call names.
    public static let version = "2010-03-31"

    public init(client: AWSClient, endpoint: String? = nil) {
        self.client = client
        self.endpoint = endpoint ?? "https://sns.\(client.region).amazonaws.com"
    }

    /// One operation; returns the answer's XML text.
    /// - Throws: ``AWSServiceError`` (`NotFound`, `InvalidParameter`, …), ``AWSTransportError``.
    public func call(_ action: String, _ parameters: [(String, String)]) async throws -> String {
        let answer = try await client.queryCall(endpoint: endpoint, signingName: "sns", action: action, version: Self.version, parameters: parameters)
        return String(decoding: answer, as: UTF8.self)
    }

    /// Publish: sends `message` to the topic.
    /// - Parameters:
    ///   - attributes: message attributes, each of data type `String` (subscribers filter on them).
    ///   - messageGroupId: required by a FIFO topic (`….fifo`): messages of one group keep their order.
    ///   - deduplicationId: a FIFO topic drops a message whose id it saw in the last 5 minutes.
    /// - Returns: the `MessageId` SNS gave the message.
    public func publish(
        topicArn: String, message: String, attributes: [String: String] = [:], messageGroupId: String? = nil, deduplicationId: String? = nil
    ) async throws -> String {
        var parameters = [("TopicArn", topicArn), ("Message", message)]
        // Sorted: the same message is the same request.
        for (index, attribute) in attributes.sorted(by: { $0.key < $1.key }).enumerated() {
            let prefix = "MessageAttributes.entry.\(index + 1)"
            parameters += [
                ("\(prefix).Name", attribute.key), ("\(prefix).Value.DataType", "String"), ("\(prefix).Value.StringValue", attribute.value),
            ]
        }
        if let messageGroupId { parameters.append(("MessageGroupId", messageGroupId)) }
        if let deduplicationId { parameters.append(("MessageDeduplicationId", deduplicationId)) }
        let answer = try await call("Publish", parameters)
        guard let messageId = QueryXML.text(of: "MessageId", in: answer), !messageId.isEmpty else {
            throw AWSServiceError(status: 200, body: Array("<Error><Code>InvalidResponse</Code><Message>Publish answered without a MessageId</Message></Error>".utf8), requestID: nil)
        }
        return messageId
    }

    /// CreateTopic (idempotent for the same name and attributes): returns the topic's ARN. A FIFO
    /// topic's name ends in `.fifo` and needs the attribute `FifoTopic` = `true`.
    public func createTopic(name: String, attributes: [String: String] = [:]) async throws -> String {
        var parameters = [("Name", name)]
        for (index, attribute) in attributes.sorted(by: { $0.key < $1.key }).enumerated() {
            parameters += [("Attributes.entry.\(index + 1).key", attribute.key), ("Attributes.entry.\(index + 1).value", attribute.value)]
        }
        let answer = try await call("CreateTopic", parameters)
        guard let arn = QueryXML.text(of: "TopicArn", in: answer), !arn.isEmpty else {
            throw AWSServiceError(status: 200, body: Array("<Error><Code>InvalidResponse</Code><Message>CreateTopic answered without a TopicArn</Message></Error>".utf8), requestID: nil)
        }
        return arn
    }

    /// Subscribe: delivers the topic's messages to `endpoint` over `protocol` (`sqs`: a queue ARN).
    /// Returns the subscription's ARN.
    public func subscribe(topicArn: String, protocol: String, endpoint: String, attributes: [String: String] = [:]) async throws -> String {
        var parameters = [("TopicArn", topicArn), ("Protocol", `protocol`), ("Endpoint", endpoint)]
        for (index, attribute) in attributes.sorted(by: { $0.key < $1.key }).enumerated() {
            parameters += [("Attributes.entry.\(index + 1).key", attribute.key), ("Attributes.entry.\(index + 1).value", attribute.value)]
        }
        let answer = try await call("Subscribe", parameters)
        return QueryXML.text(of: "SubscriptionArn", in: answer) ?? ""
    }
}
