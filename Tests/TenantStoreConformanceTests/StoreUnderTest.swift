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

    static let all: [StoreUnderTest] = [.sqlite, .dynamoDB]

    /// The store, or `nil` (with the reason printed) when its server is not available outside CI.
    func available() async throws -> (any TenantStore)? {
        try await ifAvailable("\(name) store", make)
    }
}

/// A fresh partition key, so tests never see each other's items.
func freshTenant() -> String { UUID().uuidString.lowercased() }
