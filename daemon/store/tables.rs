//! Table definitions: one table per record kind, plus index tables with empty values.

use redb::TableDefinition;

/// Bytes table type shared by all record tables.
pub type BytesTable = TableDefinition<'static, &'static str, &'static [u8]>;

/// Key/value settings of the store itself (schema version, key check).
pub const META: BytesTable = TableDefinition::new("meta");
/// Sealed secrets keyed `<owner id>/<name>`.
pub const SECRETS: BytesTable = TableDefinition::new("secrets");
pub const ORGANIZATIONS: BytesTable = TableDefinition::new("organizations");
pub const MEMBERS: BytesTable = TableDefinition::new("members");
pub const API_TOKENS: BytesTable = TableDefinition::new("api_tokens");
/// API token hash (hex SHA-256) → token record, for authentication.
pub const TOKEN_HASHES: BytesTable = TableDefinition::new("token_hashes");
pub const CONNECTIONS: BytesTable = TableDefinition::new("connections");
/// Pending OAuth authorizations, keyed by the SHA-256 of their `state`.
pub const AUTHORIZATIONS: BytesTable = TableDefinition::new("authorizations");
pub const MAPPINGS: BytesTable = TableDefinition::new("mappings");
pub const SYNC_JOBS: BytesTable = TableDefinition::new("sync_jobs");
/// Per mapping: its active job, its last finished job, whether it ever completed.
pub const SYNC_STATES: BytesTable = TableDefinition::new("sync_states");
/// Identity links, keyed `<mapping>/s/<source id>` and `<mapping>/t/<target id>`.
pub const LINKS: BytesTable = TableDefinition::new("links");
/// Incremental cursors, keyed `<mapping>/<direction>`.
pub const CURSORS: BytesTable = TableDefinition::new("cursors");
/// Skipped and failed records of each job, keyed `<job>/<sequence>`.
pub const OUTCOMES: BytesTable = TableDefinition::new("outcomes");
/// Records whose write failed, to retry on later runs: `<mapping>/<direction>/<record id>`.
pub const RETRIES: BytesTable = TableDefinition::new("retries");
pub const WEBHOOK_ENDPOINTS: BytesTable = TableDefinition::new("webhook_endpoints");
/// The durable outbox: every event, keyed by its time-ordered `evt_` id.
pub const EVENTS: BytesTable = TableDefinition::new("events");
pub const DELIVERIES: BytesTable = TableDefinition::new("deliveries");
/// Record changes waiting for a record-level sync: `<mapping>/<direction>/<record id>`.
pub const PENDING_CHANGES: BytesTable = TableDefinition::new("pending_changes");
/// The changes each record-level sync job syncs, keyed by job id.
pub const JOB_CHANGES: BytesTable = TableDefinition::new("job_changes");
/// Inbound webhook events already accepted, `<connection>/<event key>`, to drop redeliveries.
pub const INBOUND_SEEN: BytesTable = TableDefinition::new("inbound_seen");
/// Creates a sync sent and has not checkpointed yet: `<mapping>/<flow>/<record id>`.
pub const CREATE_INTENTS: BytesTable = TableDefinition::new("create_intents");
/// Pending invitations to organizations, by `inv_` id.
pub const INVITATIONS: BytesTable = TableDefinition::new("invitations");
/// Usage counters per organization and month, keyed `<org id>/<YYYY-MM>`.
pub const USAGE: BytesTable = TableDefinition::new("usage");
/// The audit log: one entry per mutation, by time-ordered `aud_` id.
pub const AUDIT: BytesTable = TableDefinition::new("audit");

