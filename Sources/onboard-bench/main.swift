// A timing loop for the cost this service adds to every DynamoDB call: mapping an item to
// DynamoDB's JSON, encoding the request, and signing it (SigV4). No network.
//
//   swift run -c release onboard-bench [iterations]
import AWSClient
import Foundation
import OnboardingCore
import OnboardingDynamoDB
import SigV4

let iterations = CommandLine.arguments.dropFirst().first.flatMap(Int.init) ?? 200_000
let signer = SigV4Signer(
    credentials: AWSCredentials(accessKeyId: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", sessionToken: "FwoGZXIvYXdzEBYaD"),
    region: "eu-west-1", service: "dynamodb"
)
let tenant = Tenant(
    id: TenantID("0195f3c4-7a1e-7b2c-9d3e-4f5a6b7c8d9e")!,
    clientName: ClientName(stored: "Acme Corp"), clientPhone: PhoneNumber(stored: "+1234567890"), status: .active,
    createdAt: "2026-11-27T22:56:37.123Z", updatedAt: "2026-11-27T22:56:37.123Z", version: 1
)
let date = Date()
// AWSClient parses its endpoint once and keeps one signer per service (with the day's key).
let destination = try SigV4Signer.Target(url: "https://dynamodb.eu-west-1.amazonaws.com/")

/// One request's worth of work: what `DynamoDBTenantStore.put` + `AWSClient` do before the socket.
@inline(never)
func prepare() throws -> Int {
    let item = try StoreRules.checked(tenant.item)
    var builder = ExpressionBuilder()
    let expression = WriteCondition.itemNotExists.expression(&builder)
    let input = PutItemInput(
        TableName: "onboard-tenants", Item: item.dynamoDB, ConditionExpression: expression,
        ExpressionAttributeNames: builder.namesOrNil, ExpressionAttributeValues: builder.valuesOrNil
    )
    let body = input.jsonBytes
    let headers = try signer.sign(
        method: "POST", target: destination,
        headers: [("Content-Type", "application/x-amz-json-1.0"), ("X-Amz-Target", "DynamoDB_20120810.PutItem"), ("User-Agent", "onboard/0.1")],
        body: body, date: date
    )
    return body.count + headers.count
}

var checksum = 0
let clock = ContinuousClock()

/// Runs `body` `iterations` times (after a warm-up) and returns microseconds per run.
@MainActor
func time(_ body: () throws -> Int) rethrows -> Double {
    var sum = 0
    for _ in 0..<1000 { sum &+= try body() }
    let elapsed = try clock.measure {
        for _ in 0..<iterations { sum &+= try body() }
    }
    checksum &+= sum
    return (Double(elapsed.components.seconds) * 1e6 + Double(elapsed.components.attoseconds) / 1e12) / Double(iterations)
}

// The parts, then the whole.
let item = try StoreRules.checked(tenant.item)
let input = PutItemInput(TableName: "onboard-tenants", Item: item.dynamoDB)
let body = input.jsonBytes
let map = try time { try StoreRules.checked(tenant.item).dynamoDB.count }
let encode = time { input.jsonBytes.count }
let sign = try time {
    try signer.sign(
        method: "POST", target: destination,
        headers: [("Content-Type", "application/x-amz-json-1.0"), ("X-Amz-Target", "DynamoDB_20120810.PutItem"), ("User-Agent", "onboard/0.1")],
        body: body, date: date
    ).count
}
let total = try time(prepare)
print(String(format: "map + encode + sign a PutItem: %.2f µs per request (map %.2f, encode %.2f, sign %.2f; %d iterations, checksum %d)", total, map, encode, sign, iterations, checksum))
