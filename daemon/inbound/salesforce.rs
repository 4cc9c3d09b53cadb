//! Salesforce Outbound Messages: a SOAP envelope of `notifications` (the org's
//! `OrganizationId`, then up to 100 `Notification`s, each an `Id` and an `sObject` with the
//! fields the message selects), unsigned — fluxd checks the organization and the secret URL
//! token — and acknowledged with a `notificationsResponse` whose `Ack` is `true` (anything
//! else makes Salesforce retry).

use serde::Deserialize;

use super::event::{Change, ProviderEvent};
use super::refusal::Refusal;

/// The acknowledgement Salesforce expects for a whole message.
pub const ACK: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">
 <soapenv:Body>
  <notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">
   <Ack>true</Ack>
  </notificationsResponse>
 </soapenv:Body>
</soapenv:Envelope>
"#;

#[derive(Deserialize)]
struct Envelope {
    #[serde(rename = "Body")]
    body: Body,
}

#[derive(Deserialize)]
struct Body {
    notifications: Notifications,
}

#[derive(Deserialize)]
struct Notifications {
    #[serde(rename = "OrganizationId")]
    organization_id: String,
    #[serde(rename = "Notification", default)]
    notification: Vec<Notification>,
}

#[derive(Deserialize)]
struct Notification {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "sObject")]
    sobject: SObject,
}

#[derive(Deserialize)]
struct SObject {
    /// `xsi:type`, e.g. `sf:Contact`.
    #[serde(rename = "@type")]
    kind: String,
    #[serde(rename = "Id")]
    id: Option<String>,
    #[serde(rename = "LastModifiedDate")]
    last_modified: Option<String>,
}

/// An outbound message: whose org sent it, and its record changes.
#[derive(Debug)]
pub struct OutboundMessage {
    pub organization_id: String,
    pub events: Vec<ProviderEvent>,
}

/// Whether two Salesforce ids name the same record: the first 15 characters are the id, the
/// last 3 of an 18-character id only make it case-insensitive.
pub fn same_id(a: &str, b: &str) -> bool {
    a.get(..15).unwrap_or(a) == b.get(..15).unwrap_or(b)
}

/// Reads an outbound message; `now_ms` dates notifications that carry no `LastModifiedDate`.
/// A notification without a record id (its record was deleted before delivery) gives none.
pub fn parse(body: &[u8], now_ms: i64) -> Result<OutboundMessage, Refusal> {
    let text = std::str::from_utf8(body).map_err(|e| Refusal::Malformed(e.to_string()))?;
    let envelope: Envelope = quick_xml::de::from_str(text).map_err(|e| Refusal::Malformed(e.to_string()))?;
    let notifications = envelope.body.notifications;
    let mut events = Vec::new();
    for notification in notifications.notification {
        let Some(record_id) = notification.sobject.id.filter(|id| !id.is_empty()) else {
            continue;
        };
        let kind = &notification.sobject.kind;
        let object = kind.rsplit_once(':').map_or(kind.as_str(), |(_, name)| name);
        let occurred_at_ms = notification
            .sobject
            .last_modified
            .and_then(|at| at.parse::<jiff::Timestamp>().ok())
            .map_or(now_ms, |at| at.as_millisecond());
        events.push(ProviderEvent {
            account: Some(notifications.organization_id.clone()),
            object: object.to_owned(),
            record_id,
            change: Change::Changed,
            occurred_at_ms,
            key: notification.id,
        });
    }
    Ok(OutboundMessage {
        organization_id: notifications.organization_id,
        events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MESSAGE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>00D5e000000KQ2eEAG</OrganizationId>
   <ActionId>04k5e000000CaRkAAK</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://example.my.salesforce.com/services/Soap/c/62.0/00D5e000000KQ2e</EnterpriseUrl>
   <PartnerUrl>https://example.my.salesforce.com/services/Soap/u/62.0/00D5e000000KQ2e</PartnerUrl>
   <Notification>
    <Id>04l5e00000Gx7QzAAJ</Id>
    <sObject xsi:type="sf:Contact" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>0035e00000ZkM3hAAF</sf:Id>
     <sf:Email>ada&amp;co@example.com</sf:Email>
     <sf:FirstName>Ada</sf:FirstName>
     <sf:LastModifiedDate>2024-06-26T00:05:38.000Z</sf:LastModifiedDate>
     <sf:LastName>Lovelace</sf:LastName>
    </sObject>
   </Notification>
   <Notification>
    <Id>04l5e00000Gx7R0AAJ</Id>
    <sObject xsi:type="sf:Contact" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>0035e00000ZkM3iAAF</sf:Id>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"#;

    #[test]
    fn outbound_messages_become_record_changes() {
        let message = parse(MESSAGE.as_bytes(), 42).unwrap();
        assert_eq!(message.organization_id, "00D5e000000KQ2eEAG");
        let summary: Vec<(&str, &str, &str, i64)> = message
            .events
            .iter()
            .map(|e| {
                (
                    e.object.as_str(),
                    e.record_id.as_str(),
                    e.key.as_str(),
                    e.occurred_at_ms,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("Contact", "0035e00000ZkM3hAAF", "04l5e00000Gx7QzAAJ", 1_719_360_338_000),
                ("Contact", "0035e00000ZkM3iAAF", "04l5e00000Gx7R0AAJ", 42),
            ]
        );
        assert!(message.events.iter().all(|e| e.change == Change::Changed));
    }

    #[test]
    fn ids_compare_on_their_first_fifteen_characters() {
        assert!(same_id("00D5e000000KQ2eEAG", "00D5e000000KQ2e"));
        assert!(!same_id("00D5e000000KQ2fEAG", "00D5e000000KQ2e"));
    }

    #[test]
    fn malformed_messages_are_refused() {
        for body in [
            "<notifications/>",
            "not xml",
            "<Envelope><Body><notifications/></Body></Envelope>",
        ] {
            assert!(
                matches!(parse(body.as_bytes(), 0), Err(Refusal::Malformed(_))),
                "{body}"
            );
        }
    }
}
