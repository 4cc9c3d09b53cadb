//! Checks of a filter as written: its shape (one condition or one group per node, values
//! fitting their op, the limits), then its fields against the catalog of the side it reads.

use super::{Filter, FilterOp, FilterValue, MAX_CONDITIONS, MAX_DEPTH, MAX_VALUE_TEXT, MAX_VALUES, ValueKind, key};

/// Conditions of a filter; an empty group counts as one (so no input is unbounded).
fn count_conditions(filter: &Filter) -> usize {
    match (&filter.all, &filter.any) {
        (Some(children), _) | (None, Some(children)) => children.iter().map(count_conditions).sum::<usize>().max(1),
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
        (_, Some(value)) if value.texts().iter().any(|v| v.trim().is_empty()) => {
            problems.push(format!("{path}.value: empty; is_known and is_unknown test for a value"))
        }
        (FilterOp::In, Some(FilterValue::List(list))) if !list.is_empty() && list.len() <= MAX_VALUES => {}
        (FilterOp::In, _) => problems.push(format!("{path}.value: in takes a list of 1 to {MAX_VALUES} values")),
        (_, Some(FilterValue::One(_))) => {}
        (_, _) => problems.push(format!("{path}.value: {} takes one value", op.as_str())),
    }
}

/// A field's type in the catalog of the side a filter reads (`None`: no such field).
pub type KindOf<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Checks a filter's fields against the catalog of the side it reads (`kind_of`, named
/// `side` in messages): each field exists, `before`/`after` compare dates or numbers, and values
/// parse as their field's kind.
pub fn check_fields(filter: &Filter, path: &str, kind_of: KindOf<'_>, side: &str) -> Vec<String> {
    let mut problems = Vec::new();
    check_node_fields(filter, path, kind_of, side, &mut problems);
    problems
}

fn check_node_fields(filter: &Filter, path: &str, kind_of: KindOf<'_>, side: &str, problems: &mut Vec<String>) {
    for (name, children) in [("all", &filter.all), ("any", &filter.any)] {
        for (index, child) in children.iter().flatten().enumerate() {
            check_node_fields(child, &format!("{path}.{name}[{index}]"), kind_of, side, problems);
        }
    }
    let (Some(field), Some(op)) = (filter.field.as_deref().map(str::trim), filter.op) else {
        return;
    };
    let Some(type_name) = kind_of(field) else {
        problems.push(format!("{path}.field: unknown field {field:?} on {side}"));
        return;
    };
    let kind = ValueKind::of(&type_name);
    if matches!(op, FilterOp::Before | FilterOp::After) && !kind.ordered() {
        problems.push(format!(
            "{path}.op: {} compares dates or numbers; {field:?} is {type_name}",
            op.as_str(),
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
                "{path}.value: {value:?} is not {wanted} ({field:?} is {type_name})"
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{compile, kind_of, parse, record};
    use super::*;

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
        let problems = check_shape(&parse("{field: city, op: not_equals, value: ' '}"), "filter");
        assert!(problems[0].starts_with("filter.value: empty"), "{problems:?}");
        let many_empty = Filter {
            any: Some(vec![
                Filter {
                    all: Some(Vec::new()),
                    ..Filter::default()
                };
                1000
            ]),
            ..Filter::default()
        };
        assert_eq!(check_shape(&many_empty, "filter").len(), 1);
        let deep = parse("all: [{any: [{all: [{field: city, op: is_known}]}]}]");
        assert!(check_shape(&deep, "filter")[0].contains("nest at most"));

        let contains_date = parse("{field: closedate, op: contains, value: '2025-01'}");
        assert!(check_fields(&contains_date, "filter", &kind_of, "x").is_empty());
        assert!(compile(&contains_date).admits(&record(&[("closedate", "2025-01-31T00:00:00Z")])));
        let problems = check_fields(
            &parse(
                "all: [{field: town, op: is_known}, {field: city, op: before, value: x}, {field: score, op: equals, value: ten}]",
            ),
            "filter",
            &kind_of,
            "hubspot contacts",
        );
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("unknown field \"town\" on hubspot contacts"));
        assert!(problems[1].starts_with("filter.all[1].op: before compares dates or numbers"));
        assert!(problems[2].starts_with("filter.all[2].value: \"ten\" is not a number"));
    }
}
