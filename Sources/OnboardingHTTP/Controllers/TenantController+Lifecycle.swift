import Foundation
import HTTPTypes
import Hummingbird
import Logging
import OnboardingCore

/// `PATCH /tenants/{tenantId}`, `POST /tenants/{tenantId}/suspend` and
/// `POST /tenants/{tenantId}/reactivate`: the tenant's changes after onboarding, through
/// ``TenantLifecycle``. Every answer carrying a tenant carries its `ETag` (`"<version>"`).
extension TenantController {
    /// The media types `PATCH /tenants/{tenantId}` accepts (RFC 7396 merge patch, or plain JSON
    /// read the same way).
    static let patchMediaTypes = ["application/merge-patch+json", MediaTypes.json]

    @Sendable func update(_ request: Request, context: AppRequestContext) async throws -> Response {
        let id = try Self.tenantID(context)
        let ifMatch = try Self.ifMatch(request)
        try Self.requirePatchContentType(request)
        // JSONBody reads (and size-checks) any JSON body; the media type was checked above.
        var head = request.head
        head.headerFields[.contentType] = MediaTypes.json
        let patch = TenantPatch(json: try await JSONBody.object(Request(head: head, body: request.body), context: context))
        let tenant = try await lifecycle.update(id, patch: patch, ifMatch: ifMatch)
        return Self.tenantResponse(tenant)
    }

    @Sendable func suspend(_ request: Request, context: AppRequestContext) async throws -> Response {
        let id = try Self.tenantID(context)
        let ifMatch = try Self.ifMatch(request)
        let object = try await JSONBody.object(request, context: context)
        // Every bad field at once: the reason's problem and any field the route does not know.
        var errors = object.keys.filter { $0 != "reason" }.sorted().map { field in
            FieldError(field: field, code: .unknownField, detail: "\(field) is not a field of this request; send only reason")
        }
        let reason = TenantLifecycle.validatedReason(RawField(object, "reason"))
        if case .failure(let invalid) = reason { errors = invalid.errors + errors }
        guard errors.isEmpty, case .success(let text) = reason else { throw ValidationError(errors) }
        let tenant = try await lifecycle.suspend(id, reason: text, ifMatch: ifMatch)
        context.logger.info("tenant suspended", metadata: ["tenantId": .string(id.rawValue)])
        return Self.tenantResponse(tenant)
    }

    @Sendable func reactivate(_ request: Request, context: AppRequestContext) async throws -> Response {
        let id = try Self.tenantID(context)
        let ifMatch = try Self.ifMatch(request)
        let tenant = try await lifecycle.reactivate(id, ifMatch: ifMatch)
        context.logger.info("tenant reactivated", metadata: ["tenantId": .string(id.rawValue)])
        return Self.tenantResponse(tenant)
    }

    /// A tenant with its `ETag`.
    static func tenantResponse(_ tenant: Tenant, status: HTTPResponse.Status = .ok) -> Response {
        JSONBody.response(status, APIRepresentation.tenant(tenant), headers: [.eTag: etag(tenant)])
    }

    /// The tenant's entity tag: its version, quoted (strong).
    static func etag(_ tenant: Tenant) -> String { "\"\(tenant.version)\"" }

    /// `If-Match`: `nil` when absent, empty or `*` (the tenant exists or the answer is 404 anyway);
    /// else the one version it names. A malformed value or a list of tags is a `400`; a
    /// well-formed tag that cannot be a version (weak, or not a number) can never match, so it
    /// asks for version 0 (none has it) and gets the `412`.
    static func ifMatch(_ request: Request) throws -> Int? {
        let values = request.headers[values: .ifMatch].filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        guard !values.isEmpty else { return nil }
        let usage = #"If-Match must be * or one entity tag, the tenant's ETag (e.g. "3")"#
        guard let list = EntityTagList(header: values.joined(separator: ", ")) else { throw Problem.badRequest(usage) }
        switch list {
        case .any:
            guard values.count == 1 else { throw Problem.badRequest(usage) }
            return nil
        case .tags(let tags):
            guard tags.count == 1, let tag = tags.first else { throw Problem.badRequest(usage) }
            // Strong comparison (RFC 9110 §13.1.1): a weak tag never matches.
            guard !tag.weak, tag.opaque.utf8.allSatisfy({ (0x30...0x39).contains($0) }), let version = Int(tag.opaque) else { return 0 }
            return version
        }
    }

    /// `application/merge-patch+json` or `application/json` (optionally `charset=utf-8`); else `415`.
    static func requirePatchContentType(_ request: Request) throws {
        func refused(_ detail: String) -> Problem {
            var problem = Problem(.unsupportedMediaType, code: "unsupported-media-type", title: "Unsupported media type", detail: detail)
            problem.headers[.acceptPatch] = patchMediaTypes.joined(separator: ", ")
            return problem
        }
        let accepted = "Send the patch as application/merge-patch+json or application/json"
        guard let header = request.headers[.contentType] else { throw refused("\(accepted) (Content-Type header missing)") }
        let parts = header.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard let type = parts.first, patchMediaTypes.contains(type) else { throw refused("\(accepted), not \(parts.first ?? header)") }
        for parameter in parts.dropFirst() where !parameter.isEmpty {
            let charset = parameter.replacingOccurrences(of: "\"", with: "")
            guard charset == "charset=utf-8" || charset == "charset=utf8" else { throw refused("\(accepted) in UTF-8") }
        }
    }
}

extension HTTPField.Name {
    /// RFC 5789 §3.1: the patch formats a resource accepts.
    static let acceptPatch = Self("Accept-Patch")!
}
