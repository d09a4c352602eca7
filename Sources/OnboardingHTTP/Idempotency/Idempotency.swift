import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import OnboardingCore
import RequestBudget

/// `Idempotency-Key` on the creating POSTs (Stripe's contract).
///
/// - same key, same request (method, path, body bytes): the first response is replayed (status,
///   body, headers) with `Idempotent-Replayed: true`;
/// - same key, another request: `422` problem `idempotency-key-reused`;
/// - same key while the first request is still being served: `409` problem `request-in-progress`
///   with `Retry-After`.
///
/// Keys are scoped to the caller: the anonymous caller by the key alone (never the client's
/// address), a tenant by its tenant, the admin by the admin. A record lives 24 hours.
///
/// The store never holds the key, the request or the response in clear: the record is named by
/// SHA-256(scope, key); the request's fingerprint is an HMAC-SHA256 and the response is sealed
/// with AES-GCM, both under keys derived from the Idempotency-Key by HKDF-SHA256 (salt and info
/// naming the version and the scope). So an onboarding's API key can be replayed to the caller
/// who holds the Idempotency-Key, and to nobody who reads the table.
struct Idempotency: Sendable {
    let records: IdempotencyRecords

    /// How long a claim outlives the request's own deadline before another may take it over.
    static let leaseMargin: Duration = .seconds(2)
    /// The claim's lease when no request budget is bound (never the case behind the router).
    static let defaultLease: Duration = .seconds(30)
    /// What the HKDF info and the record id name, so a later format can change them.
    static let version = "onboard-idempotency-v1"

    init(store: any TenantStore, clock: any WallClock) {
        self.records = IdempotencyRecords(store: store, clock: clock)
    }

    /// Serves a creating request: plainly without an `Idempotency-Key`; with one, replays,
    /// refuses or claims, and runs `operation` with the ``Completion`` whose write its
    /// transaction must include.
    /// - Parameters:
    ///   - body: the request's body bytes, as received (the fingerprint covers them).
    ///   - operation: creates, and returns the response it built (before its transaction committed).
    func respond(
        to request: Request, context: AppRequestContext, body: ByteBuffer,
        _ operation: (Completion?) async throws -> StoredResponse
    ) async throws -> Response {
        guard let key = try Self.key(of: request) else { return try await operation(nil).response }
        let keys = Keys(key: key, scope: Self.scope(of: context.identity))
        let fingerprint = keys.fingerprint(method: request.method.rawValue, path: request.uri.path, body: body.readableBytesView)
        let lease = RetryBudget.current?.remaining ?? Self.defaultLease
        switch try await records.claim(id: keys.recordID, fingerprint: fingerprint, leaseDuration: lease + Self.leaseMargin) {
        case .mismatch:
            throw Problem.idempotencyKeyReused()
        case .inProgress(let retryAfter):
            throw Problem.requestInProgress(retryAfter: retryAfter)
        case .completed(let sealed):
            var response = try keys.open(sealed).response
            response.headers[.idempotentReplayed] = "true"
            return response
        case .claimed(let claim):
            let completion = Completion(records: records, keys: keys, lease: claim)
            do {
                return try await operation(completion).response
            } catch {
                // Nothing was created (or the answer was lost): give the claim back so a retry
                // runs afresh, unless the transaction did commit, whose response is then ours.
                let release: IdempotencyRecords.Release
                do {
                    release = try await records.release(claim)
                } catch let releaseError {
                    // The lease expires on its own; until then a retry is told 409.
                    context.logger.warning("idempotency claim not released", metadata: ["error": "\(releaseError)"])
                    throw error
                }
                switch release {
                case .released: throw error
                case .completed(let sealed): return try keys.open(sealed).response
                case .lost: throw Problem.requestInProgress(retryAfter: 1)
                }
            }
        }
    }

    /// The write that stores a claimed request's response, for the operation's transaction.
    struct Completion {
        let records: IdempotencyRecords
        let keys: Keys
        let lease: IdempotencyRecords.Lease

        /// The completion write holding `response`, sealed.
        func write(_ response: StoredResponse) throws -> TransactionWrite {
            records.completion(lease, response: try keys.seal(response))
        }
    }

    /// The `Idempotency-Key` header, if sent: 1-255 printable ASCII characters, once.
    static func key(of request: Request) throws -> String? {
        let values = request.headers[values: .idempotencyKey]
        guard let value = values.first else { return nil }
        guard values.count == 1 else { throw Problem.badRequest("Send one Idempotency-Key header, not \(values.count)") }
        guard (1...255).contains(value.utf8.count), value.utf8.allSatisfy({ (0x20...0x7E).contains($0) }) else {
            throw Problem.badRequest("An Idempotency-Key is 1 to 255 printable ASCII characters (a UUID is a good choice)")
        }
        return value
    }

    /// Whose keys these are: the admin, one tenant, or the anonymous caller (the key alone).
    static func scope(of principal: Principal?) -> String {
        switch principal {
        case nil: "anonymous"
        case .admin: "admin"
        case .tenant(let id): "tenant:\(id.rawValue)"
        }
    }

    /// Everything derived from one Idempotency-Key in one scope.
    struct Keys {
        /// Lower-case hex SHA-256 of version, scope and key: the record's name.
        let recordID: String
        private let fingerprintKey: SymmetricKey
        private let sealingKey: SymmetricKey

