//! Conversions between the gRPC messages and mapping records, shared by the daemon and fluxctl.

use super::filter::{Filter, FilterOp, FilterValue};
use super::records::MappingRecord;
use super::spec::{ConflictPolicy, Direction, FieldPair, MappingSpec, MatchingMode, ObjectRef, OnError, PairDirection};
use crate::pb;
use crate::pb_time;

fn non_empty(text: &str) -> Option<String> {
    (!text.trim().is_empty()).then(|| text.trim().to_owned())
}

pub fn direction_to_pb(direction: Direction) -> pb::Direction {
    match direction {
        Direction::SourceToTarget => pb::Direction::SourceToTarget,
        Direction::TargetToSource => pb::Direction::TargetToSource,
        Direction::Bidirectional => pb::Direction::Bidirectional,
    }
}

fn mode_to_pb(mode: MatchingMode) -> pb::MatchingMode {
    match mode {
        MatchingMode::MatchThenCreate => pb::MatchingMode::MatchThenCreate,
        MatchingMode::CreateOnly => pb::MatchingMode::CreateOnly,
        MatchingMode::MatchOnly => pb::MatchingMode::MatchOnly,
    }
}

/// A conflict policy as a message value (`None`: unspecified, the mapping's).
pub fn policy_to_pb(policy: Option<ConflictPolicy>) -> pb::ConflictPolicy {
    match policy {
        None => pb::ConflictPolicy::Unspecified,
        Some(ConflictPolicy::NewestWins) => pb::ConflictPolicy::NewestWins,
        Some(ConflictPolicy::SourceWins) => pb::ConflictPolicy::SourceWins,
        Some(ConflictPolicy::TargetWins) => pb::ConflictPolicy::TargetWins,
    }
}

fn policy_from_pb(value: i32, field: &str) -> Result<Option<ConflictPolicy>, String> {
    match pb::ConflictPolicy::try_from(value) {
        Ok(pb::ConflictPolicy::Unspecified) => Ok(None),
        Ok(pb::ConflictPolicy::NewestWins) => Ok(Some(ConflictPolicy::NewestWins)),
        Ok(pb::ConflictPolicy::SourceWins) => Ok(Some(ConflictPolicy::SourceWins)),
        Ok(pb::ConflictPolicy::TargetWins) => Ok(Some(ConflictPolicy::TargetWins)),
        Err(_) => Err(format!("{field}: unknown value {value}")),
    }
}

const FILTER_OPS: [(FilterOp, pb::FilterOp); 8] = [
    (FilterOp::Equals, pb::FilterOp::Equals),
    (FilterOp::NotEquals, pb::FilterOp::NotEquals),
    (FilterOp::In, pb::FilterOp::In),
    (FilterOp::Contains, pb::FilterOp::Contains),
    (FilterOp::IsKnown, pb::FilterOp::IsKnown),
    (FilterOp::IsUnknown, pb::FilterOp::IsUnknown),
    (FilterOp::Before, pb::FilterOp::Before),
    (FilterOp::After, pb::FilterOp::After),
];

fn filter_to_pb(filter: &Filter) -> pb::Filter {
    let op = filter
        .op
        .and_then(|op| FILTER_OPS.iter().find(|(o, _)| *o == op))
        .map_or(pb::FilterOp::Unspecified, |(_, p)| *p);
    pb::Filter {
        all: filter.all.iter().flatten().map(filter_to_pb).collect(),
        any: filter.any.iter().flatten().map(filter_to_pb).collect(),
        field: filter.field.clone().unwrap_or_default(),
        op: op.into(),
        values: match &filter.value {
            None => Vec::new(),
            Some(FilterValue::One(text)) => vec![text.clone()],
            Some(FilterValue::List(texts)) => texts.clone(),
        },
    }
}

