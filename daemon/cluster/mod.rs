//! Cluster mode: nodes sharing one PostgreSQL store split the organizations between them by
//! lease, so that each organization's connection, mapping and webhook endpoint actors (and
//! its sync jobs) run on exactly one node at a time.

pub mod keeper;
pub mod leases;
pub mod ownership;

pub use ownership::Ownership;