        init(key: String, scope: String) {
            recordID = ByteEncoding.hex(SHA256.hash(data: Array("\(Idempotency.version)\n\(scope)\n\(key)".utf8)))
            let material = SymmetricKey(data: Array(key.utf8))
            let salt = Array(Idempotency.version.utf8)
            fingerprintKey = HKDF<SHA256>.deriveKey(
                inputKeyMaterial: material, salt: salt, info: Array("fingerprint\n\(scope)".utf8), outputByteCount: 32
            )
            sealingKey = HKDF<SHA256>.deriveKey(
                inputKeyMaterial: material, salt: salt, info: Array("response\n\(scope)".utf8), outputByteCount: 32
            )
        }

        /// HMAC-SHA256 of method, path and body: equal for the same request, and says nothing
        /// about the body (a name, a phone number) to whoever lacks the key.
        func fingerprint(method: String, path: String, body: some Collection<UInt8>) -> String {
            var hmac = HMAC<SHA256>(key: fingerprintKey)
            hmac.update(data: Array("\(method)\n\(path)\n".utf8))
            hmac.update(data: Array(body))
            return ByteEncoding.hex(hmac.finalize())
        }

        /// The response, AES-GCM sealed (bound to this record), base64url.
        func seal(_ response: StoredResponse) throws -> String {
            let box = try AES.GCM.seal(response.encoded(), using: sealingKey, authenticating: Array(recordID.utf8))
            guard let combined = box.combined else { throw Problem.internalError() }
            return ByteEncoding.base64URL(combined)
        }

        /// The response a record holds.
        func open(_ sealed: String) throws -> StoredResponse {
            guard let combined = ByteEncoding.base64URLDecoded(sealed) else {
                throw StoreError(.unavailable, "an idempotency record's response is not base64url")
            }
            let plain = try AES.GCM.open(AES.GCM.SealedBox(combined: combined), using: sealingKey, authenticating: Array(recordID.utf8))
            return try StoredResponse(decoding: Array(plain))
        }
    }
}

/// Where the idempotency record of a key lives, for operators and tests (the item holds no
/// secret in clear, only what ``Idempotency`` derives from the key).
public enum IdempotencyRecordLocation {
    /// The item of the record for `idempotencyKey` sent by `caller` (`nil`: anonymous).
    public static func key(idempotencyKey: String, caller: Principal?) -> ItemKey {
        IdempotencyRecords.key(id: Idempotency.Keys(key: idempotencyKey, scope: Idempotency.scope(of: caller)).recordID)
    }
}

/// A response as an idempotency record keeps it: status, headers, body.
struct StoredResponse: Sendable {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var body: [UInt8]

    /// A JSON response as ``JSONBody/response(_:_:headers:)`` writes it.
    static func json(_ status: HTTPResponse.Status, _ body: [String: AttributeValue], headers: HTTPFields = [:]) -> StoredResponse {
        var headers = headers
        headers[.contentType] = MediaTypes.json
        headers[.cacheControl] = "no-store"
        return StoredResponse(status: status, headers: headers, body: JSONCodec.serializeBytes(.map(body)))
    }

    var response: Response {
        Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }

    /// `{"status": 201, "headers": [[name, value], …], "body": "<base64url>"}`.
    func encoded() -> [UInt8] {
        JSONCodec.serializeBytes(.map([
            "status": .int(status.code),
            "headers": .list(headers.map { .list([.string($0.name.rawName), .string($0.value)]) }),
            "body": .string(ByteEncoding.base64URL(body)),
        ]))
    }

    init(status: HTTPResponse.Status, headers: HTTPFields, body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    init(decoding bytes: [UInt8]) throws {
        let corrupt = StoreError(.unavailable, "an idempotency record's response cannot be read")
        guard case .map(let object)? = try? JSONCodec.parse(bytes), let code = object["status"]?.intValue,
            case .list(let pairs)? = object["headers"], let body = object["body"]?.stringValue.flatMap(ByteEncoding.base64URLDecoded)
        else { throw corrupt }
        var headers = HTTPFields()
        for case .list(let pair) in pairs {
            guard pair.count == 2, let text = pair[0].stringValue, let name = HTTPField.Name(text), let value = pair[1].stringValue else { throw corrupt }
            headers.append(HTTPField(name: name, value: value))
        }
        self.init(status: HTTPResponse.Status(code: code), headers: headers, body: body)
    }
}

extension HTTPField.Name {
    /// The client's key for a retry-safe creating request.
    static let idempotencyKey = HTTPField.Name("Idempotency-Key")!
    /// `true` on a response replayed from an idempotency record.
    static let idempotentReplayed = HTTPField.Name("Idempotent-Replayed")!
}

extension Problem {
    static func idempotencyKeyReused() -> Problem {
        Problem(
            .unprocessableContent, code: "idempotency-key-reused", title: "Idempotency key reused",
            detail: "This Idempotency-Key was used for a different request (method, path or body) in the last 24 hours; use a new key for a new request"
        )
    }

    static func requestInProgress(retryAfter: Int) -> Problem {
        var problem = Problem(
            .conflict, code: "request-in-progress", title: "Request in progress",
            detail: "A request with this Idempotency-Key is still being served; retry after Retry-After seconds to get its response"
        )
        problem.headers[.retryAfter] = String(max(1, retryAfter))
        return problem
    }
}
