import Foundation

/// An EventBridge (CloudWatch Events) scheduled event, what a `Schedule` event source of a SAM
/// function (an `AWS::Events::Rule` with a `ScheduleExpression`) invokes it with:
///
/// ```json
/// {"id": "…", "detail-type": "Scheduled Event", "source": "aws.events", "account": "…",
///  "time": "1970-01-01T00:00:00Z", "region": "us-east-1", "resources": ["arn:aws:events:…:rule/…"], "detail": {}}
/// ```
///
/// A function fed by API Gateway and by a schedule tells the two apart with ``init(payload:)``:
/// API Gateway's proxy events have neither `source` nor `detail-type` at the top level, and a
/// client cannot put them there.
public struct ScheduledEvent: Sendable, Equatable {
    /// The event's id (EventBridge's, one per invocation of the rule).
    public let id: String
    /// When the schedule fired, as EventBridge wrote it (ISO 8601).
    public let time: String
    /// The rule's ARN (`resources`).
    public let resources: [String]
    public let account: String?
    public let region: String?

    /// The scheduled event `payload` is, or `nil` for any other event (an API Gateway event, an
    /// EventBridge event of another source or type, not JSON).
    public init?(payload: [UInt8]) {
        guard let event = (try? JSONSerialization.jsonObject(with: Data(payload))) as? [String: Any],
            event["source"] as? String == "aws.events", event["detail-type"] as? String == "Scheduled Event"
        else { return nil }
        self.id = event["id"] as? String ?? ""
        self.time = event["time"] as? String ?? ""
        self.resources = event["resources"] as? [String] ?? []
        self.account = event["account"] as? String
        self.region = event["region"] as? String
    }
}
