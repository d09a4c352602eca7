/// The listings of one prefix of a tenant's partition (API keys, resources of one type): where a
/// cursor continues, and how a page read one item long ends.
extension ListCursor {
    /// Where a listing of the items under `prefix` continues.
    enum PartitionPosition {
        /// After this key (`nil`: from the first item).
        case after(ItemKey?)
        /// The cursor is past the prefix's range: the page is empty.
        case pastTheEnd
    }

    /// The position a `cursor` names in the listing of `prefix` in the tenant's partition. Any
    /// cursor is a position: one before the prefix's range starts from the first item, one
    /// after it gives an empty page.
    /// - Throws: `.invalidCursor` for a cursor that is no key a partition can hold.
    static func position(_ cursor: String?, prefix: String, in tenantId: TenantID) throws(OnboardingError) -> PartitionPosition {
        guard let cursor else { return .after(nil) }
        let position = try decode(cursor)
        guard !position.contains(StoreRules.prefixRangeEnd), position.utf8.count <= StoreRules.maxSortKeyBytes else {
            throw OnboardingError(.invalidCursor, "the cursor does not name a position in this listing")
        }
        if position.hasPrefix(prefix) { return .after(ItemKey(tenantId: tenantId.rawValue, resourceKey: position)) }
        return position > prefix ? .pastTheEnd : .after(nil)
    }

    /// A page of at most `limit` items out of a query asked for `limit + 1`, and the cursor of
    /// the next page: after the last item shown when more were found, or where the store
    /// stopped early (DynamoDB's 1 MB page) with more to read.
    static func page(_ page: ItemPage, limit: Int) -> (items: ArraySlice<Item>, nextCursor: String?) {
        let items = page.items.prefix(limit)
        if page.items.count > limit { return (items, items.last.map { encode($0.key.resourceKey) }) }
        return (items, page.lastEvaluatedKey.map { encode($0.resourceKey) })
    }
}
