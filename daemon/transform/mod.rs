//! The transform engine: field-pair transforms as small pipelines, parsed once and applied per
//! record.
//!
//! A field pair `{source_field, target_field, transform?, required}` copies a source record's
//! field into a target field, optionally through a transform. The transform is written as a
//! pipeline expression, parsed with [`parse`] into a [`Pipeline`], checked against the number of
//! source fields with [`check_inputs`], and applied per record with [`Pipeline::apply`]. Every
//! step is a pure function of its input (and of the mapping's [`Context`]).
//!
//! # Syntax
//!
//! ```text
//! pipeline := ""  |  step ( "|" step )*
//! step     := name  |  name "(" [ arg ( "," arg )* ] ")"
//! arg      := name "=" value
//! value    := bare-word  |  quoted
//! ```
//!
//! - Steps are separated by `|` and run left to right: `trim|lowercase`. The empty (or
//!   all-whitespace) expression is the identity.
//! - A bare word is a run of letters, digits, `_`, `-` and `+`. A quoted value is written in
//!   double quotes, with `\"` for a quote and `\\` for a backslash (no other escapes):
//!   `concatenate(sep=", ")`.
//! - Whitespace around names, `|`, `(`, `)`, `,` and `=` is ignored.
//! - Names of transforms and arguments are case-sensitive; the values `first`, `mdy`, `US`... of
//!   enumerated arguments are not.
//! - An argument may be given once; unknown transforms, unknown or repeated arguments, bad values
//!   and missing required arguments are errors of [`parse`], with messages that name the step or
//!   argument at fault.
//!
//! [`Pipeline`]'s `Display` writes the canonical form (no spaces, default arguments left out,
//! values quoted only when they must be), which [`parse`] reads back to an equal pipeline.
//!
//! # Steps
//!
//! | step | arguments | does |
//! | --- | --- | --- |
//! | `trim` | | removes leading and trailing whitespace (inner whitespace is kept) |
//! | `uppercase` | | Unicode upper case (`straße` → `STRASSE`) |
//! | `lowercase` | | Unicode lower case |
//! | `phone_e164` | `region=US` (optional, an ISO 3166 region) | a valid phone number in E.164 (`+14155552671`) |
//! | `date_iso` | `order=mdy\|dmy`, `output=date\|datetime` (both optional) | ISO 8601 date or RFC 3339 UTC datetime |
//! | `split_name` | `part=first\|last` (required) | the first or last name of a full name |
//! | `concatenate` | `sep=" "` (optional, default one space) | joins several source fields |
//!
//! Empty values are missing values: a missing (`None`) or empty input gives no output, and so
//! does any step whose result is empty (a pipeline stops there and [`Pipeline::apply`] returns
//! `Ok(None)`); `phone_e164` and `date_iso` also take an all-whitespace value as missing. Steps
//! that cannot handle a value (a bad phone number, an unreadable or ambiguous date) return a
//! [`ValueError`] quoting the value.
//!
//! ## `phone_e164`
//! The value is read with the [`phonenumber`] crate in the step's `region`, or else in the
//! context's [`Context::default_region`]; a number written with a `+` country code needs
//! neither. The number must pass phonenumber's validity check (its metadata's patterns for the
//! number's region). Any extension (`ext. 5`) is dropped: E.164 has none.
//!
//! ## `date_iso`
//! Reads, after trimming:
//! - ISO 8601 dates `2024-03-05` (and `2024/03/05`);
//! - ISO 8601 / RFC 3339 datetimes `2024-03-05T10:00:00Z`, `2024-03-05 10:00`,
//!   `2024-03-05T10:00:00.123+02:00` (offsets `Z`, `±HH:MM`, `±HHMM`, `±HH`); a datetime
//!   without an offset is taken to be UTC; fractional seconds are dropped and a leap second
//!   `:60` reads as `:59`;
//! - epoch milliseconds, as HubSpot sends them: 11 to 13 digits (`1709596800000`). Other
//!   digit-only values, including 10-digit epoch seconds, are refused;
//! - `MM/DD/YYYY` and `DD/MM/YYYY` (also with `-`): when both leading numbers are at most 12
//!   and differ, the date is ambiguous and refused unless `order=mdy` or `order=dmy` is given;
//!   otherwise a number above 12 settles it. With `order`, that order is always used;
//! - `DD.MM.YYYY`: dotted dates are always day first;
//! - month names, full or abbreviated, any case: `Jan 5, 2024`, `January 5 2024`,
//!   `5 January 2024`, `Sept. 5th, 2024`.
//!
//! Years must have four digits; impossible dates (`2023-02-29`) are refused. Dates are written
//! `YYYY-MM-DD`; datetimes and epoch milliseconds `YYYY-MM-DDTHH:MM:SSZ` in UTC. `output=date`
//! writes everything as a date (the UTC date of a datetime), `output=datetime` everything as a
//! datetime (a date at `T00:00:00Z`).
//!
//! ## `split_name`
//! Words are separated by whitespace (runs are collapsed). The last name is the last word, with
//! any lower-case particles before it (`van`, `von`, `de`, `del`, `della`, `da`, `di`, `du`,
//! `la`, `le`, `der`, `den`, `ter`, `ten`, `st.`, `bin`, `al`) and any suffixes after it (`Jr.`,
//! `Sr.`, `II`, `III`, `IV`; a suffix counts only after at least two other words); the first
//! name is the rest: `Ludwig van Beethoven` → `Ludwig` / `van Beethoven`,
//! `Martin Luther King Jr.` → `Martin Luther` / `King Jr.`. A comma means `Last, First`
//! (`Doe, John`), except before suffixes (`John Smith, Jr.`); empty comma-separated parts are
//! ignored. A single word is a first name, with no last name.
//!
//! ## `concatenate`
//! A pair's `source_field` may list several fields separated by commas (`street,city,zip`). Such a
//! pair's pipeline must start with `concatenate`, which trims its inputs and joins the non-empty
//! ones with `sep`; the rest of the pipeline sees one string. With one input (or later in a
//! pipeline) `concatenate` is `trim`.
//!
//! # Reverse direction
//! [`Pipeline::inverse`] gives the transform for the target→source direction of a bidirectional
//! pair: normalizing pipelines (`trim`, `uppercase`, `lowercase`, `phone_e164`, `date_iso`) are
//! their own inverse; `split_name` and `concatenate` undo each other only over the whole set of
//! fields, so a pair using them needs an explicit reverse transform.

