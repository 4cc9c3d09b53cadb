//! The mapping editor: source and target pickers over the organization's connections, field
//! pickers from both providers' catalogs, transforms with their arguments, problems shown at
//! the row they are about, and a preview of mapped records before saving.

use maud::{Markup, html};

use crate::console::html::{csrf, notice, problems};
use crate::console::request::Fields;
use crate::console::rpc::Failure;
use crate::console::visit::Visit;
use crate::pb;
use crate::transform::catalog::{PIPELINES, TRANSFORMS};

/// Rows the editor adds at a time, and the most it shows.
pub(super) const MORE_ROWS: usize = 3;
pub(super) const MAX_ROWS: usize = 200;

const DIRECTIONS: [(pb::Direction, &str); 3] = [
    (pb::Direction::SourceToTarget, "Source → target"),
    (pb::Direction::TargetToSource, "Target → source"),
    (pb::Direction::Bidirectional, "Both ways"),
];

const MATCHING_MODES: [(pb::MatchingMode, &str); 3] = [
    (
        pb::MatchingMode::MatchThenCreate,
        "Match existing records, create the rest",
    ),
    (pb::MatchingMode::CreateOnly, "Create every record"),
    (pb::MatchingMode::MatchOnly, "Only update matched records"),
];

/// What the editor holds: the form as sent, or a mapping as stored.
#[derive(Debug, Clone, Default)]
pub(super) struct Draft {
    name: String,
    /// `<connection id>|<object>`.
    source: String,
    target: String,
    direction: String,
    matching_mode: String,
    match_key: String,
    schedule: String,
    pairs: Vec<PairDraft>,
}

#[derive(Debug, Clone, Default)]
pub(super) struct PairDraft {
    /// The index of the stored pair this row shows, whose settings the editor does not show
    /// (direction, conflict and error policies) it keeps wherever the row moves.
    origin: Option<usize>,
    source: String,
    target: String,
    transform: String,
    reverse: String,
    required: bool,
}

fn side_value(side: Option<&pb::ObjectRef>) -> String {
    side.map_or_else(String::new, |s| format!("{}|{}", s.connection_id, s.object))
}

fn side_ref(value: &str) -> Option<pb::ObjectRef> {
    let (connection_id, object) = value.split_once('|')?;
    Some(pb::ObjectRef {
        connection_id: connection_id.to_owned(),
        object: object.to_owned(),
    })
}

impl Draft {
    pub(super) fn from_form(form: &Fields) -> Draft {
        let rows = form.get("rows").parse::<usize>().unwrap_or(0).min(MAX_ROWS);
        let pairs = (0..rows)
            .map(|row| PairDraft {
                origin: form.get(&format!("pair{row}.origin")).parse().ok(),
                source: form.get(&format!("pair{row}.source")).to_owned(),
                target: form.get(&format!("pair{row}.target")).to_owned(),
                transform: form.get(&format!("pair{row}.transform")).to_owned(),
                reverse: form.get(&format!("pair{row}.reverse")).to_owned(),
                required: form.has(&format!("pair{row}.required")),
            })
            .collect();
        Draft {
            name: form.get("name").to_owned(),
            source: form.get("source").to_owned(),
            target: form.get("target").to_owned(),
            direction: form.get("direction").to_owned(),
            matching_mode: form.get("matching_mode").to_owned(),
            match_key: form.get("match_key").to_owned(),
            schedule: form.get("schedule").to_owned(),
            pairs,
        }
    }

    pub(super) fn from_spec(spec: &pb::MappingSpec) -> Draft {
        Draft {
            name: spec.name.clone(),
            source: side_value(spec.source.as_ref()),
            target: side_value(spec.target.as_ref()),
            direction: pb::Direction::try_from(spec.direction)
                .unwrap_or_default()
                .as_str_name()
                .to_owned(),
            matching_mode: pb::MatchingMode::try_from(spec.matching_mode)
                .unwrap_or_default()
                .as_str_name()
                .to_owned(),
            match_key: spec.match_key.clone(),
            schedule: spec.schedule.clone(),
            pairs: spec
                .field_pairs
                .iter()
                .enumerate()
                .map(|(index, pair)| PairDraft {
                    origin: Some(index),
                    source: pair.source_field.clone(),
                    target: pair.target_field.clone(),
                    transform: pair.transform.clone(),
                    reverse: pair.reverse_transform.clone(),
                    required: pair.required,
                })
                .collect(),
        }
    }

