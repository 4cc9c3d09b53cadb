//! Each provider's webhook payloads and signatures, as the provider documents them: HubSpot's
//! event batches (v3 and v1 signatures with the app's client secret), Jobber's
//! `webHookEvent` (base64 HMAC of the body), Pipedrive's v2 or v1 events (HTTP Basic), and
//! Salesforce's outbound message envelopes. Written from the providers' documentation, not
//! from fluxd's receiver.

use std::collections::BTreeSet;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::{Origin, Payload, WebhooksState};
use crate::providers::Provider;
use crate::sandbox::client_secret;
use crate::sandbox::oauth::{
    hubspot_hub_id, jobber_account_id, pipedrive_company_id, pipedrive_user_id, salesforce_org_id,
};
use crate::sandbox::records::{ChangeKind, RecordChange, iso_ms};

/// HubSpot's documented batch ceiling.
const HUBSPOT_BATCH: usize = 100;
/// A Salesforce outbound message holds up to 100 notifications.
const SALESFORCE_BATCH: usize = 100;
/// The sandbox's HubSpot app id.
const HUBSPOT_APP_ID: u64 = 1_234_567;
/// The sandbox's Jobber app id.
const JOBBER_APP_ID: &str = "3ef22a50-072d-430c-a78f-b7646657560b";

/// The deliveries (URL and payload) `changes` make for `provider`'s subscribers.
pub fn deliveries(
    webhooks: &mut WebhooksState,
    provider: Provider,
    changes: &[RecordChange],
    accounts: &BTreeSet<u32>,
    origin: Origin,
) -> Vec<(String, Payload)> {
    match provider {
        Provider::Hubspot => hubspot(webhooks, changes, accounts, origin),
        Provider::Jobber => jobber(webhooks, changes, accounts),
        Provider::Pipedrive => pipedrive(webhooks, changes, origin),
        Provider::Salesforce => salesforce(webhooks, changes),
    }
}

fn subscribed(events: &[String], event: &str) -> bool {
    events.is_empty() || events.iter().any(|e| e == event)
}

fn hubspot(
    webhooks: &mut WebhooksState,
    changes: &[RecordChange],
    accounts: &BTreeSet<u32>,
    origin: Origin,
) -> Vec<(String, Payload)> {
    let Some(app) = webhooks.hubspot.clone() else {
        return Vec::new();
    };
    let source = match origin {
        Origin::Api => "INTEGRATION",
        Origin::Ui => "CRM_UI",
    };
    let mut out = Vec::new();
    for account in accounts {
        let mut events = Vec::new();
        for change in changes {
            let kind = match change.object {
                "contacts" => "contact",
                "companies" => "company",
                _ => "deal",
            };
            let object_id: Value = change
                .id
                .parse::<u64>()
                .map_or_else(|_| change.id.clone().into(), Value::from);
            let mut base = json!({
                "subscriptionId": 1, "portalId": hubspot_hub_id(*account), "appId": HUBSPOT_APP_ID,
                "occurredAt": change.at.as_millisecond(), "attemptNumber": 0, "objectId": object_id,
                "changeSource": source, "sourceId": format!("userId:{}", 9_000 + account),
            });
            let mut push = |subscription: String, extra: Map<String, Value>| {
                if subscribed(&app.events, &subscription) {
                    base["eventId"] = webhooks.next_id().into();
                    base["subscriptionType"] = subscription.into();
                    let mut event = base.clone();
                    if let Value::Object(map) = &mut event {
                        map.extend(extra);
                    }
                    events.push(event);
                }
            };
            match &change.kind {
                ChangeKind::Created => push(
                    format!("{kind}.creation"),
                    Map::from_iter([("changeFlag".into(), "CREATED".into())]),
                ),
                ChangeKind::Deleted => push(
                    format!("{kind}.deletion"),
                    Map::from_iter([("changeFlag".into(), "DELETED".into())]),
                ),
                ChangeKind::Updated { previous } => {
                    for name in previous.keys() {
                        let value = change.fields.get(name).map(text).unwrap_or_default();
                        push(
                            format!("{kind}.propertyChange"),
                            Map::from_iter([
                                ("propertyName".into(), name.clone().into()),
                                ("propertyValue".into(), value.into()),
                            ]),
                        );
                    }
                }
            }
        }
        for batch in events.chunks(HUBSPOT_BATCH) {
            out.push((app.url.clone(), Payload::Hubspot(batch.to_vec())));
        }
    }
    out
}

/// A field value as HubSpot reports property values: always a string.
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn jobber(webhooks: &WebhooksState, changes: &[RecordChange], accounts: &BTreeSet<u32>) -> Vec<(String, Payload)> {
    let Some(app) = &webhooks.jobber else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for change in changes {
        let kind = match change.object {
            "clients" => "CLIENT",
            "jobs" => "JOB",
            _ => "PROPERTY",
        };
        let action = match change.kind {
            ChangeKind::Created => "CREATE",
            ChangeKind::Updated { .. } => "UPDATE",
            ChangeKind::Deleted => "DESTROY",
        };
        let topic = format!("{kind}_{action}");
        if !subscribed(&app.events, &topic) {
            continue;
        }
        for account in accounts {
            let body = json!({ "data": { "webHookEvent": {
                "topic": topic, "appId": JOBBER_APP_ID, "accountId": jobber_account_id(*account),
                "itemId": change.id, "occurredAt": change.at.strftime("%Y-%m-%dT%H:%M:%S+00:00").to_string(),
            }}});
            out.push((app.url.clone(), Payload::Jobber(body.to_string())));
        }
    }
    out
}

