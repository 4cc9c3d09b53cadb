//! Pipedrive's webhooks API (`/api/v1/webhooks`): list, create (v2 payloads by default since
//! March 2025; `name`, `subscription_url`, `event_action` and `event_object` required; 40 per
//! user) and delete, each company seeing only its own.

use serde_json::{Value, json};

use super::{PipedriveHook, WebhooksState};
use crate::sandbox::oauth::{pipedrive_company_id, pipedrive_user_id};
use crate::sandbox::records::{iso_s, now_ms, ts};
use crate::sandbox::request::{Reply, SandboxRequest, json_reply};

/// Webhooks one user may have.
const PER_USER: usize = 40;
const ACTIONS: [&str; 8] = [
    "create", "change", "delete", "added", "updated", "merged", "deleted", "*",
];
const OBJECTS: [&str; 12] = [
    "activity",
    "activityType",
    "deal",
    "lead",
    "note",
    "organization",
    "person",
    "pipeline",
    "product",
    "stage",
    "user",
    "*",
];

/// The API's view of a webhook.
pub fn hook_json(hook: &PipedriveHook) -> Value {
    json!({
        "id": hook.id, "company_id": pipedrive_company_id(hook.account), "owner_id": pipedrive_user_id(hook.account),
        "user_id": pipedrive_user_id(hook.account), "event_action": hook.event_action, "event_object": hook.event_object,
        "subscription_url": hook.url, "version": hook.version, "is_active": 1, "add_time": hook.add_time,
        "remove_time": null, "type": "application", "http_auth_user": hook.user, "http_auth_password": hook.password,
        "remove_reason": null, "last_delivery_time": null, "last_http_status": hook.last_http_status,
        "admin_id": pipedrive_user_id(hook.account), "name": hook.name,
    })
}

fn invalid(field: &str, problem: &str) -> Reply {
    json_reply(
        400,
        json!({ "status": "error", "success": false, "errors": { field: [problem] } }),
    )
}

/// Answers `method` on `/api/v1/webhooks[/<id>]` for `account`.
pub fn handle(webhooks: &mut WebhooksState, account: u32, request: &SandboxRequest, id: Option<&str>) -> Reply {
    match (&request.method, id) {
        (&http::Method::GET, None) => {
            let hooks: Vec<Value> = webhooks
                .pipedrive
                .iter()
                .filter(|h| h.account == account)
                .map(hook_json)
                .collect();
            json_reply(200, json!({ "status": "ok", "success": true, "data": hooks }))
        }
        (&http::Method::POST, None) => create(webhooks, account, request),
        (&http::Method::DELETE, Some(id)) => {
            let before = webhooks.pipedrive.len();
            webhooks
                .pipedrive
                .retain(|h| !(h.account == account && h.id.to_string() == id));
            if webhooks.pipedrive.len() == before {
                return json_reply(
                    404,
                    json!({ "status": "error", "success": false, "errors": { "id": ["not found"] } }),
                );
            }
            json_reply(200, json!({ "status": "ok", "success": true }))
        }
        _ => json_reply(
            405,
            json!({ "success": false, "error": "Method not allowed", "errorCode": 405 }),
        ),
    }
}

fn create(webhooks: &mut WebhooksState, account: u32, request: &SandboxRequest) -> Reply {
    let fields = request.fields();
    let field = |name: &str| fields.get(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
    let Some(url) = field("subscription_url") else {
        return invalid("subscription_url", "is required");
    };
    if !matches!(
        url::Url::parse(&url).map(|u| u.scheme().to_owned()).as_deref(),
        Ok("http" | "https")
    ) {
        return invalid("subscription_url", "invalid or non-reachable URL");
    }
    let Some(event_action) = field("event_action").filter(|a| ACTIONS.contains(&a.as_str())) else {
        return invalid("event_action", "must be one of create, change, delete, *");
    };
    let Some(event_object) = field("event_object").filter(|o| OBJECTS.contains(&o.as_str())) else {
        return invalid(
            "event_object",
            "must be one of activity, deal, lead, note, organization, person, pipeline, product, stage, user, *",
        );
    };
    let Some(name) = field("name").filter(|n| n.len() <= 255) else {
        return invalid("name", "is required");
    };
    let version = field("version").unwrap_or_else(|| "2.0".into());
    if version != "1.0" && version != "2.0" {
        return invalid("version", "must be 1.0 or 2.0");
    }
    if webhooks.pipedrive.iter().filter(|h| h.account == account).count() >= PER_USER {
        return invalid("subscription_url", "the limit of 40 webhooks per user is reached");
    }
    let hook = PipedriveHook {
        id: webhooks.next_id(),
        account,
        event_action,
        event_object,
        url,
        user: field("http_auth_user"),
        password: field("http_auth_password"),
        version,
        name,
        add_time: iso_s(ts(now_ms())),
        last_http_status: None,
    };
    let answer = json!({ "status": "ok", "success": true, "data": hook_json(&hook) });
    webhooks.pipedrive.push(hook);
    json_reply(201, answer)
}
