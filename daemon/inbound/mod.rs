//! Inbound provider webhooks: each provider's wire format and signature scheme, the endpoint
//! that verifies and durably accepts them, and the queueing of the record changes they report
//! for record-level syncs (see `syncs::change_jobs`).

pub mod accept;
pub mod event;
pub mod hubspot;
pub mod jobber;
pub mod pipedrive;
pub mod rate_caps;
pub mod receiver;
pub mod refusal;
pub mod registration;
pub mod salesforce;
pub mod signed;

pub use receiver::Receiver;
