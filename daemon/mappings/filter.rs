//! Record filters (`filter:` and `targetFilter:` of a mapping): conditions on one side's fields
//! grouped with `all`/`any`, as users write them; their checks (shape here, fields against the
//! catalog); the compiled form the engine evaluates; and the reductions connectors use to push
//! what their provider's query can express into that query. A pushed query may return more
//! records than the filter admits, never fewer: the engine applies the whole filter to every
//! record it reads.

use serde::{Deserialize, Serialize};

use crate::connectors::{FieldInfo, Fields, parse_time};

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
    fn texts(&self) -> Vec<String> {
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

    fn ordered(self) -> bool {
        matches!(self, ValueKind::Number | ValueKind::Date | ValueKind::DateTime)
    }
}

/// A value made comparable for its kind.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Key {
    Number(f64),
    /// Unix milliseconds (dates at midnight UTC).
    Time(i64),
    Text(String),
}

fn key(kind: ValueKind, text: &str) -> Option<Key> {
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
        let raw = fields.get(&self.field).map(|v| v.trim()).filter(|v| !v.is_empty());
        let actual = raw.and_then(|v| key(self.kind, v));
        let equals = || actual.as_ref().is_some_and(|a| self.keys.iter().any(|k| k == a));
        match self.op {
            FilterOp::IsKnown => raw.is_some(),
            FilterOp::IsUnknown => raw.is_none(),
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

    /// The single value as a number, a time (ms) or text, for pushing down.
    pub fn number(&self) -> Option<f64> {
        match self.keys.first() {
            Some(Key::Number(n)) => Some(*n),
            _ => None,
        }
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

/// A filter reduced to what a provider's query can express: `None` where nothing is pushed
/// (every record passes).
#[derive(Debug, Clone, PartialEq)]
pub enum Pushed<T> {
    All(Vec<Pushed<T>>),
    Any(Vec<Pushed<T>>),
    Condition(T),
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
        let keys = values
            .iter()
            .map(|v| key(kind, v).ok_or_else(|| format!("{v:?} is not a valid value for {field}")))
            .collect::<Result<_, _>>()?;
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

    /// The conditions every passing record satisfies: the condition itself, or those of
    /// `all` groups (nested `all`s included), for query languages that only AND.
    pub fn conjuncts(&self) -> Vec<&Condition> {
        match self {
            Compiled::All(children) => children.iter().flat_map(Compiled::conjuncts).collect(),
            Compiled::Any(children) if children.len() == 1 => children[0].conjuncts(),
            Compiled::Any(_) => Vec::new(),
            Compiled::Condition(condition) => vec![condition],
        }
    }

    /// The filter with each condition `push` cannot express dropped: a dropped condition of
    /// an `all` widens it, a dropped one of an `any` drops the whole `any`.
    pub fn superset<T>(&self, push: &dyn Fn(&Condition) -> Option<T>) -> Option<Pushed<T>> {
        match self {
            Compiled::Condition(condition) => push(condition).map(Pushed::Condition),
            Compiled::All(children) => {
                let kept: Vec<Pushed<T>> = children.iter().filter_map(|c| c.superset(push)).collect();
                match kept.len() {
                    0 => None,
                    1 => kept.into_iter().next(),
                    _ => Some(Pushed::All(kept)),
                }
            }
            Compiled::Any(children) => {
                let kept: Option<Vec<Pushed<T>>> = children.iter().map(|c| c.superset(push)).collect();
                match kept? {
                    kept if kept.len() == 1 => kept.into_iter().next(),
                    kept => Some(Pushed::Any(kept)),
                }
            }
        }
    }
}

impl<T: Clone> Pushed<T> {
    /// As OR-ed groups of AND-ed conditions, with at most `max_groups` groups: an `all` that
    /// would multiply past it keeps fewer conditions (wider), an `any` past it is dropped.
    pub fn groups(&self, max_groups: usize) -> Option<Vec<Vec<T>>> {
        match self {
            Pushed::Condition(condition) => Some(vec![vec![condition.clone()]]),
            Pushed::Any(children) => {
                let mut groups = Vec::new();
                for child in children {
                    groups.extend(child.groups(max_groups)?);
                    if groups.len() > max_groups {
                        return None;
                    }
                }
                Some(groups)
            }
            Pushed::All(children) => {
                let mut groups: Vec<Vec<T>> = vec![Vec::new()];
                for child in children {
                    let Some(child_groups) = child.groups(max_groups) else {
                        continue;
                    };
                    if groups.len() * child_groups.len() > max_groups {
                        continue;
                    }
                    groups = groups
                        .iter()
                        .flat_map(|group| {
                            child_groups.iter().map(move |extra| {
                                let mut merged = group.clone();
                                merged.extend(extra.iter().cloned());
                                merged
                            })
                        })
                        .collect();
                }
                (groups.iter().any(|g| !g.is_empty())).then_some(groups)
            }
        }
    }
}

fn count_conditions(filter: &Filter) -> usize {
    match (&filter.all, &filter.any) {
        (Some(children), _) | (None, Some(children)) => children.iter().map(count_conditions).sum(),
        (None, None) => 1,
    }
}

/// Checks a filter's shape: each node is one condition or one group, groups are not empty,
/// values fit their op, and the limits hold. `path` names the filter (`filter`, `targetFilter`).
pub fn check_shape(filter: &Filter, path: &str) -> Vec<String> {
    let total = count_conditions(filter);
    if total > MAX_CONDITIONS {
        return vec![format!("{path}: at most {MAX_CONDITIONS} conditions (found {total})")];
    }
    let mut problems = Vec::new();
    check_node(filter, path, 1, &mut problems);
    problems
}

fn check_node(filter: &Filter, path: &str, depth: usize, problems: &mut Vec<String>) {
    let is_condition = filter.field.is_some() || filter.op.is_some() || filter.value.is_some();
    let groups = [("all", &filter.all), ("any", &filter.any)];
    let given: Vec<&str> = groups.iter().filter(|(_, g)| g.is_some()).map(|(n, _)| *n).collect();
    if given.len() + usize::from(is_condition) != 1 {
        problems.push(format!(
            "{path}: give either a condition (field, op, value) or one group (all or any)"
        ));
        return;
    }
    for (name, children) in groups {
        let Some(children) = children else { continue };
        if depth >= MAX_DEPTH {
            problems.push(format!("{path}.{name}: groups nest at most {MAX_DEPTH} deep"));
            return;
        }
        if children.is_empty() {
            problems.push(format!("{path}.{name}: needs at least one condition"));
        }
        for (index, child) in children.iter().enumerate() {
            check_node(child, &format!("{path}.{name}[{index}]"), depth + 1, problems);
        }
        return;
    }
    let field = filter.field.as_deref().unwrap_or_default().trim();
    if field.is_empty() || field.len() > MAX_VALUE_TEXT {
        problems.push(format!("{path}.field: must name a field"));
    }
    let Some(op) = filter.op else {
        problems.push(format!(
            "{path}.op: missing (equals, not_equals, in, contains, is_known, is_unknown, before, after)"
        ));
        return;
    };
    let values = filter.value.as_ref().map(FilterValue::texts);
    if values.iter().flatten().any(|v| v.len() > MAX_VALUE_TEXT) {
        problems.push(format!("{path}.value: at most {MAX_VALUE_TEXT} characters"));
        return;
    }
    match (op, &filter.value) {
        (FilterOp::IsKnown | FilterOp::IsUnknown, Some(_)) => {
            problems.push(format!("{path}.value: {} takes no value", op.as_str()))
        }
        (FilterOp::IsKnown | FilterOp::IsUnknown, None) => {}
        (FilterOp::In, Some(FilterValue::List(list))) if !list.is_empty() && list.len() <= MAX_VALUES => {}
        (FilterOp::In, _) => problems.push(format!("{path}.value: in takes a list of 1 to {MAX_VALUES} values")),
        (_, Some(FilterValue::One(text))) if !(op == FilterOp::Contains && text.trim().is_empty()) => {}
        (_, _) => problems.push(format!("{path}.value: {} takes one value", op.as_str())),
    }
}

/// Checks a filter's fields against the catalog of the side it reads: each field exists,
/// `before`/`after` compare dates or numbers, and values parse as their field's kind.
pub fn check_fields(filter: &Filter, path: &str, catalog: &[FieldInfo], side: &str) -> Vec<String> {
    let mut problems = Vec::new();
    check_node_fields(filter, path, catalog, side, &mut problems);
    problems
}

fn check_node_fields(filter: &Filter, path: &str, catalog: &[FieldInfo], side: &str, problems: &mut Vec<String>) {
    for (name, children) in [("all", &filter.all), ("any", &filter.any)] {
        for (index, child) in children.iter().flatten().enumerate() {
            check_node_fields(child, &format!("{path}.{name}[{index}]"), catalog, side, problems);
        }
    }
    let (Some(field), Some(op)) = (filter.field.as_deref().map(str::trim), filter.op) else {
        return;
    };
    let Some(info) = catalog.iter().find(|f| f.name == field) else {
        problems.push(format!("{path}.field: unknown field {field:?} on {side}"));
        return;
    };
    let kind = ValueKind::of(&info.kind);
    if matches!(op, FilterOp::Before | FilterOp::After) && !kind.ordered() {
        problems.push(format!(
            "{path}.op: {} compares dates or numbers; {field:?} is {}",
            op.as_str(),
            info.kind
        ));
        return;
    }
    if matches!(op, FilterOp::Contains) {
        return;
    }
    for value in filter.value.iter().flat_map(FilterValue::texts) {
        if key(kind, &value).is_none() {
            let wanted = match kind {
                ValueKind::Number => "a number",
                ValueKind::Date | ValueKind::DateTime => "a date (2025-01-31) or a timestamp (RFC 3339)",
                ValueKind::Bool => "true or false",
                ValueKind::Text => "a text",
            };
            problems.push(format!(
                "{path}.value: {value:?} is not {wanted} ({field:?} is {})",
                info.kind
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(yaml: &str) -> Filter {
        serde_yaml_ng::from_str(yaml).unwrap()
    }

    fn catalog() -> Vec<FieldInfo> {
        [
            ("city", "string"),
            ("score", "number"),
            ("closedate", "datetime"),
            ("vip", "bool"),
        ]
        .into_iter()
        .map(|(name, kind)| FieldInfo {
            name: name.into(),
            label: name.into(),
            kind: kind.into(),
            required: false,
            read_only: false,
        })
        .collect()
    }

    fn compile(filter: &Filter) -> Compiled {
        let catalog = catalog();
        Compiled::new(filter, &|name| {
            catalog.iter().find(|f| f.name == name).map(|f| f.kind.clone())
        })
        .unwrap()
    }

    fn record(pairs: &[(&str, &str)]) -> Fields {
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
        let empty = record(&[("city", "  ")]);
        assert!(compile(&parse("{field: city, op: is_unknown}")).admits(&empty));
        assert!(compile(&parse("{field: city, op: not_equals, value: x}")).admits(&empty));
        assert!(!compile(&parse("{field: score, op: before, value: 10}")).admits(&empty));
    }

    #[test]
    fn groups_combine_and_reduce_to_what_a_provider_can_push() {
        let filter = compile(&parse(
            "all: [{field: city, op: equals, value: SF}, {any: [{field: score, op: after, value: 5}, {field: city, op: contains, value: x}]}]",
        ));
        assert!(filter.admits(&record(&[("city", "sf"), ("score", "6")])));
        assert!(!filter.admits(&record(&[("city", "sf"), ("score", "4")])));
        // `contains` cannot be pushed: the `any` holding it goes, the `all` keeps the rest.
        let push = |c: &Condition| (c.op != FilterOp::Contains).then(|| c.field.clone());
        assert_eq!(filter.superset(&push), Some(Pushed::Condition("city".to_owned())));
        let all_push = |c: &Condition| Some(c.field.clone());
        let groups = filter.superset(&all_push).unwrap().groups(5).unwrap();
        assert_eq!(
            groups,
            vec![
                vec!["city".to_owned(), "score".to_owned()],
                vec!["city".to_owned(), "city".to_owned()]
            ]
        );
        assert_eq!(
            filter.superset(&all_push).unwrap().groups(1).unwrap(),
            vec![vec!["city".to_owned()]]
        );
        assert_eq!(filter.conjuncts().len(), 1);
        assert_eq!(filter.fields(), vec!["city", "score", "city"]);
    }

    #[test]
    fn shape_and_field_problems_name_the_path() {
        let problems = check_shape(
            &parse("all: [{field: city}, {any: []}, {field: city, op: in, value: x}]"),
            "filter",
        );
        assert!(
            problems.iter().any(|p| p.starts_with("filter.all[0].op: missing")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.starts_with("filter.all[1].any: needs")),
            "{problems:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("filter.all[2].value: in takes a list")),
            "{problems:?}"
        );
        let problems = check_shape(&parse("{field: city, op: is_known, all: []}"), "targetFilter");
        assert!(problems[0].starts_with("targetFilter: give either"), "{problems:?}");
        let deep = parse("all: [{any: [{all: [{field: city, op: is_known}]}]}]");
        assert!(check_shape(&deep, "filter")[0].contains("nest at most"));

        let catalog = catalog();
        let problems = check_fields(
            &parse(
                "all: [{field: town, op: is_known}, {field: city, op: before, value: x}, {field: score, op: equals, value: ten}]",
            ),
            "filter",
            &catalog,
            "hubspot contacts",
        );
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("unknown field \"town\" on hubspot contacts"));
        assert!(problems[1].starts_with("filter.all[1].op: before compares dates or numbers"));
        assert!(problems[2].starts_with("filter.all[2].value: \"ten\" is not a number"));
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
