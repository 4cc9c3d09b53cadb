//! The steps of a pipeline: building them from their written form (checking names and
//! arguments), writing them back, and applying one step to one value.

use std::borrow::Cow;
use std::fmt;

use phonenumber::country::Id;

use super::date::{DateOptions, Order, Output};
use super::name::Part;
use super::syntax::{self, RawArg, RawStep};
use super::{Context, TransformError, ValueError, date, name, phone, text};

/// One checked step.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Step {
    Trim,
    Uppercase,
    Lowercase,
    PhoneE164 { region: Option<Id> },
    DateIso(DateOptions),
    SplitName(Part),
    Concatenate { sep: String },
}

/// `concatenate`'s separator when none is given.
const DEFAULT_SEP: &str = " ";

impl Step {
    /// The transform's name, as written.
    pub(super) fn name(&self) -> &'static str {
        match self {
            Step::Trim => "trim",
            Step::Uppercase => "uppercase",
            Step::Lowercase => "lowercase",
            Step::PhoneE164 { .. } => "phone_e164",
            Step::DateIso(_) => "date_iso",
            Step::SplitName(_) => "split_name",
            Step::Concatenate { .. } => "concatenate",
        }
    }

    /// Whether the step only normalizes a value, so that it is its own inverse.
    pub(super) fn is_normalizing(&self) -> bool {
        !matches!(self, Step::SplitName(_) | Step::Concatenate { .. })
    }

    /// Checks a written step's name and arguments.
    pub(super) fn from_raw(raw: &RawStep<'_>) -> Result<Step, TransformError> {
        let args = &raw.args[..];
        match raw.name {
            "trim" => no_args("trim", args).map(|()| Step::Trim),
            "uppercase" => no_args("uppercase", args).map(|()| Step::Uppercase),
            "lowercase" => no_args("lowercase", args).map(|()| Step::Lowercase),
            "phone_e164" => {
                let [region] = args_of("phone_e164", args, ["region"], "accepted: region")?;
                let region = region
                    .map(|value| phone::parse_region(value).ok_or_else(|| invalid_region(value)))
                    .transpose()?;
                Ok(Step::PhoneE164 { region })
            }
            "date_iso" => {
                const T: &str = "date_iso";
                let [order, output] = args_of(T, args, ["order", "output"], "accepted: order, output")?;
                let order = order.map(|v| choice(T, "order", v, ORDERS)).transpose()?;
                let output = output.map(|v| choice(T, "output", v, OUTPUTS)).transpose()?;
                Ok(Step::DateIso(DateOptions { order, output }))
            }
            "split_name" => {
                const T: &str = "split_name";
                let [part] = args_of(T, args, ["part"], "accepted: part")?;
                let part = part.ok_or(TransformError::MissingArgument {
                    transform: T,
                    argument: "part",
                    choices: "first|last",
                })?;
                Ok(Step::SplitName(choice(T, "part", part, PARTS)?))
            }
            "concatenate" => {
                let [sep] = args_of("concatenate", args, ["sep"], "accepted: sep")?;
                Ok(Step::Concatenate {
                    sep: sep.unwrap_or(DEFAULT_SEP).to_owned(),
                })
            }
            unknown => Err(TransformError::UnknownTransform {
                name: unknown.to_owned(),
            }),
        }
    }

    /// Applies the step to a non-empty value; an empty result means no value.
    pub(super) fn apply<'a>(&self, value: Cow<'a, str>, ctx: &Context) -> Result<Cow<'a, str>, ValueError> {
        Ok(match self {
            Step::Trim | Step::Concatenate { .. } => text::trim(value),
            Step::Uppercase => text::uppercase(value),
            Step::Lowercase => text::lowercase(value),
            Step::PhoneE164 { .. } | Step::DateIso(_) if value.trim().is_empty() => Cow::Borrowed(""),
            Step::PhoneE164 { region } => Cow::Owned(phone::phone_e164(&value, *region, ctx)?),
            Step::DateIso(options) => Cow::Owned(date::date_iso(&value, *options)?),
            Step::SplitName(part) => match value {
                Cow::Borrowed(s) => name::split_name(s, *part).unwrap_or_default(),
                Cow::Owned(s) => Cow::Owned(name::split_name(&s, *part).unwrap_or_default().into_owned()),
            },
        })
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())?;
        match self {
            Step::Trim | Step::Uppercase | Step::Lowercase | Step::PhoneE164 { region: None } => Ok(()),
            Step::PhoneE164 { region: Some(region) } => write!(f, "(region={})", region.as_ref()),
            Step::DateIso(DateOptions { order, output }) => {
                let order = order.map(|o| match o {
                    Order::Mdy => "order=mdy",
                    Order::Dmy => "order=dmy",
                });
                let output = output.map(|o| match o {
                    Output::Date => "output=date",
                    Output::Datetime => "output=datetime",
                });
                match (order, output) {
                    (None, None) => Ok(()),
                    (Some(one), None) | (None, Some(one)) => write!(f, "({one})"),
                    (Some(order), Some(output)) => write!(f, "({order}, {output})"),
                }
            }
            Step::SplitName(Part::First) => f.write_str("(part=first)"),
            Step::SplitName(Part::Last) => f.write_str("(part=last)"),
            Step::Concatenate { sep } if sep == DEFAULT_SEP => Ok(()),
            Step::Concatenate { sep } => {
                f.write_str("(sep=")?;
                syntax::write_value(f, sep)?;
                f.write_str(")")
            }
        }
    }
}

