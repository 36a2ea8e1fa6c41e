//! Reading plain YAML configuration (`.sops.yaml`) into a [`Value`]. Unlike the
//! secret-file store this keeps no spans and expands anchors and aliases, which
//! `.sops.yaml` files commonly use to share recipient lists between rules.

use std::collections::HashMap;

use saphyr_parser::{Event, Parser, ScalarStyle};

use super::{FormatError, Value};

/// Parse the first document of `src`. An empty file is an empty map.
pub fn parse(src: &str) -> Result<Value, FormatError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(src);
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| FormatError::Syntax {
            line: e.marker().line(),
            column: e.marker().col() + 1,
            message: e.info().to_string(),
        })?;
        let at = (span.start.line(), span.start.col() + 1);
        if builder.on_event(event, at)? {
            break;
        }
    }
    Ok(builder.result.unwrap_or(Value::Map(Vec::new())))
}

enum Frame {
    List(Vec<Value>, usize),
    Map(Vec<(String, Value)>, Option<String>, usize),
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    anchors: HashMap<usize, Value>,
    result: Option<Value>,
}

impl Builder {
    /// Returns true when the first document is complete.
    fn on_event(&mut self, event: Event<'_>, at: (usize, usize)) -> Result<bool, FormatError> {
        let value = match event {
            Event::SequenceStart(anchor, _) => {
                self.stack.push(Frame::List(Vec::new(), anchor));
                return Ok(false);
            }
            Event::MappingStart(anchor, _) => {
                self.stack.push(Frame::Map(Vec::new(), None, anchor));
                return Ok(false);
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::List(items, anchor)) => self.anchored(Value::List(items), anchor),
                Some(Frame::Map(entries, _, anchor)) => self.anchored(Value::Map(entries), anchor),
                None => return Ok(false),
            },
            Event::Scalar(text, style, anchor, _) => {
                let v = if style == ScalarStyle::Plain {
                    resolve(&text)
                } else {
                    Value::Str(text.into_owned())
                };
                self.anchored(v, anchor)
            }
            Event::Alias(id) => self.anchors.get(&id).cloned().ok_or(FormatError::Syntax {
                line: at.0,
                column: at.1,
                message: "alias to an unknown anchor".into(),
            })?,
            Event::DocumentEnd => return Ok(self.result.is_some()),
            _ => return Ok(false),
        };
        self.push(value, at)?;
        Ok(false)
    }

    fn anchored(&mut self, v: Value, anchor: usize) -> Value {
        if anchor != 0 {
            self.anchors.insert(anchor, v.clone());
        }
        v
    }

    fn push(&mut self, v: Value, at: (usize, usize)) -> Result<(), FormatError> {
        match self.stack.last_mut() {
            None => self.result = Some(v),
            Some(Frame::List(items, _)) => items.push(v),
            Some(Frame::Map(entries, pending, _)) => match pending.take() {
                None => match v {
                    Value::Str(k) => *pending = Some(k),
                    Value::Int(i) => *pending = Some(i.to_string()),
                    Value::Bool(b) => *pending = Some(b.to_string()),
                    _ => {
                        return Err(FormatError::Unsupported {
                            line: at.0,
                            column: at.1,
                            message: "only string keys are supported".into(),
                        })
                    }
                },
                Some(k) if k == "<<" => {
                    // A merge key: copy the aliased map's entries that are not set yet.
                    if let Value::Map(merged) = v {
                        for (mk, mv) in merged {
                            if !entries.iter().any(|(ek, _)| *ek == mk) {
                                entries.push((mk, mv));
                            }
                        }
                    }
                }
                Some(k) => entries.push((k, v)),
            },
        }
        Ok(())
    }
}

/// Plain-scalar typing sufficient for configuration: null, bool, int, else string.
fn resolve(text: &str) -> Value {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ => text
            .parse::<i64>()
            .map(Value::Int)
            .unwrap_or_else(|_| Value::Str(text.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_aliases_and_merges() {
        let v = parse(
            "keys:\n  - &alice age1alice\ncreation_rules:\n  - path_regex: x\n    age: *alice\n    shamir_threshold: 2\n",
        )
        .unwrap();
        let rule = match v.get("creation_rules") {
            Some(Value::List(rules)) => rules[0].clone(),
            _ => panic!("no rules"),
        };
        assert_eq!(rule.get("age"), Some(&Value::Str("age1alice".into())));
        assert_eq!(rule.get("shamir_threshold"), Some(&Value::Int(2)));
        assert_eq!(parse("").unwrap(), Value::Map(vec![]));
        assert!(parse("a: [").is_err());
    }
}
