//! Mapping of domain errors to gRPC statuses, in one place, with `google.rpc` error details:
//! `BadRequest` field violations for bad input, `ResourceInfo` for what was not found,
//! `ErrorInfo` (a stable reason in the `fluxcascade.dev` domain) for everything a client may
//! branch on. Store errors keep their internals in the daemon's log.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

use crate::store::StoreError;

/// The `ErrorInfo` domain of fluxd's errors.
pub const DOMAIN: &str = "fluxcascade.dev";

impl From<StoreError> for Status {
    fn from(error: StoreError) -> Status {
        tracing::error!(%error, "store error");
        with_reason(
            Code::Internal,
            "STORE_ERROR",
            "fluxd could not read or write its store; the daemon log has the details",
        )
    }
}

/// A status of `code` whose `ErrorInfo` carries `reason`.
pub fn with_reason(code: Code, reason: &str, message: impl Into<String>) -> Status {
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason, DOMAIN, HashMap::new()),
    )
}

/// `NOT_FOUND` naming the kind and id, with `ResourceInfo`.
pub fn not_found(kind: &str, id: &str) -> Status {
    Status::with_error_details(
        Code::NotFound,
        format!("{kind} {id:?} not found"),
        ErrorDetails::with_resource_info(kind, id, "", "not found in the caller's organization"),
    )
}

/// `INVALID_ARGUMENT` naming the field and the problem, with a `BadRequest` violation.
pub fn invalid(field: &str, problem: impl std::fmt::Display) -> Status {
    invalid_all([(field.to_owned(), problem.to_string())])
}

/// `INVALID_ARGUMENT` with one `BadRequest` violation per `(field, problem)`.
pub fn invalid_all(violations: impl IntoIterator<Item = (String, String)>) -> Status {
    let violations: Vec<(String, String)> = violations.into_iter().collect();
    let message = violations
        .iter()
        .map(|(field, problem)| format!("{field}: {problem}"))
        .collect::<Vec<_>>()
        .join("; ");
    let details = violations
        .into_iter()
        .map(|(field, problem)| FieldViolation::new(field, problem))
        .collect::<Vec<_>>();
    Status::with_error_details(Code::InvalidArgument, message, ErrorDetails::with_bad_request(details))
}

/// `INVALID_ARGUMENT` from problems written `field: problem` (the validators' form); a
/// problem without a field names the request.
pub fn invalid_texts<S: AsRef<str>>(problems: &[S]) -> Status {
    invalid_all(problems.iter().map(|problem| {
        let problem = problem.as_ref();
        match problem.split_once(": ") {
            Some((field, rest)) if !field.contains(' ') || field.contains('[') => (field.to_owned(), rest.to_owned()),
            _ => ("request".to_owned(), problem.to_owned()),
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_problems_become_field_violations() {
        let status = invalid_texts(&[
            "fieldPairs[0].transform: unknown step",
            "no field maps to the match key",
        ]);
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let violations = details.bad_request().expect("BadRequest").field_violations.clone();
        assert_eq!(violations[0].field, "fieldPairs[0].transform");
        assert_eq!(violations[0].description, "unknown step");
        assert_eq!(violations[1].field, "request");
        assert!(status.message().contains("unknown step"));
    }

    #[test]
    fn store_errors_keep_their_internals_out_of_the_answer() {
        let status = Status::from(StoreError::Io("disk /dev/sda1 on fire".into()));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("sda1"));
        assert_eq!(status.get_error_details().error_info().unwrap().reason, "STORE_ERROR");
    }
}
