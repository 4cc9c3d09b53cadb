//! The plain text steps: `trim`, `uppercase`, `lowercase` and `concatenate`. Each borrows its
//! input when the result is a slice of it or equal to it, and changes an owned input in place
//! where it can.

use std::borrow::Cow;

/// Removes leading and trailing whitespace.
pub(super) fn trim(value: Cow<'_, str>) -> Cow<'_, str> {
    match value {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
        Cow::Owned(mut s) => {
            s.truncate(s.trim_end().len());
            let leading = s.len() - s.trim_start().len();
            s.drain(..leading);
            Cow::Owned(s)
        }
    }
}

/// Unicode upper case.
pub(super) fn uppercase(value: Cow<'_, str>) -> Cow<'_, str> {
    if !value.is_ascii() {
        return Cow::Owned(value.to_uppercase());
    }
    if !value.bytes().any(|b| b.is_ascii_lowercase()) {
        return value;
    }
    let mut s = value.into_owned();
    s.make_ascii_uppercase();
    Cow::Owned(s)
}

/// Unicode lower case.
pub(super) fn lowercase(value: Cow<'_, str>) -> Cow<'_, str> {
    if !value.is_ascii() {
        return Cow::Owned(value.to_lowercase());
    }
    if !value.bytes().any(|b| b.is_ascii_uppercase()) {
        return value;
    }
    let mut s = value.into_owned();
    s.make_ascii_lowercase();
    Cow::Owned(s)
}

/// Joins the trimmed, non-empty inputs with `sep`; the result is empty if all are empty.
pub(super) fn concatenate<'a>(inputs: &[Option<&'a str>], sep: &str) -> Cow<'a, str> {
    let mut parts = inputs
        .iter()
        .filter_map(|input| input.map(str::trim))
        .filter(|s| !s.is_empty());
    let Some(first) = parts.next() else {
        return Cow::Borrowed("");
    };
    let Some(second) = parts.next() else {
        return Cow::Borrowed(first);
    };
    let capacity = inputs.iter().map(|input| input.map_or(0, str::len) + sep.len()).sum();
    let mut joined = String::with_capacity(capacity);
    joined.push_str(first);
    for part in std::iter::once(second).chain(parts) {
        joined.push_str(sep);
        joined.push_str(part);
    }
    Cow::Owned(joined)
}
