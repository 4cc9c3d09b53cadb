//! A mapping compiled for syncing: each pair's forward and backward pipelines, parsed once,
//! and the hashing of mapped values.
//!
//! Backward (target → source) values come from, in order of preference: the pair's
//! `reverseTransform`; for pairs that share one source field (the `split_name` first/last
//! pairs), that reverse applied to all their target fields together (`concatenate`); for a
//! pair fed by several source fields whose reverse is `split_name`, one `split_name` part per
//! source field; else the forward pipeline's own inverse.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::records::Flow;
use crate::connectors::{FieldInfo, Fields};
use crate::mappings::filter::Compiled;
use crate::mappings::spec::{ConflictPolicy, FieldPair, MappingSpec, OnError};
use crate::transform::{self, Context, Pipeline};

/// One value written by a flow: field, value (empty means "clear"), and whether an empty
/// value may overwrite a non-empty one.
struct Output {
    field: String,
    inputs: Vec<String>,
    pipeline: Pipeline,
    overwrite_with_empty: bool,
    required: bool,
    on_error: OnError,
    /// Who wins the field when both sides changed it; `None` for a one-way pair, whose
    /// reading side always wins.
    policy: Option<ConflictPolicy>,
    /// The other flow's fields carrying the same pairs (what this field is written back as).
    counterparts: Vec<String>,
}

/// The catalogs of both sides, where filters need their fields' types.
#[derive(Clone, Copy, Default)]
pub struct Catalogs<'a> {
    pub source: &'a [FieldInfo],
    pub target: &'a [FieldInfo],
}

/// A record's values for one flow, and the optional fields left out because their transform
/// failed (each a warning).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mapped {
    pub values: Fields,
    pub warnings: Vec<String>,
}

/// The compiled mapping.
pub struct Plan {
    forward: Vec<Output>,
    backward: Vec<Output>,
    context: Context,
    forward_filter: Option<Compiled>,
    backward_filter: Option<Compiled>,
    /// Each filter as a short hash (empty: none), kept with the cursor it was listed with.
    filter_keys: [String; 2],
    /// Fields to read from the source and the target.
    pub source_fields: Vec<String>,
    pub target_fields: Vec<String>,
    forward_written: Vec<String>,
    backward_written: Vec<String>,
    /// Per flow, what a two-way write reads of the record it writes: the fields it writes and
    /// those the opposite pass reads.
    reconcile_fields: [Vec<String>; 2],
}

/// Why a record could not be mapped.
#[derive(Debug, Clone, PartialEq)]
pub struct MapError(pub String);

fn parse(expr: &str) -> Result<Pipeline, String> {
    transform::parse(expr).map_err(|e| e.to_string())
}

fn add_unique(list: &mut Vec<String>, name: &str) {
    if !list.iter().any(|n| n == name) {
        list.push(name.to_owned());
    }
}

/// A pair's policy if it flows both ways.
fn pair_policy(spec: &MappingSpec, pair: &FieldPair) -> Option<ConflictPolicy> {
    (pair.flows_forward(spec.direction) && pair.flows_backward(spec.direction))
        .then(|| pair.conflict_policy.unwrap_or(spec.conflict_policy))
}

fn compile_filter(
    filter: Option<&crate::mappings::filter::Filter>,
    catalog: &[FieldInfo],
) -> Result<Option<Compiled>, String> {
    filter
        .map(|f| {
            Compiled::new(f, &|name| {
                catalog.iter().find(|i| i.name == name).map(|i| i.kind.clone())
            })
        })
        .transpose()
}

fn filter_key(filter: Option<&crate::mappings::filter::Filter>) -> String {
    filter
        .map(|f| hex::encode(&Sha256::digest(serde_json::to_vec(f).unwrap_or_default())[..8]))
        .unwrap_or_default()
}

