//! Members, roles, invitations and API tokens: who may call the control plane, and for what.

pub mod bootstrap;
pub mod invitations;
pub mod layer;
pub mod members;
pub mod permissions;
pub mod records;
pub mod roles;
pub mod tokens;

pub use layer::{AuditedResource, AuthLayer, Caller};
pub use permissions::Access;
pub use roles::Role;
