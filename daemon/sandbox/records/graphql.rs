//! A tiny GraphQL reader for the Jobber simulator: it finds the operation (by
//! `operationName`, else the first), its kind, and its top-level fields with their aliases,
//! arguments (variables resolved, defaults applied) and the raw text of their selection sets.
//! It does not validate against a schema and does not interpret nested selections.

use serde_json::{Map, Value};

/// Query or mutation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    Query,
    Mutation,
}

/// One top-level field of the operation.
#[derive(Debug, Clone, PartialEq)]
pub struct TopField {
    /// The response key (the alias, else the name).
    pub alias: String,
    /// The field name.
    pub name: String,
    /// Arguments with variables resolved.
    pub args: Map<String, Value>,
    /// The selection set's source text (`""` for none).
    pub selection: String,
}

/// The operation to run.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// Query or mutation.
    pub kind: OpKind,
    /// The top-level fields, in order.
    pub fields: Vec<TopField>,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Punct(char),
    Spread,
    Name(String),
    Int(i64),
    Float(f64),
    Str(String),
}

fn lex(source: &str) -> Result<Vec<(Tok, usize)>, String> {
    let chars: Vec<(usize, char)> = source.char_indices().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        match c {
            '#' => {
                while i < chars.len() && chars[i].1 != '\n' {
                    i += 1;
                }
            }
            c if c.is_whitespace() || c == ',' || c == '\u{feff}' => i += 1,
            '{' | '}' | '(' | ')' | ':' | '$' | '!' | '[' | ']' | '=' | '@' | '|' | '&' => {
                tokens.push((Tok::Punct(c), at));
                i += 1;
            }
            '.' => {
                if chars.get(i + 1).map(|c| c.1) == Some('.') && chars.get(i + 2).map(|c| c.1) == Some('.') {
                    tokens.push((Tok::Spread, at));
                    i += 3;
                } else {
                    return Err(format!("Parse error on \".\" at {at}"));
                }
            }
            '"' => {
                let block = chars.get(i + 1).map(|c| c.1) == Some('"') && chars.get(i + 2).map(|c| c.1) == Some('"');
                let mut text = String::new();
                if block {
                    i += 3;
                    loop {
                        if chars.get(i).map(|c| c.1) == Some('"')
                            && chars.get(i + 1).map(|c| c.1) == Some('"')
                            && chars.get(i + 2).map(|c| c.1) == Some('"')
                        {
                            i += 3;
                            break;
                        }
                        let Some(&(_, c)) = chars.get(i) else {
                            return Err("Unterminated block string".into());
                        };
                        text.push(c);
                        i += 1;
                    }
                } else {
                    i += 1;
                    loop {
                        let Some(&(_, c)) = chars.get(i) else {
                            return Err("Unterminated string".into());
                        };
                        i += 1;
                        match c {
                            '"' => break,
                            '\\' => {
                                let Some(&(_, escaped)) = chars.get(i) else {
                                    return Err("Unterminated string".into());
                                };
                                i += 1;
                                match escaped {
                                    'n' => text.push('\n'),
                                    't' => text.push('\t'),
                                    'r' => text.push('\r'),
                                    'b' => text.push('\u{8}'),
                                    'f' => text.push('\u{c}'),
                                    'u' => {
                                        let hex: String = chars.iter().skip(i).take(4).map(|c| c.1).collect();
                                        let code = u32::from_str_radix(&hex, 16).map_err(|_| "Bad unicode escape")?;
                                        text.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                                        i += 4;
                                    }
                                    other => text.push(other),
                                }
                            }
                            other => text.push(other),
                        }
                    }
                }
                tokens.push((Tok::Str(text), at));
            }
            c if c == '-' || c.is_ascii_digit() => {
                let start = i;
                i += 1;
                while i < chars.len()
                    && (chars[i].1.is_ascii_digit() || matches!(chars[i].1, '.' | 'e' | 'E' | '+' | '-'))
                {
                    i += 1;
                }
                let text: String = chars[start..i].iter().map(|c| c.1).collect();
                let token = match text.parse::<i64>() {
                    Ok(n) => Tok::Int(n),
                    Err(_) => Tok::Float(text.parse().map_err(|_| format!("Bad number {text}"))?),
                };
                tokens.push((token, at));
            }
            c if c == '_' || c.is_ascii_alphabetic() => {
                let start = i;
                while i < chars.len() && (chars[i].1 == '_' || chars[i].1.is_ascii_alphanumeric()) {
                    i += 1;
                }
                tokens.push((Tok::Name(chars[start..i].iter().map(|c| c.1).collect()), at));
            }
            other => return Err(format!("Parse error on \"{other}\" at {at}")),
        }
    }
    Ok(tokens)
}

