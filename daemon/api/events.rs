//! `EventService`: the organization's event log — every event the outbox recorded, newest
//! first, filterable by type and time, as webhook endpoints receive them.

use std::sync::Arc;

use tonic::{Request, Response, Status};

use super::Context;
use super::convert::{json_object_to_pb, time_from_pb};
use super::pages::PageRequest;
use super::status::{invalid_texts, not_found};
use crate::auth::Caller;
use crate::events::EventRecord;
use crate::ids::IdKind;
use crate::pb::{self, event_service_server::EventService};
use crate::pb_time;
use crate::store::{IndexTable, Reader};
use crate::webhooks::subscription;

pub struct EventApi {
    context: Arc<Context>,
}

impl EventApi {
    pub fn new(context: Arc<Context>) -> Self {
        EventApi { context }
    }
}

fn event_to_pb(event: &EventRecord) -> pb::Event {
    pb::Event {
        id: event.id.clone(),
        event_type: event.event_type.as_str().to_owned(),
        timestamp: pb_time::from_text(&event.timestamp),
        data: event.data.as_object().map(json_object_to_pb),
    }
}

/// The index key of the first event id at or after `at` (event ids start with their time).
fn time_key(prefix: &str, at: jiff::Timestamp) -> String {
    format!("{prefix}{}_{:012x}", IdKind::Event.prefix(), at.as_millisecond().max(0))
}

#[tonic::async_trait]
impl EventService for EventApi {
    async fn list_events(
        &self,
        request: Request<pb::ListEventsRequest>,
    ) -> Result<Response<pb::ListEventsResponse>, Status> {
        let caller = Caller::of(&request)?;
        let body = request.get_ref();
        let page = PageRequest::parse(body.page_size, &body.page_token)?;
        subscription::validate(&body.event_types).map_err(|e| invalid_texts(&[e.to_string()]))?;
        let since = body.since.as_ref().map(|at| time_from_pb("since", at)).transpose()?;
        let until = body.until.as_ref().map(|at| time_from_pb("until", at)).transpose()?;
        let prefix = format!("{}/", caller.org_id);
        let oldest = since.map(|at| time_key(&prefix, at));
        let events = self.context.store.read(|rx| {
            let mut cursor = match (&page.after, until) {
                (Some(after), _) => Some(format!("{prefix}{after}")),
                (None, Some(until)) => Some(time_key(&prefix, until)),
                (None, None) => None,
            };
            let mut events = Vec::new();
            'scan: while events.len() < page.fetch() {
                let keys = rx.index_keys_rev(IndexTable::OrgEvents, &prefix, cursor.as_deref(), page.fetch())?;
                let Some(last) = keys.last().cloned() else {
                    break;
                };
                for key in &keys {
                    if oldest.as_ref().is_some_and(|oldest| key < oldest) {
                        break 'scan;
                    }
                    let Some(event) = rx.get::<EventRecord>(&key[prefix.len()..])? else {
                        continue;
                    };
                    if body.event_types.is_empty() || subscription::matches(&body.event_types, event.event_type) {
                        events.push(event);
                        if events.len() >= page.fetch() {
                            break 'scan;
                        }
                    }
                }
                cursor = Some(last);
            }
            Ok::<_, Status>(events)
        })?;
        let (events, next_page_token) = page.finish(events, |event| event.id.clone());
        Ok(Response::new(pb::ListEventsResponse {
            events: events.iter().map(event_to_pb).collect(),
            next_page_token,
        }))
    }

    async fn get_event(&self, request: Request<pb::GetEventRequest>) -> Result<Response<pb::Event>, Status> {
        let caller = Caller::of(&request)?;
        let id = &request.get_ref().id;
        let event = self
            .context
            .store
            .read(|rx| rx.get::<EventRecord>(id))?
            .filter(|event| event.org_id == caller.org_id)
            .ok_or_else(|| not_found("event", id))?;
        Ok(Response::new(event_to_pb(&event)))
    }
}
