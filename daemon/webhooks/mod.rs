//! Outbound webhooks: endpoints, their subscriptions and deliveries.

pub mod outbox;
pub mod records;
pub mod subscription;