    /// The spec this draft describes; what the editor does not show (filters, per-pair
    /// direction, conflict and error policies) is kept from `base`, pair by pair.
    pub(super) fn to_spec(&self, base: Option<&pb::MappingSpec>) -> pb::MappingSpec {
        let mut spec = base.cloned().unwrap_or_default();
        let base_pairs = std::mem::take(&mut spec.field_pairs);
        spec.name = self.name.clone();
        spec.source = side_ref(&self.source);
        spec.target = side_ref(&self.target);
        spec.direction = pb::Direction::from_str_name(&self.direction).unwrap_or_default().into();
        spec.matching_mode = pb::MatchingMode::from_str_name(&self.matching_mode)
            .unwrap_or_default()
            .into();
        spec.match_key = self.match_key.clone();
        spec.schedule = self.schedule.clone();
        spec.field_pairs = self
            .pairs
            .iter()
            .filter(|pair| !pair.source.is_empty() || !pair.target.is_empty())
            .map(|pair| {
                let mut out = pair
                    .origin
                    .and_then(|origin| base_pairs.get(origin))
                    .cloned()
                    .unwrap_or_default();
                out.source_field = pair.source.clone();
                out.target_field = pair.target.clone();
                out.transform = pair.transform.clone();
                out.reverse_transform = pair.reverse.clone();
                out.required = pair.required;
                out
            })
            .collect();
        spec
    }

    /// Rows to show: the pairs and a few empty ones.
    pub(super) fn rows(&self, extra: usize) -> usize {
        (self.pairs.len() + extra).clamp(1, MAX_ROWS)
    }
}

/// A catalog for a picker: `(name, label and type)` per field, or why it could not be read.
type Catalog = Result<Vec<(String, String)>, String>;

async fn catalog(visit: &Visit<'_>, side: &str) -> Option<Catalog> {
    let side = side_ref(side)?;
    let listed = visit
        .api
        .mappings()
        .list_fields(visit.api.call(pb::ListFieldsRequest {
            connection_id: side.connection_id,
            object: side.object,
            page_size: 1000,
            page_token: String::new(),
        }))
        .await;
    Some(match listed {
        Ok(fields) => Ok(fields
            .into_inner()
            .fields
            .into_iter()
            .map(|field| {
                let mut label = format!("{} · {}", field.label, field.r#type);
                if field.required {
                    label.push_str(" · required");
                }
                if field.read_only {
                    label.push_str(" · read-only");
                }
                (field.name, label)
            })
            .collect()),
        Err(status) => Err(Failure::from(status).to_string()),
    })
}

/// The `<connection>|<object>` choices: every connection with each object its provider offers.
fn side_choices(connections: &[pb::Connection]) -> Vec<(String, String)> {
    let mut choices = Vec::new();
    for connection in connections {
        let Ok(provider) = crate::api::convert::provider_from_pb(connection.provider) else {
            continue;
        };
        for object in crate::mappings::objects::supported_objects(provider) {
            choices.push((
                format!("{}|{object}", connection.id),
                format!(
                    "{} · {} · {object}",
                    super::provider_name(connection.provider),
                    connection.account_name
                ),
            ));
        }
    }
    choices
}

/// The problems of `violations` about API field `field` (itself or its parts).
fn problems_of_field<'a>(violations: &'a [(String, String)], field: &str) -> Vec<&'a str> {
    violations
        .iter()
        .filter(|(name, _)| {
            name == field
                || name
                    .strip_prefix(field)
                    .is_some_and(|rest| rest.starts_with(['.', '[']))
        })
        .map(|(_, problem)| problem.as_str())
        .collect()
}

/// The problems under input `id`, which names them with `aria-describedby`.
fn field_problems(id: &str, problems: &[&str]) -> Markup {
    html! {
        @if !problems.is_empty() {
            div id=(format!("{id}-problem")) class="field-problem" role="alert" {
                @for problem in problems { p class="error" { (problem) } }
            }
        }
    }
}

/// The `aria-describedby` of input `id`: its help, and its problems when it has some.
fn described_by(id: &str, help: Option<&str>, problems: &[&str]) -> Option<String> {
    let mut ids: Vec<String> = help.map(str::to_owned).into_iter().collect();
    if !problems.is_empty() {
        ids.push(format!("{id}-problem"));
    }
    (!ids.is_empty()).then(|| ids.join(" "))
}

