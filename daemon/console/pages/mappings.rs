//! Mappings: the list, creating and editing one with the editor ([`super::mapping_editor`]),
//! and a mapping's page with its syncs and actions (run, activate, delete).

use http::StatusCode;
use maud::{Markup, html};

use super::mapping_editor::{Draft, MAX_ROWS, MORE_ROWS, Outcome, editor, preview_table};
use super::{all_connections, all_mappings, connection_label, done_notice, sync_status};
use crate::console::html::{Section, csrf, notice, page, post_button, time};
use crate::console::respond;
use crate::console::rpc::Failure;
use crate::console::visit::{Answer, Visit};
use crate::pb;

/// Records a preview maps.
const PREVIEW_RECORDS: u32 = 5;

pub async fn list(visit: &Visit<'_>) -> Answer {
    let mappings = all_mappings(visit).await?;
    let connections = all_connections(visit).await?;
    let body = html! {
        @if let Some(done) = done_notice(visit) { (notice("success", done)) }
        @if visit.who.may("MappingService/CreateMapping") {
            p { a class="button" href="/mappings/new" { "New mapping" } }
        }
        @if mappings.is_empty() {
            p { "No mappings yet." }
        } @else {
            div class="table" {
                table {
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Source" } th scope="col" { "Target" } th scope="col" { "Pairs" } th scope="col" { "Next run" } } }
                    tbody {
                        @for mapping in &mappings {
                            @let spec = mapping.spec.clone().unwrap_or_default();
                            tr {
                                td { a href=(format!("/mappings/{}", mapping.id)) { (spec.name) } }
                                td { (side_label(&connections, spec.source.as_ref())) }
                                td { (side_label(&connections, spec.target.as_ref())) }
                                td { (spec.field_pairs.len()) }
                                td { @if mapping.active { (time(mapping.next_run_at.as_ref())) } @else { "inactive" } }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(respond::page(
        StatusCode::OK,
        page(visit, Section::Mappings, "Mappings", body),
    ))
}

fn side_label(connections: &[pb::Connection], side: Option<&pb::ObjectRef>) -> String {
    side.map_or_else(String::new, |side| {
        format!(
            "{} · {}",
            connection_label(connections, &side.connection_id),
            side.object
        )
    })
}

/// Creating mappings (and previewing unsaved ones) needs the role that may create them.
fn may_create(visit: &Visit<'_>) -> Result<(), Failure> {
    if visit.who.may("MappingService/CreateMapping") {
        Ok(())
    } else {
        Err(Failure::Forbidden(format!(
            "role {} may not create mappings",
            visit.who.role.as_str()
        )))
    }
}

pub async fn new(visit: &Visit<'_>) -> Answer {
    may_create(visit)?;
    let draft = Draft::default();
    let connections = all_connections(visit).await?;
    let body = editor(
        visit,
        &connections,
        "/mappings/new",
        &draft,
        MORE_ROWS + 2,
        &Outcome::Nothing,
        "Create mapping",
    )
    .await?;
    Ok(respond::page(
        StatusCode::OK,
        page(visit, Section::Mappings, "New mapping", body),
    ))
}

/// What an editor form asked for.
async fn submitted(
    visit: &Visit<'_>,
    draft: &Draft,
    base: Option<&pb::MappingSpec>,
) -> Result<(usize, Outcome), Failure> {
    let form = &visit.request.form;
    let shown = form.get("rows").parse::<usize>().unwrap_or(0).min(MAX_ROWS);
    Ok(match form.get("action") {
        "more" => ((shown + MORE_ROWS).min(MAX_ROWS), Outcome::Nothing),
        "preview" => {
            let unsaved = pb::PreviewMappingRequest {
                id: String::new(),
                limit: PREVIEW_RECORDS,
                spec: Some(draft.to_spec(base)),
            };
            (shown.max(1), preview(visit, unsaved).await?)
        }
        _ => (shown.max(draft.rows(1)), Outcome::Nothing),
    })
}

/// The first records `request` maps, or the problems that refused it.
async fn preview(visit: &Visit<'_>, request: pb::PreviewMappingRequest) -> Result<Outcome, Failure> {
    let previewed = visit
        .api
        .mappings()
        .preview_mapping(visit.api.call(request))
        .await
        .map_err(Failure::from);
    match previewed {
        Ok(preview) => Ok(Outcome::Preview(preview.into_inner().records)),
        Err(failure) => problems_of(failure),
    }
}

/// A refused draft's problems for the editor; other failures end the page.
fn problems_of(failure: Failure) -> Result<Outcome, Failure> {
    match failure {
        Failure::Invalid(violations) => Ok(Outcome::Problems(violations)),
        Failure::Precondition { message, .. } => Ok(Outcome::Problems(vec![("mapping".to_owned(), message)])),
        other => Err(other),
    }
}

pub async fn submit_new(visit: &Visit<'_>) -> Answer {
    may_create(visit)?;
    let draft = Draft::from_form(&visit.request.form);
    let (rows, outcome) = if visit.request.form.get("action") == "save" {
        let created = visit
            .api
            .mappings()
            .create_mapping(visit.api.call(pb::CreateMappingRequest {
                spec: Some(draft.to_spec(None)),
                inactive: false,
            }))
            .await;
        match created.map_err(Failure::from) {
            Ok(mapping) => {
                return Ok(respond::redirect(&format!(
                    "/mappings/{}?done=created",
                    mapping.into_inner().id
                )));
            }
            Err(failure) => (draft.rows(0), problems_of(failure)?),
        }
    } else {
        submitted(visit, &draft, None).await?
    };
    let status = if matches!(outcome, Outcome::Problems(_)) {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let connections = all_connections(visit).await?;
    let body = editor(
        visit,
        &connections,
        "/mappings/new",
        &draft,
        rows,
        &outcome,
        "Create mapping",
    )
    .await?;
    Ok(respond::page(
        status,
        page(visit, Section::Mappings, "New mapping", body),
    ))
}

async fn get_mapping(visit: &Visit<'_>, id: &str) -> Result<pb::Mapping, Failure> {
    Ok(visit
        .api
        .mappings()
        .get_mapping(visit.api.call(pb::GetMappingRequest { id: id.to_owned() }))
        .await?
        .into_inner())
}

pub async fn show(visit: &Visit<'_>, id: &str) -> Answer {
    let mapping = get_mapping(visit, id).await?;
    let spec = mapping.spec.clone().unwrap_or_default();
    let draft = Draft::from_spec(&spec);
    // `?preview`: the stored mapping's first records as they would be written (for every role
    // that may preview; the editor previews its own draft).
    let outcome = if visit.request.query.has("preview") {
        let stored = pb::PreviewMappingRequest {
            id: id.to_owned(),
            limit: PREVIEW_RECORDS,
            spec: None,
        };
        preview(visit, stored).await?
    } else {
        Outcome::Nothing
    };
    let body = mapping_page(visit, &mapping, &draft, draft.rows(1), &outcome).await?;
    Ok(respond::page(
        StatusCode::OK,
        page(visit, Section::Mappings, &spec.name, body),
    ))
}

pub async fn submit_edit(visit: &Visit<'_>, id: &str) -> Answer {
    let mapping = get_mapping(visit, id).await?;
    let spec = mapping.spec.clone().unwrap_or_default();
    let draft = Draft::from_form(&visit.request.form);
    let (rows, outcome) = if visit.request.form.get("action") == "save" {
        let updated = visit
            .api
            .mappings()
            .update_mapping(visit.api.call(pb::UpdateMappingRequest {
                id: id.to_owned(),
                spec: Some(draft.to_spec(Some(&spec))),
            }))
            .await;
        match updated.map_err(Failure::from) {
            Ok(_) => return Ok(respond::redirect(&format!("/mappings/{id}?done=saved"))),
            Err(failure) => (draft.rows(0), problems_of(failure)?),
        }
    } else {
        submitted(visit, &draft, Some(&spec)).await?
    };
    let status = if matches!(outcome, Outcome::Problems(_)) {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let body = mapping_page(visit, &mapping, &draft, rows, &outcome).await?;
    Ok(respond::page(status, page(visit, Section::Mappings, &spec.name, body)))
}

async fn mapping_page(
    visit: &Visit<'_>,
    mapping: &pb::Mapping,
    draft: &Draft,
    rows: usize,
    outcome: &Outcome,
) -> Result<Markup, Failure> {
    let spec = mapping.spec.clone().unwrap_or_default();
    let connections = all_connections(visit).await?;
    let jobs = visit
        .api
        .syncs()
        .list_syncs(visit.api.call(pb::ListSyncsRequest {
            mapping_id: mapping.id.clone(),
            page_size: 10,
            page_token: String::new(),
        }))
        .await
        .map_err(Failure::from)?
        .into_inner()
        .jobs;
    let base = format!("/mappings/{}", mapping.id);
    let editor = if visit.who.may("MappingService/UpdateMapping") {
        Some(editor(visit, &connections, &base, draft, rows, outcome, "Save changes").await?)
    } else {
        None
    };
    Ok(html! {
        @if let Some(done) = done_notice(visit) { (notice("success", done)) }
        dl class="facts" {
            dt { "Source" } dd { (side_label(&connections, spec.source.as_ref())) }
            dt { "Target" } dd { (side_label(&connections, spec.target.as_ref())) }
            dt { "State" } dd { @if mapping.active { "active, next run " (time(mapping.next_run_at.as_ref())) } @else { "inactive" } }
            dt { "Id" } dd { code { (mapping.id) } }
        }
        div class="row" {
            @if visit.who.may("SyncService/RunSync") {
                (post_button(visit, &format!("{base}/run"), "Run sync", "", None))
                form method="post" action=(format!("{base}/run")) class="inline" {
                    (csrf(visit))
                    input type="hidden" name="full" value="1";
                    button type="submit" class="secondary" { "Full resync" }
                }
            }
            @if visit.who.may("MappingService/ActivateMapping") {
                @if mapping.active {
                    (post_button(visit, &format!("{base}/active"), "Deactivate", "secondary", None))
                } @else {
                    form method="post" action=(format!("{base}/active")) class="inline" {
                        (csrf(visit))
                        input type="hidden" name="active" value="1";
                        button type="submit" class="secondary" { "Activate" }
                    }
                }
            }
            @if visit.who.may("MappingService/DeleteMapping") {
                (post_button(visit, &format!("{base}/delete"), "Delete", "danger", Some("Delete this mapping and its sync history?")))
            }
        }
        h2 { "Recent syncs" }
        @if jobs.is_empty() { p { "Never run." } } @else {
            ul class="jobs" {
                @for job in &jobs {
                    li { a href=(format!("/syncs/{}", job.id)) { (time(job.created_at.as_ref())) } " " span class=(format!("badge {}", sync_status(job.status))) { (sync_status(job.status)) } }
                }
            }
        }
        h2 { "Fields" }
        @match editor {
            Some(editor) => (editor),
            None => {
                div class="table" { table {
                    thead { tr { th scope="col" { "Source field" } th scope="col" { "Target field" } th scope="col" { "Transform" } } }
                    tbody { @for pair in &spec.field_pairs { tr { td { (pair.source_field) } td { (pair.target_field) } td { code { (pair.transform) } } } } }
                } }
                @if visit.who.may("MappingService/PreviewMapping") {
                    p { a href=(format!("{base}?preview")) { "Preview mapped records" } }
                }
                @match outcome {
                    Outcome::Preview(records) => (preview_table(draft, records)),
                    Outcome::Problems(problems) => (crate::console::html::problems(problems)),
                    Outcome::Nothing => {}
                }
            }
        }
    })
}

pub async fn delete(visit: &Visit<'_>, id: &str) -> Answer {
    visit
        .api
        .mappings()
        .delete_mapping(visit.api.call(pb::DeleteMappingRequest { id: id.to_owned() }))
        .await
        .map_err(Failure::from)?;
    Ok(respond::redirect("/mappings?done=deleted"))
}

pub async fn set_active(visit: &Visit<'_>, id: &str) -> Answer {
    let mappings = visit.api.mappings();
    let mut client = mappings;
    let (result, done) = if visit.request.form.has("active") {
        let call = visit.api.call(pb::ActivateMappingRequest { id: id.to_owned() });
        (client.activate_mapping(call).await, "activated")
    } else {
        let call = visit.api.call(pb::DeactivateMappingRequest { id: id.to_owned() });
        (client.deactivate_mapping(call).await, "deactivated")
    };
    result.map_err(Failure::from)?;
    Ok(respond::redirect(&format!("/mappings/{id}?done={done}")))
}

/// Starts a sync; a first sync large enough to need confirmation asks for it first.
pub async fn run(visit: &Visit<'_>, id: &str) -> Answer {
    let form = &visit.request.form;
    let started = visit
        .api
        .syncs()
        .run_sync(visit.api.call(pb::RunSyncRequest {
            mapping_id: id.to_owned(),
            full: form.has("full"),
            confirm: form.has("confirm"),
        }))
        .await;
    match started.map_err(Failure::from) {
        Ok(job) => Ok(respond::redirect(&format!("/syncs/{}", job.into_inner().id))),
        Err(Failure::Precondition { reason, message }) if reason == "NEEDS_CONFIRMATION" => {
            let body = html! {
                (notice("warning", &message))
                form method="post" action=(format!("/mappings/{id}/run")) class="row" {
                    (csrf(visit))
                    input type="hidden" name="confirm" value="1";
                    @if form.has("full") { input type="hidden" name="full" value="1"; }
                    button type="submit" { "Run it" }
                    a href=(format!("/mappings/{id}")) { "Cancel" }
                }
            };
            Ok(respond::page(
                StatusCode::OK,
                page(visit, Section::Mappings, "Confirm the sync", body),
            ))
        }
        Err(failure) => Err(failure),
    }
}
