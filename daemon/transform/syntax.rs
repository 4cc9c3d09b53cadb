//! The text form of pipelines: reading an expression into raw steps (names and argument values,
//! not yet checked against the transforms) and writing argument values back, quoted if needed.

use std::borrow::Cow;
use std::fmt;

use super::TransformError;

/// A step as written: its name and arguments.
#[derive(Debug)]
pub(super) struct RawStep<'a> {
    pub name: &'a str,
    pub args: Vec<RawArg<'a>>,
}

/// An argument as written, with its value unquoted.
#[derive(Debug)]
pub(super) struct RawArg<'a> {
    pub name: &'a str,
    pub value: Cow<'a, str>,
}

/// Whether `c` may appear in a bare word (a name or an unquoted value).
pub(super) fn is_bare(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '+')
}

/// Writes an argument value, bare if it is a non-empty bare word and quoted otherwise.
pub(super) fn write_value(f: &mut fmt::Formatter<'_>, value: &str) -> fmt::Result {
    if !value.is_empty() && value.chars().all(is_bare) {
        return f.write_str(value);
    }
    f.write_str("\"")?;
    for c in value.chars() {
        if matches!(c, '"' | '\\') {
            f.write_str("\\")?;
        }
        write!(f, "{c}")?;
    }
    f.write_str("\"")
}

/// Splits an expression into its steps; the empty or all-whitespace expression has none.
pub(super) fn parse_steps(expr: &str) -> Result<Vec<RawStep<'_>>, TransformError> {
    let mut cursor = Cursor { src: expr, pos: 0 };
    let mut steps = Vec::new();
    cursor.skip_whitespace();
    if cursor.peek().is_none() {
        return Ok(steps);
    }
    loop {
        cursor.skip_whitespace();
        let step = cursor.step()?;
        cursor.skip_whitespace();
        match cursor.peek() {
            None => {
                steps.push(step);
                return Ok(steps);
            }
            Some('|') => cursor.bump(),
            Some(c) => {
                return Err(cursor.error(format!("unexpected {c:?} after {}; expected `|` or the end", step.name)));
            }
        }
        steps.push(step);
    }
}

/// A position in the expression being read.
struct Cursor<'a> {
    src: &'a str,
    /// Byte offset of the next character.
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    /// Moves past the next character, if any.
    fn bump(&mut self) {
        if let Some(c) = self.peek() {
            self.pos += c.len_utf8();
        }
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    /// A syntax error at the current position.
    fn error(&self, problem: String) -> TransformError {
        TransformError::Syntax {
            column: self.src[..self.pos].chars().count() + 1,
            problem,
        }
    }

    /// What is at the current position, for messages.
    fn found(&self) -> String {
        match self.peek() {
            Some(c) => format!("{c:?}"),
            None => "the end".to_owned(),
        }
    }

    /// A run of bare-word characters, possibly empty.
    fn bare_word(&mut self) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(is_bare) {
            self.bump();
        }
        &self.src[start..self.pos]
    }

    /// `name` or `name(args)`.
    fn step(&mut self) -> Result<RawStep<'a>, TransformError> {
        let name = self.bare_word();
        if name.is_empty() {
            let problem = match self.peek() {
                Some('|') | None => "empty step: expected a transform name".to_owned(),
                Some(_) => format!("expected a transform name, found {}", self.found()),
            };
            return Err(self.error(problem));
        }
        let mut args = Vec::new();
        self.skip_whitespace();
        if self.peek() != Some('(') {
            return Ok(RawStep { name, args });
        }
        self.bump();
        self.skip_whitespace();
        if self.peek() == Some(')') {
            self.bump();
            return Ok(RawStep { name, args });
        }
        loop {
            self.skip_whitespace();
            args.push(self.arg(name)?);
            self.skip_whitespace();
            match self.peek() {
                Some(',') => self.bump(),
                Some(')') => {
                    self.bump();
                    return Ok(RawStep { name, args });
                }
                None => return Err(self.error(format!("unclosed `(` in the arguments of {name}"))),
                Some(_) => {
                    let problem = format!("expected `,` or `)` in the arguments of {name}, found {}", self.found());
                    return Err(self.error(problem));
                }
            }
        }
    }

    /// `name=value`, inside the arguments of step `step`.
    fn arg(&mut self, step: &str) -> Result<RawArg<'a>, TransformError> {
        let name = self.bare_word();
        if name.is_empty() {
            let problem = format!("expected an argument name for {step}, found {}", self.found());
            return Err(self.error(problem));
        }
        self.skip_whitespace();
        if self.peek() != Some('=') {
            let problem = format!("expected `=` after argument {name:?} of {step}, found {}", self.found());
            return Err(self.error(problem));
        }
        self.bump();
        self.skip_whitespace();
        let value = if self.peek() == Some('"') {
            self.quoted(step, name)?
        } else {
            let word = self.bare_word();
            if word.is_empty() {
                let problem = format!(
                    "expected a value for argument {name:?} of {step}, found {}",
                    self.found()
                );
                return Err(self.error(problem));
            }
            Cow::Borrowed(word)
        };
        Ok(RawArg { name, value })
    }

    /// A double-quoted value with `\"` and `\\` escapes; the cursor is at the opening quote.
    fn quoted(&mut self, step: &str, arg: &str) -> Result<Cow<'a, str>, TransformError> {
        self.bump();
        let start = self.pos;
        let mut unescaped: Option<String> = None;
        loop {
            match self.peek() {
                None => {
                    let problem = format!("unterminated quoted value for argument {arg:?} of {step}");
                    return Err(self.error(problem));
                }
                Some('"') => {
                    let value = match unescaped {
                        Some(s) => Cow::Owned(s),
                        None => Cow::Borrowed(&self.src[start..self.pos]),
                    };
                    self.bump();
                    return Ok(value);
                }
                Some('\\') => {
                    let buffer = unescaped.get_or_insert_with(|| self.src[start..self.pos].to_owned());
                    self.bump();
                    match self.peek() {
                        Some(c @ ('"' | '\\')) => {
                            buffer.push(c);
                            self.bump();
                        }
                        _ => {
                            let problem = format!(
                                "unknown escape in the value of argument {arg:?} of {step} (only \\\" and \\\\ are allowed)"
                            );
                            return Err(self.error(problem));
                        }
                    }
                }
                Some(c) => {
                    if let Some(buffer) = unescaped.as_mut() {
                        buffer.push(c);
                    }
                    self.bump();
                }
            }
        }
    }
}
