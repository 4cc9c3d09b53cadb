//! Syncs: the history with records synced and failed per day, a job's page with its live
//! progress (streamed from the server), per-record errors and cancel.

use http::StatusCode;
use maud::{Markup, html};

use super::overview::{per_day, recent_jobs};
use super::{all_mappings, done_notice, sync_status};
use crate::console::chart::bars;
use crate::console::html::{Section, notice, page, post_button, time};
use crate::console::respond::{self, StreamItem};
use crate::console::rpc::Failure;
use crate::console::visit::{Answer, Visit};
use crate::pb;

/// How often an idle progress stream sends a comment, so proxies keep it open.
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);
/// Jobs and record outcomes per page.
const PAGE: i32 = 50;

fn mapping_name(mappings: &[pb::Mapping], id: &str) -> String {
    mappings
        .iter()
        .find(|m| m.id == id)
        .and_then(|m| m.spec.as_ref())
        .map_or_else(|| id.to_owned(), |spec| spec.name.clone())
}

fn trigger(value: i32) -> &'static str {
    match pb::SyncTrigger::try_from(value) {
        Ok(pb::SyncTrigger::Manual) => "by hand",
        Ok(pb::SyncTrigger::Schedule) => "schedule",
        Ok(pb::SyncTrigger::Webhook) => "webhook",
        _ => "—",
    }
}

fn finished(status: i32) -> bool {
    matches!(
        pb::SyncStatus::try_from(status),
        Ok(pb::SyncStatus::Completed | pb::SyncStatus::Partial | pb::SyncStatus::Failed | pb::SyncStatus::Cancelled)
    )
}

pub async fn list(visit: &Visit<'_>) -> Answer {
    let mappings = all_mappings(visit).await?;
    let listed = visit
        .api
        .syncs()
        .list_syncs(visit.api.call(pb::ListSyncsRequest {
            mapping_id: String::new(),
            page_size: PAGE,
            page_token: visit.request.query.get("page").to_owned(),
        }))
        .await
        .map_err(Failure::from)?
        .into_inner();
    let (synced, failed) = per_day(&recent_jobs(visit).await?);
    let body = html! {
        (bars("Records synced per day", "synced", &synced))
        (bars("Records failed per day", "failed", &failed))
        @if listed.jobs.is_empty() { p { "No syncs yet." } } @else {
            div class="table" { table {
                thead { tr {
                    th scope="col" { "Started" } th scope="col" { "Mapping" } th scope="col" { "Trigger" } th scope="col" { "Status" }
                    th scope="col" { "Created" } th scope="col" { "Updated" } th scope="col" { "Failed" }
                } }
                tbody {
                    @for job in &listed.jobs {
                        @let stats = job.stats.unwrap_or_default();
                        tr {
                            td { a href=(format!("/syncs/{}", job.id)) { (time(job.started_at.as_ref().or(job.created_at.as_ref()))) } }
                            td { (mapping_name(&mappings, &job.mapping_id)) }
                            td { (trigger(job.trigger)) }
                            td { span class=(format!("badge {}", sync_status(job.status))) { (sync_status(job.status)) } }
                            td { (stats.created) } td { (stats.updated) } td { (stats.failed) }
                        }
                    }
                }
            } }
            @if !listed.next_page_token.is_empty() {
                p { a href=(format!("/syncs?page={}", listed.next_page_token)) { "Older syncs" } }
            }
        }
    };
    Ok(respond::page(
        StatusCode::OK,
        page(visit, Section::Syncs, "Syncs", body),
    ))
}

/// The numbers the live view updates, by element id.
fn progress(job: &pb::SyncJob) -> Markup {
    let stats = job.stats.unwrap_or_default();
    let done = stats.created + stats.updated + stats.unchanged + stats.failed + stats.skipped + stats.filtered;
    let total = job.total_estimate.max(done);
    html! {
        div class="progress" {
            p aria-live="polite" { "Status: " strong id="job-status" class=(format!("badge {}", sync_status(job.status))) { (sync_status(job.status)) } }
            progress id="job-progress" max=(total.max(1)) value=(done) aria-label="Records processed" { (done) " of " (total) }
            dl class="stats" {
                @for (key, label, value) in [
                    ("fetched", "Fetched", stats.fetched), ("created", "Created", stats.created),
                    ("updated", "Updated", stats.updated), ("unchanged", "Unchanged", stats.unchanged),
                    ("failed", "Failed", stats.failed), ("skipped", "Skipped", stats.skipped),
                    ("warnings", "Warnings", stats.warnings), ("conflicts", "Conflicts", stats.conflicts),
                ] {
                    div { dt { (label) } dd id=(format!("stat-{key}")) { (value) } }
                }
            }
        }
    }
}

fn record_state(value: i32) -> &'static str {
    match pb::RecordState::try_from(value) {
        Ok(pb::RecordState::Synced) => "synced",
        Ok(pb::RecordState::Skipped) => "skipped",
        Ok(pb::RecordState::Failed) => "failed",
        Ok(pb::RecordState::Warning) => "warning",
        _ => "—",
    }
}

