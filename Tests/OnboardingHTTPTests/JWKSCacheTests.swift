import Foundation
import InMemoryLogging
import Logging
import OnboardingApp
import OnboardingCore
import OnboardingHTTP
import Testing

/// The JWKS cache over a real issuer on 127.0.0.1 (``LocalIssuer``), with a clock the test moves:
/// stale-while-revalidate after the maximum age, distrust after the grace period.
@Suite("JWKS cache: stale-while-revalidate, maximum age and grace")
struct JWKSCacheTests {
    static let tenant = "0195f3c4-7a1e-7b2c-9d3e-4f5a6b7c8d9e"
    static let maximumKeyAge = 600.0
    static let grace = 600.0

    func verifier(_ issuer: LocalIssuer, _ url: String, clock: MovableClock, logs: InMemoryLogHandler) -> JWTVerifier {
        JWTVerifier(
            configuration: issuer.configuration(
                jwksURL: url, maximumKeyAge: .seconds(Self.maximumKeyAge), keyGracePeriod: .seconds(Self.grace)
            ),
            logger: Logger(label: "onboard.jwt", factory: { _ in logs }),
            now: { clock.now }
        )
    }

    func logText(_ logs: InMemoryLogHandler) -> String {
        logs.entries.map { "\($0.level) \($0.message)" }.joined(separator: "\n")
    }

    @Test("a refresh that hangs stalls no request whose key is known; a new kid waits for that one refresh")
    func hangingRefresh() async throws {
        try await LocalIssuer.run { issuer, url in
            let clock = MovableClock()
            let logs = InMemoryLogHandler()
            let verifier = verifier(issuer, url, clock: clock, logs: logs)
            let expected = Principal.tenant(try #require(TenantID(Self.tenant)))
            let token = try await issuer.token(kid: "k1", tenant: Self.tenant)
            #expect(try await verifier.principal(for: token) == expected)
            #expect(await verifier.jwksFetchCount == 1)

            // The keys pass their maximum age; the issuer's next answer hangs until released.
            issuer.setMode(.hang)
            clock.advance(seconds: Self.maximumKeyAge + 1)
            let principals = try await withThrowingTaskGroup(of: Principal?.self) { group in
                for _ in 0..<8 { group.addTask { try await verifier.principal(for: token) } }
                return try await group.reduce(into: [Principal?]()) { $0.append($1) }
            }
            #expect(principals == Array(repeating: expected, count: 8), "the known key verifies while its refresh hangs")
            #expect(await verifier.jwksFetchCount == 2, "one background refresh for all of them")
            // (Had they waited for the refresh they would wait still: the issuer answers only
            // when released, and the fetch's timeout here is 300 s.)
            #expect(!logText(logs).contains("cannot fetch"), "\(logText(logs))")

            // The issuer rotates a key in and its hanging answer goes out: a token naming the new
            // key waits for that same refresh (no second fetch) and verifies.
            issuer.addKey("k2")
            issuer.release()
            let rotated = try await issuer.token(kid: "k2", tenant: Self.tenant)
            #expect(try await verifier.principal(for: rotated) == expected)
            #expect(await verifier.jwksFetchCount == 2)
        }
    }

    @Test("while refreshes keep failing, keys are trusted until the maximum age plus the grace period, then JWTs are refused")
    func failingRefreshes() async throws {
        try await LocalIssuer.run { issuer, url in
            let clock = MovableClock()
            let logs = InMemoryLogHandler()
            let verifier = verifier(issuer, url, clock: clock, logs: logs)
            let expected = Principal.tenant(try #require(TenantID(Self.tenant)))
            let token = try await issuer.token(kid: "k1", tenant: Self.tenant)
            #expect(try await verifier.principal(for: token) == expected)

            issuer.setMode(.fail)
            clock.advance(seconds: Self.maximumKeyAge + 1)
            #expect(try await verifier.principal(for: token) == expected, "within the grace period the known key is used")
            // The background refresh fails (and says so).
            let deadline = ContinuousClock.now + .seconds(120)
            while !logText(logs).contains("cannot fetch the OIDC issuer's JWKS"), ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(20))
            }
            #expect(logText(logs).contains("error cannot fetch the OIDC issuer's JWKS"))
            #expect(await verifier.jwksFetchCount == 2)

            // Past the maximum age plus the grace period, the next refresh fails too: refused.
            clock.advance(seconds: Self.grace)
            do {
                _ = try await verifier.principal(for: token)
                Issue.record("a key older than the maximum age plus the grace period was trusted")
            } catch let problem as Problem {
                #expect(problem.status == .unauthorized)
                #expect(problem.detail.contains("signing keys could not be fetched"), "\(problem.detail)")
            }
            #expect(await verifier.jwksFetchCount == 3)
            #expect(issuer.requests == 3)

            // The issuer answers again: after the retry interval the keys are fetched and trusted.
            issuer.setMode(.serve)
            clock.advance(seconds: 6)
            #expect(try await verifier.principal(for: token) == expected)
            #expect(await verifier.jwksFetchCount == 4)
        }
    }

    @Test("the maximum age and the grace period are settings, with documented defaults and bounds")
    func settings() throws {
        let issuer = ["oidc_issuer": LocalIssuer.issuer, "oidc_client_ids": LocalIssuer.clientID]
        let defaults = try #require(try ServeConfiguration.resolve(flags: issuer, environment: [:]).oidc.verifier)
        #expect(defaults.maximumKeyAge == .seconds(3600))
        #expect(defaults.keyGracePeriod == .seconds(3600))
        let set = try #require(try ServeConfiguration.resolve(
            flags: issuer.merging(["oidc_jwks_max_age": "600s"]) { $1 }, environment: ["ONBOARD_OIDC_JWKS_GRACE": "0"]
        ).oidc.verifier)
        #expect(set.maximumKeyAge == .seconds(600))
        #expect(set.keyGracePeriod == .zero)
        for (key, value) in [("oidc_jwks_max_age", "59s"), ("oidc_jwks_max_age", "soon"), ("oidc_jwks_grace", "604801s")] {
            #expect(throws: ConfigurationError.self, "\(key)=\(value)") {
                try ServeConfiguration.resolve(flags: issuer.merging([key: value]) { $1 }, environment: [:])
            }
        }
        #expect(throws: ConfigurationError.self, "no issuer") {
            try ServeConfiguration.resolve(flags: ["oidc_jwks_grace": "60s"], environment: [:])
        }
    }

    @Test("a verified token is remembered, but never past its exp: the next use after it is refused")
    func rememberedTokenExpires() async throws {
        try await LocalIssuer.run { issuer, url in
            let clock = MovableClock()
            var configuration = issuer.configuration(jwksURL: url, maximumKeyAge: .seconds(86_400), keyGracePeriod: .seconds(86_400))
            // Longer than the token lives: only its exp can end what is remembered.
            configuration.verifiedTokenMaxAge = .seconds(86_400)
            let verifier = JWTVerifier(configuration: configuration, now: { clock.now })
            let token = try await issuer.token(kid: "k1", tenant: Self.tenant)
            let expected = Principal.tenant(try #require(TenantID(Self.tenant)))
            #expect(try await verifier.principal(for: token) == expected)
            clock.advance(seconds: 3000)
            #expect(try await verifier.principal(for: token) == expected)
            // exp is an hour after issue; the leeway is 60 s.
            clock.advance(seconds: 600 + 61)
            await #expect(throws: Problem.self) { try await verifier.principal(for: token) }
        }
    }
}
