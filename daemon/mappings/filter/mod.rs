//! Record filters (`filter:` and `targetFilter:` of a mapping): conditions on one side's fields
//! grouped with `all`/`any`, as users write them, and the compiled form the engine evaluates on
//! every record it reads. Their checks are in `check`, the reductions connectors use to push
//! what their provider's query can express into that query in `push`.

mod check;
mod push;

pub use check::{check_fields, check_shape};
pub use push::Pushed;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::timestamps::parse_time;

/// A record's fields as connectors flatten them (`name → text`).
type Fields = BTreeMap<String, String>;

/// Conditions one filter may hold.
pub const MAX_CONDITIONS: usize = 20;
/// How deep groups may nest (`all` inside `any` inside `all`).
pub const MAX_DEPTH: usize = 3;
/// Values one `in` condition may list.
pub const MAX_VALUES: usize = 100;
/// The longest field name or value.
pub const MAX_VALUE_TEXT: usize = 1000;

/// A condition's comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterOp {
    Equals,
    NotEquals,
    /// Equals one of a list.
    In,
    /// Holds the value as a substring.
    Contains,
    /// Has a non-empty value.
    IsKnown,
    /// Has no value.
    IsUnknown,
    /// Earlier date or smaller number.
    Before,
    /// Later date or larger number.
    After,
}

impl FilterOp {
    pub fn as_str(self) -> &'static str {
        match self {
            FilterOp::Equals => "equals",
            FilterOp::NotEquals => "not_equals",
            FilterOp::In => "in",
            FilterOp::Contains => "contains",
            FilterOp::IsKnown => "is_known",
            FilterOp::IsUnknown => "is_unknown",
            FilterOp::Before => "before",
            FilterOp::After => "after",
        }
    }
}

/// A condition's value: one text, or a list (`in`). Numbers and booleans in a file are read
/// as their text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum FilterValue {
    One(String),
    List(Vec<String>),
}

impl<'de> Deserialize<'de> for FilterValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let scalar = |value: &serde_json::Value| match value {
            serde_json::Value::String(text) => Some(text.clone()),
            serde_json::Value::Number(number) => Some(number.to_string()),
            serde_json::Value::Bool(flag) => Some(flag.to_string()),
            _ => None,
        };
        let value = serde_json::Value::deserialize(deserializer)?;
        match &value {
            serde_json::Value::Array(items) => items
                .iter()
                .map(|item| scalar(item).ok_or_else(|| D::Error::custom("list values must be texts or numbers")))
                .collect::<Result<_, _>>()
                .map(FilterValue::List),
            other => scalar(other)
                .map(FilterValue::One)
                .ok_or_else(|| D::Error::custom("value must be a text, a number, a boolean or a list")),
        }
    }
}

impl FilterValue {
    pub(super) fn texts(&self) -> Vec<String> {
        match self {
            FilterValue::One(text) => vec![text.clone()],
            FilterValue::List(texts) => texts.clone(),
        }
    }
}

/// A filter as written: a condition (`field`, `op`, `value`) or a group (`all` or `any`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<Vec<Filter>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub any: Option<Vec<Filter>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op: Option<FilterOp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<FilterValue>,
}

/// How a field's values compare, from the catalog's type name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Text,
    Number,
    Date,
    DateTime,
    Bool,
}

impl ValueKind {
    /// The kind of a catalog type (HubSpot, Salesforce, Pipedrive and Jobber names).
    pub fn of(kind: &str) -> ValueKind {
        match kind.to_ascii_lowercase().as_str() {
            "number" | "double" | "currency" | "int" | "integer" | "long" | "percent" | "float" | "monetary" => {
                ValueKind::Number
            }
            "date" => ValueKind::Date,
            "datetime" | "iso8601datetime" | "timestamp" => ValueKind::DateTime,
            "bool" | "boolean" | "booleancheckbox" => ValueKind::Bool,
            _ => ValueKind::Text,
        }
    }

    pub(super) fn ordered(self) -> bool {
        matches!(self, ValueKind::Number | ValueKind::Date | ValueKind::DateTime)
    }
}

/// A value made comparable for its kind.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub(super) enum Key {
    Number(f64),
    /// Unix milliseconds (dates at midnight UTC).
    Time(i64),
    Text(String),
}

