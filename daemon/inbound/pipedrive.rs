//! Pipedrive's webhook wire format: one event per request, authenticated only by the HTTP
//! Basic credentials set when the webhook was created (fluxd generates them per connection).
//! Webhooks v2 (`meta.action` create/change/delete, `meta.entity`, `meta.entity_id`, a
//! per-event `meta.id`, `data`/`previous`) are the default since March 2025; v1
//! (`meta.action` added/updated/deleted/merged, `meta.object`, `current`/`previous`) is read
//! too.

use base64::Engine as _;
use serde_json::Value;

use super::event::{Change, ProviderEvent, hashed_key, text};
use super::refusal::Refusal;
use super::signed::{SignedRequest, same};

/// The Basic user name fluxd gives Pipedrive; the password is per connection.
pub const BASIC_USER: &str = "fluxcascade";

/// Whether the request carries `Authorization: Basic` with `user:password`.
pub fn verify(request: &SignedRequest<'_>, user: &str, password: &str) -> Result<(), Refusal> {
    let given = request
        .header("authorization")
        .ok_or(Refusal::MissingSignature("Authorization (HTTP Basic)"))?;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    );
    if same(given.as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(Refusal::BadSignature("Authorization (HTTP Basic)"))
    }
}

/// The connector's object of a Pipedrive entity.
fn object_name(entity: &str) -> Option<&'static str> {
    match entity {
        "person" => Some("persons"),
        "organization" => Some("organizations"),
        "deal" => Some("deals"),
        _ => None,
    }
}

/// Unix ms from an RFC 3339 string, or a number of seconds (10 digits) or milliseconds.
fn timestamp_ms(value: &Value) -> Option<i64> {
    match value {
        Value::String(s) => s
            .parse::<jiff::Timestamp>()
            .ok()
            .map(|t| t.as_millisecond())
            .or_else(|| s.parse::<i64>().ok().map(seconds_or_ms)),
        Value::Number(n) => n.as_i64().map(seconds_or_ms),
        _ => None,
    }
}

fn seconds_or_ms(n: i64) -> i64 {
    if n < 100_000_000_000 { n * 1000 } else { n }
}

