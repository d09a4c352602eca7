import OnboardingHTTP

/// The offboarding worker runs beside the server, and between Lambda invocations its
/// ``OffboardingWorker/runPending()`` finishes a few batches of unfinished offboardings.
extension OffboardingWorker: BackgroundService {}
