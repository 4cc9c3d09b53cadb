//! A small SOQL reader for the Salesforce simulator:
//! `SELECT f1, f2 | COUNT() FROM Type [WHERE cond] [ORDER BY f [ASC|DESC] [NULLS FIRST|LAST], …]
//! [LIMIT n] [OFFSET n]`, where conditions combine `AND`/`OR`/`NOT`/parentheses over
//! `Field op value` (`=`, `!=`, `<>`, `<`, `<=`, `>`, `>=`, `LIKE`, `IN (…)`, `NOT IN (…)`).
//! Values are quoted strings (with `\'` escapes), unquoted datetime (`2024-01-01T00:00:00Z`)
//! and date (`2024-01-01`) literals, numbers, `true`/`false` and `null`. Fields may follow the
//! `Account` relationship (`Account.Name`). Errors carry Salesforce's error codes.

use std::cmp::Ordering;

use jiff::Timestamp;
use serde_json::Value;

use super::parse_time;
use super::salesforce::{SfField, field, normalize_id};

/// A query error with Salesforce's `errorCode`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SoqlError {
    /// `MALFORMED_QUERY`, `INVALID_FIELD`, `INVALID_TYPE` or `INVALID_QUERY_FILTER_OPERATOR`.
    pub code: &'static str,
    /// The message.
    pub message: String,
}

fn malformed(message: impl Into<String>) -> SoqlError {
    SoqlError {
        code: "MALFORMED_QUERY",
        message: message.into(),
    }
}

/// A field of the queried object, or of the account it refers to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldRef {
    /// A field of the record.
    Direct(&'static SfField),
    /// `Account.<field>` through the record's `AccountId`.
    Account(&'static SfField),
}

impl FieldRef {
    /// The field's definition.
    pub fn field(&self) -> &'static SfField {
        match self {
            FieldRef::Direct(f) | FieldRef::Account(f) => f,
        }
    }
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Like,
    In,
    NotIn,
}

/// A literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Null,
    Bool(bool),
    Number(f64),
    Text(String),
    DateTime(Timestamp),
    Date(String),
    List(Vec<Literal>),
}

/// A `WHERE` condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Cmp { field: FieldRef, op: Op, value: Literal },
}

/// One `ORDER BY` item.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderBy {
    /// The field sorted on.
    pub field: FieldRef,
    /// `DESC`.
    pub descending: bool,
    /// Nulls after values (`NULLS LAST`, the default with `DESC`).
    pub nulls_last: bool,
}

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Canonical object name.
    pub object: &'static str,
    /// Selected fields, in order (empty for `COUNT()`).
    pub select: Vec<FieldRef>,
    /// `SELECT COUNT()`.
    pub count: bool,
    /// The `WHERE` condition.
    pub filter: Option<Expr>,
    /// The `ORDER BY` items.
    pub order: Vec<OrderBy>,
    /// `LIMIT`.
    pub limit: Option<usize>,
    /// `OFFSET`.
    pub offset: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Str(String),
    Op(&'static str),
    Comma,
    Open,
    Close,
}

