//! Validation of a mapping against both sides' field catalogs. Every problem is reported, each
//! naming the pair index and field.

use std::collections::HashSet;

use super::filter;
use super::objects::{email_field, name_field, supported_objects};
use super::schedule::Schedule;
use super::spec::{Direction, FieldPair, MappingSpec, MatchingMode, PairDirection};
use crate::connectors::FieldInfo;
use crate::providers::Provider;
use crate::transform;

/// One side of a mapping with its field catalog.
pub struct Side<'a> {
    pub provider: Provider,
    pub object: &'a str,
    pub fields: &'a [FieldInfo],
}

impl Side<'_> {
    fn field(&self, name: &str) -> Option<&FieldInfo> {
        self.fields.iter().find(|f| f.name == name)
    }

    fn describe(&self) -> String {
        format!("{} {}", self.provider.as_str(), self.object)
    }
}

/// Checks that `object` is one the provider offers to mappings.
pub fn check_object(provider: Provider, object: &str, field: &str) -> Result<(), String> {
    let supported = supported_objects(provider);
    if supported.contains(&object) {
        Ok(())
    } else {
        Err(format!(
            "{field}: {} has no object {object:?} (supported: {})",
            provider.as_str(),
            supported.join(", ")
        ))
    }
}

/// The match key a mapping uses: the given one, else the target's email field for people,
/// else its name field.
pub fn effective_match_key(spec: &MappingSpec, target: Provider) -> Option<String> {
    spec.match_key
        .clone()
        .or_else(|| email_field(target, &spec.target.object).map(str::to_owned))
        .or_else(|| name_field(target, &spec.target.object).map(str::to_owned))
}

/// Checks the parts that need no catalog: name, pairs' shapes, transforms, schedule, region.
/// Field pairs a mapping may have.
pub const MAX_FIELD_PAIRS: usize = 200;
/// The longest field name or transform expression.
pub const MAX_TEXT: usize = 1000;

pub fn check_shape(spec: &MappingSpec) -> Vec<String> {
    let mut problems = Vec::new();
    if spec.name.trim().is_empty() || spec.name.chars().count() > 200 {
        problems.push("name: must be 1 to 200 characters".to_owned());
    }
    if spec.field_pairs.is_empty() {
        problems.push("fieldPairs: at least one field pair is needed".to_owned());
    }
    if spec.field_pairs.len() > MAX_FIELD_PAIRS {
        // Nothing more is checked: the answer stays short however large the input.
        problems.push(format!("fieldPairs: at most {MAX_FIELD_PAIRS} pairs"));
        return problems;
    }
    for (index, pair) in spec.field_pairs.iter().enumerate() {
        let texts = [
            ("sourceField", pair.source_field.as_str()),
            ("targetField", pair.target_field.as_str()),
            ("transform", pair.transform.as_deref().unwrap_or_default()),
            (
                "reverseTransform",
                pair.reverse_transform.as_deref().unwrap_or_default(),
            ),
        ];
        if let Some((field, _)) = texts.iter().find(|(_, text)| text.len() > MAX_TEXT) {
            problems.push(format!("fieldPairs[{index}].{field}: at most {MAX_TEXT} characters"));
            continue;
        }
        let inputs = pair.source_fields().len();
        if inputs == 0 {
            problems.push(format!("fieldPairs[{index}].sourceField: must name a field"));
        }
        if pair.target_field.trim().is_empty() {
            problems.push(format!("fieldPairs[{index}].targetField: must name a field"));
        }
        let forward = pair.transform.as_deref().unwrap_or_default();
        match transform::parse(forward).and_then(|p| transform::check_inputs(&p, inputs).map(|()| p)) {
            Err(error) => problems.push(format!("fieldPairs[{index}].transform: {error}")),
            Ok(pipeline) if pair.flows_backward(spec.direction) => match &pair.reverse_transform {
                // A pair fed by several fields splits back with `split_name`, one part per field.
                Some(reverse) if inputs > 1 && reverse.trim() == "split_name" => {}
                Some(reverse) => {
                    if let Err(error) = transform::parse(reverse) {
                        problems.push(format!("fieldPairs[{index}].reverseTransform: {error}"));
                    }
                }
                None if inputs > 1 || pipeline.inverse().is_none() => problems.push(format!(
                    "fieldPairs[{index}].transform: {forward:?} has no inverse for the {} direction; add reverseTransform (split_name and concatenate are each other's reverse) or make the pair source_to_target",
                    pair.direction.map_or(spec.direction.as_str(), PairDirection::as_str)
                )),
                None => {}
            },
            Ok(_) => {}
        }
        problems.extend(check_pair_controls(spec, index));
    }
    problems.extend(check_shared_sources(spec));
    problems.extend(check_filters(spec));
    if let Some(Err(error)) = spec.schedule.as_deref().map(Schedule::parse) {
        problems.push(format!("schedule: {error}"));
    }
    if let Some(region) = spec
        .default_region
        .as_ref()
        .filter(|r| r.parse::<phonenumber::country::Id>().is_err())
    {
        problems.push(format!("defaultRegion: {region:?} is not a region code like US or GB"));
    }
    problems
}

