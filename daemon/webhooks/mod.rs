//! Outbound webhooks: endpoints and their subscriptions, the durable delivery queue, signed
//! delivery by one actor per endpoint, retries with backoff and auto-disable.

pub mod actor;
pub mod attempt;
pub mod endpoints;
pub mod outbox;
pub mod outcomes;
pub mod records;
pub mod secrets;
pub mod signing;
pub mod ssrf;
pub mod subscription;