pub async fn show(visit: &Visit<'_>, id: &str) -> Answer {
    let job = visit
        .api
        .syncs()
        .get_sync(visit.api.call(pb::GetSyncRequest { id: id.to_owned() }))
        .await
        .map_err(Failure::from)?
        .into_inner();
    let outcomes = visit
        .api
        .syncs()
        .list_sync_errors(visit.api.call(pb::ListSyncErrorsRequest {
            job_id: id.to_owned(),
            page_size: PAGE,
            page_token: visit.request.query.get("page").to_owned(),
        }))
        .await
        .map_err(Failure::from)?
        .into_inner();
    let mappings = all_mappings(visit).await?;
    let running = !finished(job.status);
    let body = html! {
        @if let Some(done) = done_notice(visit) { (notice("success", done)) }
        dl class="facts" {
            dt { "Mapping" } dd { a href=(format!("/mappings/{}", job.mapping_id)) { (mapping_name(&mappings, &job.mapping_id)) } }
            dt { "Trigger" } dd { (trigger(job.trigger)) @if job.full { " (full)" } }
            dt { "Started" } dd { (time(job.started_at.as_ref())) }
            dt { "Finished" } dd id="job-finished" { (time(job.finished_at.as_ref())) }
            dt { "Id" } dd { code { (job.id) } }
        }
        @if !job.error.is_empty() { (notice("error", &job.error)) }
        div data-watch=[running.then(|| format!("/syncs/{}/watch", job.id))] {
            (progress(&job))
        }
        @if running {
            noscript { p { "This page shows the progress when it was loaded; reload it to see more." } }
            @if visit.who.may("SyncService/CancelSync") {
                (post_button(visit, &format!("/syncs/{}/cancel", job.id), "Cancel sync", "danger", Some("Stop this sync at its next checkpoint?")))
            }
        }
        h2 { "Records with errors, warnings or skipped" }
        @if outcomes.records.is_empty() { p { "None." } } @else {
            div class="table" { table {
                thead { tr { th scope="col" { "Source record" } th scope="col" { "Target record" } th scope="col" { "State" } th scope="col" { "Message" } } }
                tbody {
                    @for record in &outcomes.records {
                        tr class=(format!("record-{}", record_state(record.state))) {
                            td { code { (record.source_id) } }
                            td { code { (record.target_id) } }
                            td { span class=(format!("badge {}", record_state(record.state))) { (record_state(record.state)) } }
                            td {
                                details {
                                    summary { (record.message.chars().take(80).collect::<String>()) @if record.message.chars().count() > 80 { "…" } }
                                    p { (record.message) }
                                }
                            }
                        }
                    }
                }
            } }
            @if !outcomes.next_page_token.is_empty() {
                p { a href=(format!("/syncs/{}?page={}", job.id, outcomes.next_page_token)) { "More records" } }
            }
        }
    };
    Ok(respond::page(StatusCode::OK, page(visit, Section::Syncs, "Sync", body)))
}

/// The job's progress as server-sent events until it ends.
pub async fn watch(visit: &Visit<'_>, id: &str) -> Answer {
    let mut stream = visit
        .api
        .syncs()
        .watch_sync(visit.api.call(pb::WatchSyncRequest { id: id.to_owned() }))
        .await
        .map_err(Failure::from)?
        .into_inner();
    let events = async_stream::stream! {
        let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
        keep_alive.tick().await;
        loop {
            let next = tokio::select! {
                message = stream.message() => Some(message),
                _ = keep_alive.tick() => None,
            };
            let job = match next {
                None => {
                    yield StreamItem::KeepAlive;
                    continue;
                }
                Some(Ok(Some(job))) => job,
                Some(_) => break,
            };
            let stats = job.stats.unwrap_or_default();
            let done = stats.created + stats.updated + stats.unchanged + stats.failed + stats.skipped + stats.filtered;
            let ended = finished(job.status);
            yield StreamItem::Data(serde_json::json!({
                "status": sync_status(job.status),
                "done": done,
                "total": job.total_estimate.max(done),
                "fetched": stats.fetched,
                "created": stats.created,
                "updated": stats.updated,
                "unchanged": stats.unchanged,
                "failed": stats.failed,
                "skipped": stats.skipped,
                "warnings": stats.warnings,
                "conflicts": stats.conflicts,
                "finished": ended,
            })
            .to_string());
            if ended {
                break;
            }
        }
    };
    Ok(respond::events(events))
}

pub async fn cancel(visit: &Visit<'_>, id: &str) -> Answer {
    let job = visit
        .api
        .syncs()
        .cancel_sync(visit.api.call(pb::CancelSyncRequest { id: id.to_owned() }))
        .await
        .map_err(Failure::from)?
        .into_inner();
    let done = if finished(job.status) {
        "already-finished"
    } else {
        "cancelling"
    };
    Ok(respond::redirect(&format!("/syncs/{id}?done={done}")))
}
