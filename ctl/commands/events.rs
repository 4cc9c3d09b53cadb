//! `fluxctl events …`: the organization's event log (the outbox webhook endpoints receive).

use clap::Subcommand;
use fluxcascade::pb::{self, event_service_client::EventServiceClient};

use crate::client::{ClientError, Target};
use crate::output::{self, Format};
use crate::pages::{self, PageArgs};
use crate::{times, views};

#[derive(Subcommand)]
pub enum EventsCommand {
    /// List events, newest first.
    List {
        /// Event types: exact names or wildcards like 'sync.*' [default: all].
        #[arg(long = "type", value_delimiter = ',')]
        types: Vec<String>,
        /// Only events at or after this time (RFC 3339, or a span back from now like 2h).
        #[arg(long)]
        since: Option<String>,
        /// Only events before this time (RFC 3339, or a span back from now).
        #[arg(long)]
        until: Option<String>,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one event with its data.
    Get { id: String },
}

pub async fn run(command: EventsCommand, target: &Target, format: Format) -> Result<(), ClientError> {
    let mut client = EventServiceClient::new(target.connect().await?);
    match command {
        EventsCommand::List {
            types,
            since,
            until,
            page,
        } => {
            let time = |flag: &str, text: Option<String>| {
                text.map(|text| times::parse_since(flag, &text).map(fluxcascade::pb_time::from_jiff))
                    .transpose()
            };
            let (since, until) = (time("--since", since)?, time("--until", until)?);
            let events = pages::collect(page, |page_token, page_size| {
                let mut client = client.clone();
                let request = pb::ListEventsRequest {
                    event_types: types.clone(),
                    since,
                    until,
                    page_size,
                    page_token,
                };
                async move {
                    let page = client.list_events(request).await?.into_inner();
                    Ok((page.events, page.next_page_token))
                }
            })
            .await?;
            output::print(
                format,
                &serde_json::Value::Array(events.iter().map(views::event).collect()),
                &["id", "eventType", "timestamp", "data"],
            );
        }
        EventsCommand::Get { id } => {
            let event = client.get_event(pb::GetEventRequest { id }).await?.into_inner();
            output::print(format, &views::event(&event), &[]);
        }
    }
    Ok(())
}