struct Reader<'a> {
    source: &'a str,
    tokens: Vec<(Tok, usize)>,
    at: usize,
    variables: &'a Map<String, Value>,
    defaults: Map<String, Value>,
}

impl Reader<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.at).map(|t| &t.0)
    }

    fn next(&mut self) -> Result<Tok, String> {
        let token = self
            .tokens
            .get(self.at)
            .map(|t| t.0.clone())
            .ok_or("Unexpected end of document")?;
        self.at += 1;
        Ok(token)
    }

    fn offset(&self) -> usize {
        self.tokens.get(self.at).map_or(self.source.len(), |t| t.1)
    }

    fn is_punct(&self, c: char) -> bool {
        self.peek() == Some(&Tok::Punct(c))
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        match self.next()? {
            Tok::Punct(p) if p == c => Ok(()),
            other => Err(format!("Expected \"{c}\", found {other:?}")),
        }
    }

    fn name(&mut self) -> Result<String, String> {
        match self.next()? {
            Tok::Name(name) => Ok(name),
            other => Err(format!("Expected a name, found {other:?}")),
        }
    }

    /// Skips a balanced `{ … }` and returns its source text.
    fn skip_selection(&mut self) -> Result<String, String> {
        let start = self.offset();
        self.expect('{')?;
        let mut depth = 1;
        while depth > 0 {
            match self.next()? {
                Tok::Punct('{') => depth += 1,
                Tok::Punct('}') => depth -= 1,
                _ => {}
            }
        }
        let end = self.tokens.get(self.at - 1).map_or(self.source.len(), |t| t.1 + 1);
        Ok(self.source.get(start..end).unwrap_or_default().to_owned())
    }

    fn skip_type(&mut self) -> Result<(), String> {
        if self.is_punct('[') {
            self.at += 1;
            self.skip_type()?;
            self.expect(']')?;
        } else {
            self.name()?;
        }
        if self.is_punct('!') {
            self.at += 1;
        }
        Ok(())
    }

    fn skip_directives(&mut self) -> Result<(), String> {
        while self.is_punct('@') {
            self.at += 1;
            self.name()?;
            if self.is_punct('(') {
                self.arguments()?;
            }
        }
        Ok(())
    }

    fn value(&mut self) -> Result<Value, String> {
        Ok(match self.next()? {
            Tok::Punct('$') => {
                let name = self.name()?;
                self.variables
                    .get(&name)
                    .or_else(|| self.defaults.get(&name))
                    .cloned()
                    .unwrap_or(Value::Null)
            }
            Tok::Int(n) => Value::from(n),
            Tok::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
            Tok::Str(s) => Value::String(s),
            Tok::Name(name) => match name.as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "null" => Value::Null,
                _ => Value::String(name),
            },
            Tok::Punct('[') => {
                let mut items = Vec::new();
                while !self.is_punct(']') {
                    items.push(self.value()?);
                }
                self.at += 1;
                Value::Array(items)
            }
            Tok::Punct('{') => {
                let mut map = Map::new();
                while !self.is_punct('}') {
                    let key = self.name()?;
                    self.expect(':')?;
                    map.insert(key, self.value()?);
                }
                self.at += 1;
                Value::Object(map)
            }
            other => return Err(format!("Unexpected {other:?} in a value")),
        })
    }

    fn arguments(&mut self) -> Result<Map<String, Value>, String> {
        self.expect('(')?;
        let mut args = Map::new();
        while !self.is_punct(')') {
            let name = self.name()?;
            self.expect(':')?;
            args.insert(name, self.value()?);
        }
        self.at += 1;
        Ok(args)
    }

    fn variable_definitions(&mut self) -> Result<(), String> {
        self.expect('(')?;
        while !self.is_punct(')') {
            self.expect('$')?;
            let name = self.name()?;
            self.expect(':')?;
            self.skip_type()?;
            if self.is_punct('=') {
                self.at += 1;
                let default = self.value()?;
                self.defaults.insert(name, default);
            }
            self.skip_directives()?;
        }
        self.at += 1;
        Ok(())
    }

    fn top_fields(&mut self) -> Result<Vec<TopField>, String> {
        self.expect('{')?;
        let mut fields = Vec::new();
        while !self.is_punct('}') {
            if self.peek() == Some(&Tok::Spread) {
                // Fragments at the top level are not needed by the clients; skip them.
                self.at += 1;
                if matches!(self.peek(), Some(Tok::Name(n)) if n == "on") {
                    self.at += 1;
                    self.name()?;
                }
                if matches!(self.peek(), Some(Tok::Name(_))) {
                    self.name()?;
                }
                self.skip_directives()?;
                if self.is_punct('{') {
                    self.skip_selection()?;
                }
                continue;
            }
            let first = self.name()?;
            let (alias, name) = if self.is_punct(':') {
                self.at += 1;
                (first, self.name()?)
            } else {
                (first.clone(), first)
            };
            let args = if self.is_punct('(') {
                self.arguments()?
            } else {
                Map::new()
            };
            self.skip_directives()?;
            let selection = if self.is_punct('{') {
                self.skip_selection()?
            } else {
                String::new()
            };
            fields.push(TopField {
                alias,
                name,
                args,
                selection,
            });
        }
        self.at += 1;
        Ok(fields)
    }
}