/// Index tables: the key carries the ordering, the value is empty.
#[derive(Debug, Clone, Copy)]
pub enum IndexTable {
    /// `<endpoint id>/<due unix ms, 20 digits>/<delivery id>`: deliveries waiting for an attempt.
    DeliveryQueue,
    /// `<endpoint id>/<delivery id>`: all deliveries of an endpoint, oldest first.
    EndpointDeliveries,
    /// `<mapping id>/<job id>`: sync jobs of a mapping, oldest first.
    MappingJobs,
    /// `<org id>/<job id>`: sync jobs of an organization, oldest first.
    OrgJobs,
    /// `<org id>/<event id>`: outbox events of an organization, oldest first.
    OrgEvents,
    /// `<mapping id>/<side>/<normalized match key>/<record id>`: records of a side by match key.
    MatchIndex,
    /// `<kind>/<org id>/<entity id>`: an organization's entities of each kind (see [`OrgKind`]).
    Org,
    /// `<connection id>/<mapping id>`: the mappings with the connection on either side.
    ConnectionMappings,
    /// `<provider>/<account id>/<connection id>`: connections by provider account, for
    /// webhooks a provider sends to one URL for all its accounts.
    Accounts,
    /// `<hex SHA-256 of the URL token>/<connection id>`: a connection's inbound webhook URL.
    WebhookRoutes,
    /// `<received unix ms, 20 digits>/<connection id>/<event key>`: accepted inbound events,
    /// oldest first, for pruning [`INBOUND_SEEN`].
    InboundSeenByTime,
    /// `<hex SHA-256 of the invitation token>/<invitation id>`: invitations by their token.
    InvitationTokens,
    /// `<principal id>/<member id>`: a person's memberships, for the organizations they see.
    PrincipalMembers,
    /// `<expiry unix ms, 20 digits>/<token id>`: API tokens that expire (console sessions),
    /// soonest first, for removing them once expired.
    TokenExpiry,
}

/// The entity kinds listed per organization in [`IndexTable::Org`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgKind {
    Connection,
    Mapping,
    WebhookEndpoint,
    Member,
    ApiToken,
    Invitation,
    /// Audit entries, oldest first.
    Audit,
}

impl OrgKind {
    /// The index prefix of `org_id`'s entities of this kind.
    pub fn prefix(self, org_id: &str) -> String {
        let kind = match self {
            OrgKind::Connection => "conn",
            OrgKind::Mapping => "map",
            OrgKind::WebhookEndpoint => "wh",
            OrgKind::Member => "mem",
            OrgKind::ApiToken => "tok",
            OrgKind::Invitation => "inv",
            OrgKind::Audit => "aud",
        };
        format!("{kind}/{org_id}/")
    }
}

impl IndexTable {
    pub(crate) fn definition(self) -> BytesTable {
        match self {
            IndexTable::DeliveryQueue => TableDefinition::new("idx_delivery_queue"),
            IndexTable::EndpointDeliveries => TableDefinition::new("idx_endpoint_deliveries"),
            IndexTable::MappingJobs => TableDefinition::new("idx_mapping_jobs"),
            IndexTable::OrgJobs => TableDefinition::new("idx_org_jobs"),
            IndexTable::OrgEvents => TableDefinition::new("idx_org_events"),
            IndexTable::MatchIndex => TableDefinition::new("idx_match"),
            IndexTable::Org => TableDefinition::new("idx_org"),
            IndexTable::ConnectionMappings => TableDefinition::new("idx_connection_mappings"),
            IndexTable::Accounts => TableDefinition::new("idx_accounts"),
            IndexTable::WebhookRoutes => TableDefinition::new("idx_webhook_routes"),
            IndexTable::InboundSeenByTime => TableDefinition::new("idx_inbound_seen_by_time"),
            IndexTable::InvitationTokens => TableDefinition::new("idx_invitation_tokens"),
            IndexTable::PrincipalMembers => TableDefinition::new("idx_principal_members"),
            IndexTable::TokenExpiry => TableDefinition::new("idx_token_expiry"),
        }
    }

    pub(crate) const ALL: [IndexTable; 14] = [
        IndexTable::MatchIndex,
        IndexTable::DeliveryQueue,
        IndexTable::EndpointDeliveries,
        IndexTable::MappingJobs,
        IndexTable::OrgJobs,
        IndexTable::OrgEvents,
        IndexTable::Org,
        IndexTable::ConnectionMappings,
        IndexTable::Accounts,
        IndexTable::WebhookRoutes,
        IndexTable::InboundSeenByTime,
        IndexTable::InvitationTokens,
        IndexTable::PrincipalMembers,
        IndexTable::TokenExpiry,
    ];
}

/// Every record table, so that opening the store creates them all.
pub(crate) const RECORD_TABLES: [BytesTable; 25] = [
    META,
    SECRETS,
    ORGANIZATIONS,
    MEMBERS,
    API_TOKENS,
    TOKEN_HASHES,
    CONNECTIONS,
    AUTHORIZATIONS,
    MAPPINGS,
    SYNC_JOBS,
    SYNC_STATES,
    LINKS,
    CURSORS,
    OUTCOMES,
    RETRIES,
    WEBHOOK_ENDPOINTS,
    EVENTS,
    DELIVERIES,
    PENDING_CHANGES,
    JOB_CHANGES,
    INBOUND_SEEN,
    INVITATIONS,
    USAGE,
    AUDIT,
    CREATE_INTENTS,
];
