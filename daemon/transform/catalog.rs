//! The transforms as people choose them: what each does and which arguments it takes, with an
//! example that parses as written (a test keeps this list in step with the parser). The web
//! console's editor suggests and explains transforms from it.

/// One transform, described.
pub struct TransformDoc {
    /// How it is written, with its arguments (`|` between choices).
    pub usage: &'static str,
    /// An expression that parses as written.
    pub example: &'static str,
    /// What it does, for someone choosing one.
    pub does: &'static str,
}

/// Every transform, in the order the editor lists them.
pub const TRANSFORMS: [TransformDoc; 7] = [
    TransformDoc {
        usage: "trim",
        example: "trim",
        does: "removes spaces around the value",
    },
    TransformDoc {
        usage: "lowercase",
        example: "lowercase",
        does: "writes the value in lower case",
    },
    TransformDoc {
        usage: "uppercase",
        example: "uppercase",
        does: "writes the value in upper case",
    },
    TransformDoc {
        usage: "phone_e164(region=XX)",
        example: "phone_e164(region=US)",
        does: "writes a phone number as +country number; region: the country of numbers written without one (else the mapping's default region)",
    },
    TransformDoc {
        usage: "date_iso(order=mdy|dmy, output=date|datetime)",
        example: "date_iso(order=dmy, output=date)",
        does: "writes a date in ISO 8601; order: how to read dates like 03/04/2026; output: the date alone or with its time",
    },
    TransformDoc {
        usage: "split_name(part=first|last)",
        example: "split_name(part=first)",
        does: "the first or the last part of a full name",
    },
    TransformDoc {
        usage: "concatenate(sep=\" \")",
        example: "concatenate(sep=\", \")",
        does: "joins several source fields (written with commas between them) with sep, a space unless given; comes first in a pipeline",
    },
];

/// Pipelines worth suggesting as they are (steps run left to right, separated by `|`).
pub const PIPELINES: [&str; 3] = [
    "trim|lowercase",
    "concatenate|split_name(part=first)",
    "concatenate|split_name(part=last)",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_example_and_pipeline_parses_and_every_transform_is_described() {
        for example in TRANSFORMS.iter().map(|t| t.example).chain(PIPELINES) {
            assert!(crate::transform::parse(example).is_ok(), "{example}");
        }
        for name in [
            "trim",
            "lowercase",
            "uppercase",
            "phone_e164",
            "date_iso",
            "split_name",
            "concatenate",
        ] {
            assert!(TRANSFORMS.iter().any(|t| t.usage.starts_with(name)), "{name} described");
        }
        assert!(crate::transform::parse("no_such_transform").is_err());
    }
}