fn pipedrive(webhooks: &mut WebhooksState, changes: &[RecordChange], origin: Origin) -> Vec<(String, Payload)> {
    let hooks = webhooks.pipedrive.clone();
    let mut out = Vec::new();
    for change in changes {
        let entity = match change.object {
            "persons" => "person",
            "organizations" => "organization",
            _ => "deal",
        };
        let (v2_action, v1_action) = match change.kind {
            ChangeKind::Created => ("create", "added"),
            ChangeKind::Updated { .. } => ("change", "updated"),
            ChangeKind::Deleted => ("delete", "deleted"),
        };
        for hook in &hooks {
            let v2 = hook.version == "2.0";
            let action = if v2 { v2_action } else { v1_action };
            let matches_action = hook.event_action == "*" || hook.event_action == action;
            let matches_object = hook.event_object == "*" || hook.event_object == entity;
            if !(matches_action && matches_object) {
                continue;
            }
            let event_id = uuid::Uuid::new_v4().to_string();
            let event = if v2 {
                pipedrive_v2(hook, change, entity, action, origin, &event_id)
            } else {
                pipedrive_v1(hook, change, entity, action, origin)
            };
            let basic = hook.user.clone().zip(hook.password.clone());
            out.push((
                hook.url.clone(),
                Payload::Pipedrive {
                    hook: hook.id,
                    event,
                    basic,
                },
            ));
        }
        webhooks.next_id();
    }
    out
}

fn pipedrive_record(change: &RecordChange) -> Value {
    let mut record = change.fields.clone();
    record.insert("id".into(), change.seq.into());
    Value::Object(record)
}

fn pipedrive_v2(
    hook: &super::PipedriveHook,
    change: &RecordChange,
    entity: &str,
    action: &str,
    origin: Origin,
    event_id: &str,
) -> Value {
    let (data, previous) = match &change.kind {
        ChangeKind::Created => (pipedrive_record(change), Value::Null),
        ChangeKind::Updated { previous } => (pipedrive_record(change), Value::Object(previous.clone())),
        ChangeKind::Deleted => (Value::Null, pipedrive_record(change)),
    };
    json!({
        "meta": {
            "action": action, "entity": entity, "company_id": pipedrive_company_id(hook.account).to_string(),
            "correlation_id": uuid::Uuid::new_v4().to_string(), "entity_id": change.seq.to_string(), "id": event_id,
            "is_bulk_edit": false, "timestamp": iso_ms(change.at), "type": "general",
            "user_id": pipedrive_user_id(hook.account).to_string(), "version": "2.0", "webhook_id": hook.id.to_string(),
            "webhook_owner_id": pipedrive_user_id(hook.account).to_string(),
            "change_source": if origin == Origin::Api { "api" } else { "app" }, "attempt": 1,
            "host": format!("sandbox{}.pipedrive.com", hook.account), "permitted_user_ids": [pipedrive_user_id(hook.account).to_string()],
        },
        "data": data,
        "previous": previous,
    })
}

fn pipedrive_v1(
    hook: &super::PipedriveHook,
    change: &RecordChange,
    entity: &str,
    action: &str,
    origin: Origin,
) -> Value {
    let (current, previous) = match &change.kind {
        ChangeKind::Created => (pipedrive_record(change), Value::Null),
        ChangeKind::Updated { previous } => {
            let mut before = change.fields.clone();
            for (key, value) in previous {
                before.insert(key.clone(), value.clone());
            }
            before.insert("id".into(), change.seq.into());
            (pipedrive_record(change), Value::Object(before))
        }
        ChangeKind::Deleted => (Value::Null, pipedrive_record(change)),
    };
    let micros = change.at.as_microsecond();
    json!({
        "v": 1,
        "matches_filters": { "current": [], "previous": [] },
        "meta": {
            "v": 1, "action": action, "object": entity, "change_source": if origin == Origin::Api { "api" } else { "app" },
            "id": change.seq, "company_id": pipedrive_company_id(hook.account), "user_id": pipedrive_user_id(hook.account),
            "host": format!("sandbox{}.pipedrive.com", hook.account), "timestamp": micros / 1_000_000, "timestamp_micro": micros,
            "permitted_user_ids": [pipedrive_user_id(hook.account)], "trans_pending": false, "is_bulk_update": false,
            "pipedrive_service_name": false, "webhook_id": hook.id.to_string(),
        },
        "retry": 0,
        "current": current,
        "previous": previous,
        "event": format!("{action}.{entity}"),
    })
}