fn tokenize(text: &str) -> Result<Vec<Tok>, SoqlError> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            ',' => {
                tokens.push(Tok::Comma);
                i += 1;
            }
            '(' => {
                tokens.push(Tok::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Tok::Close);
                i += 1;
            }
            '\'' => {
                let mut value = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err(malformed("unterminated string literal")),
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some('\\') => {
                            let escaped = chars
                                .get(i + 1)
                                .ok_or_else(|| malformed("unterminated string literal"))?;
                            value.push(match escaped {
                                'n' => '\n',
                                't' => '\t',
                                'r' => '\r',
                                'b' => '\u{8}',
                                'f' => '\u{c}',
                                other => *other,
                            });
                            i += 2;
                        }
                        Some(other) => {
                            value.push(*other);
                            i += 1;
                        }
                    }
                }
                tokens.push(Tok::Str(value));
            }
            '=' => {
                tokens.push(Tok::Op("="));
                i += 1;
            }
            '!' if chars.get(i + 1) == Some(&'=') => {
                tokens.push(Tok::Op("!="));
                i += 2;
            }
            '<' | '>' => {
                let next = chars.get(i + 1).copied();
                let op = match (c, next) {
                    ('<', Some('=')) => "<=",
                    ('>', Some('=')) => ">=",
                    ('<', Some('>')) => "!=",
                    ('<', _) => "<",
                    _ => ">",
                };
                i += if op.len() == 2 { 2 } else { 1 };
                tokens.push(Tok::Op(op));
            }
            c if c.is_alphanumeric() || matches!(c, '_' | '.' | ':' | '-' | '+') => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || matches!(chars[i], '_' | '.' | ':' | '-' | '+'))
                {
                    i += 1;
                }
                tokens.push(Tok::Word(chars[start..i].iter().collect()));
            }
            other => return Err(malformed(format!("unexpected token: '{other}'"))),
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Tok>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Tok> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn is_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Some(Tok::Word(w)) if w.eq_ignore_ascii_case(keyword))
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = self.is_keyword(keyword);
        if found {
            self.at += 1;
        }
        found
    }

    fn expect_keyword(&mut self, keyword: &str) -> Result<(), SoqlError> {
        if self.eat_keyword(keyword) {
            Ok(())
        } else {
            Err(malformed(format!(
                "expecting '{keyword}', found {}",
                describe(self.peek())
            )))
        }
    }

    fn word(&mut self, what: &str) -> Result<String, SoqlError> {
        match self.next() {
            Some(Tok::Word(word)) => Ok(word),
            other => Err(malformed(format!(
                "expecting {what}, found {}",
                describe(other.as_ref())
            ))),
        }
    }
}

fn describe(token: Option<&Tok>) -> String {
    match token {
        None => "end of query".into(),
        Some(Tok::Word(w)) => format!("'{w}'"),
        Some(Tok::Str(s)) => format!("'{s}'"),
        Some(Tok::Op(o)) => format!("'{o}'"),
        Some(Tok::Comma) => "','".into(),
        Some(Tok::Open) => "'('".into(),
        Some(Tok::Close) => "')'".into(),
    }
}

const KEYWORDS: &[&str] = &[
    "SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "ORDER", "BY", "LIMIT", "OFFSET", "IN", "LIKE", "ASC", "DESC",
    "NULLS",
];

/// Resolves a field name (any case, maybe `Account.Field`) on `object`.
fn resolve(object: &'static str, name: &str) -> Result<FieldRef, SoqlError> {
    let invalid = || SoqlError {
        code: "INVALID_FIELD",
        message: format!(
            "No such column '{name}' on entity '{object}'. If you are attempting to use a custom field, be sure to append the '__c' after the custom field name. Please reference your WSDL or the describe call for the appropriate names."
        ),
    };
    match name.split_once('.') {
        None => field(object, name).map(FieldRef::Direct).ok_or_else(invalid),
        Some((relationship, rest)) => {
            let has_account = field(object, "AccountId").is_some();
            if has_account && relationship.eq_ignore_ascii_case("Account") && !rest.contains('.') {
                field("Account", rest).map(FieldRef::Account).ok_or_else(invalid)
            } else {
                Err(invalid())
            }
        }
    }
}

