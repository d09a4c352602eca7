import AWSClient
import Logging
import OnboardingCore
import OnboardingDynamoDB
import OnboardingSQLite
import SigV4

/// A store opened from the settings, what to print about it, and how to close it.
public struct OpenedStore: Sendable {
    public let store: any TenantStore
    /// One line for the terminal: where the data lives.
    public let summary: String
    /// Set for DynamoDB: the client, to create tables with.
    public let dynamoDB: DynamoDB?
    /// The DynamoDB table (for SQLite, the configured name, unused).
    public let table: String
    /// The logger the store was opened with.
    public let logger: Logger
    private let closeAction: @Sendable () async -> Void

    public func close() async { await closeAction() }

    /// Opens the configured store.
    /// - Parameter checkTable: for DynamoDB, verify the table exists (one DescribeTable call).
    /// - Throws: ``ConfigurationError`` with a one-line explanation.
    public static func open(
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
            let dynamoDB = try await dynamoDBClient(configuration, environment: environment, logger: logger)
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
                    try await DynamoDBTable.check(dynamoDB, name: configuration.table)
                } catch let error as DynamoDBTable.LayoutError {
                    await opened.close()
                    throw ConfigurationError(description: error.description)
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
    ///
    /// Credentials come from the SDKs' chain (environment, shared files, web identity, container
    /// endpoint, instance metadata) and are fetched once here, so that missing or broken
    /// credentials stop the start with one line naming where they were looked for. Static keys
    /// (environment, files) need no network; the other sources make their first request now and
    /// are refreshed before they expire.
    public static func dynamoDBClient(_ configuration: StoreConfiguration, environment: AWSEnvironment, logger: Logger) async throws -> DynamoDB {
        // The endpoint first: a refused one stops the start before a client is made.
        let endpoint = try configuration.dynamoDBEndpoint ?? endpointURL(environment, service: "DYNAMODB")
        let client = try await awsClient(region: configuration.region, environment: environment, logger: logger)
        return DynamoDB(client: client, endpoint: endpoint)
    }

    /// `AWS_ENDPOINT_URL_<service>`, else `AWS_ENDPOINT_URL` (``AWSEnvironment/endpointURL(serviceVariable:)``).
    /// - Throws: ``ConfigurationError`` naming the variable whose URL is refused (plain `http://`
    ///   to a host that is not loopback).
    public static func endpointURL(_ environment: AWSEnvironment, service: String) throws(ConfigurationError) -> String? {
        do {
            return try environment.endpointURL(serviceVariable: service)
        } catch {
            throw ConfigurationError(description: error.message)
        }
    }

    /// An AWS client for `region` (else the environment's region) signing with the SDKs' credential
    /// chain, its credentials fetched once now (see ``dynamoDBClient(_:environment:logger:)``).
    /// The event sinks (SNS, EventBridge) get theirs here too.
    /// - Throws: ``ConfigurationError`` naming what is missing (the region, the credentials).
    public static func awsClient(region configuredRegion: String?, environment: AWSEnvironment, logger: Logger) async throws -> AWSClient {
        let region: String
        let provider: CachingCredentialProvider
        do {
            guard let found = try configuredRegion ?? environment.region() else {
                throw ConfigurationError(description: "no AWS region: give --region, or set AWS_REGION, or a region for profile '\(environment.profile)' in ~/.aws/config")
            }
            region = found
            provider = CachingCredentialProvider(try AWSCredentialChain.standard(environment: environment, region: region), logger: logger)
            _ = try await provider.credentials()
        } catch let error as AWSConfigurationError {
            throw ConfigurationError(description: error.message)
        } catch let error as AWSCredentialsError {
            throw ConfigurationError(description: error.message)
        }
        return AWSClient(credentialProvider: provider, region: region, logger: logger)
    }
}

extension OpenedStore {
    /// A store the caller opened and closes (the tests' SQLite file or table on moto); ``close()``
    /// leaves it open.
    public init(existing store: any TenantStore, summary: String = "store: supplied by the caller", logger: Logger) {
        self.init(store: store, summary: summary, dynamoDB: nil, table: StoreConfiguration().table, logger: logger, closeAction: {})
    }
}