fn filter_from_pb(filter: &pb::Filter, path: &str) -> Result<Filter, String> {
    let op = match pb::FilterOp::try_from(filter.op) {
        Ok(pb::FilterOp::Unspecified) => None,
        Ok(op) => FILTER_OPS.iter().find(|(_, p)| *p == op).map(|(o, _)| *o),
        Err(_) => return Err(format!("{path}.op: unknown value {}", filter.op)),
    };
    let group = |children: &[pb::Filter], name: &str| -> Result<Option<Vec<Filter>>, String> {
        if children.is_empty() {
            return Ok(None);
        }
        children
            .iter()
            .enumerate()
            .map(|(index, child)| filter_from_pb(child, &format!("{path}.{name}[{index}]")))
            .collect::<Result<_, _>>()
            .map(Some)
    };
    Ok(Filter {
        all: group(&filter.all, "all")?,
        any: group(&filter.any, "any")?,
        field: non_empty(&filter.field),
        value: match (op, filter.values.as_slice()) {
            (_, []) => None,
            (Some(FilterOp::In), values) | (_, values @ [_, _, ..]) => Some(FilterValue::List(values.to_vec())),
            (_, [one]) => Some(FilterValue::One(one.clone())),
        },
        op,
    })
}

/// The spec as a message.
pub fn spec_to_pb(spec: &MappingSpec) -> pb::MappingSpec {
    pb::MappingSpec {
        name: spec.name.clone(),
        source: Some(pb::ObjectRef {
            connection_id: spec.source.connection.clone(),
            object: spec.source.object.clone(),
        }),
        target: Some(pb::ObjectRef {
            connection_id: spec.target.connection.clone(),
            object: spec.target.object.clone(),
        }),
        direction: direction_to_pb(spec.direction).into(),
        field_pairs: spec
            .field_pairs
            .iter()
            .map(|p| pb::FieldPair {
                source_field: p.source_field.clone(),
                target_field: p.target_field.clone(),
                transform: p.transform.clone().unwrap_or_default(),
                required: p.required,
                reverse_transform: p.reverse_transform.clone().unwrap_or_default(),
                overwrite_with_empty: p.overwrite_with_empty,
                direction: match p.direction {
                    None => pb::PairDirection::Unspecified,
                    Some(PairDirection::SourceToTarget) => pb::PairDirection::SourceToTarget,
                    Some(PairDirection::TargetToSource) => pb::PairDirection::TargetToSource,
                    Some(PairDirection::Both) => pb::PairDirection::Both,
                }
                .into(),
                conflict_policy: policy_to_pb(p.conflict_policy).into(),
                on_error: match p.on_error {
                    None => pb::OnError::Unspecified,
                    Some(OnError::SkipField) => pb::OnError::SkipField,
                    Some(OnError::FailRecord) => pb::OnError::FailRecord,
                }
                .into(),
            })
            .collect(),
        match_key: spec.match_key.clone().unwrap_or_default(),
        schedule: spec.schedule.clone().unwrap_or_default(),
        matching_mode: mode_to_pb(spec.matching_mode).into(),
        default_region: spec.default_region.clone().unwrap_or_default(),
        filter: spec.filter.as_ref().map(filter_to_pb),
        target_filter: spec.target_filter.as_ref().map(filter_to_pb),
        conflict_policy: policy_to_pb(Some(spec.conflict_policy)).into(),
    }
}

