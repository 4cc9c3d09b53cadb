//! Mapping of domain errors to gRPC statuses, in one place.

use tonic::Status;

use crate::store::StoreError;

impl From<StoreError> for Status {
    fn from(error: StoreError) -> Status {
        tracing::error!(%error, "store error");
        Status::internal(format!("store error: {error}"))
    }
}

/// `NOT_FOUND` naming the kind and id.
pub fn not_found(kind: &str, id: &str) -> Status {
    Status::not_found(format!("{kind} {id:?} not found"))
}

/// `INVALID_ARGUMENT` naming the field and the problem.
pub fn invalid(field: &str, problem: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("{field}: {problem}"))
}
