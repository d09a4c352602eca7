import AWSClient
import OnboardingCore

extension AttributeValue {
    /// The value in DynamoDB's typed form: string → `S`, number → `N`, bool → `BOOL`, null →
    /// `NULL`, list → `L`, map → `M`.
    var dynamoDB: DynamoDBValue {
        switch self {
        case .string(let value): .s(value)
        case .number(let text): .n(text)
        case .bool(let value): .bool(value)
        case .null: .null
        case .list(let elements): .l(elements.map(\.dynamoDB))
        case .map(let members): .m(members.mapValues(\.dynamoDB))
        }
    }

    /// The value of a DynamoDB attribute; sets and binaries (never written by this service) are
    /// refused rather than silently changed.
    init(dynamoDB value: DynamoDBValue) throws {
        switch value {
        case .s(let value): self = .string(value)
        case .n(let text): self = .number(text)
        case .bool(let value): self = .bool(value)
        case .null: self = .null
        case .l(let elements): self = .list(try elements.map(AttributeValue.init(dynamoDB:)))
        case .m(let members): self = .map(try members.mapValues(AttributeValue.init(dynamoDB:)))
        case .b, .ss, .ns, .bs:
            throw StoreError(.unavailable, "an item holds a binary or set attribute, which this service never writes")
        }
    }
}

extension Item {
    /// The item as DynamoDB stores it: the key attributes beside the others.
    public var dynamoDB: DynamoDBItem {
        var item = attributes.mapValues(\.dynamoDB)
        item[KeyAttribute.tenantId] = .s(key.tenantId)
        item[KeyAttribute.resourceKey] = .s(key.resourceKey)
        return item
    }

    init(dynamoDB item: DynamoDBItem) throws {
        guard case .s(let tenantId)? = item[KeyAttribute.tenantId], case .s(let resourceKey)? = item[KeyAttribute.resourceKey] else {
            throw StoreError(.unavailable, "an item without string key attributes")
        }
        var attributes: [String: AttributeValue] = [:]
        for (name, value) in item where name != KeyAttribute.tenantId && name != KeyAttribute.resourceKey {
            attributes[name] = try AttributeValue(dynamoDB: value)
        }
        self.init(tenantId: tenantId, resourceKey: resourceKey, attributes: attributes)
    }
}

extension ItemKey {
    public var dynamoDB: DynamoDBItem {
        [KeyAttribute.tenantId: .s(tenantId), KeyAttribute.resourceKey: .s(resourceKey)]
    }
}

extension WriteCondition {
    /// The condition as a DynamoDB condition expression, names and values as placeholders.
    public func expression(_ builder: inout ExpressionBuilder) -> String {
        switch self {
        case .itemNotExists: "attribute_not_exists(\(builder.name(KeyAttribute.resourceKey)))"
        case .itemExists: "attribute_exists(\(builder.name(KeyAttribute.resourceKey)))"
        case .attributeEquals(let name, let value): "\(builder.name(name)) = \(builder.value(value.dynamoDB))"
        case .and(let lhs, let rhs): "(\(lhs.expression(&builder))) AND (\(rhs.expression(&builder)))"
        case .or(let lhs, let rhs): "(\(lhs.expression(&builder))) OR (\(rhs.expression(&builder)))"
        case .attributeNotExists(let name): "attribute_not_exists(\(builder.name(name)))"
        case .attributeExists(let name): "attribute_exists(\(builder.name(name)))"
        case .attributeLessThan(let name, let bound):
            // `<` between different types is false in DynamoDB; the type check says so for
            // stores that compare them anyway (moto: `true < 20` holds, `"1" < 20` fails with a 500).
            "(attribute_type(\(builder.name(name)), \(builder.value(.s("N"))))) AND (\(builder.name(name)) < \(builder.value(.n(String(bound)))))"
        }
    }
}