/// Reads an event of either version; entities fluxd does not sync give none.
pub fn parse(body: &[u8]) -> Result<Vec<ProviderEvent>, Refusal> {
    let value: Value = serde_json::from_slice(body).map_err(|e| Refusal::Malformed(e.to_string()))?;
    let meta = &value["meta"];
    if !meta.is_object() {
        return Err(Refusal::Malformed("meta is missing".into()));
    }
    let missing = |field: &str| Refusal::Malformed(format!("meta.{field} is missing"));
    let action = meta["action"].as_str().ok_or_else(|| missing("action"))?;
    if meta.get("entity").is_some() {
        let entity = meta["entity"].as_str().ok_or_else(|| missing("entity"))?;
        let Some(object) = object_name(entity) else {
            return Ok(Vec::new());
        };
        let record_id = text(&meta["entity_id"]).ok_or_else(|| missing("entity_id"))?;
        let event_id = text(&meta["id"]).ok_or_else(|| missing("id"))?;
        let change = match (action, text(&meta["merged_to_id"])) {
            ("delete", Some(into)) => Change::Merged { into },
            ("delete", None) => Change::Deleted,
            ("create" | "change", _) => Change::Changed,
            _ => return Ok(Vec::new()),
        };
        return Ok(vec![ProviderEvent {
            account: text(&meta["company_id"]),
            object: object.to_owned(),
            record_id,
            change,
            occurred_at_ms: timestamp_ms(&meta["timestamp"]).ok_or_else(|| missing("timestamp"))?,
            key: event_id,
        }]);
    }
    let kind = meta["object"].as_str().ok_or_else(|| missing("entity"))?;
    let Some(object) = object_name(kind) else {
        return Ok(Vec::new());
    };
    let record_id = text(&meta["id"]).ok_or_else(|| missing("id"))?;
    let change = match action {
        "added" | "updated" | "merged" => Change::Changed,
        "deleted" => Change::Deleted,
        _ => return Ok(Vec::new()),
    };
    let occurred_at_ms = meta["timestamp_micro"]
        .as_i64()
        .map(|micro| micro / 1000)
        .or_else(|| timestamp_ms(&meta["timestamp"]))
        .ok_or_else(|| missing("timestamp"))?;
    Ok(vec![ProviderEvent {
        key: hashed_key(&[
            action,
            kind,
            &record_id,
            &occurred_at_ms.to_string(),
            &text(&meta["webhook_id"]).unwrap_or_default(),
        ]),
        account: text(&meta["company_id"]),
        object: object.to_owned(),
        record_id,
        change,
        occurred_at_ms,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    const V2: &str = r#"{"meta":{"action":"change","entity":"person","company_id":"1001","correlation_id":"c","entity_id":"12","id":"8f6c1a60-1111-4a2b-9c3d-0123456789ab","is_bulk_edit":false,"timestamp":"2025-01-01T00:00:00.000Z","type":"general","user_id":"5","version":"2.0","webhook_id":"77","webhook_owner_id":"5","change_source":"app","attempt":1,"host":"sandbox1.pipedrive.com"},"data":{"id":12,"name":"Ann Lee"},"previous":{"name":"Ann"}}"#;

    fn check(authorization: Option<&str>) -> Result<(), Refusal> {
        let mut headers = http::HeaderMap::new();
        if let Some(value) = authorization {
            headers.insert(http::header::AUTHORIZATION, value.parse().unwrap());
        }
        let request = SignedRequest {
            method: "POST",
            url: "https://fluxd.example/webhooks/pipedrive/t",
            headers: &headers,
            body: V2.as_bytes(),
            now_ms: 0,
        };
        verify(&request, BASIC_USER, "s3cret")
    }

    #[test]
    fn basic_credentials_must_match_the_connections() {
        // base64("fluxcascade:s3cret")
        assert_eq!(check(Some("Basic Zmx1eGNhc2NhZGU6czNjcmV0")), Ok(()));
        assert_eq!(
            check(Some("Basic Zmx1eGNhc2NhZGU6d3Jvbmc=")),
            Err(Refusal::BadSignature("Authorization (HTTP Basic)"))
        );
        assert_eq!(
            check(None),
            Err(Refusal::MissingSignature("Authorization (HTTP Basic)"))
        );
    }

    #[test]
    fn v2_events_become_record_changes() {
        let events = parse(V2.as_bytes()).unwrap();
        let event = &events[0];
        assert_eq!(
            (
                event.account.as_deref(),
                event.object.as_str(),
                event.record_id.as_str(),
                &event.change
            ),
            (Some("1001"), "persons", "12", &Change::Changed)
        );
        assert_eq!(event.key, "8f6c1a60-1111-4a2b-9c3d-0123456789ab");
        assert_eq!(event.occurred_at_ms, 1_735_689_600_000);
        let merged = V2
            .replace("\"action\":\"change\"", "\"action\":\"delete\"")
            .replace("\"attempt\":1", "\"attempt\":1,\"merged_to_id\":\"9\"");
        assert_eq!(
            parse(merged.as_bytes()).unwrap()[0].change,
            Change::Merged { into: "9".into() }
        );
        let seconds = V2.replace("\"2025-01-01T00:00:00.000Z\"", "1735689600");
        assert_eq!(parse(seconds.as_bytes()).unwrap()[0].occurred_at_ms, 1_735_689_600_000);
        assert_eq!(parse(V2.replace("\"person\"", "\"note\"").as_bytes()).unwrap(), []);
    }

    #[test]
    fn v1_events_become_record_changes() {
        let v1 = r#"{"v":1,"matches_filters":{"current":[]},"meta":{"v":1,"action":"deleted","object":"deal","id":34,"company_id":1001,"user_id":5,"host":"x.pipedrive.com","timestamp":1523440213,"timestamp_micro":1523440213384700,"permitted_user_ids":[],"trans_pending":false,"is_bulk_update":false,"webhook_id":77},"retry":0,"current":null,"previous":{"id":34},"event":"deleted.deal"}"#;
        let events = parse(v1.as_bytes()).unwrap();
        let event = &events[0];
        assert_eq!(
            (
                event.account.as_deref(),
                event.object.as_str(),
                event.record_id.as_str(),
                &event.change
            ),
            (Some("1001"), "deals", "34", &Change::Deleted)
        );
        assert_eq!(event.occurred_at_ms, 1_523_440_213_384);
        let retried = v1.replace("\"retry\":0", "\"retry\":2");
        assert_eq!(parse(retried.as_bytes()).unwrap()[0].key, event.key);
    }

    #[test]
    fn malformed_events_name_what_is_missing() {
        for (body, naming) in [
            ("{}".to_owned(), "meta"),
            (V2.replace("\"entity_id\":\"12\",", ""), "entity_id"),
            (V2.replace("\"action\":\"change\",", ""), "action"),
        ] {
            let Err(Refusal::Malformed(message)) = parse(body.as_bytes()) else {
                panic!("{body} was accepted");
            };
            assert!(message.contains(naming), "{message}");
        }
    }
}