/// Reads `document`, picking the operation called `operation_name` (else the first).
pub fn parse(
    document: &str,
    variables: &Map<String, Value>,
    operation_name: Option<&str>,
) -> Result<Operation, String> {
    let mut reader = Reader {
        source: document,
        tokens: lex(document)?,
        at: 0,
        variables,
        defaults: Map::new(),
    };
    let mut found = None;
    while reader.peek().is_some() {
        let (kind, name) = match reader.peek() {
            Some(Tok::Punct('{')) => (OpKind::Query, None),
            Some(Tok::Name(keyword)) if keyword == "fragment" => {
                reader.at += 1;
                reader.name()?;
                reader.name()?; // on
                reader.name()?;
                reader.skip_directives()?;
                reader.skip_selection()?;
                continue;
            }
            Some(Tok::Name(keyword)) if keyword == "query" || keyword == "mutation" || keyword == "subscription" => {
                let kind = if keyword == "mutation" {
                    OpKind::Mutation
                } else {
                    OpKind::Query
                };
                reader.at += 1;
                let name = match reader.peek() {
                    Some(Tok::Name(_)) => Some(reader.name()?),
                    _ => None,
                };
                (kind, name)
            }
            other => return Err(format!("Parse error on {other:?}")),
        };
        if reader.is_punct('(') {
            reader.variable_definitions()?;
        }
        reader.skip_directives()?;
        let wanted = found.is_none() && operation_name.is_none_or(|wanted| name.as_deref() == Some(wanted));
        if wanted {
            found = Some(Operation {
                kind,
                fields: reader.top_fields()?,
            });
        } else {
            reader.skip_selection()?;
            reader.defaults.clear();
        }
    }
    found.ok_or_else(|| match operation_name {
        Some(name) => format!("No operation named \"{name}\""),
        None => "No operations in the document".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn reads_fields_arguments_and_variables() {
        let doc = r#"
            # a comment
            query List($filter: ClientFilterAttributes, $first: Int = 50, $after: String) {
              page: clients(filter: $filter, first: $first, after: $after, searchTerm: "a \"b\"") {
                nodes { id emails { address } }
                pageInfo { endCursor hasNextPage }
              }
              __type(name: "Client") { name }
            }"#;
        let op = parse(
            doc,
            &vars(json!({ "filter": { "updatedAt": { "after": "2025-01-01T00:00:00Z" } } })),
            None,
        )
        .unwrap();
        assert_eq!(op.kind, OpKind::Query);
        assert_eq!(op.fields.len(), 2);
        let clients = &op.fields[0];
        assert_eq!((clients.alias.as_str(), clients.name.as_str()), ("page", "clients"));
        assert_eq!(clients.args["first"], 50, "the default applies");
        assert_eq!(clients.args["after"], Value::Null);
        assert_eq!(clients.args["searchTerm"], "a \"b\"");
        assert_eq!(clients.args["filter"]["updatedAt"]["after"], "2025-01-01T00:00:00Z");
        assert!(clients.selection.starts_with('{') && clients.selection.ends_with('}'));
        assert!(clients.selection.contains("pageInfo"));
        assert_eq!(op.fields[1].args["name"], "Client");
    }

    #[test]
    fn reads_mutations_with_inline_objects_and_picks_the_named_operation() {
        let doc = "query A { account { id } }
                   mutation B($id: EncodedId!) { clientEdit(clientId: $id, input: {firstName: \"Zoë\", emailsToDelete: [\"x\", \"y\"], isCompany: false, title: MR}) { client { id } userErrors { message path } } }";
        let op = parse(doc, &vars(json!({ "id": "abc" })), Some("B")).unwrap();
        assert_eq!(op.kind, OpKind::Mutation);
        let edit = &op.fields[0];
        assert_eq!(edit.args["clientId"], "abc");
        assert_eq!(edit.args["input"]["firstName"], "Zoë");
        assert_eq!(edit.args["input"]["emailsToDelete"], json!(["x", "y"]));
        assert_eq!(edit.args["input"]["isCompany"], false);
        assert_eq!(edit.args["input"]["title"], "MR");
        let first = parse(doc, &Map::new(), None).unwrap();
        assert_eq!(first.fields[0].name, "account");
        assert!(parse("query { clients(first: ) }", &Map::new(), None).is_err());
        assert!(parse("{ unterminated", &Map::new(), None).is_err());
    }
}
