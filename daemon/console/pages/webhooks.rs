//! Webhooks: the endpoints (adding and deleting one), an endpoint's deliveries with each attempt and the response
//! excerpt, redelivering one, recovering failed ones, enabling and disabling, and revealing
//! the signing secret after a confirmation.

use http::StatusCode;
use maud::{Markup, html};

use super::{all_endpoints, done_notice};
use crate::console::html::{Section, csrf, notice, page, post_button, problems, time};
use crate::console::respond;
use crate::console::rpc::Failure;
use crate::console::visit::{Answer, Visit};
use crate::events::EventType;
use crate::pb;

/// Deliveries per page.
const PAGE: i32 = 50;
/// How far back "recover" looks by default.
const RECOVER_HOURS: i64 = 24;

/// The event types an endpoint may subscribe to (a test event goes to one endpoint only).
fn subscribable() -> impl Iterator<Item = &'static str> {
    EventType::ALL
        .into_iter()
        .filter(|kind| *kind != EventType::WebhookTest)
        .map(EventType::as_str)
}

pub async fn list(visit: &Visit<'_>) -> Answer {
    let body = endpoints_page(visit, &[]).await?;
    Ok(respond::page(
        StatusCode::OK,
        page(visit, Section::Webhooks, "Webhooks", body),
    ))
}

/// The endpoints and the form adding one, with the problems of a refused one.
async fn endpoints_page(visit: &Visit<'_>, refused: &[(String, String)]) -> Result<Markup, Failure> {
    let form = &visit.request.form;
    let endpoints = all_endpoints(visit).await?;
    let chosen = form.all("event_type");
    Ok(html! {
        @if let Some(done) = done_notice(visit) { (notice("success", done)) }
        @if visit.who.may("WebhookService/CreateWebhookEndpoint") {
            (problems(refused))
            form method="post" action="/endpoints" class="editor" {
                (csrf(visit))
                fieldset {
                    legend { "Add an endpoint" }
                    div class="grid" {
                        div {
                            label for="url" { "URL" }
                            input id="url" name="url" type="url" required value=(form.get("url")) placeholder="https://example.com/hooks/fluxcascade";
                        }
                        div {
                            label for="description" { "Description" }
                            input id="description" name="description" value=(form.get("description"));
                        }
                    }
                    fieldset {
                        legend { "Events (none chosen: every event)" }
                        div class="checks" {
                            @for kind in subscribable() {
                                label { input type="checkbox" name="event_type" value=(kind) checked[chosen.contains(&kind)]; " " (kind) }
                            }
                        }
                    }
                    button type="submit" { "Add endpoint" }
                }
            }
        }
        @if endpoints.is_empty() {
            p { "No webhook endpoints yet." }
        } @else {
            div class="table" { table {
                thead { tr { th scope="col" { "URL" } th scope="col" { "Events" } th scope="col" { "State" } th scope="col" { "Failures in a row" } } }
                tbody {
                    @for endpoint in &endpoints {
                        tr {
                            td { a href=(format!("/endpoints/{}", endpoint.id)) { (endpoint.url) } @if !endpoint.description.is_empty() { br; small { (endpoint.description) } } }
                            td { (event_types(endpoint)) }
                            td { @if endpoint.enabled { span class="badge active" { "enabled" } } @else { span class="badge failed" { "disabled" } } }
                            td { (endpoint.consecutive_failures) }
                        }
                    }
                }
            } }
        }
    })
}

pub async fn create(visit: &Visit<'_>) -> Answer {
    let form = &visit.request.form;
    let created = visit
        .api
        .webhooks()
        .create_webhook_endpoint(visit.api.call(pb::CreateWebhookEndpointRequest {
            url: form.get("url").to_owned(),
            description: form.get("description").to_owned(),
            event_types: form.all("event_type").into_iter().map(str::to_owned).collect(),
            settings: None,
        }))
        .await;
    let created = match created.map_err(Failure::from) {
        Ok(created) => created.into_inner(),
        Err(Failure::Invalid(violations)) => {
            let body = endpoints_page(visit, &violations).await?;
            return Ok(respond::page(
                StatusCode::BAD_REQUEST,
                page(visit, Section::Webhooks, "Webhooks", body),
            ));
        }
        Err(failure) => return Err(failure),
    };
    let endpoint = created.endpoint.unwrap_or_default();
    let body = html! {
        p { "Deliveries to " strong { (endpoint.url) } " are signed with this secret. It is shown only now (the endpoint's page can reveal it again)." }
        pre class="secret" { code id="secret" { (created.secret) } }
        p { a class="button" href=(format!("/endpoints/{}", endpoint.id)) { "Go to the endpoint" } }
    };
    Ok(respond::page(
        StatusCode::OK,
        page(visit, Section::Webhooks, "Endpoint added", body),
    ))
}

