//! `phone_e164`: phone numbers read with the `phonenumber` crate, checked for validity and written
//! in E.164.

use phonenumber::PhoneNumber;
use phonenumber::country::Id;
use phonenumber::metadata::{DATABASE, Metadata};

use super::{Context, Quoted, ValueError};

const TRANSFORM: &str = "phone_e164";

/// Reads a region code such as `US` (in any case).
pub(super) fn parse_region(code: &str) -> Option<Id> {
    match code.as_bytes() {
        [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
            let upper = [a.to_ascii_uppercase(), b.to_ascii_uppercase()];
            std::str::from_utf8(&upper).ok()?.parse().ok()
        }
        _ => None,
    }
}

/// The number in `value` in E.164 (`+14155552671`), read in `region`, else in the context's
/// default region; a number written with `+` needs neither. Extensions are dropped.
pub(super) fn phone_e164(value: &str, region: Option<Id>, ctx: &Context) -> Result<String, ValueError> {
    let value = value.trim();
    let region = match (region, ctx.default_region.as_deref()) {
        (Some(region), _) => Some(region),
        (None, Some(default)) => Some(parse_region(default).ok_or_else(|| ValueError {
            transform: TRANSFORM,
            problem: format!("invalid default region {default:?} (expected a two-letter region code such as US)"),
        })?),
        (None, None) => None,
    };
    if region.is_none() && !value.starts_with('+') {
        return Err(ValueError {
            transform: TRANSFORM,
            problem: format!(
                "no region to interpret {}: give the step a region=, the mapping a default region, or the \
                 number a +country code",
                Quoted(value)
            ),
        });
    }
    match phonenumber::parse(region, value) {
        Ok(number) if is_valid(&number) => Ok(format!("+{}{}", number.code().value(), number.national())),
        _ => Err(ValueError {
            transform: TRANSFORM,
            problem: match region {
                Some(region) => format!(
                    "{} is not a valid phone number for region {}",
                    Quoted(value),
                    region.as_ref()
                ),
                None => format!("{} is not a valid phone number", Quoted(value)),
            },
        }),
    }
}

/// `phonenumber::is_valid`, with the same metadata and the same answers (a test compares them),
/// but cheaper: that function classifies the number twice (once to find its region, once more
/// for the answer) and tries the number types in a fixed order, while validity needs one match
/// against the general pattern and against any type's pattern, and the fixed-line pattern
/// usually matches first.
pub(super) fn is_valid(number: &PhoneNumber) -> bool {
    let code = number.code().value();
    let national = number.national().to_string();
    let Some(regions) = DATABASE.region(&code) else {
        return false;
    };
    if let [region] = regions[..] {
        let metadata = if region == "001" {
            DATABASE.by_code(&code).and_then(|all| all.into_iter().next())
        } else {
            DATABASE.by_id(region)
        };
        return metadata.is_some_and(|metadata| has_type(metadata, &national));
    }
    for region in regions {
        let Some(metadata) = DATABASE.by_id(region) else {
            continue;
        };
        match metadata.leading_digits() {
            Some(leading) => {
                if leading.find(&national).is_some_and(|m| m.start() == 0) {
                    return has_type(metadata, &national);
                }
            }
            None => {
                if has_type(metadata, &national) {
                    return true;
                }
            }
        }
    }
    false
}

/// Whether the national number matches the region's general pattern and some number type's.
fn has_type(metadata: &Metadata, national: &str) -> bool {
    let d = metadata.descriptors();
    d.general().is_match(national)
        && [
            d.fixed_line(),
            d.mobile(),
            d.toll_free(),
            d.premium_rate(),
            d.shared_cost(),
            d.voip(),
            d.personal_number(),
            d.pager(),
            d.uan(),
            d.voicemail(),
        ]
        .into_iter()
        .flatten()
        .any(|descriptor| descriptor.is_match(national))
}
