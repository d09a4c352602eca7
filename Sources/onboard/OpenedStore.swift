import AWSClient
import Logging
import OnboardingCore
import OnboardingDynamoDB
import OnboardingSQLite
import SigV4

/// A store opened from the settings, what to print about it, and how to close it.
struct OpenedStore: Sendable {
    let store: any TenantStore
    /// One line for the terminal: where the data lives.
    let summary: String
    /// Set for DynamoDB: the client, to create tables with.
    let dynamoDB: DynamoDB?
    /// The DynamoDB table (for SQLite, the configured name, unused).
    let table: String
    /// The logger the store was opened with.
    let logger: Logger
    private let closeAction: @Sendable () async -> Void

    func close() async { await closeAction() }

    /// Opens the configured store.
    /// - Parameter checkTable: for DynamoDB, verify the table exists (one DescribeTable call).
    /// - Throws: ``ConfigurationError`` with a one-line explanation.
    static func open(
        _ configuration: StoreConfiguration, logger: Logger, environment: AWSEnvironment = AWSEnvironment(), checkTable: Bool = true
    ) async throws -> OpenedStore {
        switch configuration.kind {
        case .sqlite:
            let store: SQLiteTenantStore
            do {
                store = try SQLiteTenantStore(path: configuration.databasePath, logger: logger)
            } catch {
                throw ConfigurationError(description: "\(error)")
            }
            return OpenedStore(store: store, summary: "database: \(store.path)", dynamoDB: nil, table: configuration.table, logger: logger, closeAction: {})
        case .dynamodb:
            let dynamoDB = try dynamoDBClient(configuration, environment: environment, logger: logger)
            let store = DynamoDBTenantStore(dynamoDB: dynamoDB, table: configuration.table)
            let opened = OpenedStore(
                store: store,
                summary: "store: DynamoDB table \(configuration.table) at \(dynamoDB.endpoint) (\(dynamoDB.client.region))",
                dynamoDB: dynamoDB,
                table: configuration.table,
                logger: logger,
                closeAction: { try? await dynamoDB.client.shutdown() }
            )
            if checkTable {
                do {
                    _ = try await dynamoDB.describeTable(configuration.table)
                } catch let error as DynamoDBError where error.code == .resourceNotFound {
                    await opened.close()
                    throw ConfigurationError(
                        description: "the DynamoDB table \(configuration.table) does not exist at \(dynamoDB.endpoint); create it with `onboard table create --table \(configuration.table)`"
                    )
                } catch {
                    await opened.close()
                    throw ConfigurationError(description: "cannot reach DynamoDB at \(dynamoDB.endpoint): \(error)")
                }
            }
            return opened
        }
    }

    /// A DynamoDB client from the settings and the AWS environment (credentials, region, endpoint).
    static func dynamoDBClient(_ configuration: StoreConfiguration, environment: AWSEnvironment, logger: Logger) throws -> DynamoDB {
        let credentials: AWSCredentials
        let region: String
        do {
            credentials = try environment.credentials()
            guard let found = try configuration.region ?? environment.region() else {
                throw ConfigurationError(description: "no AWS region: give --region, or set AWS_REGION, or a region for profile '\(environment.profile)' in ~/.aws/config")
            }
            region = found
        } catch let error as AWSConfigurationError {
            throw ConfigurationError(description: error.message)
        }
        let endpoint = configuration.dynamoDBEndpoint ?? environment.endpointURL(serviceVariable: "DYNAMODB")
        return DynamoDB(client: AWSClient(credentials: credentials, region: region, logger: logger), endpoint: endpoint)
    }
}
