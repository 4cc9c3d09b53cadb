//! A mapping compiled for syncing: each pair's forward and backward pipelines, parsed once,
//! and the hashing of mapped values.
//!
//! Backward (target → source) values come from, in order of preference: the pair's
//! `reverseTransform`; for pairs that share one source field (the `split_name` first/last
//! pairs), that reverse applied to all their target fields together (`concatenate`); for a
//! pair fed by several source fields whose reverse is `split_name`, one `split_name` part per
//! source field; else the forward pipeline's own inverse.

use sha2::{Digest, Sha256};

use super::records::Flow;
use crate::connectors::Fields;
use crate::mappings::spec::{Direction, MappingSpec};
use crate::transform::{self, Context, Pipeline};

/// One value written by a flow: field, value (empty means "clear"), and whether an empty
/// value may overwrite a non-empty one.
struct Output {
    field: String,
    inputs: Vec<String>,
    pipeline: Pipeline,
    overwrite_with_empty: bool,
    required: bool,
}

/// The compiled mapping.
pub struct Plan {
    forward: Vec<Output>,
    backward: Vec<Output>,
    context: Context,
    /// Fields to read from the source and the target.
    pub source_fields: Vec<String>,
    pub target_fields: Vec<String>,
}

/// Why a record could not be mapped.
#[derive(Debug, Clone, PartialEq)]
pub struct MapError(pub String);

fn parse(expr: &str) -> Result<Pipeline, String> {
    transform::parse(expr).map_err(|e| e.to_string())
}

impl Plan {
    /// Compiles `spec`; fails only on a spec that validation would have refused.
    pub fn compile(spec: &MappingSpec) -> Result<Plan, String> {
        let mut forward = Vec::new();
        let mut source_fields: Vec<String> = Vec::new();
        let mut target_fields: Vec<String> = Vec::new();
        for pair in &spec.field_pairs {
            let inputs: Vec<String> = pair.source_fields().into_iter().map(str::to_owned).collect();
            for input in &inputs {
                if !source_fields.contains(input) {
                    source_fields.push(input.clone());
                }
            }
            let target = pair.target_field.trim().to_owned();
            if !target_fields.contains(&target) {
                target_fields.push(target.clone());
            }
            forward.push(Output {
                field: target,
                inputs,
                pipeline: parse(pair.transform.as_deref().unwrap_or_default())?,
                overwrite_with_empty: pair.overwrite_with_empty,
                required: pair.required,
            });
        }
        let backward = if spec.direction == Direction::SourceToTarget {
            Vec::new()
        } else {
            Self::backward_outputs(spec)?
        };
        Ok(Plan {
            forward,
            backward,
            context: Context {
                default_region: spec.default_region.clone(),
            },
            source_fields,
            target_fields,
        })
    }

    fn backward_outputs(spec: &MappingSpec) -> Result<Vec<Output>, String> {
        let mut outputs: Vec<Output> = Vec::new();
        let mut done: Vec<&str> = Vec::new();
        for pair in &spec.field_pairs {
            let sources = pair.source_fields();
            let target = pair.target_field.trim().to_owned();
            if let [single] = sources.as_slice() {
                if done.contains(single) {
                    continue;
                }
                done.push(single);
                let group: Vec<&_> = spec
                    .field_pairs
                    .iter()
                    .filter(|p| p.source_fields() == [*single])
                    .collect();
                let pipeline = match (&pair.reverse_transform, group.len()) {
                    (Some(reverse), _) => parse(reverse)?,
                    (None, 1) => parse(pair.transform.as_deref().unwrap_or_default())?
                        .inverse()
                        .ok_or_else(|| format!("pair {target} has no inverse"))?,
                    (None, _) => continue,
                };
                outputs.push(Output {
                    field: (*single).to_owned(),
                    inputs: group.iter().map(|p| p.target_field.trim().to_owned()).collect(),
                    pipeline,
                    overwrite_with_empty: pair.overwrite_with_empty,
                    required: false,
                });
            } else {
                let reverse = pair.reverse_transform.as_deref().unwrap_or_default();
                let splits = reverse.trim_start().starts_with("split_name");
                for (index, source) in sources.iter().enumerate() {
                    let pipeline = match (splits, index) {
                        (true, 0) => parse("split_name(part=first)")?,
                        (true, _) => parse("split_name(part=last)")?,
                        (false, 0) => parse(reverse)?,
                        (false, _) => continue,
                    };
                    outputs.push(Output {
                        field: (*source).to_owned(),
                        inputs: vec![target.clone()],
                        pipeline,
                        overwrite_with_empty: pair.overwrite_with_empty,
                        required: false,
                    });
                }
            }
        }
        Ok(outputs)
    }

    /// The values `flow` writes for a record with `fields`. Empty results are kept only where
    /// the pair may overwrite with empty; per-record problems (bad phone number, missing
    /// required value) fail the record.
    pub fn map(&self, flow: Flow, fields: &Fields) -> Result<Fields, MapError> {
        let (mapped, mut problems) = self.map_all(flow, fields);
        match problems.is_empty() {
            true => Ok(mapped),
            false => Err(MapError(problems.remove(0))),
        }
    }

