//! Connections: authenticated links to provider accounts. Tokens are sealed in the store and
//! handed out only by each connection's actor, which keeps them fresh.

pub mod actor;
pub mod authorize;
pub mod callback;
pub mod records;
pub mod runtime;
pub mod service;
pub mod webhook_keys;

pub use records::{ConnectionRecord, ConnectionStatus};
pub use runtime::ConnectionRuntime;
