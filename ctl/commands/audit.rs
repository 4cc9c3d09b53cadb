//! `fluxctl audit`: the organization's audit log — who changed what, when, from where.

use fluxcascade::pb::{self, organization_service_client::OrganizationServiceClient};

use crate::client::{ClientError, Target};
use crate::output::{self, Format};
use crate::pages::{self, PageArgs};
use crate::{times, views};

/// Which entries to list.
#[derive(clap::Args)]
pub struct AuditArgs {
    /// Only entries at or after this time (RFC 3339, or a span back from now like 2h).
    #[arg(long)]
    since: Option<String>,
    /// Only entries of this member (`mem_…`).
    #[arg(long)]
    actor: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

const COLUMNS: &[&str] = &["at", "memberId", "method", "resourceId", "peer"];

pub async fn run(args: AuditArgs, target: &Target, format: Format) -> Result<(), ClientError> {
    let client = OrganizationServiceClient::new(target.connect().await?);
    let since = args
        .since
        .as_deref()
        .map(|text| times::parse_since("--since", text).map(fluxcascade::pb_time::from_jiff))
        .transpose()?;
    let member_id = args.actor.unwrap_or_default();
    let entries = pages::collect(args.page, |page_token, page_size| {
        let mut client = client.clone();
        let request = pb::ListAuditEntriesRequest {
            page_size,
            page_token,
            since,
            member_id: member_id.clone(),
        };
        async move {
            let page = client.list_audit_entries(request).await?.into_inner();
            Ok((page.entries, page.next_page_token))
        }
    })
    .await?;
    let value = serde_json::Value::Array(entries.iter().map(views::audit_entry).collect());
    output::print(format, &value, COLUMNS);
    Ok(())
}