/// A `<connection>|<object>` select named `name`, with `chosen` selected, `below` under it and
/// the problems about it.
fn side_picker(
    name: &str,
    label: &str,
    choices: &[(String, String)],
    chosen: &str,
    below: Markup,
    problems: &[&str],
) -> Markup {
    html! {
        div {
            label for=(name) { (label) }
            select id=(name) name=(name) aria-invalid=[(!problems.is_empty()).then_some("true")]
                aria-describedby=[described_by(name, None, problems)] {
                option value="" { "Choose…" }
                @for (value, text) in choices { option value=(value) selected[value == chosen] { (text) } }
            }
            (field_problems(name, problems))
            (below)
        }
    }
}

/// What the editor shows below the form.
pub(super) enum Outcome {
    Nothing,
    Problems(Vec<(String, String)>),
    Preview(Vec<pb::PreviewRecord>),
}

/// The editor posting to `action`, as `draft` with `rows` rows, its sides chosen among
/// `connections`.
pub(super) async fn editor(
    visit: &Visit<'_>,
    connections: &[pb::Connection],
    action: &str,
    draft: &Draft,
    rows: usize,
    outcome: &Outcome,
    save: &str,
) -> Result<Markup, Failure> {
    let choices = side_choices(connections);
    let source_catalog = catalog(visit, &draft.source).await;
    let target_catalog = catalog(visit, &draft.target).await;
    let violations: &[(String, String)] = match outcome {
        Outcome::Problems(problems) => problems,
        _ => &[],
    };
    let row_problems = |row: usize| -> Vec<&(String, String)> {
        let prefix = format!("fieldPairs[{row}]");
        violations.iter().filter(|(field, _)| field.contains(&prefix)).collect()
    };
    // Rows the API numbers are the non-empty ones; map each shown row to its index there.
    let mut spec_index = Vec::with_capacity(rows);
    let mut next = 0;
    for row in 0..rows {
        let pair = draft.pairs.get(row).cloned().unwrap_or_default();
        if !pair.source.is_empty() || !pair.target.is_empty() {
            spec_index.push(Some(next));
            next += 1;
        } else {
            spec_index.push(None);
        }
    }
    let catalog_notice = |which: &str, catalog: &Option<Catalog>| -> Markup {
        html! {
            @match catalog {
                None => p class="help" { "Choose the " (which) " to list its fields." },
                Some(Err(problem)) => (notice("warning", &format!("Cannot list the {which}'s fields: {problem}"))),
                Some(Ok(fields)) => p class="help" { (fields.len()) " " (which) " fields to pick from." },
            }
        }
    };
    Ok(html! {
        (problems(violations))
        form method="post" action=(action) class="editor" novalidate {
            (csrf(visit))
            input type="hidden" name="rows" value=(rows);
            fieldset {
                legend { "Mapping" }
                div class="grid" {
                    div {
                        label for="name" { "Name" }
                        @let bad = problems_of_field(violations, "name");
                        input id="name" name="name" value=(draft.name) required maxlength="200"
                            aria-invalid=[(!bad.is_empty()).then_some("true")] aria-describedby=[described_by("name", None, &bad)];
                        (field_problems("name", &bad))
                    }
                    (side_picker("source", "Source", &choices, &draft.source, catalog_notice("source", &source_catalog), &problems_of_field(violations, "source")))
                    (side_picker("target", "Target", &choices, &draft.target, catalog_notice("target", &target_catalog), &problems_of_field(violations, "target")))
                    div {
                        label for="direction" { "Direction" }
                        select id="direction" name="direction" {
                            @for (direction, label) in DIRECTIONS {
                                option value=(direction.as_str_name()) selected[direction.as_str_name() == draft.direction] { (label) }
                            }
                        }
                    }
                    div {
                        label for="matching_mode" { "Matching" }
                        select id="matching_mode" name="matching_mode" {
                            @for (mode, label) in MATCHING_MODES {
                                option value=(mode.as_str_name()) selected[mode.as_str_name() == draft.matching_mode] { (label) }
                            }
                        }
                    }
                    div {
                        label for="match_key" { "Match key" }
                        @let bad = problems_of_field(violations, "matchKey");
                        input id="match_key" name="match_key" value=(draft.match_key) list="target-fields"
                            aria-invalid=[(!bad.is_empty()).then_some("true")] aria-describedby=[described_by("match_key", Some("match-key-help"), &bad)];
                        p id="match-key-help" class="help" { "The target field of a pair that records are matched on; empty: the email (people) or the name." }
                        (field_problems("match_key", &bad))
                    }
                    div {
                        label for="schedule" { "Schedule" }
                        @let bad = problems_of_field(violations, "schedule");
                        input id="schedule" name="schedule" value=(draft.schedule) placeholder="*/15 * * * *"
                            aria-invalid=[(!bad.is_empty()).then_some("true")] aria-describedby=[described_by("schedule", Some("schedule-help"), &bad)];
                        p id="schedule-help" class="help" { "Cron expression (UTC); empty: run by hand only." }
                        (field_problems("schedule", &bad))
                    }
                }
                button type="submit" name="action" value="load" class="secondary" { "Load fields" }
            }
            fieldset {
                legend { "Field pairs" }
                div class="table" {
                    table class="pairs" {
                        thead { tr {
                            th scope="col" { "#" }
                            th scope="col" { "Source field" } th scope="col" { "Target field" }
                            th scope="col" { "Transform" } th scope="col" { "Reverse transform" } th scope="col" { "Required" }
                        } }
                        tbody {
                            @for row in 0..rows {
                                @let pair = draft.pairs.get(row).cloned().unwrap_or_default();
                                @let mine = spec_index[row].map(&row_problems).unwrap_or_default();
                                tr class=[(!mine.is_empty()).then_some("invalid")] {
                                    th scope="row" {
                                        (row + 1)
                                        @if let Some(origin) = pair.origin { input type="hidden" name=(format!("pair{row}.origin")) value=(origin); }
                                    }
                                    td { input name=(format!("pair{row}.source")) id=(format!("pair{row}.source")) value=(pair.source) list="source-fields" aria-label=(format!("Source field, row {}", row + 1)); }
                                    td { input name=(format!("pair{row}.target")) id=(format!("pair{row}.target")) value=(pair.target) list="target-fields" aria-label=(format!("Target field, row {}", row + 1)); }
                                    td { input name=(format!("pair{row}.transform")) id=(format!("pair{row}.transform")) value=(pair.transform) list="transforms" aria-label=(format!("Transform, row {}", row + 1)); }
                                    td { input name=(format!("pair{row}.reverse")) value=(pair.reverse) list="transforms" aria-label=(format!("Reverse transform, row {}", row + 1)); }
                                    td { input type="checkbox" name=(format!("pair{row}.required")) checked[pair.required] aria-label=(format!("Required, row {}", row + 1)); }
                                }
                                @if !mine.is_empty() {
                                    tr class="row-problems" { td colspan="6" role="alert" {
                                        @for (field, problem) in &mine { p { code { (field) } ": " (problem) } }
                                    } }
                                }
                            }
                        }
                    }
                }
                p class="help" { "Several source fields: separate them with commas and start the transform with " code { "concatenate" } "." }
                details class="help" {
                    summary { "Transforms and their arguments" }
                    p { "Steps run left to right, separated by " code { "|" } ", as in " code { "trim|lowercase" } "." }
                    dl {
                        @for transform in &TRANSFORMS { dt { code { (transform.usage) } } dd { (transform.does) } }
                    }
                }
                button type="submit" name="action" value="more" class="secondary" { "Add rows" }
            }
            datalist id="source-fields" {
                @if let Some(Ok(fields)) = &source_catalog { @for (name, label) in fields { option value=(name) { (label) } } }
            }
            datalist id="target-fields" {
                @if let Some(Ok(fields)) = &target_catalog { @for (name, label) in fields { option value=(name) { (label) } } }
            }
            datalist id="transforms" {
                @for transform in &TRANSFORMS { option value=(transform.example) { (transform.does) } }
                @for pipeline in PIPELINES { option value=(pipeline) {} }
            }
            div class="row" {
                button type="submit" name="action" value="preview" class="secondary" { "Preview" }
                button type="submit" name="action" value="save" { (save) }
            }
        }
        @if let Outcome::Preview(records) = outcome { (preview_table(draft, records)) }
    })
}

pub(super) fn preview_table(draft: &Draft, records: &[pb::PreviewRecord]) -> Markup {
    let mut columns: Vec<&str> = draft
        .pairs
        .iter()
        .map(|pair| pair.target.as_str())
        .filter(|target| !target.is_empty())
        .collect();
    columns.dedup();
    html! {
        section aria-labelledby="preview-heading" {
            h2 id="preview-heading" { "Preview" }
            @if records.is_empty() {
                p { "The source has no records to map." }
            } @else {
                div class="table" {
                    table class="preview" {
                        caption { "The first " (records.len()) " source records as they would be written (nothing is written)." }
                        thead { tr { th scope="col" { "Source record" } @for column in &columns { th scope="col" { (column) } } th scope="col" { "Problems" } } }
                        tbody {
                            @for record in records {
                                tr {
                                    th scope="row" { code { (record.source_id) } }
                                    @for column in &columns { td { (record.values.get(*column).map_or("", String::as_str)) } }
                                    td { @for error in &record.errors { p class="error" { (error) } } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
