//! Conversions between the gRPC messages and mapping records, shared by the daemon and fluxctl.

use super::records::MappingRecord;
use super::spec::{Direction, FieldPair, MappingSpec, MatchingMode, ObjectRef};
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
            })
            .collect(),
        match_key: spec.match_key.clone().unwrap_or_default(),
        schedule: spec.schedule.clone().unwrap_or_default(),
        matching_mode: mode_to_pb(spec.matching_mode).into(),
        default_region: spec.default_region.clone().unwrap_or_default(),
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
    Ok(MappingSpec {
        name: spec.name.clone(),
        source: side(&spec.source, "source")?,
        target: side(&spec.target, "target")?,
        direction,
        field_pairs: spec
            .field_pairs
            .iter()
            .map(|p| FieldPair {
                source_field: p.source_field.clone(),
                target_field: p.target_field.clone(),
                transform: non_empty(&p.transform),
                required: p.required,
                reverse_transform: non_empty(&p.reverse_transform),
                overwrite_with_empty: p.overwrite_with_empty,
            })
            .collect(),
        match_key: non_empty(&spec.match_key),
        schedule: non_empty(&spec.schedule),
        matching_mode,
        default_region: non_empty(&spec.default_region),
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
