//! HubSpot's webhook wire format: batches of up to 100 events (a JSON array), signed with the
//! app's client secret — v3 (`X-HubSpot-Signature-v3`: base64 HMAC-SHA256 of method, URL,
//! body and `X-HubSpot-Request-Timestamp`, refused beyond 5 minutes) or, from apps that still
//! send them, v1/v2 (`X-HubSpot-Signature`: hex SHA-256 of the secret and body, v2 with
//! method and URL).

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::event::{Change, ProviderEvent, hashed_key, text};
use super::refusal::Refusal;
use super::signed::{SignedRequest, same};

/// How far `X-HubSpot-Request-Timestamp` may be from now.
const MAX_SKEW_MS: i64 = 5 * 60 * 1000;

/// Checks the request's signature with the app's client secret: v3 when present, else v1/v2.
pub fn verify(request: &SignedRequest<'_>, client_secret: &str) -> Result<(), Refusal> {
    if let Some(given) = request.header("x-hubspot-signature-v3") {
        let timestamp = request
            .header("x-hubspot-request-timestamp")
            .ok_or(Refusal::MissingSignature("X-HubSpot-Request-Timestamp"))?;
        let at: i64 = timestamp.parse().map_err(|_| Refusal::StaleTimestamp)?;
        if (request.now_ms - at).abs() > MAX_SKEW_MS {
            return Err(Refusal::StaleTimestamp);
        }
        let expected = signature_v3(client_secret, request.method, request.url, request.body, timestamp);
        return if same(given.as_bytes(), expected.as_bytes()) {
            Ok(())
        } else {
            Err(Refusal::BadSignature("X-HubSpot-Signature-v3"))
        };
    }
    let given = request
        .header("x-hubspot-signature")
        .ok_or(Refusal::MissingSignature("X-HubSpot-Signature-v3"))?;
    let expected = match request.header("x-hubspot-signature-version").unwrap_or("v1") {
        "v1" => signature_v1(client_secret, request.body),
        "v2" => signature_v2(client_secret, request.method, request.url, request.body),
        _ => return Err(Refusal::BadSignature("X-HubSpot-Signature-Version")),
    };
    if same(given.to_ascii_lowercase().as_bytes(), expected.as_bytes()) {
        Ok(())
    } else {
        Err(Refusal::BadSignature("X-HubSpot-Signature"))
    }
}

/// v1: hex SHA-256 of the client secret followed by the body.
pub fn signature_v1(client_secret: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    hash.update(client_secret.as_bytes());
    hash.update(body);
    hex::encode(hash.finalize())
}

/// v2: hex SHA-256 of the client secret, method, URL and body.
pub fn signature_v2(client_secret: &str, method: &str, url: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    for part in [client_secret.as_bytes(), method.as_bytes(), url.as_bytes(), body] {
        hash.update(part);
    }
    hex::encode(hash.finalize())
}

