import AsyncHTTPClient
import Foundation
import GRDB
import HTTPTypes
import NIOCore
import OnboardingCore
import Testing
import OnboardTestSupport

@Suite("POST /onboard", .testStoreAvailable)
struct OnboardTests {
    @Test("the brief's curl example creates a tenant that can be read back")
    func briefExample() async throws {
        try await TestServer.run { api, fixture in
            // curl -X POST .../onboard/ -H "Content-Type: application/json" -d '{"clientName": "Acme Corp", "clientPhone": "+1234567890"}'
            let response = try await api.onboard(#"{"clientName": "Acme Corp", "clientPhone": "+1234567890"}"#, path: "/onboard/")
            #expect(response.status == 201)
            #expect(response["message"] == "Client onboarded successfully")
            let tenantId = try #require(response["tenantId"])
            #expect(TenantID(tenantId)?.rawValue == tenantId, "the id is a lowercase UUID")
            #expect(Array(tenantId)[14] == "7", "generated ids are UUID version 7")
            #expect(response.headers[.location] == "/tenants/\(tenantId)")

            let tenant = try await api.tenant(tenantId)
            #expect(tenant.status == 200)
            #expect(tenant["tenantId"] == tenantId)
            #expect(tenant["clientName"] == "Acme Corp")
            #expect(tenant["clientPhone"] == "+1234567890")
            #expect(tenant["status"] == "ACTIVE")
            let createdAt = try #require(tenant["createdAt"])
            let parsed = try #require(try? Date(createdAt, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true)))
            #expect(abs(parsed.timeIntervalSinceNow) < 60)
            #expect(response.json["tenant"] == .map(tenant.json), "the 201 body carries the stored profile")
        }
    }

    @Test(
        "the profile is one item in the single table, readable with plain SQL",
        .enabled(if: !TestStore.isDynamoDB, "reads the SQLite file (the store conformance suite covers DynamoDB's items)")
    )
    func storedItemLayout() async throws {
        try await TestServer.run { api, fixture in
            let sqlitePath = try #require(fixture.sqlitePath)
            let response = try await api.onboard(#"{"clientName": "  Société Générale ", "clientPhone": "+33 1 42 14 20 00"}"#)
            #expect(response.status == 201)
            let tenantId = try #require(response["tenantId"])
            // What an operator sees with `sqlite3 onboarding.sqlite 'SELECT … FROM items'`.
            let row = try #require(try DatabaseQueue(path: sqlitePath).read { db in
                try Row.fetchOne(db, sql: "SELECT tenantId, resourceKey, clientName, clientPhone, createdAt, status, version FROM items WHERE resourceKey LIKE 'TENANT#%'")
            })
            #expect(row["tenantId"] as String == tenantId)
            #expect(row["resourceKey"] as String == "TENANT#\(tenantId)")
            #expect(row["clientName"] as String == "Société Générale", "trimmed")
            #expect(row["clientPhone"] as String == "+33142142000", "stored normalised")
            #expect(row["status"] as String == "ACTIVE")
            #expect(row["version"] as Int == 1)
            #expect((row["createdAt"] as String).hasSuffix("Z"))
        }
    }

