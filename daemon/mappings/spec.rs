//! The mapping as users write it (YAML/JSON files, `-o json`): the seed's camelCase names.

use serde::{Deserialize, Serialize};

use super::filter::Filter;

/// One side of a mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectRef {
    /// A connection id (`conn_…`).
    pub connection: String,
    /// The provider's object type: `contacts`, `persons`, `Contact`, `clients`, …
    pub object: String,
}

/// Which way data flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[default]
    SourceToTarget,
    TargetToSource,
    /// Both ways; conflicts follow the conflict policy.
    Bidirectional,
}

/// Which way one pair of a bidirectional mapping flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairDirection {
    SourceToTarget,
    TargetToSource,
    Both,
}

impl PairDirection {
    pub fn as_str(self) -> &'static str {
        match self {
            PairDirection::SourceToTarget => "source_to_target",
            PairDirection::TargetToSource => "target_to_source",
            PairDirection::Both => "both",
        }
    }
}

/// Who wins a field both sides changed since the last sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ConflictPolicy {
    /// The side changed later (beyond a clock-skew margin; the source on a tie).
    #[default]
    NewestWins,
    SourceWins,
    TargetWins,
}

impl ConflictPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictPolicy::NewestWins => "newest_wins",
            ConflictPolicy::SourceWins => "source_wins",
            ConflictPolicy::TargetWins => "target_wins",
        }
    }
}

/// What a pair whose transform fails on a record does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Write the rest of the record without this field; record a warning.
    SkipField,
    /// Fail the whole record.
    FailRecord,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::SourceToTarget => "source_to_target",
            Direction::TargetToSource => "target_to_source",
            Direction::Bidirectional => "bidirectional",
        }
    }
}

/// What a sync does with a source record that has no linked target record yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MatchingMode {
    /// Match an existing target record by the match key, else create one.
    #[default]
    MatchThenCreate,
    /// Always create.
    CreateOnly,
    /// Only link to existing records; never create.
    MatchOnly,
}

impl MatchingMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchingMode::MatchThenCreate => "match_then_create",
            MatchingMode::CreateOnly => "create_only",
            MatchingMode::MatchOnly => "match_only",
        }
    }
}

/// One field mapping. `sourceField` may list several fields separated by commas for
/// transforms that combine them (`concatenate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FieldPair {
    pub source_field: String,
    pub target_field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<String>,
    #[serde(default)]
    pub required: bool,
    /// Transform for target → source in bidirectional mappings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverse_transform: Option<String>,
    /// Let an empty source value clear a non-empty target value.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub overwrite_with_empty: bool,
    /// In a bidirectional mapping, the way this pair flows (default: both).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<PairDirection>,
    /// This pair's conflict policy (default: the mapping's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict_policy: Option<ConflictPolicy>,
    /// What a failing transform does (default: `fail_record` when required, else `skip_field`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_error: Option<OnError>,
}

impl FieldPair {
    /// What a failing transform of this pair does.
    pub fn effective_on_error(&self) -> OnError {
        match (self.on_error, self.required) {
            (Some(on_error), _) => on_error,
            (None, true) => OnError::FailRecord,
            (None, false) => OnError::SkipField,
        }
    }

    /// Whether this pair flows source → target in a mapping going `direction`.
    pub fn flows_forward(&self, direction: Direction) -> bool {
        direction != Direction::TargetToSource && self.direction != Some(PairDirection::TargetToSource)
    }

    /// Whether this pair flows target → source in a mapping going `direction`.
    pub fn flows_backward(&self, direction: Direction) -> bool {
        direction != Direction::SourceToTarget && self.direction != Some(PairDirection::SourceToTarget)
    }

    /// The source fields feeding this pair.
    pub fn source_fields(&self) -> Vec<&str> {
        self.source_field
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty())
            .collect()
    }
}

/// A mapping's definition. Files may also carry the read-only keys `mapping get` prints
/// (`id`, `active`, …); they are ignored on input so a file round-trips.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MappingSpec {
    pub name: String,
    pub source: ObjectRef,
    pub target: ObjectRef,
    #[serde(default)]
    pub direction: Direction,
    pub field_pairs: Vec<FieldPair>,
    /// Target field used to match records on a first sync; default: the email field for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_key: Option<String>,
    /// `15m`-style interval or a cron expression, optionally prefixed `TZ=Area/City `.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    #[serde(default)]
    pub matching_mode: MatchingMode,
    /// Region for phone numbers without a country code, e.g. `US`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_region: Option<String>,
    /// Which source records the mapping reads (conditions on source fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<Filter>,
    /// Which target records a mapping writing the source reads (conditions on target fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_filter: Option<Filter>,
    /// Who wins fields both sides changed (bidirectional mappings).
    #[serde(default)]
    pub conflict_policy: ConflictPolicy,
}

/// Keys `mapping get -o json` adds to the spec; a file may carry them and they are ignored.
pub const READ_ONLY_KEYS: [&str; 5] = ["id", "active", "createdAt", "updatedAt", "nextRunAt"];

/// Errors reading a mapping file.
#[derive(Debug, thiserror::Error)]
pub enum MappingFileError {
    #[error("not valid YAML or JSON: {0}")]
    Syntax(String),
    #[error("{0}")]
    Shape(String),
}

/// Parses a YAML or JSON mapping file (JSON is read as YAML's subset).
pub fn parse_file(text: &str) -> Result<MappingSpec, MappingFileError> {
    let mut value: serde_json::Value =
        serde_yaml_ng::from_str(text).map_err(|e| MappingFileError::Syntax(e.to_string()))?;
    if let Some(map) = value.as_object_mut() {
        for key in READ_ONLY_KEYS {
            map.remove(key);
        }
    }
    serde_json::from_value(value).map_err(|e| MappingFileError::Shape(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const YAML: &str = r#"
name: HubSpot contacts to Jobber clients
source: { connection: conn_a, object: contacts }
target: { connection: conn_b, object: clients }
direction: source_to_target
fieldPairs:
  - { sourceField: firstname, targetField: firstName, required: true }
  - { sourceField: "address,city", targetField: billingAddress.street1, transform: 'concatenate(sep=", ")' }
matchKey: email
schedule: 15m
"#;

    #[test]
    fn yaml_and_json_files_parse_and_round_trip() {
        let spec = parse_file(YAML).unwrap();
        assert_eq!(spec.field_pairs.len(), 2);
        assert_eq!(spec.field_pairs[1].source_fields(), vec!["address", "city"]);
        assert_eq!(spec.matching_mode, MatchingMode::MatchThenCreate);
        let mut json = serde_json::to_value(&spec).unwrap();
        json["id"] = "map_1".into();
        json["active"] = true.into();
        let again = parse_file(&json.to_string()).unwrap();
        assert_eq!(again, spec);
    }

    #[test]
    fn unknown_keys_are_named() {
        let error = parse_file(
            "name: x
source: {connection: a, object: b}
target: {connection: a, object: b}
fieldPair: []
",
        )
        .unwrap_err();
        assert!(error.to_string().contains("fieldPair"), "{error}");
        let error = parse_file("name: [unclosed").unwrap_err();
        assert!(matches!(error, MappingFileError::Syntax(_)));
    }
}
