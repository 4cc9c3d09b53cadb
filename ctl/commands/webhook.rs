//! `fluxctl webhook …`: outbound endpoints, their secrets and deliveries.

use clap::{Args, Subcommand};
use fluxcascade::pb::{self, webhook_service_client::WebhookServiceClient};

use crate::client::{ClientError, Target};
use crate::output::{self, Format};
use crate::pages::{self, PageArgs};
use crate::times;
use crate::views;

#[derive(Args, Default)]
pub struct SettingsArgs {
    /// Seconds before each retry, e.g. 1,2,4 (the default) or 10,60,600,3600.
    #[arg(long, value_delimiter = ',')]
    retry_schedule: Vec<u32>,
    /// Consecutive failed deliveries that disable the endpoint [default: 10].
    #[arg(long)]
    failure_threshold: Option<u32>,
    /// Deliver strictly in event order, one at a time (true/false).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    ordered: Option<bool>,
    /// Attempts in flight at once [default: 8].
    #[arg(long)]
    max_concurrency: Option<u32>,
    /// Seconds before an attempt times out [default: 10].
    #[arg(long)]
    timeout: Option<u32>,
}

impl SettingsArgs {
    fn into_pb(self) -> pb::WebhookSettings {
        pb::WebhookSettings {
            retry_schedule: (!self.retry_schedule.is_empty()).then_some(pb::RetrySchedule {
                seconds: self.retry_schedule,
            }),
            failure_threshold: self.failure_threshold,
            ordered: self.ordered,
            max_concurrency: self.max_concurrency,
            timeout_seconds: self.timeout,
        }
    }
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum StatusArg {
    Pending,
    Succeeded,
    Failed,
}

#[derive(Subcommand)]
pub enum WebhookCommand {
    /// Create an endpoint; prints its signing secret once.
    Create {
        #[arg(long)]
        url: String,
        /// Event types: exact names, wildcards like 'sync.*', or '*' [default: all].
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// List endpoints.
    List {
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show an endpoint.
    Get { id: String },
    /// Change an endpoint.
    Update {
        id: String,
        #[arg(long)]
        url: Option<String>,
        #[arg(long)]
        description: Option<String>,
        /// Replace the event types.
        #[arg(long, value_delimiter = ',')]
        events: Option<Vec<String>>,
        #[command(flatten)]
        settings: SettingsArgs,
    },
    /// Delete an endpoint and its delivery history.
    Delete { id: String },
    /// Enable an endpoint (resets its failure count).
    Enable { id: String },
    /// Disable an endpoint.
    Disable { id: String },
    /// Show the endpoint's signing secret.
    RevealSecret { id: String },
    /// Replace the signing secret; the old one keeps signing for 24 h.
    RotateSecret { id: String },
    /// Send a `webhook.test` event to this endpoint.
    Test { id: String },
    /// List an endpoint's deliveries, newest first.
    Deliveries {
        endpoint_id: String,
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one delivery with its attempts.
    Delivery { id: String },
    /// Send a delivery again.
    Redeliver { delivery_id: String },
    /// Send again everything that failed since a time (RFC 3339, or a span like 2h).
    Recover {
        endpoint_id: String,
        #[arg(long)]
        since: String,
    },
}

const ENDPOINT_COLUMNS: &[&str] = &[
    "id",
    "url",
    "enabled",
    "eventTypes",
    "consecutiveFailures",
    "description",
];
const DELIVERY_COLUMNS: &[&str] = &[
    "id",
    "eventType",
    "status",
    "attemptCount",
    "lastStatusCode",
    "createdAt",
];

pub async fn run(command: WebhookCommand, target: &Target, format: Format) -> Result<(), ClientError> {
    let mut client = WebhookServiceClient::new(target.connect().await?);
    match command {
        WebhookCommand::Create {
            url,
            events,
            description,
            settings,
        } => {
            let request = pb::CreateWebhookEndpointRequest {
                url,
                description,
                event_types: events,
                settings: Some(settings.into_pb()),
            };
            let created = client.create_webhook_endpoint(request).await?.into_inner();
            let mut value = created
                .endpoint
                .as_ref()
                .map(views::webhook_endpoint)
                .unwrap_or_default();
            value["secret"] = created.secret.into();
            output::print(format, &value, &[]);
        }
        WebhookCommand::List { page } => {
            let endpoints = pages::collect(page, |page_token, page_size| {
                let mut client = client.clone();
                async move {
                    let page = client
                        .list_webhook_endpoints(pb::ListWebhookEndpointsRequest { page_size, page_token })
                        .await?
                        .into_inner();
                    Ok((page.endpoints, page.next_page_token))
                }
            })
            .await?;
            let value = serde_json::Value::Array(endpoints.iter().map(views::webhook_endpoint).collect());
            output::print(format, &value, ENDPOINT_COLUMNS);
        }
        WebhookCommand::Get { id } => {
            let endpoint = client
                .get_webhook_endpoint(pb::GetWebhookEndpointRequest { id })
                .await?
                .into_inner();
            output::print(format, &views::webhook_endpoint(&endpoint), &[]);
        }
        WebhookCommand::Update {
            id,
            url,
            description,
            events,
            settings,
        } => {
            let request = pb::UpdateWebhookEndpointRequest {
                id,
                url,
                description,
                event_types: events.map(|event_types| pb::EventTypes { event_types }),
                settings: Some(settings.into_pb()),
            };
            let endpoint = client.update_webhook_endpoint(request).await?.into_inner();
            output::print(format, &views::webhook_endpoint(&endpoint), &[]);
        }
        WebhookCommand::Delete { id } => {
            client
                .delete_webhook_endpoint(pb::DeleteWebhookEndpointRequest { id: id.clone() })
                .await?;
            output::print(format, &serde_json::json!({ "deleted": id }), &[]);
        }
        WebhookCommand::Enable { id } => {
            let endpoint = client
                .enable_webhook_endpoint(pb::EnableWebhookEndpointRequest { id })
                .await?
                .into_inner();
            output::print(format, &views::webhook_endpoint(&endpoint), &[]);
        }
        WebhookCommand::Disable { id } => {
            let endpoint = client
                .disable_webhook_endpoint(pb::DisableWebhookEndpointRequest { id })
                .await?
                .into_inner();
            output::print(format, &views::webhook_endpoint(&endpoint), &[]);
        }
        WebhookCommand::RevealSecret { id } => {
            let secret = client
                .reveal_webhook_secret(pb::RevealWebhookSecretRequest { id: id.clone() })
                .await?
                .into_inner();
            output::print(format, &serde_json::json!({ "id": id, "secret": secret.secret }), &[]);
        }
        WebhookCommand::RotateSecret { id } => {
            let rotated = client
                .rotate_webhook_secret(pb::RotateWebhookSecretRequest { id: id.clone() })
                .await?
                .into_inner();
            let value = serde_json::json!({
                "id": id,
                "secret": rotated.secret,
                "previousSecretExpiresAt": views::time(rotated.previous_secret_expires_at.as_ref()),
            });
            output::print(format, &value, &[]);
        }
        WebhookCommand::Test { id } => {
            let delivery = client
                .test_webhook_endpoint(pb::TestWebhookEndpointRequest { id })
                .await?
                .into_inner();
            output::print(format, &views::webhook_delivery(&delivery), &[]);
        }
        WebhookCommand::Deliveries {
            endpoint_id,
            status,
            page,
        } => {
            let status = match status {
                None => pb::DeliveryStatus::Unspecified,
                Some(StatusArg::Pending) => pb::DeliveryStatus::Pending,
                Some(StatusArg::Succeeded) => pb::DeliveryStatus::Succeeded,
                Some(StatusArg::Failed) => pb::DeliveryStatus::Failed,
            };
            let deliveries = pages::collect(page, |page_token, page_size| {
                let mut client = client.clone();
                let request = pb::ListWebhookDeliveriesRequest {
                    endpoint_id: endpoint_id.clone(),
                    status: status.into(),
                    page_size,
                    page_token,
                };
                async move {
                    let page = client.list_webhook_deliveries(request).await?.into_inner();
                    Ok((page.deliveries, page.next_page_token))
                }
            })
            .await?;
            let value = serde_json::Value::Array(deliveries.iter().map(views::webhook_delivery).collect());
            output::print(format, &value, DELIVERY_COLUMNS);
        }
        WebhookCommand::Delivery { id } => {
            let delivery = client
                .get_webhook_delivery(pb::GetWebhookDeliveryRequest { id })
                .await?
                .into_inner();
            output::print(format, &views::webhook_delivery(&delivery), &[]);
        }
        WebhookCommand::Redeliver { delivery_id } => {
            let delivery = client
                .redeliver_webhook(pb::RedeliverWebhookRequest { delivery_id })
                .await?
                .into_inner();
            output::print(format, &views::webhook_delivery(&delivery), &[]);
        }
        WebhookCommand::Recover { endpoint_id, since } => {
            let since = times::parse_since("--since", &since)?;
            let request = pb::RecoverWebhookDeliveriesRequest {
                endpoint_id: endpoint_id.clone(),
                since: Some(fluxcascade::pb_time::from_jiff(since)),
            };
            let recovered = client.recover_webhook_deliveries(request).await?.into_inner();
            let value = serde_json::json!({
                "endpointId": endpoint_id,
                "since": since.to_string(),
                "requeued": recovered.requeued,
            });
            output::print(format, &value, &[]);
        }
    }
    Ok(())
}
