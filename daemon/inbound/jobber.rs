//! Jobber's webhook wire format: one event per request,
//! `{"data":{"webHookEvent":{"topic","appId","accountId","itemId","occurredAt"}}}`, signed
//! with `X-Jobber-Hmac-SHA256`, the base64 HMAC-SHA256 of the raw body keyed with the app's
//! client secret. Topics are `<OBJECT>_<CREATE|UPDATE|DESTROY>`; apps created before
//! December 2023 get the field spelled `occuredAt`.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use super::event::{Change, ProviderEvent, hashed_key, text};
use super::refusal::Refusal;
use super::signed::{SignedRequest, same};

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Jobber-Hmac-SHA256";

/// Checks `X-Jobber-Hmac-SHA256` with the app's client secret.
pub fn verify(request: &SignedRequest<'_>, client_secret: &str) -> Result<(), Refusal> {
    let given = request
        .header(SIGNATURE_HEADER)
        .ok_or(Refusal::MissingSignature(SIGNATURE_HEADER))?;
    if same(given.as_bytes(), signature(client_secret, request.body).as_bytes()) {
        Ok(())
    } else {
        Err(Refusal::BadSignature(SIGNATURE_HEADER))
    }
}

/// Base64 HMAC-SHA256 of `body`, keyed with the client secret.
pub fn signature(client_secret: &str, body: &[u8]) -> String {
    // Invariant: HMAC accepts keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(client_secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The connector's object of a topic's object part.
fn object_name(kind: &str) -> Option<&'static str> {
    match kind {
        "CLIENT" => Some("clients"),
        "JOB" => Some("jobs"),
        "PROPERTY" => Some("properties"),
        _ => None,
    }
}

/// Reads an event; topics about objects fluxd does not sync (invoices, visits, the app
/// itself) give none.
pub fn parse(body: &[u8]) -> Result<Vec<ProviderEvent>, Refusal> {
    let value: Value = serde_json::from_slice(body).map_err(|e| Refusal::Malformed(e.to_string()))?;
    let event = &value["data"]["webHookEvent"];
    if !event.is_object() {
        return Err(Refusal::Malformed("data.webHookEvent is missing".into()));
    }
    let field = |name: &'static str| {
        text(&event[name]).ok_or_else(|| Refusal::Malformed(format!("data.webHookEvent.{name} is missing")))
    };
    let topic = field("topic")?;
    let account = field("accountId")?;
    let occurred = text(&event["occurredAt"])
        .or_else(|| text(&event["occuredAt"]))
        .ok_or_else(|| Refusal::Malformed("data.webHookEvent.occurredAt is missing".into()))?;
    let occurred_at_ms = occurred
        .parse::<jiff::Timestamp>()
        .map_err(|e| Refusal::Malformed(format!("data.webHookEvent.occurredAt: {e}")))?
        .as_millisecond();
    let Some((kind, action)) = topic.rsplit_once('_') else {
        return Ok(Vec::new());
    };
    let (Some(object), change) = (
        object_name(kind),
        match action {
            "CREATE" | "UPDATE" => Change::Changed,
            "DESTROY" => Change::Deleted,
            _ => return Ok(Vec::new()),
        },
    ) else {
        return Ok(Vec::new());
    };
    let item = field("itemId")?;
    Ok(vec![ProviderEvent {
        key: hashed_key(&[&topic, &item, &occurred]),
        account: Some(account),
        object: object.to_owned(),
        record_id: item,
        change,
        occurred_at_ms,
    }])
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "test_client_secret";
    const BODY: &str = r#"{"data":{"webHookEvent":{"topic":"CLIENT_CREATE","appId":"3ef22a50-072d-430c-a78f-b7646657560b","accountId":"MQ==","itemId":"MQ==","occurredAt":"2021-08-12T16:31:36-06:00"}}}"#;

    fn check(signature: Option<&str>, body: &str, secret: &str) -> Result<(), Refusal> {
        let mut headers = http::HeaderMap::new();
        if let Some(signature) = signature {
            headers.insert("x-jobber-hmac-sha256", signature.parse().unwrap());
        }
        let request = SignedRequest {
            method: "POST",
            url: "https://fluxd.example/webhooks/jobber",
            headers: &headers,
            body: body.as_bytes(),
            now_ms: 0,
        };
        verify(&request, secret)
    }

    #[test]
    fn the_signature_is_a_base64_hmac_of_the_raw_body() {
        let good = "EI44cjYMI9RY+65CYx+SQWDEAr0edMHJQgakaoF1UMo=";
        assert_eq!(signature(SECRET, BODY.as_bytes()), good);
        assert_eq!(check(Some(good), BODY, SECRET), Ok(()));
        assert_eq!(
            check(Some(good), BODY, "another-secret"),
            Err(Refusal::BadSignature(SIGNATURE_HEADER))
        );
        assert_eq!(
            check(Some(good), &BODY.replace("MQ==\",\"occ", "Mg==\",\"occ"), SECRET),
            Err(Refusal::BadSignature(SIGNATURE_HEADER))
        );
        assert_eq!(
            check(Some("Some random invalid hmac"), BODY, SECRET),
            Err(Refusal::BadSignature(SIGNATURE_HEADER))
        );
        assert_eq!(
            check(None, BODY, SECRET),
            Err(Refusal::MissingSignature(SIGNATURE_HEADER))
        );
    }

    #[test]
    fn events_become_record_changes_in_either_spelling() {
        let events = parse(BODY.as_bytes()).unwrap();
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(
            (
                event.account.as_deref(),
                event.object.as_str(),
                event.record_id.as_str(),
                &event.change
            ),
            (Some("MQ=="), "clients", "MQ==", &Change::Changed)
        );
        assert_eq!(event.occurred_at_ms, 1_628_807_496_000);
        let legacy = BODY
            .replace("occurredAt", "occuredAt")
            .replace("CLIENT_CREATE", "JOB_DESTROY");
        let events = parse(legacy.as_bytes()).unwrap();
        assert_eq!(
            (events[0].object.as_str(), &events[0].change),
            ("jobs", &Change::Deleted)
        );
        for ignored in ["APP_DISCONNECT", "INVOICE_UPDATE", "VISIT_COMPLETE"] {
            assert_eq!(parse(BODY.replace("CLIENT_CREATE", ignored).as_bytes()).unwrap(), []);
        }
    }

    #[test]
    fn malformed_events_name_what_is_missing() {
        for (body, naming) in [
            (r#"{"data":{}}"#.to_owned(), "webHookEvent"),
            (BODY.replace("\"accountId\":\"MQ==\",", ""), "accountId"),
            (BODY.replace("2021-08-12T16:31:36-06:00", "yesterday"), "occurredAt"),
        ] {
            let Err(Refusal::Malformed(message)) = parse(body.as_bytes()) else {
                panic!("{body} was accepted");
            };
            assert!(message.contains(naming), "{message}");
        }
    }
}