/// A pair's direction narrows a bidirectional mapping; its conflict policy needs a pair that
/// flows both ways.
fn check_pair_controls(spec: &MappingSpec, index: usize) -> Vec<String> {
    let pair = &spec.field_pairs[index];
    let mut problems = Vec::new();
    if let Some(direction) = pair.direction {
        let same = matches!(
            (spec.direction, direction),
            (Direction::SourceToTarget, PairDirection::SourceToTarget)
                | (Direction::TargetToSource, PairDirection::TargetToSource)
                | (Direction::Bidirectional, _)
        );
        if !same {
            problems.push(format!(
                "fieldPairs[{index}].direction: {} in a {} mapping; a pair's direction narrows a bidirectional mapping",
                direction.as_str(),
                spec.direction.as_str()
            ));
        }
    }
    if pair.conflict_policy.is_some() && !(pair.flows_forward(spec.direction) && pair.flows_backward(spec.direction)) {
        problems.push(format!(
            "fieldPairs[{index}].conflictPolicy: only pairs flowing both ways have conflicts (a one-way pair always writes its reading side's value)"
        ));
    }
    problems
}

/// Pairs reading the same single source field and flowing back are written back as one value
/// (the parts of a split name): the first says how to join them (`reverseTransform`, e.g.
/// `concatenate`), and a join cannot leave some of its parts one-way.
fn check_shared_sources(spec: &MappingSpec) -> Vec<String> {
    let mut problems = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for pair in &spec.field_pairs {
        let [source] = pair.source_fields()[..] else { continue };
        if seen.contains(&source) {
            continue;
        }
        seen.push(source);
        let group: Vec<(usize, &FieldPair)> = spec
            .field_pairs
            .iter()
            .enumerate()
            .filter(|(_, p)| p.source_fields() == [source])
            .collect();
        let back: Vec<&(usize, &FieldPair)> = group.iter().filter(|(_, p)| p.flows_backward(spec.direction)).collect();
        let joins = |p: &FieldPair| {
            p.reverse_transform
                .as_deref()
                .is_some_and(|r| r.trim_start().starts_with("concatenate"))
        };
        match back.first() {
            Some((index, _)) if back.len() < group.len() && back.iter().any(|(_, p)| joins(p)) => {
                problems.push(format!(
                    "fieldPairs[{index}].direction: the pairs reading {source:?} are parts joined back into one value, so they all flow the same way"
                ))
            }
            Some((index, first)) if back.len() > 1 && first.reverse_transform.is_none() => problems.push(format!(
                "fieldPairs[{index}].reverseTransform: the pairs reading {source:?} are written back as one value; say how to join them (e.g. concatenate) or make all but one source_to_target"
            )),
            _ => {}
        }
    }
    problems
}

/// Filters' shapes, and each on a side the mapping reads.
fn check_filters(spec: &MappingSpec) -> Vec<String> {
    let mut problems = Vec::new();
    if let Some(source_filter) = &spec.filter {
        if spec.direction == Direction::TargetToSource {
            problems.push("filter: a target_to_source mapping never reads its source; use targetFilter".to_owned());
        }
        problems.extend(filter::check_shape(source_filter, "filter"));
    }
    if let Some(target_filter) = &spec.target_filter {
        if spec.direction == Direction::SourceToTarget {
            problems.push("targetFilter: a source_to_target mapping never reads its target; use filter".to_owned());
        }
        problems.extend(filter::check_shape(target_filter, "targetFilter"));
    }
    problems
}