/// A message as a spec; enum values out of range are named.
pub fn spec_from_pb(spec: &pb::MappingSpec) -> Result<MappingSpec, String> {
    let direction = match pb::Direction::try_from(spec.direction) {
        Ok(pb::Direction::Unspecified | pb::Direction::SourceToTarget) => Direction::SourceToTarget,
        Ok(pb::Direction::TargetToSource) => Direction::TargetToSource,
        Ok(pb::Direction::Bidirectional) => Direction::Bidirectional,
        Err(_) => return Err(format!("direction: unknown value {}", spec.direction)),
    };
    let matching_mode = match pb::MatchingMode::try_from(spec.matching_mode) {
        Ok(pb::MatchingMode::Unspecified | pb::MatchingMode::MatchThenCreate) => MatchingMode::MatchThenCreate,
        Ok(pb::MatchingMode::CreateOnly) => MatchingMode::CreateOnly,
        Ok(pb::MatchingMode::MatchOnly) => MatchingMode::MatchOnly,
        Err(_) => return Err(format!("matchingMode: unknown value {}", spec.matching_mode)),
    };
    let side = |side: &Option<pb::ObjectRef>, name: &str| -> Result<ObjectRef, String> {
        let side = side.as_ref().ok_or_else(|| format!("{name}: missing"))?;
        Ok(ObjectRef {
            connection: side.connection_id.trim().to_owned(),
            object: side.object.trim().to_owned(),
        })
    };
    let pair = |index: usize, p: &pb::FieldPair| -> Result<FieldPair, String> {
        Ok(FieldPair {
            source_field: p.source_field.clone(),
            target_field: p.target_field.clone(),
            transform: non_empty(&p.transform),
            required: p.required,
            reverse_transform: non_empty(&p.reverse_transform),
            overwrite_with_empty: p.overwrite_with_empty,
            direction: match pb::PairDirection::try_from(p.direction) {
                Ok(pb::PairDirection::Unspecified) => None,
                Ok(pb::PairDirection::SourceToTarget) => Some(PairDirection::SourceToTarget),
                Ok(pb::PairDirection::TargetToSource) => Some(PairDirection::TargetToSource),
                Ok(pb::PairDirection::Both) => Some(PairDirection::Both),
                Err(_) => return Err(format!("fieldPairs[{index}].direction: unknown value {}", p.direction)),
            },
            conflict_policy: policy_from_pb(p.conflict_policy, &format!("fieldPairs[{index}].conflictPolicy"))?,
            on_error: match pb::OnError::try_from(p.on_error) {
                Ok(pb::OnError::Unspecified) => None,
                Ok(pb::OnError::SkipField) => Some(OnError::SkipField),
                Ok(pb::OnError::FailRecord) => Some(OnError::FailRecord),
                Err(_) => return Err(format!("fieldPairs[{index}].onError: unknown value {}", p.on_error)),
            },
        })
    };
    Ok(MappingSpec {
        name: spec.name.clone(),
        source: side(&spec.source, "source")?,
        target: side(&spec.target, "target")?,
        direction,
        field_pairs: spec
            .field_pairs
            .iter()
            .enumerate()
            .map(|(index, p)| pair(index, p))
            .collect::<Result<_, _>>()?,
        match_key: non_empty(&spec.match_key),
        schedule: non_empty(&spec.schedule),
        matching_mode,
        default_region: non_empty(&spec.default_region),
        filter: spec.filter.as_ref().map(|f| filter_from_pb(f, "filter")).transpose()?,
        target_filter: spec
            .target_filter
            .as_ref()
            .map(|f| filter_from_pb(f, "targetFilter"))
            .transpose()?,
        conflict_policy: policy_from_pb(spec.conflict_policy, "conflictPolicy")?.unwrap_or_default(),
    })
}

/// A stored mapping as a message.
pub fn mapping_to_pb(record: &MappingRecord) -> pb::Mapping {
    pb::Mapping {
        id: record.id.clone(),
        spec: Some(spec_to_pb(&record.spec)),
        active: record.active,
        created_at: pb_time::from_text(&record.created_at),
        updated_at: pb_time::from_text(&record.updated_at),
        next_run_at: pb_time::from_optional_text(record.next_run_at.as_deref()),
    }
}

/// The JSON `mapping get -o json` prints: the file shape plus the read-only keys.
pub fn mapping_json(mapping: &pb::Mapping) -> Result<serde_json::Value, String> {
    let spec = spec_from_pb(mapping.spec.as_ref().ok_or("mapping without spec")?)?;
    let mut value = serde_json::to_value(&spec).map_err(|e| e.to_string())?;
    value["id"] = mapping.id.clone().into();
    value["active"] = mapping.active.into();
    value["createdAt"] = pb_time::text(mapping.created_at.as_ref()).into();
    value["updatedAt"] = pb_time::text(mapping.updated_at.as_ref()).into();
    value["nextRunAt"] = pb_time::text(mapping.next_run_at.as_ref()).into();
    Ok(value)
}
