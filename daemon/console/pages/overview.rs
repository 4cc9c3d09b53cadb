//! The overview: connections by status, mappings with their last sync and next run,
//! endpoints failing or disabled, and records synced and failed per day.

use http::StatusCode;
use maud::html;

use super::{all_connections, all_endpoints, all_mappings, connection_status, provider_name, sync_status};
use crate::console::chart::{Bar, bars};
use crate::console::html::{Section, page, time};
use crate::console::respond;
use crate::console::rpc::Failure;
use crate::console::visit::{Answer, Visit};
use crate::pb;

/// Days the charts cover.
const CHART_DAYS: i64 = 14;
/// Jobs read for the charts (the newest first).
const CHART_JOBS: i32 = 1000;
/// Mappings whose last sync the overview looks up.
const MAPPINGS_SHOWN: usize = 50;

pub async fn show(visit: &Visit<'_>) -> Answer {
    let connections = all_connections(visit).await?;
    let mappings = all_mappings(visit).await?;
    let endpoints = all_endpoints(visit).await?;
    let jobs = recent_jobs(visit).await?;
    let mut last_jobs = Vec::new();
    for mapping in mappings.iter().take(MAPPINGS_SHOWN) {
        // The newest jobs answer for most mappings; only when they are not all of them may an
        // older job be a mapping's last.
        let known = jobs.iter().find(|job| job.mapping_id == mapping.id);
        if known.is_some() || jobs.len() < CHART_JOBS as usize {
            last_jobs.push(known.cloned());
            continue;
        }
        let last = visit
            .api
            .syncs()
            .list_syncs(visit.api.call(pb::ListSyncsRequest {
                mapping_id: mapping.id.clone(),
                page_size: 1,
                page_token: String::new(),
            }))
            .await
            .map_err(Failure::from)?
            .into_inner()
            .jobs
            .into_iter()
            .next();
        last_jobs.push(last);
    }
    let (synced, failed) = per_day(&jobs);
    let troubled: Vec<&pb::WebhookEndpoint> = endpoints
        .iter()
        .filter(|e| !e.enabled || e.consecutive_failures > 0)
        .collect();
    let statuses = ["active", "expired", "error"];
    let body = html! {
        section aria-labelledby="connections-heading" {
            h2 id="connections-heading" { "Connections" }
            @if connections.is_empty() {
                p { "No connections yet. " a href="/connections" { "Connect an account" } "." }
            } @else {
                ul class="counts" {
                    @for status in statuses {
                        li class=(format!("status-{status}")) {
                            strong { (connections.iter().filter(|c| connection_status(c.status) == status).count()) }
                            " " (status)
                        }
                    }
                }
                @for connection in connections.iter().filter(|c| connection_status(c.status) != "active") {
                    p class="notice warning" {
                        (provider_name(connection.provider)) " · " (connection.account_name) " is "
                        (connection_status(connection.status)) ": " a href="/connections" { "reconnect it" } "."
                    }
                }
            }
        }
        section aria-labelledby="mappings-heading" {
            h2 id="mappings-heading" { "Mappings" }
            @if mappings.is_empty() {
                p { "No mappings yet." @if visit.who.may("MappingService/CreateMapping") { " " a href="/mappings/new" { "Create one" } "." } }
            } @else {
                @if mappings.len() > MAPPINGS_SHOWN {
                    p class="help" { "The first " (MAPPINGS_SHOWN) " of " (mappings.len()) " mappings; " a href="/mappings" { "all mappings" } "." }
                }
                div class="table" {
                    table {
                        thead { tr { th scope="col" { "Mapping" } th scope="col" { "Last sync" } th scope="col" { "Finished" } th scope="col" { "Next run" } } }
                        tbody {
                            @for (mapping, last) in mappings.iter().zip(&last_jobs) {
                                tr {
                                    td { a href=(format!("/mappings/{}", mapping.id)) { (mapping.spec.as_ref().map_or("", |s| s.name.as_str())) } }
                                    @match last {
                                        Some(job) => {
                                            td { a href=(format!("/syncs/{}", job.id)) class=(format!("badge {}", sync_status(job.status))) { (sync_status(job.status)) } }
                                            td { (time(job.finished_at.as_ref())) }
                                        }
                                        None => { td { "never run" } td { "—" } }
                                    }
                                    td { @if mapping.active { (time(mapping.next_run_at.as_ref())) } @else { "inactive" } }
                                }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="endpoints-heading" {
            h2 id="endpoints-heading" { "Webhook endpoints" }
            @if troubled.is_empty() {
                p { (endpoints.len()) " endpoint(s), none failing or disabled." }
            } @else {
                ul {
                    @for endpoint in &troubled {
                        li {
                            a href=(format!("/endpoints/{}", endpoint.id)) { (endpoint.url) }
                            @if endpoint.enabled {
                                " — failing: " (endpoint.consecutive_failures) " failure(s) in a row"
                            } @else {
                                " — disabled" @if !endpoint.disabled_reason.is_empty() { ": " (endpoint.disabled_reason) }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="activity-heading" {
            h2 id="activity-heading" { "Last " (CHART_DAYS) " days" }
            (bars("Records synced per day", "synced", &synced))
            (bars("Records failed per day", "failed", &failed))
        }
    };
    Ok(respond::page(
        StatusCode::OK,
        page(visit, Section::Overview, "Overview", body),
    ))
}

/// The organization's newest sync jobs, at most [`CHART_JOBS`].
pub async fn recent_jobs(visit: &Visit<'_>) -> Result<Vec<pb::SyncJob>, Failure> {
    Ok(visit
        .api
        .syncs()
        .list_syncs(visit.api.call(pb::ListSyncsRequest {
            mapping_id: String::new(),
            page_size: CHART_JOBS,
            page_token: String::new(),
        }))
        .await?
        .into_inner()
        .jobs)
}

/// Records synced (created + updated) and failed per day over the last [`CHART_DAYS`] days,
/// by the day each job finished (or started, while it runs).
pub fn per_day(jobs: &[pb::SyncJob]) -> (Vec<Bar>, Vec<Bar>) {
    let today = jiff::Timestamp::now().to_zoned_datetime(jiff::tz::TimeZone::UTC).date();
    let days: Vec<jiff::civil::Date> = (0..CHART_DAYS)
        .rev()
        .filter_map(|back| today.checked_sub(jiff::Span::new().days(back)).ok())
        .collect();
    let mut synced = vec![0u64; days.len()];
    let mut failed = vec![0u64; days.len()];
    for job in jobs {
        let at = job
            .finished_at
            .as_ref()
            .or(job.started_at.as_ref())
            .or(job.created_at.as_ref())
            .and_then(crate::pb_time::to_jiff);
        let Some(day) = at.map(|at| at.to_zoned_datetime(jiff::tz::TimeZone::UTC).date()) else {
            continue;
        };
        if let Some(index) = days.iter().position(|d| *d == day) {
            let stats = job.stats.unwrap_or_default();
            synced[index] += stats.created + stats.updated;
            failed[index] += stats.failed;
        }
    }
    let label = |day: &jiff::civil::Date| day.strftime("%m-%d").to_string();
    (
        days.iter()
            .zip(synced)
            .map(|(day, value)| Bar {
                label: label(day),
                value,
            })
            .collect(),
        days.iter()
            .zip(failed)
            .map(|(day, value)| Bar {
                label: label(day),
                value,
            })
            .collect(),
    )
}
