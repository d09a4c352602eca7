import OnboardingCore

/// Which credential a request claims to present, read from its `Authorization` header without
/// verifying anything: the key of its refused-credential bucket (with the client's address), so
/// one client's bad tokens slow down guesses at that credential, not everyone else's behind the
/// same address.
///
/// - `apikey:<keyId>`: a tenant API key (`onb_<keyId>_<secret>`; the key id is in the token);
/// - `admin`: a generated admin token (`onb_admin_…`);
/// - `jwt:<sub>`: a JWT, by its payload's unverified `sub` (a made-up `sub` only moves the guesser
///   to another bucket, which the per-address bucket bounds); `jwt` when it has no usable one;
/// - `other`: any other bearer token (a configured admin token included);
/// - `malformed`: a header that is not `Bearer <token>`.
///
/// Never a secret: the key id, the `sub` and these words are all the bucket key holds.
enum ClaimedCredential {
    /// JWTs longer than this are not looked into (`jwt`).
    static let maxJWTLength = 16 * 1024

    static func id(authorization header: String) -> String {
        guard let token = BearerAuthenticator.bearerToken(header) else { return "malformed" }
        if token.hasPrefix(StoredAdminTokenVerifier.generatedTokenPrefix) { return "admin" }
        if let keyId = apiKeyID(token) { return "apikey:" + keyId }
        if let jwt = jwtSubject(token) { return jwt }
        return "other"
    }

    /// `onb_<16 lowercase hex>_…` → the key id.
    static func apiKeyID(_ token: String) -> String? {
        let parts = token.split(separator: "_", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "onb", parts[1].utf8.count == 16,
            parts[1].utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
        else { return nil }
        return String(parts[1])
    }

    /// `jwt:<sub>` for three dot-separated parts whose second is a JSON object with a usable
    /// `sub`; `jwt` for other three-part tokens; `nil` for anything else.
    static func jwtSubject(_ token: String) -> String? {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
        guard token.utf8.count <= maxJWTLength, let payload = ByteEncoding.base64URLDecoded(parts[1]),
            let subject = (try? JSONCodec.parseUntrusted(payload))?.mapValue?["sub"]?.stringValue,
            VerifiedCredential.isUsableSubject(subject)
        else { return "jwt" }
        return "jwt:" + subject
    }
}
