import Foundation
import Logging
import OnboardingCore
import OnboardingEvents
import Synchronization
import Testing

@Suite("Event dispatcher passes: order, leases and reading a shard with a backlog")
struct DispatcherPassTests {
    static let quiet = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    @Test("recordProgress and finish with a stale revision are refused and change nothing, also after a redelivery (SQLite)")
    func staleWritesRefused() async throws {
        let fixture = try EventStoreFixture()
        defer { fixture.remove() }
        try await checkStaleWritesAreRefused(store: fixture.store) { tenant in try await fixture.record(tenant).id }
    }
}