/// Parses `text` against the Salesforce object schemas.
pub fn parse(text: &str) -> Result<Query, SoqlError> {
    let mut p = Parser {
        tokens: tokenize(text)?,
        at: 0,
    };
    p.expect_keyword("SELECT")?;
    let mut names = Vec::new();
    let mut count = false;
    if p.is_keyword("COUNT")
        && p.tokens.get(p.at + 1) == Some(&Tok::Open)
        && p.tokens.get(p.at + 2) == Some(&Tok::Close)
    {
        p.at += 3;
        count = true;
    } else {
        loop {
            let name = p.word("a field name")?;
            if KEYWORDS.iter().any(|k| k.eq_ignore_ascii_case(&name)) {
                return Err(malformed(format!("unexpected token: '{name}'")));
            }
            names.push(name);
            if p.peek() == Some(&Tok::Comma) {
                p.at += 1;
            } else {
                break;
            }
        }
    }
    p.expect_keyword("FROM")?;
    let object_name = p.word("an object name")?;
    let object = super::canonical_object(crate::providers::Provider::Salesforce, &object_name).ok_or_else(|| SoqlError {
        code: "INVALID_TYPE",
        message: format!(
            "sObject type '{object_name}' is not supported. If you are attempting to use a custom object, be sure to append the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate names."
        ),
    })?;
    let select = names
        .iter()
        .map(|name| resolve(object, name))
        .collect::<Result<Vec<_>, _>>()?;
    let filter = if p.eat_keyword("WHERE") {
        Some(parse_or(&mut p, object)?)
    } else {
        None
    };
    let mut order = Vec::new();
    if p.eat_keyword("ORDER") {
        p.expect_keyword("BY")?;
        loop {
            let name = p.word("a field name")?;
            let field = resolve(object, &name)?;
            let descending = if p.eat_keyword("DESC") {
                true
            } else {
                p.eat_keyword("ASC");
                false
            };
            let nulls_last = if p.eat_keyword("NULLS") {
                if p.eat_keyword("LAST") {
                    true
                } else {
                    p.expect_keyword("FIRST")?;
                    false
                }
            } else {
                descending
            };
            order.push(OrderBy {
                field,
                descending,
                nulls_last,
            });
            if p.peek() == Some(&Tok::Comma) {
                p.at += 1;
            } else {
                break;
            }
        }
    }
    let mut limit = None;
    if p.eat_keyword("LIMIT") {
        let n = p.word("a number")?;
        limit = Some(
            n.parse::<usize>()
                .map_err(|_| malformed(format!("invalid LIMIT: {n}")))?,
        );
    }
    let mut offset = 0;
    if p.eat_keyword("OFFSET") {
        let n = p.word("a number")?;
        offset = n
            .parse::<usize>()
            .map_err(|_| malformed(format!("invalid OFFSET: {n}")))?;
        if offset > 2_000 {
            return Err(SoqlError {
                code: "NUMBER_OUTSIDE_VALID_RANGE",
                message: format!("Maximum SOQL offset allowed is 2000, found {offset}"),
            });
        }
    }
    if let Some(extra) = p.peek() {
        return Err(malformed(format!("unexpected token: {}", describe(Some(extra)))));
    }
    Ok(Query {
        object,
        select,
        count,
        filter,
        order,
        limit,
        offset,
    })
}

fn parse_or(p: &mut Parser, object: &'static str) -> Result<Expr, SoqlError> {
    let mut items = vec![parse_and(p, object)?];
    while p.eat_keyword("OR") {
        items.push(parse_and(p, object)?);
    }
    Ok(if items.len() == 1 {
        items.remove(0)
    } else {
        Expr::Or(items)
    })
}

fn parse_and(p: &mut Parser, object: &'static str) -> Result<Expr, SoqlError> {
    let mut items = vec![parse_not(p, object)?];
    while p.eat_keyword("AND") {
        items.push(parse_not(p, object)?);
    }
    Ok(if items.len() == 1 {
        items.remove(0)
    } else {
        Expr::And(items)
    })
}

fn parse_not(p: &mut Parser, object: &'static str) -> Result<Expr, SoqlError> {
    if p.eat_keyword("NOT") {
        return Ok(Expr::Not(Box::new(parse_not(p, object)?)));
    }
    if p.peek() == Some(&Tok::Open) {
        p.at += 1;
        let inner = parse_or(p, object)?;
        return match p.next() {
            Some(Tok::Close) => Ok(inner),
            other => Err(malformed(format!("expecting ')', found {}", describe(other.as_ref())))),
        };
    }
    let name = p.word("a field name")?;
    let field = resolve(object, &name)?;
    let op = match p.next() {
        Some(Tok::Op("=")) => Op::Eq,
        Some(Tok::Op("!=")) => Op::Ne,
        Some(Tok::Op("<")) => Op::Lt,
        Some(Tok::Op("<=")) => Op::Le,
        Some(Tok::Op(">")) => Op::Gt,
        Some(Tok::Op(">=")) => Op::Ge,
        Some(Tok::Word(w)) if w.eq_ignore_ascii_case("LIKE") => Op::Like,
        Some(Tok::Word(w)) if w.eq_ignore_ascii_case("IN") => Op::In,
        Some(Tok::Word(w)) if w.eq_ignore_ascii_case("NOT") && p.eat_keyword("IN") => Op::NotIn,
        other => return Err(malformed(format!("unexpected token: {}", describe(other.as_ref())))),
    };
    let value = if matches!(op, Op::In | Op::NotIn) {
        if p.next() != Some(Tok::Open) {
            return Err(malformed("expecting '(' after IN"));
        }
        let mut items = Vec::new();
        loop {
            items.push(literal(p.next())?);
            match p.next() {
                Some(Tok::Comma) => continue,
                Some(Tok::Close) => break,
                other => return Err(malformed(format!("unexpected token: {}", describe(other.as_ref())))),
            }
        }
        Literal::List(items)
    } else {
        literal(p.next())?
    };
    check_type(field.field(), op, &value)?;
    Ok(Expr::Cmp { field, op, value })
}

