import OnboardingHTTP
import ServiceLifecycle

/// Work the application does beside answering requests (writing API keys' `lastUsedAt`,
/// resuming unfinished offboardings, sweeping expired records).
///
/// On a server it is a swift-service-lifecycle ``Service``: started with the HTTP server in one
/// service group and, on graceful shutdown, stopped after the server (the group stops services in
/// reverse order), so it finishes what the last requests left. Inside Lambda nothing runs between
/// requests on its own, so the Lambda entry calls ``runPending()`` after each invocation is
/// answered and before the next one is asked for.
public protocol BackgroundService: Service {
    /// Does the work that is pending now, one bounded step, and returns; never throws (a failure
    /// is logged and left for the next step). Inside Lambda it runs under a retry budget that ends
    /// before the invocation's deadline (``RetryBudget/current``).
    func runPending() async
}

extension KeyUsageRecorder: BackgroundService {
    /// Writes the uses noted so far (``flush()``).
    public func runPending() async { await flush() }
}