/// v3: base64 HMAC-SHA256, keyed with the client secret, of method, URL (with HubSpot's
/// listed escapes decoded), body and timestamp.
pub fn signature_v3(client_secret: &str, method: &str, url: &str, body: &[u8], timestamp: &str) -> String {
    // Invariant: HMAC accepts keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(client_secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(method.as_bytes());
    mac.update(decode_listed_escapes(url).as_bytes());
    mac.update(body);
    mac.update(timestamp.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// HubSpot's v3 rule: these escapes in the URL are decoded before signing; others stay.
fn decode_listed_escapes(url: &str) -> String {
    const LISTED: [(&str, char); 12] = [
        ("3A", ':'),
        ("2F", '/'),
        ("3F", '?'),
        ("40", '@'),
        ("21", '!'),
        ("24", '$'),
        ("27", '\''),
        ("28", '('),
        ("29", ')'),
        ("2A", '*'),
        ("2C", ','),
        ("3B", ';'),
    ];
    let mut out = String::with_capacity(url.len());
    let mut rest = url;
    while let Some(at) = rest.find('%') {
        out.push_str(&rest[..at]);
        let escape = rest.get(at + 1..at + 3).unwrap_or_default();
        match LISTED.iter().find(|(hex, _)| hex.eq_ignore_ascii_case(escape)) {
            Some((_, decoded)) => {
                out.push(*decoded);
                rest = &rest[at + 3..];
            }
            None => {
                out.push('%');
                rest = &rest[at + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The connector's object for a HubSpot object type (`contact`, or `0-1` in the generic
/// `object.*` events).
fn object_name(kind: &str) -> Option<&'static str> {
    match kind {
        "contact" | "0-1" => Some("contacts"),
        "company" | "0-2" => Some("companies"),
        "deal" | "0-3" => Some("deals"),
        _ => None,
    }
}

/// Reads a batch. Events about objects or changes fluxd does not sync (associations,
/// conversations, other objects) are left out; they are HubSpot's to send, not errors.
pub fn parse(body: &[u8]) -> Result<Vec<ProviderEvent>, Refusal> {
    let batch: Value = serde_json::from_slice(body).map_err(|e| Refusal::Malformed(e.to_string()))?;
    let items = batch
        .as_array()
        .ok_or_else(|| Refusal::Malformed("a HubSpot webhook body is a JSON array of events".into()))?;
    let mut events = Vec::new();
    for (index, item) in items.iter().enumerate() {
        let missing = |field: &str| Refusal::Malformed(format!("event {index}: {field} is missing"));
        // The docs' table names it `eventType`; deliveries name it `subscriptionType`.
        let kind = item["subscriptionType"]
            .as_str()
            .or_else(|| item["eventType"].as_str())
            .ok_or_else(|| missing("subscriptionType"))?;
        let object_id = text(&item["objectId"]).ok_or_else(|| missing("objectId"))?;
        let occurred_at_ms = item["occurredAt"].as_i64().ok_or_else(|| missing("occurredAt"))?;
        let (object_kind, action) = kind.split_once('.').unwrap_or((kind, ""));
        let object_kind = if object_kind == "object" {
            item["objectTypeId"].as_str().unwrap_or_default()
        } else {
            object_kind
        };
        let Some(object) = object_name(object_kind) else {
            continue;
        };
        let key = hashed_key(&[
            kind,
            &object_id,
            &occurred_at_ms.to_string(),
            item["propertyName"].as_str().unwrap_or_default(),
            &text(&item["eventId"]).unwrap_or_default(),
        ]);
        let event = |record_id: String, change: Change, key: String| ProviderEvent {
            account: text(&item["portalId"]),
            object: object.to_owned(),
            record_id,
            change,
            occurred_at_ms,
            key,
        };
        match action {
            "creation" | "propertyChange" | "restore" => events.push(event(object_id, Change::Changed, key)),
            "deletion" | "privacyDeletion" => events.push(event(object_id, Change::Deleted, key)),
            "merge" => {
                let into = text(&item["newObjectId"])
                    .or_else(|| text(&item["primaryObjectId"]))
                    .unwrap_or_else(|| object_id.clone());
                for merged in item["mergedObjectIds"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(text)
                {
                    if merged != into {
                        let merged_key = hashed_key(&[&key, &merged]);
                        events.push(event(merged, Change::Merged { into: into.clone() }, merged_key));
                    }
                }
                events.push(event(into, Change::Changed, key));
            }
            _ => {}
        }
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "yyyyyyyy-yyyy-yyyy-yyyy-yyyyyyyyyyyy";
    const URL: &str = "https://www.example.com/webhook_uri";
    const EVENTS: &str = r#"[{"eventId":1,"subscriptionId":12345,"portalId":62515,"occurredAt":1564113600000,"subscriptionType":"contact.creation","attemptNumber":0,"objectId":123,"changeSource":"CRM","changeFlag":"NEW","appId":54321}]"#;

    fn request<'a>(headers: &'a http::HeaderMap, body: &'a [u8], now_ms: i64) -> SignedRequest<'a> {
        SignedRequest {
            method: "POST",
            url: URL,
            headers,
            body,
            now_ms,
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (http::HeaderName::from_static(name), value.parse().unwrap()))
            .collect()
    }

    #[test]
    fn signatures_match_hubspots_published_vectors() {
        // HubSpot/hubspot-api-nodejs test/unit/signature.spec.ts and the docs.
        assert_eq!(
            signature_v1(SECRET, EVENTS.as_bytes()),
            "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de"
        );
        assert_eq!(
            signature_v2(SECRET, "GET", URL, b""),
            "eee2dddcc73c94d699f5e395f4b9d454a069a6855fbfa152e91e88823087200e"
        );
        assert_eq!(
            signature_v2(SECRET, "POST", URL, br#"{"example_field":"example_value"}"#),
            "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900"
        );
        // hubspot-api-python / -ruby: a body with single quotes, timestamp 15000000.
        assert_eq!(
            signature_v3(SECRET, "POST", URL, b"{'example_field':'example_value'}", "15000000"),
            "HPW73RUtKmcYoEDADG0s6MmGFWUzWJKAW07r8RDgcQw="
        );
    }

    #[test]
    fn v3_decodes_only_the_listed_escapes() {
        let url = "https://www.example.com/webhook_uri?src=hs%3Aapp%2Fv3&x=%28a%29&q=a%20b";
        assert_eq!(
            decode_listed_escapes(url),
            "https://www.example.com/webhook_uri?src=hs:app/v3&x=(a)&q=a%20b"
        );
        assert_eq!(
            signature_v3(SECRET, "POST", url, EVENTS.as_bytes(), "1564113600000"),
            "00Bfn8WiFibN+c+x4yx1Rkw8M8IMqr9dQ1Ir8pcYz6E="
        );
    }

    #[test]
    fn v3_is_checked_with_its_timestamp_window() {
        let now = 1_564_113_600_000;
        let good = signature_v3(SECRET, "POST", URL, EVENTS.as_bytes(), &now.to_string());
        let signed = headers(&[
            ("x-hubspot-signature-v3", &good),
            ("x-hubspot-request-timestamp", &now.to_string()),
        ]);
        assert_eq!(
            verify(&request(&signed, EVENTS.as_bytes(), now + 1_000), SECRET),
            Ok(())
        );
        // Another secret, a tampered body, a stale or missing timestamp, no signature at all.
        assert_eq!(
            verify(&request(&signed, EVENTS.as_bytes(), now), "another-secret"),
            Err(Refusal::BadSignature("X-HubSpot-Signature-v3"))
        );
        let tampered = EVENTS.replace("123", "124");
        assert_eq!(
            verify(&request(&signed, tampered.as_bytes(), now), SECRET),
            Err(Refusal::BadSignature("X-HubSpot-Signature-v3"))
        );
        assert_eq!(
            verify(&request(&signed, EVENTS.as_bytes(), now + 300_001), SECRET),
            Err(Refusal::StaleTimestamp)
        );
        let untimed = headers(&[("x-hubspot-signature-v3", &good)]);
        assert_eq!(
            verify(&request(&untimed, EVENTS.as_bytes(), now), SECRET),
            Err(Refusal::MissingSignature("X-HubSpot-Request-Timestamp"))
        );
        assert_eq!(
            verify(&request(&http::HeaderMap::new(), EVENTS.as_bytes(), now), SECRET),
            Err(Refusal::MissingSignature("X-HubSpot-Signature-v3"))
        );
    }

    #[test]
    fn v1_and_v2_are_accepted_from_apps_that_send_them() {
        let v1 = headers(&[
            (
                "x-hubspot-signature",
                "232db2615f3d666fe21a8ec971ac7b5402d33b9a925784df3ca654d05f4817de",
            ),
            ("x-hubspot-signature-version", "v1"),
        ]);
        assert_eq!(verify(&request(&v1, EVENTS.as_bytes(), 0), SECRET), Ok(()));
        assert_eq!(
            verify(&request(&v1, b"[]", 0), SECRET),
            Err(Refusal::BadSignature("X-HubSpot-Signature"))
        );
        let body = br#"{"example_field":"example_value"}"#;
        let v2 = headers(&[
            (
                "x-hubspot-signature",
                "9569219f8ba981ffa6f6f16aa0f48637d35d728c7e4d93d0d52efaa512af7900",
            ),
            ("x-hubspot-signature-version", "v2"),
        ]);
        assert_eq!(verify(&request(&v2, body, 0), SECRET), Ok(()));
    }

    #[test]
    fn batches_become_record_changes() {
        let events = parse(EVENTS.as_bytes()).unwrap();
        assert_eq!(events.len(), 1);
        let event = &events[0];
        assert_eq!(
            (
                event.account.as_deref(),
                event.object.as_str(),
                event.record_id.as_str()
            ),
            (Some("62515"), "contacts", "123")
        );
        assert_eq!(
            (event.change.clone(), event.occurred_at_ms),
            (Change::Changed, 1_564_113_600_000)
        );
        let mixed = br#"[
            {"eventId":2,"portalId":1,"occurredAt":5,"eventType":"company.deletion","objectId":"9"},
            {"eventId":3,"portalId":1,"occurredAt":6,"subscriptionType":"contact.associationChange","objectId":1},
            {"eventId":4,"portalId":1,"occurredAt":7,"subscriptionType":"object.propertyChange","objectTypeId":"0-3","objectId":8,"propertyName":"amount"},
            {"eventId":5,"portalId":1,"occurredAt":8,"subscriptionType":"contact.merge","objectId":10,"primaryObjectId":10,"mergedObjectIds":[10,11]}
        ]"#;
        let events = parse(mixed).unwrap();
        let summary: Vec<(&str, &str, Change)> = events
            .iter()
            .map(|e| (e.object.as_str(), e.record_id.as_str(), e.change.clone()))
            .collect();
        assert_eq!(
            summary,
            [
                ("companies", "9", Change::Deleted),
                ("deals", "8", Change::Changed),
                ("contacts", "11", Change::Merged { into: "10".into() }),
                ("contacts", "10", Change::Changed),
            ]
        );
        // A redelivery (higher attemptNumber) keeps its key; another change of the same record
        // does not.
        let again = EVENTS.replace("\"attemptNumber\":0", "\"attemptNumber\":3");
        assert_eq!(
            parse(again.as_bytes()).unwrap()[0].key,
            parse(EVENTS.as_bytes()).unwrap()[0].key
        );
        let later = EVENTS.replace("1564113600000", "1564113600001");
        assert_ne!(
            parse(later.as_bytes()).unwrap()[0].key,
            parse(EVENTS.as_bytes()).unwrap()[0].key
        );
    }

    #[test]
    fn malformed_batches_name_what_is_wrong() {
        for (body, naming) in [
            (&b"{}"[..], "JSON array"),
            (br#"[{"portalId":1,"occurredAt":1,"objectId":1}]"#, "subscriptionType"),
            (
                br#"[{"subscriptionType":"contact.creation","occurredAt":1}]"#,
                "objectId",
            ),
            (b"not json", "expected"),
        ] {
            let Err(Refusal::Malformed(message)) = parse(body) else {
                panic!("{} was accepted", String::from_utf8_lossy(body));
            };
            assert!(message.contains(naming), "{message}");
        }
    }
}
