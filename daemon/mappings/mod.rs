//! Mappings: how records flow between two connections, their validation, schedules and the
//! actor that triggers their syncs.

pub mod actor;
pub mod filter;
#[cfg(test)]
mod fuzz;
pub mod objects;
pub mod records;
pub mod schedule;
pub mod service;
pub mod spec;
pub mod validate;
pub mod wire;

pub use records::MappingRecord;
pub use spec::MappingSpec;
