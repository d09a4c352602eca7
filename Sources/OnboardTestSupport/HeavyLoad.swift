import Testing

/// A test that loads the machine: hundreds of concurrent requests or writes, megabytes written,
/// a crowd of child processes or slow connections. Such tests run one at a time.
///
/// Swift Testing starts every test of a run at once (this toolchain sets no bound on how many run
/// in parallel), so on a 2-core machine two or three load generators at once kept the whole test
/// process waiting for CPU for tens of seconds, and tests whose work has a deadline of its own (a
/// request's budget, a lease, an invocation's deadline) failed for no fault of the code. The gate
/// keeps at most one load generator running beside the rest of the run. Apply it to a test or a
/// suite (every test in it takes its turn).
public struct HeavyLoadTrait: TestTrait, SuiteTrait, TestScoping {
    public var isRecursive: Bool { true }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        // A suite's scope covers its tests, which take their turns one by one; a test already
        // holding the gate (its cases, or the trait applied twice) does not wait for itself.
        guard !test.isSuite, !HeavyLoadGate.held else { return try await function() }
        await HeavyLoadGate.shared.acquire()
        do {
            try await HeavyLoadGate.$held.withValue(true) { try await function() }
        } catch {
            await HeavyLoadGate.shared.release()
            throw error
        }
        await HeavyLoadGate.shared.release()
    }
}

extension Trait where Self == HeavyLoadTrait {
    /// Runs the test (or each test of the suite) while no other `.heavyLoad` test runs.
    public static var heavyLoad: Self { HeavyLoadTrait() }
}

/// The process-wide turn of ``HeavyLoadTrait``: one holder, waiters served in arrival order.
actor HeavyLoadGate {
    static let shared = HeavyLoadGate()
    @TaskLocal static var held = false

    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        guard busy else {
            busy = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func release() {
        if waiters.isEmpty {
            busy = false
        } else {
            waiters.removeFirst().resume()  // the turn passes on; `busy` stays set
        }
    }
}