pub(super) fn key(kind: ValueKind, text: &str) -> Option<Key> {
    let text = text.trim();
    match kind {
        ValueKind::Number => text.parse::<f64>().ok().filter(|n| n.is_finite()).map(Key::Number),
        ValueKind::Date | ValueKind::DateTime => time_ms(text).map(Key::Time),
        ValueKind::Bool => match text.to_ascii_lowercase().as_str() {
            "true" | "false" => Some(Key::Text(text.to_ascii_lowercase())),
            _ => None,
        },
        ValueKind::Text => Some(Key::Text(text.to_lowercase())),
    }
}

/// A date (`2025-01-31`, midnight UTC) or a timestamp as Unix milliseconds.
pub fn time_ms(text: &str) -> Option<i64> {
    // A date alone (jiff would also read the date part of a timestamp).
    if text.len() == 10
        && let Ok(date) = text.parse::<jiff::civil::Date>()
    {
        return format!("{date}T00:00:00Z")
            .parse::<jiff::Timestamp>()
            .ok()
            .map(|t| t.as_millisecond());
    }
    parse_time(text).map(|t| t.as_millisecond())
}

/// A checked condition with its field's kind.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    pub field: String,
    pub op: FilterOp,
    /// The values as written (one, or the `in` list; none for `is_known`/`is_unknown`).
    pub values: Vec<String>,
    pub kind: ValueKind,
    /// The field's type as the catalog names it (`textarea`, `enumeration`, …).
    pub type_name: String,
    keys: Vec<Key>,
}

impl Condition {
    /// Whether `fields` satisfies the condition. Text compares trimmed and case-insensitively,
    /// numbers and dates by value; a missing or unparsable value is neither before nor after.
    pub fn admits(&self, fields: &Fields) -> bool {
        // Known means a non-empty value, as providers have it (HubSpot's HAS_PROPERTY, SOQL's
        // `!= null`); comparisons read the value trimmed.
        let present = fields.get(&self.field).filter(|v| !v.is_empty());
        let raw = present.map(|v| v.trim()).filter(|v| !v.is_empty());
        let actual = raw.and_then(|v| key(self.kind, v));
        let equals = || actual.as_ref().is_some_and(|a| self.keys.iter().any(|k| k == a));
        match self.op {
            FilterOp::IsKnown => present.is_some(),
            FilterOp::IsUnknown => present.is_none(),
            FilterOp::Equals | FilterOp::In => equals(),
            FilterOp::NotEquals => !equals(),
            FilterOp::Contains => {
                let wanted = self.values.first().map(|v| v.trim().to_lowercase()).unwrap_or_default();
                raw.is_some_and(|v| v.to_lowercase().contains(&wanted))
            }
            FilterOp::Before => matches!((&actual, self.keys.first()), (Some(a), Some(k)) if a < k),
            FilterOp::After => matches!((&actual, self.keys.first()), (Some(a), Some(k)) if a > k),
        }
    }

    /// The values of a number field as numbers, for pushing down.
    pub fn numbers(&self) -> Vec<f64> {
        self.keys
            .iter()
            .filter_map(|k| match k {
                Key::Number(n) => Some(*n),
                _ => None,
            })
            .collect()
    }

    /// The single value of a number field, for pushing down.
    pub fn number(&self) -> Option<f64> {
        self.numbers().first().copied()
    }

    /// The single value as Unix milliseconds, for date and datetime fields.
    pub fn time_ms(&self) -> Option<i64> {
        match self.keys.first() {
            Some(Key::Time(ms)) => Some(*ms),
            _ => None,
        }
    }
}

/// A filter ready to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub enum Compiled {
    All(Vec<Compiled>),
    Any(Vec<Compiled>),
    Condition(Condition),
}