    @Test("names in any script are accepted and stored NFC-normalised", arguments: [
        ("株式会社サンプル", "株式会社サンプル"),
        ("Socie\u{301}te\u{301} Ge\u{301}ne\u{301}rale", "Société Générale"),
        ("Ελληνική Εταιρεία", "Ελληνική Εταιρεία"),
        ("شركة المثال", "شركة المثال"),
        ("O'Brien & Sons, Ltd.", "O'Brien & Sons, Ltd."),
        ("🚀 Rocket Co", "🚀 Rocket Co"),
    ])
    func unicodeNames(sent: String, stored: String) async throws {
        try await TestServer.run { api, _ in
            let body = JSONCodec.serialize(.map(["clientName": .string(sent), "clientPhone": .string("+81 3-1234-5678")]))
            let response = try await api.onboard(body)
            #expect(response.status == 201)
            let tenant = try await api.tenant(try #require(response["tenantId"]))
            #expect(tenant["clientName"] == stored)
            #expect(tenant["clientName"]?.unicodeScalars.elementsEqual(stored.unicodeScalars) == true, "NFC, scalar for scalar")
        }
    }

    @Test("phone numbers are normalised to E.164", arguments: [
        ("+1 (415) 555-0123", "+14155550123"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+49.30.123456", "+4930123456"),
        ("+1\u{00A0}415\u{00A0}555\u{00A0}0123", "+14155550123"),
        ("+123456789012345", "+123456789012345"),
        ("+12345678", "+12345678"),
    ])
    func phoneNormalisation(sent: String, stored: String) async throws {
        try await TestServer.run { api, _ in
            let body = JSONCodec.serialize(.map(["clientName": .string("Acme"), "clientPhone": .string(sent)]))
            let response = try await api.onboard(body)
            #expect(response.status == 201)
            #expect(response.json["tenant"]?.mapValue?["clientPhone"]?.stringValue == stored)
        }
    }

    @Test("the same client onboarded twice gets two tenants")
    func twoOnboardingsTwoTenants() async throws {
        try await TestServer.run { api, fixture in
            let first = try await api.onboard(#"{"clientName": "Acme Corp", "clientPhone": "+1234567890"}"#)
            let second = try await api.onboard(#"{"clientName": "Acme Corp", "clientPhone": "+1234567890"}"#)
            #expect(first.status == 201 && second.status == 201)
            #expect(first["tenantId"] != second["tenantId"])
            #expect(try await fixture.itemCount() == 8, "per tenant: the profile, its first API key, the key's look-up item and its tenant.onboarded event")
        }
    }

    @Test("1,000 concurrent onboardings (200 on moto) over 64 connections give as many distinct tenants, all readable", .heavyLoad)
    func thousandConcurrentOnboardings() async throws {
        // moto deep-copies the whole table for every item of a TransactWriteItems (its rollback),
        // so each onboarding there costs O(table size): 1,000 would take minutes. 200 concurrent
        // onboardings still exercise every race the store can have.
        let count = TestStore.isDynamoDB ? 200 : 1000
        try await TestServer.run(logLevel: .warning) { api, fixture in
            var configuration = HTTPClient.Configuration()
            configuration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)
            // Requests beyond the pool's connections wait for one; on a busy machine (CI runs every suite at
            // once on 2 cores) that wait can pass AsyncHTTPClient's default 10 s, which is not what is tested.
            configuration.timeout = .init(connect: .seconds(120), read: .seconds(300))
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            let base = "http://127.0.0.1:\(fixture.port)"
            do {
                let ids = try await withThrowingTaskGroup(of: String.self) { group in
                    for index in 0..<count {
                        group.addTask {
                            var request = HTTPClientRequest(url: base + "/onboard")
                            request.method = .POST
                            request.headers.add(name: "Content-Type", value: "application/json")
                            let phone = "+1555\(String(1_000_000 + index))"
                            request.body = .bytes(ByteBuffer(string: #"{"clientName": "Client \#(index)", "clientPhone": "\#(phone)"}"#))
                            let response = try await client.execute(request, timeout: .seconds(60))
                            let body = try await response.body.collect(upTo: 1 << 16)
                            #expect(response.status.code == 201)
                            return (try? JSONCodec.parse(body.readableBytesView))?.mapValue?["tenantId"]?.stringValue ?? ""
                        }
                    }
                    var ids: [String] = []
                    for try await id in group { ids.append(id) }
                    return ids
                }
                #expect(ids.count == count)
                #expect(Set(ids).count == count, "every tenant id is distinct")
                #expect(!ids.contains(""))
                #expect(try await fixture.itemCount() == 4 * count, "a profile, a key, its look-up item and an event each")
                // Every acknowledged tenant is readable, with the data it was created with.
                for id in ids {
                    let tenant = try await api.tenant(id)
                    #expect(tenant.status == 200)
                    #expect(tenant["clientName"]?.hasPrefix("Client ") == true)
                }
            } catch {
                try await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
    }
}