/// Checks the pairs against both catalogs: fields exist, targets are writable, required target
/// fields are covered, and the match key is a mapped target field.
pub fn check_fields(spec: &MappingSpec, source: &Side<'_>, target: &Side<'_>) -> Vec<String> {
    let mut problems = Vec::new();
    let writes_target = spec.direction != Direction::TargetToSource;
    for (index, pair) in spec.field_pairs.iter().enumerate() {
        let writes_source = pair.flows_backward(spec.direction);
        let writes_target = pair.flows_forward(spec.direction);
        for name in pair.source_fields() {
            match source.field(name) {
                None => problems.push(format!(
                    "fieldPairs[{index}].sourceField: unknown field {name:?} on {}",
                    source.describe()
                )),
                Some(field) if writes_source && field.read_only => problems.push(format!(
                    "fieldPairs[{index}].sourceField: {name:?} on {} is read-only, but the {} direction writes it (make the pair source_to_target)",
                    source.describe(),
                    pair.direction.map_or(spec.direction.as_str(), PairDirection::as_str)
                )),
                Some(_) => {}
            }
        }
        match target.field(pair.target_field.trim()) {
            None => problems.push(format!(
                "fieldPairs[{index}].targetField: unknown field {:?} on {}",
                pair.target_field,
                target.describe()
            )),
            Some(field) if writes_target && field.read_only => problems.push(format!(
                "fieldPairs[{index}].targetField: {:?} on {} is read-only",
                pair.target_field,
                target.describe()
            )),
            Some(_) => {}
        }
    }
    let mapped: HashSet<&str> = spec
        .field_pairs
        .iter()
        .filter(|p| p.flows_forward(spec.direction))
        .map(|p| p.target_field.trim())
        .collect();
    // Fields a create needs matter only where the mapping may create target records.
    if writes_target && spec.matching_mode != MatchingMode::MatchOnly {
        for field in target.fields.iter().filter(|f| f.required && !f.read_only) {
            if !mapped.contains(field.name.as_str()) {
                problems.push(format!(
                    "fieldPairs: required target field {:?} of {} is not mapped (creating a record needs it; matchingMode: match_only only updates existing ones)",
                    field.name,
                    target.describe()
                ));
            }
        }
    }
    // The match key is compared in every direction the mapping matches records: its pair
    // must flow each of them.
    let matches_on = |p: &&FieldPair| match spec.direction {
        Direction::SourceToTarget => p.flows_forward(spec.direction),
        Direction::TargetToSource => p.flows_backward(spec.direction),
        Direction::Bidirectional => p.flows_forward(spec.direction) && p.flows_backward(spec.direction),
    };
    let keys: HashSet<&str> = spec
        .field_pairs
        .iter()
        .filter(matches_on)
        .map(|p| p.target_field.trim())
        .collect();
    match effective_match_key(spec, target.provider) {
        Some(key) if !keys.contains(key.as_str()) => problems.push(format!(
            "matchKey: {key:?} must be the targetField of one of the pairs (flowing both ways in a bidirectional mapping)"
        )),
        None => problems.push(format!(
            "matchKey: {} has no default match key; set matchKey",
            target.describe()
        )),
        Some(_) => {}
    }
    if let Some(source_filter) = &spec.filter {
        problems.extend(filter::check_fields(
            source_filter,
            "filter",
            &|name| source.field(name).map(|f| f.kind.clone()),
            &source.describe(),
        ));
    }
    if let Some(target_filter) = &spec.target_filter {
        problems.extend(filter::check_fields(
            target_filter,
            "targetFilter",
            &|name| target.field(name).map(|f| f.kind.clone()),
            &target.describe(),
        ));
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mappings::spec::{FieldPair, ObjectRef};

    fn field(name: &str, required: bool) -> FieldInfo {
        FieldInfo {
            name: name.into(),
            label: name.into(),
            kind: "string".into(),
            required,
            read_only: false,
        }
    }

    fn pair(source: &str, target: &str, transform: Option<&str>) -> FieldPair {
        FieldPair {
            source_field: source.into(),
            target_field: target.into(),
            transform: transform.map(str::to_owned),
            required: false,
            reverse_transform: None,
            overwrite_with_empty: false,
            direction: None,
            conflict_policy: None,
            on_error: None,
        }
    }

    fn spec(pairs: Vec<FieldPair>, direction: Direction) -> MappingSpec {
        MappingSpec {
            name: "m".into(),
            source: ObjectRef {
                connection: "conn_a".into(),
                object: "contacts".into(),
            },
            target: ObjectRef {
                connection: "conn_b".into(),
                object: "clients".into(),
            },
            direction,
            field_pairs: pairs,
            match_key: None,
            schedule: None,
            matching_mode: Default::default(),
            default_region: None,
            filter: None,
            target_filter: None,
            conflict_policy: Default::default(),
        }
    }

    #[test]
    fn each_problem_names_the_pair_and_field() {
        let source_fields = [
            field("firstname", false),
            field("email", false),
            field("fullname", false),
        ];
        let target_fields = [
            field("firstName", false),
            field("lastName", true),
            field("email", false),
        ];
        let source = Side {
            provider: Provider::Hubspot,
            object: "contacts",
            fields: &source_fields,
        };
        let target = Side {
            provider: Provider::Jobber,
            object: "clients",
            fields: &target_fields,
        };
        let bad = spec(
            vec![
                pair("firstname", "firstName", Some("nosuch")),
                pair("emial", "email", None),
                pair("fullname", "nope", None),
            ],
            Direction::SourceToTarget,
        );
        let shape = check_shape(&bad);
        assert!(
            shape
                .iter()
                .any(|p| p.starts_with("fieldPairs[0].transform") && p.contains("nosuch")),
            "{shape:?}"
        );
        let fields = check_fields(&bad, &source, &target);
        assert!(
            fields
                .iter()
                .any(|p| p.starts_with("fieldPairs[1].sourceField") && p.contains("emial")),
            "{fields:?}"
        );
        assert!(
            fields
                .iter()
                .any(|p| p.starts_with("fieldPairs[2].targetField") && p.contains("nope")),
            "{fields:?}"
        );
        assert!(
            fields.iter().any(|p| p.contains("required target field \"lastName\"")),
            "{fields:?}"
        );

        let good = spec(
            vec![
                pair("fullname", "firstName", Some("split_name(part=first)")),
                pair("fullname", "lastName", Some("split_name(part=last)")),
                pair("email", "email", Some("trim|lowercase")),
            ],
            Direction::SourceToTarget,
        );
        assert!(check_shape(&good).is_empty());
        assert!(check_fields(&good, &source, &target).is_empty());
    }

    #[test]
    fn one_way_mappings_either_way_and_match_keys_flowing_both_ways() {
        let fields = [field("email", false), field("city", false)];
        let side = |provider| Side {
            provider,
            object: "contacts",
            fields: &fields,
        };
        let (source, target) = (side(Provider::Hubspot), side(Provider::Hubspot));
        let mut backward = spec(
            vec![pair("email", "email", None), pair("city", "city", None)],
            Direction::TargetToSource,
        );
        backward.match_key = Some("email".into());
        assert!(check_shape(&backward).is_empty());
        assert!(check_fields(&backward, &source, &target).is_empty());
        let mut two_way = backward.clone();
        two_way.direction = Direction::Bidirectional;
        two_way.field_pairs[0].direction = Some(PairDirection::SourceToTarget);
        let problems = check_fields(&two_way, &source, &target);
        assert!(problems[0].starts_with("matchKey: \"email\" must be"), "{problems:?}");
    }

    #[test]
    fn pairs_sharing_a_source_field_flow_together_and_say_how_to_join() {
        let split = |direction| {
            let mut first = pair("name", "firstName", Some("split_name(part=first)"));
            first.reverse_transform = Some("concatenate".into());
            let mut last = pair("name", "lastName", Some("split_name(part=last)"));
            last.reverse_transform = Some("concatenate".into());
            last.direction = direction;
            spec(vec![first, last], Direction::Bidirectional)
        };
        assert!(check_shape(&split(None)).is_empty(), "{:?}", check_shape(&split(None)));
        let mixed = check_shape(&split(Some(PairDirection::SourceToTarget)));
        assert!(
            mixed.iter().any(|p| p.starts_with("fieldPairs[0].direction")),
            "{mixed:?}"
        );
        let twice = spec(
            vec![pair("email", "email", None), pair("email", "email2", None)],
            Direction::Bidirectional,
        );
        let problems = check_shape(&twice);
        assert!(
            problems.iter().any(|p| p.starts_with("fieldPairs[0].reverseTransform")),
            "{problems:?}"
        );
    }

    #[test]
    fn bidirectional_pairs_need_an_inverse() {
        let split = spec(
            vec![pair("fullname", "firstName", Some("split_name(part=first)"))],
            Direction::Bidirectional,
        );
        assert!(check_shape(&split).iter().any(|p| p.contains("reverseTransform")));
        let mut with_reverse = split.clone();
        with_reverse.field_pairs[0].reverse_transform = Some("concatenate".into());
        assert!(check_shape(&with_reverse).is_empty());
        let lower = spec(
            vec![pair("email", "email", Some("lowercase"))],
            Direction::Bidirectional,
        );
        assert!(check_shape(&lower).is_empty());
    }

    #[test]
    fn schedules_regions_and_objects() {
        let mut bad = spec(vec![pair("email", "email", None)], Direction::SourceToTarget);
        bad.schedule = Some("sometimes".into());
        bad.default_region = Some("ZZZ".into());
        let problems = check_shape(&bad);
        assert!(problems.iter().any(|p| p.starts_with("schedule:")));
        assert!(problems.iter().any(|p| p.starts_with("defaultRegion:")));
        assert!(check_object(Provider::Hubspot, "contacts", "source.object").is_ok());
        assert!(
            check_object(Provider::Hubspot, "Contact", "source.object")
                .unwrap_err()
                .contains("supported: contacts")
        );
    }
}
