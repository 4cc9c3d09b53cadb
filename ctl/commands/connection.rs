//! `fluxctl connection …`: connect provider accounts and manage the connections.

use clap::Subcommand;
use fluxcascade::pb::{self, connection_service_client::ConnectionServiceClient};

use crate::client::{ClientError, Target};
use crate::output::{self, Format};
use crate::pages::{self, PageArgs};
use crate::views;

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ProviderArg {
    Hubspot,
    Jobber,
    Pipedrive,
    Salesforce,
}

impl From<ProviderArg> for pb::Provider {
    fn from(provider: ProviderArg) -> pb::Provider {
        match provider {
            ProviderArg::Hubspot => pb::Provider::Hubspot,
            ProviderArg::Jobber => pb::Provider::Jobber,
            ProviderArg::Pipedrive => pb::Provider::Pipedrive,
            ProviderArg::Salesforce => pb::Provider::Salesforce,
        }
    }
}

#[derive(Subcommand)]
pub enum ConnectionCommand {
    /// Connect an account: prints the provider's authorize URL, then waits for the redirect.
    Create {
        #[arg(long, value_enum)]
        provider: ProviderArg,
        /// Scopes to request instead of the configured ones.
        #[arg(long, value_delimiter = ',')]
        scopes: Vec<String>,
        /// Print the authorize URL and exit instead of waiting.
        #[arg(long)]
        no_wait: bool,
        /// Seconds to wait for the authorization.
        #[arg(long, default_value_t = 600)]
        timeout: u32,
    },
    /// Store tokens obtained elsewhere (private apps, API tokens); no browser needed.
    Import {
        #[arg(long, value_enum)]
        provider: ProviderArg,
        #[arg(long, env = "FLUXCTL_REFRESH_TOKEN", hide_env_values = true)]
        refresh_token: Option<String>,
        #[arg(long, env = "FLUXCTL_ACCESS_TOKEN", hide_env_values = true)]
        access_token: Option<String>,
        /// Pipedrive's api_domain or Salesforce's instance_url, for an access token alone.
        #[arg(long)]
        api_base_url: Option<String>,
    },
    /// List connections.
    List {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show a connection.
    Get { id: String },
    /// Delete a connection: stops it, removes its tokens, revokes the grant where possible.
    Delete { id: String },
    /// Refresh the access token now.
    Refresh { id: String },
    /// Show where the provider sends this connection's webhooks (real-time sync) and what to
    /// set at the provider.
    Webhooks {
        id: String,
        /// Create the provider's webhooks through its API (Pipedrive); repeating it creates no
        /// duplicates.
        #[arg(long)]
        subscribe: bool,
    },
}

const COLUMNS: &[&str] = &["id", "provider", "status", "accountName", "tokenExpiresAt", "createdAt"];

pub async fn run(command: ConnectionCommand, target: &Target, format: Format) -> Result<(), ClientError> {
    let mut client = ConnectionServiceClient::new(target.connect().await?);
    match command {
        ConnectionCommand::Create {
            provider,
            scopes,
            no_wait,
            timeout,
        } => {
            let provider = pb::Provider::from(provider).into();
            let started = client
                .create_connection(pb::CreateConnectionRequest {
                    provider,
                    scopes,
                    return_to_console: false,
                })
                .await?
                .into_inner();
            if no_wait {
                let value = serde_json::json!({
                    "authorizeUrl": started.authorize_url,
                    "state": started.state,
                    "expiresAt": views::time(started.expires_at.as_ref()),
                });
                output::print(format, &value, &[]);
                return Ok(());
            }
            eprintln!(
                "Open this URL in a browser to authorize FluxCascade:\n\n  {}\n\nWaiting for the provider to redirect back…",
                started.authorize_url
            );
            let request = pb::WaitConnectionRequest {
                state: started.state,
                timeout_seconds: timeout,
            };
            let connection = client.wait_connection(request).await?.into_inner();
            output::print(format, &views::connection(&connection), &[]);
        }
        ConnectionCommand::Import {
            provider,
            refresh_token,
            access_token,
            api_base_url,
        } => {
            if refresh_token.is_none() && access_token.is_none() {
                return Err(ClientError::Usage("give --refresh-token or --access-token".into()));
            }
            let request = pb::ImportConnectionRequest {
                provider: pb::Provider::from(provider).into(),
                refresh_token: refresh_token.unwrap_or_default(),
                access_token: access_token.unwrap_or_default(),
                api_base_url: api_base_url.unwrap_or_default(),
            };
            let connection = client.import_connection(request).await?.into_inner();
            output::print(format, &views::connection(&connection), &[]);
        }
        ConnectionCommand::List { page } => {
            let connections = pages::collect(page, |page_token, page_size| {
                let mut client = client.clone();
                async move {
                    let page = client
                        .list_connections(pb::ListConnectionsRequest { page_size, page_token })
                        .await?
                        .into_inner();
                    Ok((page.connections, page.next_page_token))
                }
            })
            .await?;
            let value = serde_json::Value::Array(connections.iter().map(views::connection).collect());
            output::print(format, &value, COLUMNS);
        }
        ConnectionCommand::Get { id } => {
            let connection = client
                .get_connection(pb::GetConnectionRequest { id })
                .await?
                .into_inner();
            output::print(format, &views::connection(&connection), &[]);
        }
        ConnectionCommand::Delete { id } => {
            let deleted = client
                .delete_connection(pb::DeleteConnectionRequest { id: id.clone() })
                .await?
                .into_inner();
            output::print(
                format,
                &serde_json::json!({ "deleted": id, "grantRevoked": deleted.grant_revoked }),
                &[],
            );
        }
        ConnectionCommand::Webhooks { id, subscribe } => {
            let webhooks = client
                .get_connection_webhooks(pb::GetConnectionWebhooksRequest { id, subscribe })
                .await?
                .into_inner();
            output::print(format, &views::connection_webhooks(&webhooks), &[]);
        }
        ConnectionCommand::Refresh { id } => {
            let connection = client
                .refresh_connection(pb::RefreshConnectionRequest { id })
                .await?
                .into_inner();
            output::print(format, &views::connection(&connection), &[]);
        }
    }
    Ok(())
}
