//! Organizations as tenants of one daemon: creating and deleting them whole, what each one
//! used per month (its bill), and the audit log of every change made in it.

pub mod audit;
pub mod lifecycle;
pub mod usage;