fn is_date(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

fn literal(token: Option<Tok>) -> Result<Literal, SoqlError> {
    match token {
        Some(Tok::Str(s)) => Ok(Literal::Text(s)),
        Some(Tok::Word(w)) => {
            if w.eq_ignore_ascii_case("null") {
                Ok(Literal::Null)
            } else if w.eq_ignore_ascii_case("true") {
                Ok(Literal::Bool(true))
            } else if w.eq_ignore_ascii_case("false") {
                Ok(Literal::Bool(false))
            } else if is_date(&w) {
                Ok(Literal::Date(w))
            } else if w.get(..10).is_some_and(is_date) && w.as_bytes().get(10) == Some(&b'T') {
                let time = w.get(11..).unwrap_or_default();
                let has_zone = w.ends_with('Z') || time.contains('+') || time.contains('-');
                parse_time(&w)
                    .filter(|_| has_zone)
                    .map(Literal::DateTime)
                    .ok_or_else(|| malformed(format!("line 1:0 no viable alternative at character '{w}'")))
            } else if let Ok(n) = w.parse::<f64>() {
                Ok(Literal::Number(n))
            } else {
                Err(malformed(format!("unexpected token: '{w}'")))
            }
        }
        other => Err(malformed(format!("unexpected token: {}", describe(other.as_ref())))),
    }
}

fn check_type(field: &SfField, op: Op, value: &Literal) -> Result<(), SoqlError> {
    if let Literal::List(items) = value {
        return items.iter().try_for_each(|item| check_type(field, Op::Eq, item));
    }
    let wrong = |expected: &str, quoted: bool| SoqlError {
        code: "INVALID_QUERY_FILTER_OPERATOR",
        message: format!(
            "value of filter criterion for field '{}' must be of type {expected} and should {}be enclosed in quotes",
            field.name,
            if quoted { "" } else { "not " }
        ),
    };
    let fits = match (field.kind, value) {
        (_, Literal::Null) => true,
        ("datetime", Literal::DateTime(_)) => true,
        ("datetime", _) => return Err(wrong("dateTime", false)),
        ("date", Literal::Date(_)) => true,
        ("date", _) => return Err(wrong("date", false)),
        ("currency" | "double", Literal::Number(_)) => true,
        ("currency" | "double", _) => return Err(wrong("double", false)),
        ("boolean", Literal::Bool(_)) => true,
        ("boolean", _) => return Err(wrong("boolean", false)),
        (_, Literal::Text(_)) => true,
        _ => return Err(wrong("string", true)),
    };
    if op == Op::Like && !matches!(value, Literal::Text(_)) {
        return Err(SoqlError {
            code: "INVALID_QUERY_FILTER_OPERATOR",
            message: format!("invalid operator on field: {}", field.name),
        });
    }
    if fits { Ok(()) } else { Err(wrong("string", true)) }
}

/// A field value made comparable for `kind`.
fn comparable(kind: &str, value: &Value) -> Option<Literal> {
    match value {
        Value::Null => None,
        Value::Bool(b) => Some(Literal::Bool(*b)),
        Value::Number(n) => n.as_f64().map(Literal::Number),
        Value::String(s) => Some(match kind {
            "datetime" => Literal::DateTime(parse_time(s)?),
            "date" => Literal::Date(s.get(..10).unwrap_or(s).to_owned()),
            "currency" | "double" => Literal::Number(s.parse().ok()?),
            "id" | "reference" => Literal::Text(normalize_id(s).unwrap_or_else(|| s.clone()).to_lowercase()),
            _ => Literal::Text(s.to_lowercase()),
        }),
        _ => None,
    }
}

fn literal_key(kind: &str, literal: &Literal) -> Option<Literal> {
    match literal {
        Literal::Null | Literal::List(_) => None,
        Literal::Text(s) => comparable(kind, &Value::String(s.clone())),
        other => Some(other.clone()),
    }
}

fn order(a: &Literal, b: &Literal) -> Option<Ordering> {
    match (a, b) {
        (Literal::Number(x), Literal::Number(y)) => x.partial_cmp(y),
        (Literal::Text(x), Literal::Text(y)) | (Literal::Date(x), Literal::Date(y)) => Some(x.cmp(y)),
        (Literal::DateTime(x), Literal::DateTime(y)) => Some(x.cmp(y)),
        (Literal::Bool(x), Literal::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// SOQL `LIKE`: `%` any run, `_` one character; case-insensitive.
pub fn like(pattern: &str, text: &str) -> bool {
    fn go(p: &[char], t: &[char]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some(('%', rest)) => (0..=t.len()).any(|skip| go(rest, &t[skip..])),
            Some(('_', rest)) => !t.is_empty() && go(rest, &t[1..]),
            Some((c, rest)) => t.first().is_some_and(|f| f == c) && go(rest, &t[1..]),
        }
    }
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    go(&p, &t)
}

impl Expr {
    /// Whether a record matches; `value` reads a field of it.
    pub fn eval(&self, value: &dyn Fn(&FieldRef) -> Value) -> bool {
        match self {
            Expr::And(items) => items.iter().all(|e| e.eval(value)),
            Expr::Or(items) => items.iter().any(|e| e.eval(value)),
            Expr::Not(inner) => !inner.eval(value),
            Expr::Cmp {
                field,
                op,
                value: target,
            } => {
                let kind = field.field().kind;
                let actual = comparable(kind, &value(field));
                match (op, target) {
                    (Op::Eq, Literal::Null) => actual.is_none(),
                    (Op::Ne, Literal::Null) => actual.is_some(),
                    (Op::In | Op::NotIn, Literal::List(items)) => {
                        let found = actual.as_ref().is_some_and(|a| {
                            items
                                .iter()
                                .any(|i| literal_key(kind, i).is_some_and(|k| order(a, &k) == Some(Ordering::Equal)))
                        });
                        found == (*op == Op::In)
                    }
                    (Op::Like, Literal::Text(pattern)) => {
                        matches!(value(field), Value::String(s) if like(pattern, &s))
                    }
                    _ => {
                        let target = literal_key(kind, target);
                        let cmp = match (&actual, &target) {
                            (Some(a), Some(t)) => order(a, t),
                            _ => None,
                        };
                        match op {
                            Op::Eq => cmp == Some(Ordering::Equal),
                            Op::Ne => cmp != Some(Ordering::Equal),
                            Op::Lt => cmp == Some(Ordering::Less),
                            Op::Le => matches!(cmp, Some(Ordering::Less | Ordering::Equal)),
                            Op::Gt => cmp == Some(Ordering::Greater),
                            Op::Ge => matches!(cmp, Some(Ordering::Greater | Ordering::Equal)),
                            _ => false,
                        }
                    }
                }
            }
        }
    }
}

/// The sort key of a value of `field` (`None` for null).
pub fn sort_key(field: &FieldRef, value: &Value) -> Option<Literal> {
    comparable(field.field().kind, value)
}

/// Compares two records' sort keys of an `ORDER BY` item (nulls placed as asked).
pub fn compare_keys(item: &OrderBy, a: Option<&Literal>, b: Option<&Literal>) -> Ordering {
    match (a, b) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => {
            if item.nulls_last {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        (Some(_), None) => {
            if item.nulls_last {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        (Some(x), Some(y)) => {
            let ordering = order(x, y).unwrap_or(Ordering::Equal);
            if item.descending { ordering.reverse() } else { ordering }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(f: &FieldRef) -> &'static str {
        f.field().name
    }

    #[test]
    fn parses_the_changed_since_query() {
        let q = parse(
            "SELECT Id, firstname, Email, SystemModstamp FROM contact WHERE SystemModstamp >= 2024-01-01T00:00:00Z \
             AND Email != null ORDER BY SystemModstamp ASC, Id ASC LIMIT 500",
        )
        .unwrap();
        assert_eq!(q.object, "Contact");
        assert_eq!(
            q.select.iter().map(name).collect::<Vec<_>>(),
            ["Id", "FirstName", "Email", "SystemModstamp"]
        );
        assert_eq!(q.limit, Some(500));
        assert_eq!(q.order.len(), 2);
        assert!(!q.order[0].descending && !q.order[0].nulls_last);
        let Some(Expr::And(items)) = &q.filter else {
            panic!("{:?}", q.filter)
        };
        assert_eq!(
            items[0],
            Expr::Cmp {
                field: FieldRef::Direct(field("Contact", "SystemModstamp").unwrap()),
                op: Op::Ge,
                value: Literal::DateTime("2024-01-01T00:00:00Z".parse().unwrap()),
            }
        );
        assert!(matches!(
            items[1],
            Expr::Cmp {
                op: Op::Ne,
                value: Literal::Null,
                ..
            }
        ));
    }

    #[test]
    fn strings_unescape_and_offsets_parse() {
        let q = parse(
            r"SELECT Id FROM Contact WHERE LastName = 'O\'Brien' AND LastModifiedDate > 2025-01-01T00:00:05.000+0000",
        )
        .unwrap();
        let Some(Expr::And(items)) = &q.filter else { panic!() };
        assert!(matches!(&items[0], Expr::Cmp { value: Literal::Text(t), .. } if t == "O'Brien"));
        let at: Timestamp = "2025-01-01T00:00:05Z".parse().unwrap();
        assert!(matches!(&items[1], Expr::Cmp { value: Literal::DateTime(t), .. } if *t == at));
        let q =
            parse("select count() from Account where (Name like 'ac%' or Name in ('x', 'y')) and not Industry = null")
                .unwrap();
        assert!(q.count && q.select.is_empty());
        let q = parse("SELECT Name, Account.Name FROM Opportunity ORDER BY CloseDate DESC NULLS FIRST").unwrap();
        assert!(matches!(q.select[1], FieldRef::Account(f) if f.name == "Name"));
        assert!(q.order[0].descending && !q.order[0].nulls_last);
    }

    #[test]
    fn errors_carry_salesforce_codes() {
        let code = |q: &str| parse(q).unwrap_err().code;
        assert_eq!(code("SELECT Foo FROM Contact"), "INVALID_FIELD");
        assert_eq!(code("SELECT Id FROM Widget"), "INVALID_TYPE");
        assert_eq!(code("SELECT Id Contact"), "MALFORMED_QUERY");
        assert_eq!(code("SELECT Id FROM Contact WHERE"), "MALFORMED_QUERY");
        assert_eq!(
            code("SELECT Id FROM Contact WHERE Email = 'unterminated"),
            "MALFORMED_QUERY"
        );
        assert_eq!(code("SELECT Id FROM Contact LIMIT 5 garbage"), "MALFORMED_QUERY");
        assert_eq!(
            code("SELECT Id FROM Contact WHERE SystemModstamp > '2024-01-01T00:00:00Z'"),
            "INVALID_QUERY_FILTER_OPERATOR"
        );
        assert_eq!(
            code("SELECT Id FROM Contact WHERE Email = 5"),
            "INVALID_QUERY_FILTER_OPERATOR"
        );
        assert_eq!(
            code("SELECT Id FROM Contact WHERE SystemModstamp > 2024-01-01T00:00:00"),
            "MALFORMED_QUERY"
        );
    }

    #[test]
    fn conditions_evaluate() {
        let q =
            parse("SELECT Id FROM Contact WHERE Email = 'ANN@example.com' AND SystemModstamp >= 2025-01-01T00:00:00Z")
                .unwrap();
        let filter = q.filter.unwrap();
        let record = |email: &str, stamp: &str| {
            let email = email.to_owned();
            let stamp = stamp.to_owned();
            move |f: &FieldRef| match name(f) {
                "Email" => Value::String(email.clone()),
                "SystemModstamp" => Value::String(stamp.clone()),
                _ => Value::Null,
            }
        };
        assert!(filter.eval(&record("ann@example.com", "2025-01-01T00:00:00.000+0000")));
        assert!(!filter.eval(&record("ann@example.com", "2024-12-31T23:59:59.000+0000")));
        assert!(!filter.eval(&record("bob@example.com", "2025-06-01T00:00:00.000+0000")));
        assert!(like("ac%e_", "ACMEx") && !like("ac%", "xac"));
    }
}