impl Plan {
    /// Compiles `spec`; fails only on a spec that validation would have refused. Filters take
    /// their fields' types from `catalogs`.
    pub fn compile(spec: &MappingSpec, catalogs: Catalogs<'_>) -> Result<Plan, String> {
        let mut forward = Vec::new();
        for pair in spec.field_pairs.iter().filter(|p| p.flows_forward(spec.direction)) {
            forward.push(Output {
                field: pair.target_field.trim().to_owned(),
                inputs: pair.source_fields().into_iter().map(str::to_owned).collect(),
                pipeline: parse(pair.transform.as_deref().unwrap_or_default())?,
                overwrite_with_empty: pair.overwrite_with_empty,
                required: pair.required,
                on_error: pair.effective_on_error(),
                policy: pair_policy(spec, pair),
                counterparts: pair.source_fields().into_iter().map(str::to_owned).collect(),
            });
        }
        let backward = Self::backward_outputs(spec)?;
        let forward_filter = compile_filter(spec.filter.as_ref(), catalogs.source)?;
        let backward_filter = compile_filter(spec.target_filter.as_ref(), catalogs.target)?;
        let read = |outputs: &[Output], filter: &Option<Compiled>| {
            let mut names = Vec::new();
            for name in outputs.iter().flat_map(|o| &o.inputs) {
                add_unique(&mut names, name);
            }
            for name in filter.iter().flat_map(Compiled::fields) {
                add_unique(&mut names, name);
            }
            names
        };
        let written = |outputs: &[Output]| {
            let mut names = Vec::new();
            for output in outputs {
                add_unique(&mut names, &output.field);
            }
            names
        };
        let (source_fields, target_fields) = (read(&forward, &forward_filter), read(&backward, &backward_filter));
        let (forward_written, backward_written) = (written(&forward), written(&backward));
        let union = |first: &[String], second: &[String]| {
            let mut names = first.to_vec();
            for name in second {
                add_unique(&mut names, name);
            }
            names
        };
        Ok(Plan {
            reconcile_fields: [
                union(&forward_written, &target_fields),
                union(&backward_written, &source_fields),
            ],
            source_fields,
            target_fields,
            forward_written,
            backward_written,
            forward,
            backward,
            context: Context {
                default_region: spec.default_region.clone(),
            },
            forward_filter,
            backward_filter,
            filter_keys: [
                filter_key(spec.filter.as_ref()),
                filter_key(spec.target_filter.as_ref()),
            ],
        })
    }

    /// A short hash of the filter of the side `flow` reads; empty without one.
    pub fn filter_key(&self, flow: Flow) -> &str {
        match flow {
            Flow::Forward => &self.filter_keys[0],
            Flow::Backward => &self.filter_keys[1],
        }
    }