pub async fn delete(visit: &Visit<'_>, id: &str) -> Answer {
    visit
        .api
        .webhooks()
        .delete_webhook_endpoint(visit.api.call(pb::DeleteWebhookEndpointRequest { id: id.to_owned() }))
        .await
        .map_err(Failure::from)?;
    Ok(respond::redirect("/endpoints?done=deleted"))
}

/// The event types an endpoint receives, in words.
fn event_types(endpoint: &pb::WebhookEndpoint) -> String {
    if endpoint.event_types.is_empty() {
        "every event".to_owned()
    } else {
        endpoint.event_types.join(", ")
    }
}

fn delivery_status(value: i32) -> &'static str {
    match pb::DeliveryStatus::try_from(value) {
        Ok(pb::DeliveryStatus::Pending) => "pending",
        Ok(pb::DeliveryStatus::Succeeded) => "succeeded",
        Ok(pb::DeliveryStatus::Failed) => "failed",
        _ => "—",
    }
}

async fn endpoint(visit: &Visit<'_>, id: &str) -> Result<pb::WebhookEndpoint, Failure> {
    Ok(visit
        .api
        .webhooks()
        .get_webhook_endpoint(visit.api.call(pb::GetWebhookEndpointRequest { id: id.to_owned() }))
        .await?
        .into_inner())
}

pub async fn show(visit: &Visit<'_>, id: &str) -> Answer {
    let endpoint = endpoint(visit, id).await?;
    let status = pb::DeliveryStatus::from_str_name(visit.request.query.get("status")).unwrap_or_default();
    let deliveries = visit
        .api
        .webhooks()
        .list_webhook_deliveries(visit.api.call(pb::ListWebhookDeliveriesRequest {
            endpoint_id: id.to_owned(),
            status: status.into(),
            page_size: PAGE,
            page_token: visit.request.query.get("page").to_owned(),
        }))
        .await
        .map_err(Failure::from)?
        .into_inner();
    let base = format!("/endpoints/{id}");
    let may_operate = visit.who.may("WebhookService/RedeliverWebhook");
    let since = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(RECOVER_HOURS))
        .strftime("%Y-%m-%dT%H:%M")
        .to_string();
    let body = html! {
        @if let Some(done) = done_notice(visit) { (notice("success", done)) }
        dl class="facts" {
            dt { "URL" } dd { (endpoint.url) }
            dt { "Events" } dd { (event_types(&endpoint)) }
            dt { "State" } dd {
                @if endpoint.enabled { "enabled" } @else { "disabled" @if !endpoint.disabled_reason.is_empty() { ": " (endpoint.disabled_reason) } }
                " · " (endpoint.consecutive_failures) " failure(s) in a row"
            }
            dt { "Id" } dd { code { (endpoint.id) } }
        }
        div class="row" {
            @if visit.who.may("WebhookService/DeleteWebhookEndpoint") {
                (post_button(visit, &format!("{base}/delete"), "Delete", "danger", Some("Delete this endpoint and its delivery history?")))
            }
            @if visit.who.may("WebhookService/RevealWebhookSecret") {
                a class="button secondary" href=(format!("{base}/secret")) { "Reveal signing secret" }
            }
            @if visit.who.may("WebhookService/EnableWebhookEndpoint") {
                @if endpoint.enabled {
                    (post_button(visit, &format!("{base}/enabled"), "Disable", "secondary", None))
                } @else {
                    form method="post" action=(format!("{base}/enabled")) class="inline" {
                        (csrf(visit))
                        input type="hidden" name="enabled" value="1";
                        button type="submit" class="secondary" { "Enable" }
                    }
                }
            }
        }
        @if visit.who.may("WebhookService/RecoverWebhookDeliveries") {
            form method="post" action=(format!("{base}/recover")) class="row" {
                (csrf(visit))
                label for="since" { "Deliver again what failed since (UTC)" }
                input id="since" name="since" type="datetime-local" value=(since) required;
                button type="submit" class="secondary" { "Recover" }
            }
        }
        h2 { "Deliveries" }
        nav aria-label="Delivery status" class="filters" {
            @for (value, label) in [("", "All"), ("DELIVERY_STATUS_FAILED", "Failed"), ("DELIVERY_STATUS_PENDING", "Pending"), ("DELIVERY_STATUS_SUCCEEDED", "Succeeded")] {
                @if value.is_empty() { a href=(base) { (label) } } @else { a href=(format!("{base}?status={value}")) { (label) } }
            }
        }
        @if deliveries.deliveries.is_empty() { p { "None." } } @else {
            div class="table" { table {
                thead { tr { th scope="col" { "Created" } th scope="col" { "Event" } th scope="col" { "Status" } th scope="col" { "Attempts" } th scope="col" { span class="visually-hidden" { "Actions" } } } }
                tbody {
                    @for delivery in &deliveries.deliveries {
                        tr id=(delivery.id) {
                            td { (time(delivery.created_at.as_ref())) }
                            td { (delivery.event_type) br; small { code { (delivery.event_id) } } }
                            td { span class=(format!("badge {}", delivery_status(delivery.status))) { (delivery_status(delivery.status)) } }
                            td {
                                details {
                                    summary { (delivery.attempts.len()) " attempt(s)" }
                                    ol class="attempts" {
                                        @for attempt in &delivery.attempts {
                                            li {
                                                (time(attempt.at.as_ref())) " · "
                                                @if attempt.status_code > 0 { "HTTP " (attempt.status_code) } @else { "no answer" }
                                                " · " (attempt.latency_ms) " ms"
                                                @if !attempt.error.is_empty() { p class="error" { (attempt.error) } }
                                                @if !attempt.response_body.is_empty() { pre { (attempt.response_body) } }
                                            }
                                        }
                                    }
                                }
                            }
                            td class="actions" {
                                @if may_operate {
                                    (post_button(visit, &format!("{base}/deliveries/{}/redeliver", delivery.id), "Redeliver", "secondary", None))
                                }
                            }
                        }
                    }
                }
            } }
            @if !deliveries.next_page_token.is_empty() {
                p { a href=(format!("{base}?status={}&page={}", status.as_str_name(), deliveries.next_page_token)) { "Older deliveries" } }
            }
        }
    };
    Ok(respond::page(
        StatusCode::OK,
        page(visit, Section::Webhooks, "Webhook endpoint", body),
    ))
}

