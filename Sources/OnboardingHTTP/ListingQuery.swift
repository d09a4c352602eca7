import Hummingbird

/// The query of a paged listing: only the parameters the listing names, each at most once, and
/// `limit` a whole number from 1 to the listing's largest page (20 when absent).
struct ListingQuery {
    let limit: Int
    let cursor: String?
    /// Every parameter, for the listing's own ones (`order`).
    let parameters: Parameters

    /// - Parameter usage: how the unknown-parameter problem names what the listing takes.
    init(_ request: Request, accepts names: Set<String>, maxPageSize: Int, usage: String) throws {
        let parameters = request.uri.queryParameters
        var seen = Set<String>()
        for (name, _) in parameters {
            guard names.contains(String(name)) else {
                throw Problem.badRequest("Unknown query parameter '\(name)'; \(usage)")
            }
            guard seen.insert(String(name)).inserted else { throw Problem.badRequest("The query parameter '\(name)' is given twice") }
        }
        var limit = 20
        if let text = parameters["limit"] {
            guard let value = Int(text), (1...maxPageSize).contains(value) else {
                throw Problem.badRequest("limit must be a whole number from 1 to \(maxPageSize)")
            }
            limit = value
        }
        self.limit = limit
        self.cursor = parameters["cursor"].map(String.init)
        self.parameters = parameters
    }
}
