import AWSClient
import Foundation
import OnboardTestSupport
import OnboardingDynamoDB
import Testing

@Suite("onboard table create when DynamoDB's answer is lost (fault proxy, moto)", .requires(.moto))
struct TableCreateLostAnswerTests {
    @Test("CreateTable applied but its answer lost: the resend finds the table, and it is reported as created, not as already there")
    func createdDespiteLostAnswer() async throws {
        // A moto of its own: the call count below must not depend on how busy the shared one is
        // (an answer slower than the client's timeout would be resent once more).
        let moto = try await MotoServer.start()
        let proxy = try await FaultProxy.start(upstream: moto.endpoint)
        defer { proxy.stop() }
        let table = "lost-create-\(UUID().uuidString.prefix(8).lowercased())"
        try proxy.failNext("CreateTable", .drop)
        let outcome = try await withClient(TestAWSClients.credentials) { client in
            try await DynamoDBTable.create(DynamoDB(client: client, endpoint: proxy.endpoint), name: table)
        }
        #expect(try proxy.stats().target("CreateTable").dropped == 1, "the fault happened: the table was created, the answer lost")
        #expect(try proxy.stats().target("CreateTable").calls == 2, "and the client sent CreateTable again")
        #expect(outcome.tableCreated)
        #expect(!outcome.indexAdded)

        // Run again, no fault: the table is there from before.
        let again = try await withClient(TestAWSClients.credentials) { client in
            try await DynamoDBTable.create(DynamoDB(client: client, endpoint: proxy.endpoint), name: table)
        }
        #expect(!again.tableCreated)
    }
}