pub async fn redeliver(visit: &Visit<'_>, id: &str, delivery: &str) -> Answer {
    let found = visit
        .api
        .webhooks()
        .get_webhook_delivery(visit.api.call(pb::GetWebhookDeliveryRequest {
            id: delivery.to_owned(),
        }))
        .await
        .map_err(Failure::from)?
        .into_inner();
    if found.endpoint_id != id {
        return Err(Failure::NotFound(format!("delivery {delivery:?} not found")));
    }
    visit
        .api
        .webhooks()
        .redeliver_webhook(visit.api.call(pb::RedeliverWebhookRequest {
            delivery_id: delivery.to_owned(),
        }))
        .await
        .map_err(Failure::from)?;
    Ok(respond::redirect(&format!("/endpoints/{id}?done=redelivered")))
}

pub async fn recover(visit: &Visit<'_>, id: &str) -> Answer {
    let since = visit.request.form.get("since");
    let at = jiff::civil::DateTime::strptime("%Y-%m-%dT%H:%M", since)
        .ok()
        .and_then(|at| at.to_zoned_datetime(jiff::tz::TimeZone::UTC).ok())
        .map(|at| at.timestamp())
        .ok_or_else(|| Failure::Invalid(vec![("since".to_owned(), "must be a date and time".to_owned())]))?;
    visit
        .api
        .webhooks()
        .recover_webhook_deliveries(visit.api.call(pb::RecoverWebhookDeliveriesRequest {
            endpoint_id: id.to_owned(),
            since: Some(crate::pb_time::from_jiff(at)),
        }))
        .await
        .map_err(Failure::from)?;
    Ok(respond::redirect(&format!("/endpoints/{id}?done=recovered")))
}

pub async fn set_enabled(visit: &Visit<'_>, id: &str) -> Answer {
    let mut client = visit.api.webhooks();
    let (result, done) = if visit.request.form.has("enabled") {
        let call = visit.api.call(pb::EnableWebhookEndpointRequest { id: id.to_owned() });
        (client.enable_webhook_endpoint(call).await, "enabled")
    } else {
        let call = visit.api.call(pb::DisableWebhookEndpointRequest { id: id.to_owned() });
        (client.disable_webhook_endpoint(call).await, "disabled")
    };
    result.map_err(Failure::from)?;
    Ok(respond::redirect(&format!("/endpoints/{id}?done={done}")))
}

pub async fn confirm_reveal(visit: &Visit<'_>, id: &str) -> Answer {
    let endpoint = endpoint(visit, id).await?;
    let body = html! {
        p { "The signing secret of " strong { (endpoint.url) } " lets anyone sign requests this endpoint trusts. Revealing it is recorded in the audit log." }
        form method="post" action=(format!("/endpoints/{id}/secret")) class="row" {
            (csrf(visit))
            button type="submit" { "Reveal the secret" }
            a href=(format!("/endpoints/{id}")) { "Cancel" }
        }
    };
    Ok(respond::page(
        StatusCode::OK,
        page(visit, Section::Webhooks, "Reveal the signing secret?", body),
    ))
}

pub async fn reveal(visit: &Visit<'_>, id: &str) -> Answer {
    let secret = visit
        .api
        .webhooks()
        .reveal_webhook_secret(visit.api.call(pb::RevealWebhookSecretRequest { id: id.to_owned() }))
        .await
        .map_err(Failure::from)?
        .into_inner()
        .secret;
    let body = html! {
        pre class="secret" { code id="secret" { (secret) } }
        p { a href=(format!("/endpoints/{id}")) { "Back to the endpoint" } }
    };
    Ok(respond::page(
        StatusCode::OK,
        page(visit, Section::Webhooks, "Signing secret", body),
    ))
}