impl Compiled {
    /// Compiles a filter that passed [`check_shape`] and [`check_fields`]; `kind` gives each
    /// field's catalog type.
    pub fn new(filter: &Filter, kind: &dyn Fn(&str) -> Option<String>) -> Result<Compiled, String> {
        if let Some(children) = &filter.all {
            return children
                .iter()
                .map(|c| Compiled::new(c, kind))
                .collect::<Result<_, _>>()
                .map(Compiled::All);
        }
        if let Some(children) = &filter.any {
            return children
                .iter()
                .map(|c| Compiled::new(c, kind))
                .collect::<Result<_, _>>()
                .map(Compiled::Any);
        }
        let field = filter.field.as_deref().unwrap_or_default().trim().to_owned();
        let op = filter.op.ok_or_else(|| format!("filter on {field:?} has no op"))?;
        let type_name = kind(&field).unwrap_or_default();
        let kind = ValueKind::of(&type_name);
        let values = filter.value.as_ref().map(FilterValue::texts).unwrap_or_default();
        // `contains` reads the text itself, whatever the field's kind.
        let keys = match op {
            FilterOp::Contains => Vec::new(),
            _ => values
                .iter()
                .map(|v| key(kind, v).ok_or_else(|| format!("{v:?} is not a valid value for {field}")))
                .collect::<Result<_, _>>()?,
        };
        Ok(Compiled::Condition(Condition {
            field,
            op,
            values,
            kind,
            type_name,
            keys,
        }))
    }

    /// Whether a record with `fields` passes.
    pub fn admits(&self, fields: &Fields) -> bool {
        match self {
            Compiled::All(children) => children.iter().all(|c| c.admits(fields)),
            Compiled::Any(children) => children.iter().any(|c| c.admits(fields)),
            Compiled::Condition(condition) => condition.admits(fields),
        }
    }

    /// The fields the filter reads.
    pub fn fields(&self) -> Vec<&str> {
        match self {
            Compiled::All(children) | Compiled::Any(children) => children.iter().flat_map(Compiled::fields).collect(),
            Compiled::Condition(condition) => vec![condition.field.as_str()],
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub fn parse(yaml: &str) -> Filter {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    /// The test catalog's type of `name`.
    pub fn kind_of(name: &str) -> Option<String> {
        [
            ("city", "string"),
            ("score", "number"),
            ("closedate", "datetime"),
            ("vip", "bool"),
        ]
        .into_iter()
        .find(|(field, _)| *field == name)
        .map(|(_, kind)| kind.to_owned())
    }

    pub fn compile(filter: &Filter) -> Compiled {
        Compiled::new(filter, &kind_of).unwrap()
    }

    pub fn record(pairs: &[(&str, &str)]) -> Fields {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn each_operator_admits_what_it_says() {
        let cases = [
            ("{field: city, op: equals, value: 'san francisco '}", true),
            ("{field: city, op: not_equals, value: San Francisco}", false),
            ("{field: city, op: in, value: [Oakland, SAN FRANCISCO]}", true),
            ("{field: city, op: contains, value: franc}", true),
            ("{field: city, op: is_known}", true),
            ("{field: city, op: is_unknown}", false),
            ("{field: score, op: before, value: 10}", false),
            ("{field: score, op: after, value: 9.5}", true),
            ("{field: score, op: equals, value: 10.0}", true),
            ("{field: closedate, op: before, value: 2025-02-01}", true),
            ("{field: closedate, op: after, value: '2025-01-31T12:00:00Z'}", false),
            (
                "{field: closedate, op: after, value: '2025-01-30T23:59:59.999+0000'}",
                true,
            ),
            (
                "{field: closedate, op: before, value: '2025-01-31T00:00:00.001Z'}",
                true,
            ),
            ("{field: vip, op: equals, value: true}", false),
        ];
        let fields = record(&[
            ("city", "San Francisco"),
            ("score", "10"),
            ("closedate", "2025-01-31T00:00:00Z"),
        ]);
        for (yaml, expected) in cases {
            assert_eq!(compile(&parse(yaml)).admits(&fields), expected, "{yaml}");
        }
        let empty = record(&[("city", "")]);
        assert!(compile(&parse("{field: city, op: is_unknown}")).admits(&empty));
        let blank = record(&[("city", "  ")]);
        assert!(compile(&parse("{field: city, op: is_known}")).admits(&blank));
        assert!(!compile(&parse("{field: city, op: equals, value: x}")).admits(&blank));
        assert!(compile(&parse("{field: city, op: not_equals, value: x}")).admits(&empty));
        assert!(!compile(&parse("{field: score, op: before, value: 10}")).admits(&empty));
    }

    #[test]
    fn yaml_numbers_and_booleans_read_as_text() {
        let filter = parse("{field: score, op: in, value: [1, 2.5, true]}");
        assert_eq!(
            filter.value,
            Some(FilterValue::List(vec!["1".into(), "2.5".into(), "true".into()]))
        );
        assert!(serde_yaml_ng::from_str::<Filter>("{field: x, op: equals, value: {a: 1}}").is_err());
    }
}
