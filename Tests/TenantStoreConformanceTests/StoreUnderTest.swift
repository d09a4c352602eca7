import Foundation
import OnboardingCore
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

    static let all: [StoreUnderTest] = [.sqlite]
}

/// A fresh partition key, so tests never see each other's items.
func freshTenant() -> String { UUID().uuidString.lowercased() }