    /// Like [`Plan::map`], but maps every field it can and lists every problem (for previews).
    pub fn map_all(&self, flow: Flow, fields: &Fields) -> (Fields, Vec<String>) {
        let outputs = match flow {
            Flow::Forward => &self.forward,
            Flow::Backward => &self.backward,
        };
        let mut mapped = Fields::new();
        let mut problems = Vec::new();
        for output in outputs {
            let inputs: Vec<Option<&str>> = output
                .inputs
                .iter()
                .map(|name| fields.get(name).map(String::as_str))
                .collect();
            match output.pipeline.apply(&inputs, &self.context) {
                Err(error) => problems.push(format!("{}: {error}", output.field)),
                Ok(Some(value)) => {
                    mapped.insert(output.field.clone(), value);
                }
                Ok(None) if output.required => {
                    problems.push(format!(
                        "{}: required, but {} is empty",
                        output.field,
                        output.inputs.join(", ")
                    ));
                }
                Ok(None) if output.overwrite_with_empty => {
                    mapped.insert(output.field.clone(), String::new());
                }
                Ok(None) => {}
            }
        }
        (mapped, problems)
    }

    /// The fields a record read in `flow` must carry.
    pub fn read_fields(&self, flow: Flow) -> &[String] {
        match flow {
            Flow::Forward => &self.source_fields,
            Flow::Backward => &self.target_fields,
        }
    }

    /// The fields written in `flow`.
    pub fn written_fields(&self, flow: Flow) -> &[String] {
        match flow {
            Flow::Forward => &self.target_fields,
            Flow::Backward => &self.source_fields,
        }
    }
}

/// Hash of mapped values (order-independent; empty values count, so clearing is a change).
pub fn hash(fields: &Fields) -> String {
    let mut hasher = Sha256::new();
    for (name, value) in fields {
        hasher.update(name.as_bytes());
        hasher.update([0]);
        hasher.update(value.as_bytes());
        hasher.update([0]);
    }
    hex::encode(&hasher.finalize()[..16])
}

/// The current values of `names` in `fields` (what a record holds for the mapped fields).
pub fn project(fields: &Fields, names: &[String]) -> Fields {
    names
        .iter()
        .filter_map(|n| fields.get(n).filter(|v| !v.is_empty()).map(|v| (n.clone(), v.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mappings::spec::{FieldPair, ObjectRef};

    fn pair(source: &str, target: &str, transform: Option<&str>, reverse: Option<&str>) -> FieldPair {
        FieldPair {
            source_field: source.into(),
            target_field: target.into(),
            transform: transform.map(str::to_owned),
            required: false,
            reverse_transform: reverse.map(str::to_owned),
            overwrite_with_empty: false,
        }
    }

    fn spec(pairs: Vec<FieldPair>) -> MappingSpec {
        MappingSpec {
            name: "m".into(),
            source: ObjectRef {
                connection: "a".into(),
                object: "contacts".into(),
            },
            target: ObjectRef {
                connection: "b".into(),
                object: "clients".into(),
            },
            direction: Direction::Bidirectional,
            field_pairs: pairs,
            match_key: None,
            schedule: None,
            matching_mode: Default::default(),
            default_region: Some("US".into()),
        }
    }

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn split_name_goes_forward_and_concatenate_comes_back() {
        let plan = Plan::compile(&spec(vec![
            pair("name", "firstName", Some("split_name(part=first)"), Some("concatenate")),
            pair("name", "lastName", Some("split_name(part=last)"), Some("concatenate")),
            pair("email", "email", Some("trim|lowercase"), None),
        ]))
        .unwrap();
        let forward = plan
            .map(
                Flow::Forward,
                &fields(&[("name", "Mary Ann Smith"), ("email", " Mary@X.com ")]),
            )
            .unwrap();
        assert_eq!(
            forward,
            fields(&[
                ("firstName", "Mary Ann"),
                ("lastName", "Smith"),
                ("email", "mary@x.com")
            ])
        );
        let backward = plan.map(Flow::Backward, &forward).unwrap();
        assert_eq!(backward, fields(&[("name", "Mary Ann Smith"), ("email", "mary@x.com")]));
        // Echo: mapping our own write back and forth is stable.
        assert_eq!(hash(&plan.map(Flow::Forward, &backward).unwrap()), hash(&forward));
    }

    #[test]
    fn concatenated_sources_split_back() {
        let plan = Plan::compile(&spec(vec![pair(
            "firstname,lastname",
            "name",
            Some("concatenate"),
            Some("split_name"),
        )]))
        .unwrap();
        let forward = plan
            .map(
                Flow::Forward,
                &fields(&[("firstname", "Ada"), ("lastname", "Lovelace")]),
            )
            .unwrap();
        assert_eq!(forward, fields(&[("name", "Ada Lovelace")]));
        assert_eq!(
            plan.map(Flow::Backward, &forward).unwrap(),
            fields(&[("firstname", "Ada"), ("lastname", "Lovelace")])
        );
    }

    #[test]
    fn bad_values_fail_the_record_and_empties_do_not_overwrite() {
        let plan = Plan::compile(&spec(vec![
            pair("phone", "phone", Some("phone_e164"), Some("phone_e164")),
            pair("city", "city", None, None),
        ]))
        .unwrap();
        let error = plan.map(Flow::Forward, &fields(&[("phone", "12")])).unwrap_err();
        assert!(error.0.contains("phone"), "{error:?}");
        let mapped = plan
            .map(Flow::Forward, &fields(&[("phone", "(415) 867-5309"), ("city", "")]))
            .unwrap();
        assert_eq!(mapped, fields(&[("phone", "+14158675309")]));
    }
}