/// Refuses any argument for a transform that takes none.
fn no_args(transform: &'static str, args: &[RawArg<'_>]) -> Result<(), TransformError> {
    args_of(transform, args, [], "it takes no arguments").map(|[]| ())
}

/// The values of the named arguments, in the order of `names`; refuses unknown and repeated
/// arguments.
fn args_of<'r, const N: usize>(
    transform: &'static str,
    args: &'r [RawArg<'_>],
    names: [&'static str; N],
    accepted: &'static str,
) -> Result<[Option<&'r str>; N], TransformError> {
    let mut values = [None; N];
    for arg in args {
        let Some(slot) = names.iter().position(|name| *name == arg.name) else {
            return Err(TransformError::UnknownArgument {
                transform,
                argument: arg.name.to_owned(),
                accepted,
            });
        };
        if values[slot].replace(&*arg.value).is_some() {
            return Err(TransformError::DuplicateArgument {
                transform,
                argument: arg.name.to_owned(),
            });
        }
    }
    Ok(values)
}

/// The values an enumerated argument accepts, and how messages list them.
struct Choices<T: 'static> {
    listed: &'static str,
    options: &'static [(&'static str, T)],
}

const ORDERS: Choices<Order> = Choices {
    listed: "mdy or dmy",
    options: &[("mdy", Order::Mdy), ("dmy", Order::Dmy)],
};

const OUTPUTS: Choices<Output> = Choices {
    listed: "date or datetime",
    options: &[("date", Output::Date), ("datetime", Output::Datetime)],
};

const PARTS: Choices<Part> = Choices {
    listed: "first or last",
    options: &[("first", Part::First), ("last", Part::Last)],
};

/// Picks the choice that `value` names (ignoring ASCII case).
fn choice<T: Copy>(
    transform: &'static str,
    argument: &'static str,
    value: &str,
    choices: Choices<T>,
) -> Result<T, TransformError> {
    choices
        .options
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(value))
        .map(|(_, choice)| *choice)
        .ok_or_else(|| TransformError::InvalidChoice {
            transform,
            argument,
            choices: choices.listed,
            value: value.to_owned(),
        })
}

fn invalid_region(value: &str) -> TransformError {
    TransformError::InvalidRegion {
        value: value.to_owned(),
    }
}