fn salesforce(webhooks: &mut WebhooksState, changes: &[RecordChange]) -> Vec<(String, Payload)> {
    let messages = webhooks.salesforce.clone();
    let mut out = Vec::new();
    for message in &messages {
        let mut notifications = Vec::new();
        for change in changes {
            if change.object != message.object || change.kind == ChangeKind::Deleted {
                continue;
            }
            let id = format!("04l5e0000{:09}", webhooks.next_id());
            notifications.push(salesforce_notification(&id, message, change));
        }
        for batch in notifications.chunks(SALESFORCE_BATCH) {
            out.push((
                message.url.clone(),
                Payload::Salesforce(salesforce_envelope(message, batch)),
            ));
        }
    }
    out
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn salesforce_notification(id: &str, message: &super::OutboundMessage, change: &RecordChange) -> String {
    let mut fields: Vec<(String, String)> = message
        .fields
        .iter()
        .filter(|name| name.as_str() != "Id")
        .filter_map(|name| Some((name.clone(), text(change.fields.get(name)?))))
        .collect();
    fields.push(("LastModifiedDate".into(), iso_ms(change.at)));
    fields.sort();
    fields.dedup_by(|a, b| a.0 == b.0);
    let mut xml = format!(
        "   <Notification>\n    <Id>{id}</Id>\n    <sObject xsi:type=\"sf:{}\" xmlns:sf=\"urn:sobject.enterprise.soap.sforce.com\">\n     <sf:Id>{}</sf:Id>\n",
        message.object, change.id
    );
    for (name, value) in fields {
        xml.push_str(&format!("     <sf:{name}>{}</sf:{name}>\n", xml_escape(&value)));
    }
    xml.push_str("    </sObject>\n   </Notification>\n");
    xml
}

fn salesforce_envelope(message: &super::OutboundMessage, notifications: &[String]) -> String {
    let org = salesforce_org_id(message.account);
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{org}</OrganizationId>
   <ActionId>{action}</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://sandbox.my.salesforce.com/services/Soap/c/62.0/{org}</EnterpriseUrl>
   <PartnerUrl>https://sandbox.my.salesforce.com/services/Soap/u/62.0/{org}</PartnerUrl>
{notifications}  </notifications>
 </soapenv:Body>
</soapenv:Envelope>
"#,
        action = message.id,
        notifications = notifications.concat(),
    )
}

/// The headers and body of attempt number `attempt` (0 for the first) at `now_ms`.
pub fn request(payload: &Payload, url: &str, attempt: u32, now_ms: i64) -> (Vec<(String, String)>, String) {
    match payload {
        Payload::Hubspot(events) => {
            let events: Vec<Value> = events
                .iter()
                .map(|event| {
                    let mut event = event.clone();
                    event["attemptNumber"] = attempt.into();
                    event
                })
                .collect();
            let body = Value::Array(events).to_string();
            let secret = client_secret(Provider::Hubspot);
            let timestamp = now_ms.to_string();
            let mut v1 = Sha256::new();
            v1.update(secret.as_bytes());
            v1.update(body.as_bytes());
            let v3 = hmac_base64(
                &secret,
                &[b"POST", url.as_bytes(), body.as_bytes(), timestamp.as_bytes()],
            );
            let headers = vec![
                ("content-type".into(), "application/json".into()),
                (
                    "user-agent".into(),
                    "HubSpot Connect 2.0 (http://dev.hubspot.com/) (namespace: webhooks-nio-http-client) - WebhooksExecutorDaemon-executor".into(),
                ),
                ("x-hubspot-timeout-millis".into(), "10000".into()),
                ("x-hubspot-signature".into(), hex::encode(v1.finalize())),
                ("x-hubspot-signature-version".into(), "v1".into()),
                ("x-hubspot-signature-v3".into(), v3),
                ("x-hubspot-request-timestamp".into(), timestamp),
            ];
            (headers, body)
        }
        Payload::Jobber(body) => {
            let signature = hmac_base64(&client_secret(Provider::Jobber), &[body.as_bytes()]);
            let headers = vec![
                ("content-type".into(), "application/json".into()),
                ("x-jobber-hmac-sha256".into(), signature),
            ];
            (headers, body.clone())
        }
        Payload::Pipedrive { event, basic, .. } => {
            let mut event = event.clone();
            if event["meta"]["version"] == "2.0" {
                event["meta"]["attempt"] = (attempt + 1).into();
            } else {
                event["retry"] = attempt.into();
            }
            let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
            if let Some((user, password)) = basic {
                let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                headers.push(("authorization".into(), format!("Basic {credentials}")));
            }
            (headers, event.to_string())
        }
        Payload::Salesforce(body) => (
            vec![
                ("content-type".into(), "text/xml; charset=utf-8".into()),
                ("soapaction".into(), "\"\"".into()),
            ],
            body.clone(),
        ),
    }
}

fn hmac_base64(key: &str, parts: &[&[u8]]) -> String {
    // Invariant: HMAC accepts keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key length");
    for part in parts {
        mac.update(part);
    }
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}
