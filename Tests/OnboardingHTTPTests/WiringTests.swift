import HTTPTypes
import OnboardingApp
import OnboardingCore
import OnboardingHTTP
import Testing

@Suite("One wiring: the tests' server is the application `onboard serve` builds", .testStoreAvailable)
struct WiringTests {
    @Test("TestServer serves buildApplication's application: serve's route table, background services and server settings")
    func testServerIsServe() async throws {
        try await TestServer.run { api, fixture in
            let tested = try #require(fixture.application, "TestServer did not build its server with buildApplication")
            // What `onboard serve --admin-token …` builds from its settings, here on the same store.
            let configuration = try ServeConfiguration.resolve(flags: [Setting.adminToken.key: TestServer.adminToken], environment: [:])
            let served = try await buildApplication(configuration, overrides: AppOverrides(store: fixture.store))

            func routes(_ app: OnboardApplication) -> [String] { app.routes.map { "\($0.method) \($0.path) \($0.access)" } }
            func services(_ app: OnboardApplication) -> [String] { app.backgroundServices.map { "\(type(of: $0))" } }
            #expect(routes(tested) == routes(served))
            #expect(services(tested) == services(served))
            #expect(services(tested).contains("KeyUsageRecorder"))
            #expect(tested.configuration.serverName == served.configuration.serverName)

            // The answers come from that application: the server name it sets, its middleware
            // (request id, problem+json for a path no route serves).
            let health = try await api.send(.get, "/health")
            #expect(health.status == 200)
            #expect(health.headers[.server] == "onboard")
            let unknown = try await api.send(.get, "/no-such-route")
            #expect(unknown.status == 404)
            #expect(unknown.headers[.contentType] == "application/problem+json")
            #expect(unknown.headers[HTTPField.Name("X-Request-Id")!] != nil)
        }
    }
}
