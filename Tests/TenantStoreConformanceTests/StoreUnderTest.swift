import AWSClient
import Foundation
import OnboardTestSupport
import OnboardingCore
import OnboardingDynamoDB
import OnboardingSQLite
import Testing

/// A store implementation the conformance suite runs against. Every store must pass every test;
/// tests use fresh random partitions, so a store may be shared between tests.
struct StoreUnderTest: Sendable, CustomTestStringConvertible {
    let name: String
    let make: @Sendable () async throws -> any TenantStore

    var testDescription: String { name }

    /// SQLite on a real file in a fresh temporary folder.
    static let sqlite = StoreUnderTest(name: "SQLite") {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("onboard-conformance-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return try SQLiteTenantStore(path: directory.appendingPathComponent("store.sqlite").path)
    }

    /// DynamoDB as served by moto, on a fresh table created the way `onboard table create` does.
    static let dynamoDB = StoreUnderTest(name: "DynamoDB (moto)") {
        let moto = try await MotoServer.shared()
        let table = "conformance-\(UUID().uuidString.prefix(8).lowercased())"
        try await DynamoDBTable.create(moto.dynamoDB(), name: table)
        return DynamoDBTenantStore(dynamoDB: moto.dynamoDB(), table: table)
    }

    /// The stores every conformance test runs on: SQLite, and DynamoDB on moto where moto can run
    /// (always under `CI=true`, where a missing moto then fails the DynamoDB cases). Where it
    /// cannot, ``TenantStoreConformanceTests/dynamoDBCases()`` shows as skipped with the reason.
    static var all: [StoreUnderTest] { Requirements.moto ? [.sqlite, .dynamoDB] : [.sqlite] }
}

extension TenantStoreConformanceTests {
    /// Swift Testing reports a trait's skip per test, not per argument: this test stands for the
    /// DynamoDB cases left out of ``StoreUnderTest/all``, so their absence shows as SKIPPED.
    @Test("every conformance test also runs on DynamoDB (moto)", .requires(.moto))
    func dynamoDBCases() {
        #expect(StoreUnderTest.all.map(\.name) == [StoreUnderTest.sqlite.name, StoreUnderTest.dynamoDB.name])
    }
}

/// A fresh partition key, so tests never see each other's items.
func freshTenant() -> String { UUID().uuidString.lowercased() }