pub mod catalog;
mod date;
mod name;
mod phone;
mod step;
mod syntax;
mod text;

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use step::Step;

/// The transforms that [`parse`] knows, as listed in its error messages.
const KNOWN_TRANSFORMS: &str = "trim, uppercase, lowercase, phone_e164, date_iso, split_name, concatenate";

/// A parsed transform pipeline: its steps, in order. The empty pipeline is the identity.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Pipeline {
    steps: Vec<Step>,
}

/// Why a transform expression cannot be used: it does not parse, or does not fit its field pair.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TransformError {
    /// The pipeline is longer than [`MAX_STEPS`].
    #[error("at most {MAX_STEPS} steps")]
    TooManySteps,
    /// The expression is not well formed.
    #[error("syntax error at column {column}: {problem}")]
    Syntax { column: usize, problem: String },
    /// A step names no known transform.
    #[error("unknown transform {name:?} (known: {KNOWN_TRANSFORMS})")]
    UnknownTransform { name: String },
    /// A step has an argument its transform does not take.
    #[error("unknown argument {argument:?} for {transform} ({accepted})")]
    UnknownArgument {
        transform: &'static str,
        argument: String,
        accepted: &'static str,
    },
    /// A step gives the same argument twice.
    #[error("argument {argument:?} is given twice for {transform}")]
    DuplicateArgument { transform: &'static str, argument: String },
    /// A step lacks a required argument.
    #[error("{transform} needs argument {argument}={choices}")]
    MissingArgument {
        transform: &'static str,
        argument: &'static str,
        choices: &'static str,
    },
    /// An argument's value is not one of its choices.
    #[error("{argument} must be {choices} for {transform}, not {value:?}")]
    InvalidChoice {
        transform: &'static str,
        argument: &'static str,
        choices: &'static str,
        value: String,
    },
    /// `phone_e164`'s region is not a known region code.
    #[error("invalid region {value:?} for phone_e164 (expected a two-letter region code such as US)")]
    InvalidRegion { value: String },
    /// A field pair has no source field.
    #[error("a field pair needs at least one source field")]
    NoInputs,
    /// Several source fields feed a pipeline that does not start with `concatenate`.
    #[error("{transform} cannot take {inputs} fields: concatenate must come first to take several fields")]
    TooManyInputs { transform: &'static str, inputs: usize },
}

/// A value that a step cannot transform, such as a bad phone number or an unreadable or
/// ambiguous date. The problem quotes the value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{transform}: {problem}")]
pub struct ValueError {
    /// The step that failed, e.g. `phone_e164`.
    pub transform: &'static str,
    /// What is wrong, quoting the value.
    pub problem: String,
}

/// What a mapping supplies to its transforms besides the values.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The region (e.g. `US`) in which `phone_e164` reads numbers written without a `+` country
    /// code, when the step names none.
    pub default_region: Option<String>,
}