    fn backward_outputs(spec: &MappingSpec) -> Result<Vec<Output>, String> {
        let mut outputs: Vec<Output> = Vec::new();
        let mut done: Vec<&str> = Vec::new();
        let pairs: Vec<&FieldPair> = spec
            .field_pairs
            .iter()
            .filter(|p| p.flows_backward(spec.direction))
            .collect();
        for pair in &pairs {
            let sources = pair.source_fields();
            let target = pair.target_field.trim().to_owned();
            let on_error = pair.effective_on_error();
            let policy = pair_policy(spec, pair);
            if let [single] = sources.as_slice() {
                if done.contains(single) {
                    continue;
                }
                done.push(single);
                let group: Vec<&&FieldPair> = pairs.iter().filter(|p| p.source_fields() == [*single]).collect();
                let pipeline = match (&pair.reverse_transform, group.len()) {
                    (Some(reverse), _) => parse(reverse)?,
                    (None, 1) => parse(pair.transform.as_deref().unwrap_or_default())?
                        .inverse()
                        .ok_or_else(|| format!("pair {target} has no inverse"))?,
                    (None, _) => continue,
                };
                let inputs: Vec<String> = group.iter().map(|p| p.target_field.trim().to_owned()).collect();
                outputs.push(Output {
                    field: (*single).to_owned(),
                    counterparts: inputs.clone(),
                    inputs,
                    pipeline,
                    overwrite_with_empty: pair.overwrite_with_empty,
                    required: false,
                    on_error,
                    policy,
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
                        counterparts: vec![target.clone()],
                        pipeline,
                        overwrite_with_empty: pair.overwrite_with_empty,
                        required: false,
                        on_error,
                        policy,
                    });
                }
            }
        }
        Ok(outputs)
    }

    fn outputs(&self, flow: Flow) -> &[Output] {
        match flow {
            Flow::Forward => &self.forward,
            Flow::Backward => &self.backward,
        }
    }

    /// The values `flow` writes for a record with `fields`. Empty results are kept only where
    /// the pair may overwrite with empty. A failing transform fails the record, or, for a pair
    /// that skips the field on error, leaves the field out with a warning; a required pair
    /// without a value fails the record.
    pub fn map(&self, flow: Flow, fields: &Fields) -> Result<Mapped, MapError> {
        let (mapped, mut problems) = self.map_each(flow, fields);
        match problems.is_empty() {
            true => Ok(mapped),
            false => Err(MapError(problems.remove(0))),
        }
    }

    /// Like [`Plan::map`], but maps every field it can and lists every problem and warning
    /// (for previews).
    pub fn map_all(&self, flow: Flow, fields: &Fields) -> (Fields, Vec<String>) {
        let (mapped, mut problems) = self.map_each(flow, fields);
        problems.extend(mapped.warnings);
        (mapped.values, problems)
    }

    fn map_each(&self, flow: Flow, fields: &Fields) -> (Mapped, Vec<String>) {
        let mut mapped = Mapped::default();
        let mut problems = Vec::new();
        for output in self.outputs(flow) {
            let inputs: Vec<Option<&str>> = output
                .inputs
                .iter()
                .map(|name| fields.get(name).map(String::as_str))
                .collect();
            match output.pipeline.apply(&inputs, &self.context) {
                Err(error) if output.on_error == OnError::SkipField => mapped
                    .warnings
                    .push(format!("{}: {error}; the record was written without it", output.field)),
                Err(error) => problems.push(format!("{}: {error}", output.field)),
                Ok(Some(value)) => {
                    mapped.values.insert(output.field.clone(), value);
                }
                Ok(None) if output.required => {
                    problems.push(format!(
                        "{}: required, but {} is empty",
                        output.field,
                        output.inputs.join(", ")
                    ));
                }
                Ok(None) if output.overwrite_with_empty => {
                    mapped.values.insert(output.field.clone(), String::new());
                }
                Ok(None) => {}
            }
        }
        (mapped, problems)
    }

    /// Whether a record read in `flow` passes that side's filter.
    pub fn admits(&self, flow: Flow, fields: &Fields) -> bool {
        self.filter(flow).is_none_or(|filter| filter.admits(fields))
    }

    /// The filter of the side `flow` reads.
    pub fn filter(&self, flow: Flow) -> Option<&Compiled> {
        match flow {
            Flow::Forward => self.forward_filter.as_ref(),
            Flow::Backward => self.backward_filter.as_ref(),
        }
    }

    /// The fields of the other flow that `field` (written by `flow`) is written back as.
    pub fn counterparts(&self, flow: Flow, field: &str) -> &[String] {
        self.output(flow, field).map_or(&[], |o| o.counterparts.as_slice())
    }

    /// The fields `flow` reads to produce its output `field`.
    pub fn inputs(&self, flow: Flow, field: &str) -> &[String] {
        self.output(flow, field).map_or(&[], |o| o.inputs.as_slice())
    }

    fn output(&self, flow: Flow, field: &str) -> Option<&Output> {
        self.outputs(flow).iter().find(|o| o.field == field)
    }

    /// The outputs of `flow` written back as any of the same fields as `field` (the parts of
    /// a split name are written back as one name, for one).
    pub fn siblings(&self, flow: Flow, field: &str) -> Vec<String> {
        let counterparts = self.counterparts(flow, field);
        self.outputs(flow)
            .iter()
            .filter(|o| o.counterparts.iter().any(|c| counterparts.contains(c)))
            .map(|o| o.field.clone())
            .collect()
    }

    /// The conflict policy of `field` as `flow` writes it (`None`: a one-way pair).
    pub fn policy(&self, flow: Flow, field: &str) -> Option<ConflictPolicy> {
        self.output(flow, field).and_then(|o| o.policy)
    }

    /// The values the other flow would map from a record holding `written` (what `flow` just
    /// wrote), for the other flow's fields `written` fully determines: after a write, these are
    /// the values that read back are our own echo.
    pub fn echo(&self, flow: Flow, written: &Fields) -> Fields {
        let other = flow.opposite();
        let (mapped, _) = self.map_each(other, written);
        // A one-way output of the other flow is not synced by this flow's write: its side
        // keeps whatever it holds, so it is never an echo. A determined output without a value
        // is recorded as "no value".
        self.outputs(other)
            .iter()
            .filter(|o| o.policy.is_some() && o.inputs.iter().all(|i| written.contains_key(i)))
            .map(|o| {
                (
                    o.field.clone(),
                    mapped.values.get(&o.field).cloned().unwrap_or_default(),
                )
            })
            .collect()
    }

    /// The fields a record read in `flow` must carry.
    pub fn read_fields(&self, flow: Flow) -> &[String] {
        match flow {
            Flow::Forward => &self.source_fields,
            Flow::Backward => &self.target_fields,
        }
    }

    /// What a two-way write in `flow` reads of the record it writes: the fields it writes and
    /// those the opposite pass reads, so the record is seen as that pass would see it.
    pub fn reconcile_fields(&self, flow: Flow) -> &[String] {
        match flow {
            Flow::Forward => &self.reconcile_fields[0],
            Flow::Backward => &self.reconcile_fields[1],
        }
    }

    /// The fields written in `flow`.
    pub fn written_fields(&self, flow: Flow) -> &[String] {
        match flow {
            Flow::Forward => &self.forward_written,
            Flow::Backward => &self.backward_written,
        }
    }
}

