import Foundation
import Synchronization
import Testing

/// A tool outside Swift that some tests need.
public enum Requirement: String, Sendable, CaseIterable {
    /// `python3` on the `PATH`.
    case python3
    /// moto's server for Python (`python3 -m moto.server`), with flask.
    case moto
    /// botocore for Python (the SigV4 reference).
    case botocore
    /// boto3 for Python (set-up calls on moto).
    case boto3

    /// Why a test needing it is skipped, and how to install it.
    public var missingReason: String {
        switch self {
        case .python3: "python3 is not installed"
        case .moto: "moto is not installed (pip install 'moto[server]')"
        case .botocore: "botocore is not installed (pip install botocore)"
        case .boto3: "boto3 is not installed (pip install boto3)"
        }
    }

    /// The Python statement that succeeds only when the tool is there.
    var probe: String {
        switch self {
        case .python3: "import sys"
        case .moto: "import moto.server, flask, werkzeug"
        case .botocore: "import botocore.auth"
        case .boto3: "import boto3"
        }
    }
}

/// Whether the tools some tests need are here, probed once per test process.
///
/// Tests state what they need with a trait, `@Test(.requires(.moto))`: outside CI a test whose
/// tool is missing shows as SKIPPED with the reason; under `CI=true` it always runs, so a missing
/// tool fails it. `ONBOARD_TEST_PRETEND_MISSING=moto,botocore` (a comma-separated list of
/// ``Requirement`` names) makes the probes report those tools missing, to check that behaviour.
public enum Requirements {
    /// Whether this run is CI (`CI=true`), where tests needing a tool must run, never skip.
    public static var isCI: Bool { ProcessInfo.processInfo.environment["CI"] == "true" }

    /// A test needing moto runs (CI, or moto is installed).
    public static var moto: Bool { shouldRun(.moto) }
    /// A test needing botocore runs (CI, or botocore is installed).
    public static var botocore: Bool { shouldRun(.botocore) }
    /// A test needing boto3 runs (CI, or boto3 is installed).
    public static var boto3: Bool { shouldRun(.boto3) }
    /// A test needing python3 runs (CI, or python3 is installed).
    public static var python3: Bool { shouldRun(.python3) }

    /// Whether a test needing `requirement` runs: always under CI, else when it is installed.
    public static func shouldRun(_ requirement: Requirement) -> Bool {
        isCI || isInstalled(requirement)
    }

    /// Whether `requirement` is installed (probed once; `false` when pretended missing).
    public static func isInstalled(_ requirement: Requirement) -> Bool {
        // Every tool here is a Python one: without python3, none is there.
        if pretendedMissing.contains(requirement.rawValue) || pretendedMissing.contains(Requirement.python3.rawValue) {
            return false
        }
        return probed.withLock { results in
            if let known = results[requirement] { return known }
            let found = runProbe(requirement.probe)
            results[requirement] = found
            return found
        }
    }

    /// Throws ``UnavailableInThisEnvironment`` naming the tool and how to install it when
    /// `requirement` is missing: called where a tool is started, so a test that runs under CI
    /// without it fails with that message rather than an obscure one.
    public static func check(_ requirement: Requirement) throws {
        guard isInstalled(requirement) else {
            throw UnavailableInThisEnvironment(description: requirement.missingReason)
        }
    }

    private static var pretendedMissing: Set<String> {
        let list = ProcessInfo.processInfo.environment["ONBOARD_TEST_PRETEND_MISSING"] ?? ""
        return Set(list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
    }

    private static let probed = Mutex<[Requirement: Bool]>([:])

    private static func runProbe(_ statement: String) -> Bool {
        let probe = try? ChildProcess.run(executable: "/usr/bin/env", arguments: ["python3", "-c", statement], standardError: .null)
        return probe?.status.isSuccess ?? false
    }
}

extension Trait where Self == ConditionTrait {
    /// Runs the test (or every test of the suite) only where `requirement` is installed, and
    /// always under `CI=true`; elsewhere the test is reported as skipped with the reason.
    public static func requires(_ requirement: Requirement) -> Self {
        .enabled(if: Requirements.shouldRun(requirement), Comment(rawValue: requirement.missingReason))
    }
}
