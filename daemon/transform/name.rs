//! `split_name`: the first or last name of a full name, with particles (`van`, `de la`) and
//! suffixes (`Jr.`, `III`) kept with the last name and `Last, First` understood.

use std::borrow::Cow;

/// Which half of a name `split_name` keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    First,
    Last,
}

/// Lower-case words that start a last name when they come before its last word.
const PARTICLES: &[&str] = &[
    "van", "von", "de", "del", "della", "da", "di", "du", "la", "le", "der", "den", "ter", "ten", "st.", "bin", "al",
];

/// The requested part of `name`, with whitespace runs collapsed; `None` if it is empty.
pub(super) fn split_name(name: &str, part: Part) -> Option<Cow<'_, str>> {
    let name = name.trim();
    let result = if name.contains(',') {
        split_with_commas(name, part)
    } else {
        split_words(name, part)
    };
    result.filter(|s| !s.is_empty())
}

/// Splits a name without commas.
fn split_words(name: &str, part: Part) -> Option<Cow<'_, str>> {
    let words = name.split_whitespace().count();
    if words < 2 {
        return match part {
            Part::First => Some(Cow::Borrowed(name)),
            Part::Last => None,
        };
    }
    // Walk back from the end: suffixes, then the last name's last word, then particles. `first`
    // ends as the number of words of the first name, at least one.
    let mut first = words;
    let mut seen_last_word = false;
    for word in name.split_whitespace().rev() {
        if !seen_last_word {
            if first > 2 && is_suffix(word) {
                first -= 1;
                continue;
            }
            seen_last_word = true;
            first -= 1;
        } else if first > 1 && PARTICLES.contains(&word) {
            first -= 1;
        } else {
            break;
        }
    }
    // `first` is in 1..words, so the last name starts at a word and the first name ends at one.
    let last_start = name
        .split_whitespace()
        .nth(first)
        .map_or(name.len(), |word| offset_in(name, word));
    Some(match part {
        Part::First => collapse(name[..last_start].trim_end()),
        Part::Last => collapse(&name[last_start..]),
    })
}

/// Splits a name with commas: `Last, First`, with trailing suffix parts (`, Jr.`) joining the
/// last name; a single non-suffix part is split as a name without commas.
fn split_with_commas(name: &str, part: Part) -> Option<Cow<'_, str>> {
    let mut parts: Vec<&str> = name.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
    let mut suffixes = Vec::new();
    while parts.len() > 1 && parts.last().is_some_and(|p| p.split_whitespace().all(is_suffix)) {
        suffixes.extend(parts.pop());
    }
    suffixes.reverse();
    if let [single] = parts[..] {
        let joined = join_words(std::iter::once(single).chain(suffixes));
        return split_words(&joined, part).map(|s| Cow::Owned(s.into_owned()));
    }
    let (last, first) = parts.split_first()?;
    Some(Cow::Owned(match part {
        Part::First => join_words(first.iter().copied()),
        Part::Last => join_words(std::iter::once(*last).chain(suffixes)),
    }))
}

/// Whether `word` is a generational suffix.
fn is_suffix(word: &str) -> bool {
    let bare = word.strip_suffix('.').unwrap_or(word);
    bare.eq_ignore_ascii_case("jr") || bare.eq_ignore_ascii_case("sr") || matches!(word, "II" | "III" | "IV")
}

/// The byte offset of `word`, a slice of `text`, within `text`.
fn offset_in(text: &str, word: &str) -> usize {
    word.as_ptr() as usize - text.as_ptr() as usize
}

/// `text` with whitespace runs replaced by single spaces, borrowed if it has none.
fn collapse(text: &str) -> Cow<'_, str> {
    let irregular = text.split(' ').any(str::is_empty) || text.contains(|c: char| c.is_whitespace() && c != ' ');
    if irregular {
        Cow::Owned(join_words(std::iter::once(text)))
    } else {
        Cow::Borrowed(text)
    }
}

/// The words of all `texts`, separated by single spaces.
fn join_words<'a>(texts: impl Iterator<Item = &'a str>) -> String {
    let mut joined = String::new();
    for word in texts.flat_map(str::split_whitespace) {
        if !joined.is_empty() {
            joined.push(' ');
        }
        joined.push_str(word);
    }
    joined
}