/// Per-field hashes of synced values: field → short hash, an empty value as no entry.
pub type FieldHashes = BTreeMap<String, String>;

/// The short hash of one field's value, `None` for an empty value.
pub fn value_hash(value: Option<&String>) -> Option<String> {
    let value = value.filter(|v| !v.is_empty())?;
    Some(hex::encode(&Sha256::digest(value.as_bytes())[..6]))
}

/// The fields among `names` whose value in `values` differs from what `synced` recorded.
pub fn changed_fields(names: &[String], values: &Fields, synced: &FieldHashes) -> Vec<String> {
    names
        .iter()
        .filter(|name| value_hash(values.get(*name)) != synced.get(*name).cloned())
        .cloned()
        .collect()
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
    use crate::mappings::spec::{Direction, FieldPair, ObjectRef};

    fn pair(source: &str, target: &str, transform: Option<&str>, reverse: Option<&str>) -> FieldPair {
        FieldPair {
            source_field: source.into(),
            target_field: target.into(),
            transform: transform.map(str::to_owned),
            required: false,
            reverse_transform: reverse.map(str::to_owned),
            overwrite_with_empty: false,
            direction: None,
            conflict_policy: None,
            on_error: None,
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
            filter: None,
            target_filter: None,
            conflict_policy: Default::default(),
        }
    }

    fn fields(pairs: &[(&str, &str)]) -> Fields {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn split_name_goes_forward_and_concatenate_comes_back() {
        let plan = Plan::compile(
            &spec(vec![
                pair("name", "firstName", Some("split_name(part=first)"), Some("concatenate")),
                pair("name", "lastName", Some("split_name(part=last)"), Some("concatenate")),
                pair("email", "email", Some("trim|lowercase"), None),
            ]),
            Catalogs::default(),
        )
        .unwrap();
        let forward = plan
            .map(
                Flow::Forward,
                &fields(&[("name", "Mary Ann Smith"), ("email", " Mary@X.com ")]),
            )
            .unwrap()
            .values;
        assert_eq!(
            forward,
            fields(&[
                ("firstName", "Mary Ann"),
                ("lastName", "Smith"),
                ("email", "mary@x.com")
            ])
        );
        let backward = plan.map(Flow::Backward, &forward).unwrap().values;
        assert_eq!(backward, fields(&[("name", "Mary Ann Smith"), ("email", "mary@x.com")]));
        // Echo: mapping our own write back and forth is stable.
        assert_eq!(
            hash(&plan.map(Flow::Forward, &backward).unwrap().values),
            hash(&forward)
        );
    }

    #[test]
    fn concatenated_sources_split_back() {
        let plan = Plan::compile(
            &spec(vec![pair(
                "firstname,lastname",
                "name",
                Some("concatenate"),
                Some("split_name"),
            )]),
            Catalogs::default(),
        )
        .unwrap();
        let forward = plan
            .map(
                Flow::Forward,
                &fields(&[("firstname", "Ada"), ("lastname", "Lovelace")]),
            )
            .unwrap()
            .values;
        assert_eq!(forward, fields(&[("name", "Ada Lovelace")]));
        assert_eq!(
            plan.map(Flow::Backward, &forward).unwrap().values,
            fields(&[("firstname", "Ada"), ("lastname", "Lovelace")])
        );
    }

    #[test]
    fn a_failing_optional_field_is_left_out_with_a_warning_and_a_required_one_fails() {
        let optional = pair("phone", "phone", Some("phone_e164"), Some("phone_e164"));
        let city = pair("city", "city", None, None);
        let plan = Plan::compile(&spec(vec![optional.clone(), city.clone()]), Catalogs::default()).unwrap();
        let mapped = plan
            .map(Flow::Forward, &fields(&[("phone", "12"), ("city", "Oslo")]))
            .unwrap();
        assert_eq!(mapped.values, fields(&[("city", "Oslo")]));
        assert!(mapped.warnings[0].starts_with("phone: "), "{mapped:?}");
        let required = FieldPair {
            required: true,
            ..optional.clone()
        };
        let plan = Plan::compile(&spec(vec![required, city.clone()]), Catalogs::default()).unwrap();
        let error = plan.map(Flow::Forward, &fields(&[("phone", "12")])).unwrap_err();
        assert!(error.0.contains("phone"), "{error:?}");
        let overridden = FieldPair {
            on_error: Some(OnError::FailRecord),
            ..optional
        };
        let plan = Plan::compile(&spec(vec![overridden, city]), Catalogs::default()).unwrap();
        assert!(plan.map(Flow::Forward, &fields(&[("phone", "12")])).is_err());
        let mapped = plan
            .map(Flow::Forward, &fields(&[("phone", "(415) 867-5309"), ("city", "")]))
            .unwrap()
            .values;
        assert_eq!(mapped, fields(&[("phone", "+14158675309")]));
    }

    #[test]
    fn one_way_pairs_flow_one_way_and_echoes_cover_what_a_write_determines() {
        use crate::mappings::spec::PairDirection;
        let score = FieldPair {
            direction: Some(PairDirection::SourceToTarget),
            ..pair("score", "rating", None, None)
        };
        let notes = FieldPair {
            direction: Some(PairDirection::TargetToSource),
            ..pair("notes", "remarks", None, None)
        };
        let plan = Plan::compile(
            &spec(vec![score, notes, pair("email", "email", None, None)]),
            Catalogs::default(),
        )
        .unwrap();
        assert_eq!(plan.written_fields(Flow::Forward), ["rating", "email"]);
        assert_eq!(plan.written_fields(Flow::Backward), ["notes", "email"]);
        assert_eq!(plan.read_fields(Flow::Backward), ["remarks", "email"]);
        assert_eq!(plan.policy(Flow::Forward, "rating"), None);
        assert_eq!(plan.policy(Flow::Forward, "email"), Some(ConflictPolicy::NewestWins));
        // Writing rating and email forward determines only email on the way back: notes comes
        // from remarks, which the write did not touch.
        let echo = plan.echo(Flow::Forward, &fields(&[("rating", "5"), ("email", "a@b.c")]));
        assert_eq!(echo, fields(&[("email", "a@b.c")]));
        let synced: FieldHashes = [("email".to_owned(), value_hash(Some(&"a@b.c".to_owned())).unwrap())].into();
        let changed = changed_fields(
            plan.written_fields(Flow::Backward),
            &fields(&[("notes", "call back"), ("email", "a@b.c")]),
            &synced,
        );
        assert_eq!(changed, ["notes"]);
    }
}
