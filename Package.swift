// swift-tools-version:6.2
// Hummingbird 2.28 needs tools 6.2; everything here builds in the Swift 6 language mode.

import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]
// Tests import what they use at the top level; member-import strictness buys little there.
let testSwiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "onboard",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "onboard", targets: ["onboard"]),
        .library(name: "OnboardingCore", targets: ["OnboardingCore"]),
        .library(name: "OnboardingSQLite", targets: ["OnboardingSQLite"]),
        .library(name: "OnboardingHTTP", targets: ["OnboardingHTTP"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        // One request's deadline and retries, shared by every layer that retries. Standard library only.
        .target(
            name: "RequestBudget",
            swiftSettings: swiftSettings
        ),
        // The project's one JSON writer and one base64 codec (both alphabets), below every module
        // that writes JSON or base64 (AWSClient may not depend on OnboardingCore). Standard library only.
        .target(
            name: "WireFormat",
            swiftSettings: swiftSettings
        ),
        // The domain: tenants, validation, ids, services and the store contract. Foundation only
        // (and RequestBudget, so that its retries share the request's budget; WireFormat).
        .target(
            name: "OnboardingCore",
            dependencies: ["RequestBudget", "WireFormat"],
            swiftSettings: swiftSettings
        ),
        // AWS Signature Version 4 and credentials; swift-crypto only.
        .target(
            name: "SigV4",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // One signed AWS JSON call with retries and typed errors; DynamoDB's operations.
        .target(
            name: "AWSClient",
            dependencies: [
                "SigV4",
                "RequestBudget",
                "WireFormat",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The single table on DynamoDB.
        .target(
            name: "OnboardingDynamoDB",
            dependencies: [
                "OnboardingCore",
                "AWSClient",
                "WireFormat",
                "RequestBudget",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // What tests share: moto's server started and stopped by the tests, skip-or-fail rules,
        // Cognito user pools on moto and tokens signed with moto's key (jwt-kit).
        .target(
            name: "OnboardTestSupport",
            dependencies: [
                "AWSClient", "SigV4", "OnboardingCore", .product(name: "JWTKit", package: "jwt-kit"), .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The Lambda custom runtime: the Runtime API loop and API Gateway events ⇄ HTTP.
        .target(
            name: "LambdaRuntime",
            dependencies: [
                "RequestBudget",
                "WireFormat",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The embedded single table on SQLite (GRDB, WAL, group commit).
        .target(
            name: "OnboardingSQLite",
            dependencies: [
                "OnboardingCore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The one router: routes, middleware, problem+json, the OpenAPI document.
        .target(
            name: "OnboardingHTTP",
            dependencies: [
                "OnboardingCore",
                "RequestBudget",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdAuth", package: "hummingbird-auth"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            resources: [.embedInCode("Resources/openapi.yaml")],
            swiftSettings: swiftSettings
        ),
        // Lifecycle events leave the process here: the outbox dispatcher and its sinks (signed
        // webhooks, SNS, EventBridge, the log).
        .target(
            name: "OnboardingEvents",
            dependencies: [
                "OnboardingCore",
                "AWSClient",
                "RequestBudget",
                "WireFormat",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The one wiring: settings, the opened store, `buildApplication` and its background
        // services; `serve`, the Lambda entry and the HTTP tests all build the application here.
        .target(
            name: "OnboardingApp",
            dependencies: [
                "OnboardingCore",
                "OnboardingEvents",
                "OnboardingHTTP",
                "OnboardingSQLite",
                "OnboardingDynamoDB",
                "AWSClient",
                "SigV4",
                "LambdaRuntime",
                "RequestBudget",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // The executable: argument parsing, configuration and wiring only.
        .executableTarget(
            name: "onboard",
            dependencies: [
                "OnboardingApp",
                "OnboardingEvents",
                "OnboardingCore",
                "OnboardingSQLite",
                "OnboardingDynamoDB",
                "OnboardingHTTP",
                "AWSClient",
                "SigV4",
                "LambdaRuntime",
                "RequestBudget",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // `swift run -c release onboard-bench`: the per-request cost of mapping, encoding, signing.
        .executableTarget(
            name: "onboard-bench",
            dependencies: ["AWSClient", "SigV4", "OnboardingCore", "OnboardingDynamoDB"],
            swiftSettings: swiftSettings
        ),
        // JSONCodec's round trip under libFuzzer (`scripts/fuzz.sh` builds it with
        // `-sanitize=fuzzer,address -DFUZZING`); an ordinary build replays corpus files instead.
        .executableTarget(
            name: "onboard-fuzz-json",
            dependencies: ["OnboardingCore"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "OnboardingCoreTests",
            dependencies: ["OnboardingCore", "WireFormat"],
            swiftSettings: testSwiftSettings
        ),
        .testTarget(
            name: "OnboardingSQLiteTests",
            dependencies: [
                "OnboardingCore",
                "OnboardingSQLite",
                "OnboardTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: testSwiftSettings
        ),
        .testTarget(
            name: "OnboardingHTTPTests",
            dependencies: [
                "OnboardingEvents",
                "OnboardingApp",
                "OnboardingCore",
                "OnboardingSQLite",
                "OnboardingDynamoDB",
                "OnboardTestSupport",
                "AWSClient",
                "OnboardingHTTP",
                "WireFormat",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: testSwiftSettings
        ),
        .testTarget(
            name: "SigV4Tests",
            dependencies: ["SigV4", "OnboardTestSupport"],
            exclude: ["Resources"],
            swiftSettings: testSwiftSettings
        ),
        .testTarget(
            name: "AWSClientTests",
            dependencies: [
                "OnboardingApp",
                "AWSClient",
                "WireFormat",
                "RequestBudget",
                "SigV4",
                "OnboardingCore",
                "OnboardingHTTP",
                "OnboardingDynamoDB",
                "OnboardTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: testSwiftSettings
        ),
        .testTarget(
            name: "LambdaRuntimeTests",
            dependencies: [
                "OnboardingEvents",
                "OnboardingApp",
                "LambdaRuntime",
                "OnboardingCore",
                "OnboardingHTTP",
                "OnboardingSQLite",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            exclude: ["Events"],
            swiftSettings: testSwiftSettings
        ),
        // The outbox dispatcher and the sinks, against real peers: SQLite, moto's SNS/EventBridge/SQS,
        // webhook receivers on 127.0.0.1.
        .testTarget(
            name: "OnboardingEventsTests",
            dependencies: [
                "OnboardingEvents",
                "OnboardingCore",
                "OnboardingSQLite",
                "OnboardingDynamoDB",
                "OnboardTestSupport",
                "AWSClient",
                "RequestBudget",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "InMemoryLogging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: testSwiftSettings
        ),
        // The store contract's semantics, run against every store.
        .testTarget(
            name: "TenantStoreConformanceTests",
            dependencies: ["OnboardingCore", "OnboardingSQLite", "OnboardingDynamoDB", "OnboardTestSupport", "AWSClient"],
            swiftSettings: testSwiftSettings
        ),
        // Runs the built `onboard` binary: start-up, configuration errors, crash and restart.
        .testTarget(
            name: "OnboardEndToEndTests",
            dependencies: [
                "OnboardingEvents",
                "onboard",
                "OnboardingCore",
                "OnboardingDynamoDB",
                "OnboardingSQLite",
                "OnboardTestSupport",
                "AWSClient",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: testSwiftSettings
        ),
    ]
)
