//! Jobber's real GraphQL schema (`daemon/providers/jobber/schema.graphql`), parsed and
//! validated once per sandbox.

use apollo_compiler::collections::HashMap;
use apollo_compiler::schema::Implementers;
use apollo_compiler::validation::Valid;
use apollo_compiler::{Name, Schema};

/// The schema's text, as Jobber publishes it.
pub const SDL: &str = include_str!("../../../providers/jobber/schema.graphql");

/// The parsed schema and what execution derives from it.
pub struct JobberSchema {
    pub schema: Valid<Schema>,
    pub implementers: HashMap<Name, Implementers>,
}

impl JobberSchema {
    /// Parses and validates the schema.
    pub fn load() -> JobberSchema {
        // Invariant: the file is Jobber's published schema, checked in; a unit test parses it.
        let schema = Schema::parse_and_validate(SDL, "jobber/schema.graphql")
            .unwrap_or_else(|invalid| panic!("Jobber's schema does not validate: {}", invalid.errors));
        let implementers = schema.implementers_map();
        JobberSchema { schema, implementers }
    }
}
