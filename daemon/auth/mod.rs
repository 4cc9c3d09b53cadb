//! Organizations, members, roles and API tokens: who may call the control plane, and for what.

pub mod bootstrap;
pub mod interceptor;
pub mod records;
pub mod roles;
pub mod tokens;

pub use interceptor::{AuthInterceptor, Caller};
pub use roles::{Action, Role};