/// Parses a transform expression (see the [module documentation](self) for the syntax).
pub fn parse(expr: &str) -> Result<Pipeline, TransformError> {
    let steps = syntax::parse_steps(expr)?;
    if steps.len() > MAX_STEPS {
        return Err(TransformError::TooManySteps);
    }
    let steps = steps.iter().map(Step::from_raw).collect::<Result<Vec<_>, _>>()?;
    Ok(Pipeline { steps })
}

/// Steps a pipeline may have.
pub const MAX_STEPS: usize = 20;

/// Checks that a pipeline can take `inputs` source fields: one field suits every pipeline, several
/// need `concatenate` as the first step.
pub fn check_inputs(pipeline: &Pipeline, inputs: usize) -> Result<(), TransformError> {
    match (inputs, pipeline.steps.first()) {
        (0, _) => Err(TransformError::NoInputs),
        (1, _) | (_, Some(Step::Concatenate { .. })) => Ok(()),
        (inputs, first) => Err(TransformError::TooManyInputs {
            transform: first.map_or(IDENTITY, Step::name),
            inputs,
        }),
    }
}

/// How messages name the empty pipeline.
const IDENTITY: &str = "the identity (empty) transform";

impl Pipeline {
    /// Applies the pipeline to the values of the pair's source fields, one per field (`None` or
    /// empty for a missing value). Returns `Ok(None)` when the result is empty, e.g. when every
    /// input is missing.
    pub fn apply(&self, inputs: &[Option<&str>], ctx: &Context) -> Result<Option<String>, ValueError> {
        let mut steps = self.steps.iter();
        let mut value: Cow<'_, str> = match inputs {
            [] => return Ok(None),
            [single] => Cow::Borrowed(single.unwrap_or_default()),
            several => match steps.next() {
                Some(Step::Concatenate { sep }) => text::concatenate(several, sep),
                first => {
                    return Err(ValueError {
                        transform: first.map_or(IDENTITY, Step::name),
                        problem: format!(
                            "got {} fields, but concatenate must come first to take several fields",
                            several.len()
                        ),
                    });
                }
            },
        };
        for step in steps {
            if value.is_empty() {
                return Ok(None);
            }
            value = step.apply(value, ctx)?;
        }
        Ok((!value.is_empty()).then(|| value.into_owned()))
    }

    /// The pipeline for the target→source direction of a bidirectional pair, if this one has a
    /// natural inverse: the identity and normalizing pipelines (only `trim`, `uppercase`,
    /// `lowercase`, `phone_e164` and `date_iso`) are their own inverse. Pipelines with
    /// `split_name` or `concatenate` have none: each undoes the other only over the whole field
    /// set, so the pair must name its reverse transform explicitly.
    pub fn inverse(&self) -> Option<Pipeline> {
        self.steps.iter().all(Step::is_normalizing).then(|| self.clone())
    }

    /// Whether this is the empty pipeline, which passes values through unchanged.
    pub fn is_identity(&self) -> bool {
        self.steps.is_empty()
    }
}

/// A value quoted for a message, cut after [`Quoted::MAX_CHARS`] characters.
struct Quoted<'a>(&'a str);

impl Quoted<'_> {
    const MAX_CHARS: usize = 60;
}

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.char_indices().nth(Self::MAX_CHARS) {
            Some((cut, _)) => write!(f, "{:?}…", &self.0[..cut]),
            None => write!(f, "{:?}", self.0),
        }
    }
}

impl fmt::Display for Pipeline {
    /// Writes the canonical expression, which [`parse`] reads back to an equal pipeline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.steps.iter().enumerate() {
            if i > 0 {
                f.write_str("|")?;
            }
            write!(f, "{step}")?;
        }
        Ok(())
    }
}

impl FromStr for Pipeline {
    type Err = TransformError;

    fn from_str(expr: &str) -> Result<Self, Self::Err> {
        parse(expr)
    }
}
