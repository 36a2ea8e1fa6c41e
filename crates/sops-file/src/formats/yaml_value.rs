//! Reading plain YAML configuration (`.sops.yaml`) into a [`Value`]. Unlike the
//! secret-file store this keeps no spans and expands anchors and aliases, which
//! `.sops.yaml` files commonly use to share recipient lists between rules.
//!
//! A `.sops.yaml` arrives with every pushed commit (`git sops check --history`
//! reads each one), so reading it is bounded like go-yaml bounds it:
//!
//! * at most [`MAX_DEPTH`] nested collections;
//! * alias expansion is budgeted with go-yaml v3's rule: every value read counts,
//!   every value copied for an alias also counts as aliased, and once more than 100
//!   values were aliased and more than 1000 read, the aliased share may not exceed
//!   99% (up to 400,000 values read), falling linearly to 10% at 4,000,000. Since
//!   a copy here duplicates bytes (go-yaml shares them), a string also counts one
//!   more value per 64 bytes. A 1 KB file can then expand to at most about 100
//!   times its size, and no file to more than a few million values.
//!
//! Merge keys (`<<`) and the key checks use a hash set per mapping, so merging
//! large maps is linear.

use std::collections::{HashMap, HashSet};

use saphyr_parser::{Event, Parser, ScalarStyle};

use super::{too_deep, FormatError, Value, MAX_DEPTH};

/// Parse the first document of `src`. An empty file is an empty map.
pub fn parse(src: &str) -> Result<Value, FormatError> {
    let mut builder = Builder::default();
    let mut parser = Parser::new_from_str(src);
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| FormatError::Syntax {
            line: e.marker().line(),
            column: e.marker().col() + 1,
            message: super::yaml::flow_limit(e.info())
                .map_or_else(|| e.info().to_string(), str::to_string),
        })?;
        let at = (span.start.line(), span.start.col() + 1);
        if builder.on_event(event, at)? {
            break;
        }
    }
    Ok(builder.result.unwrap_or(Value::Map(Vec::new())))
}

/// go-yaml's `allowedAliasRatio`: the share of all decoded values that may come
/// from alias expansion, for a document that decoded `decoded` values so far.
fn allowed_alias_ratio(decoded: u64) -> f64 {
    const LOW: u64 = 400_000;
    const HIGH: u64 = 4_000_000;
    if decoded <= LOW {
        0.99
    } else if decoded >= HIGH {
        0.10
    } else {
        0.99 - 0.89 * ((decoded - LOW) as f64 / (HIGH - LOW) as f64)
    }
}

/// What a value costs to build (and so to copy): one per node, plus one per 64
/// bytes of string.
fn str_weight(s: &str) -> u64 {
    1 + (s.len() / 64) as u64
}

enum Frame {
    List {
        items: Vec<Value>,
        anchor: usize,
        weight: u64,
    },
    Map {
        entries: Vec<(String, Value)>,
        keys: HashSet<String>,
        pending: Option<String>,
        anchor: usize,
        weight: u64,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    /// Completed anchored values and their weights.
    anchors: HashMap<usize, (Value, u64)>,
    result: Option<Value>,
    /// Weight of everything decoded, and of what alias expansion copied.
    decoded: u64,
    aliased: u64,
}

impl Builder {
    /// Returns true when the first document is complete.
    fn on_event(&mut self, event: Event<'_>, at: (usize, usize)) -> Result<bool, FormatError> {
        let (value, weight) = match event {
            Event::SequenceStart(anchor, _) => {
                self.open(at)?;
                self.stack.push(Frame::List {
                    items: Vec::new(),
                    anchor,
                    weight: 1,
                });
                return Ok(false);
            }
            Event::MappingStart(anchor, _) => {
                self.open(at)?;
                self.stack.push(Frame::Map {
                    entries: Vec::new(),
                    keys: HashSet::new(),
                    pending: None,
                    anchor,
                    weight: 1,
                });
                return Ok(false);
            }
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::List {
                    items,
                    anchor,
                    weight,
                }) => (self.anchored(Value::List(items), anchor, weight), weight),
                Some(Frame::Map {
                    entries,
                    anchor,
                    weight,
                    ..
                }) => (self.anchored(Value::Map(entries), anchor, weight), weight),
                None => return Ok(false),
            },
            Event::Scalar(text, style, anchor, _) => {
                let weight = str_weight(&text);
                self.count(weight, false, at)?;
                let v = if style == ScalarStyle::Plain {
                    resolve(&text)
                } else {
                    Value::Str(text.into_owned())
                };
                (self.anchored(v, anchor, weight), weight)
            }
            Event::Alias(id) => {
                let Some((_, weight)) = self.anchors.get(&id) else {
                    return Err(FormatError::Syntax {
                        line: at.0,
                        column: at.1,
                        message: "alias to an unknown anchor".into(),
                    });
                };
                let weight = *weight;
                // Checked before copying: the copy is what costs.
                self.count(weight, true, at)?;
                match self.anchors.get(&id) {
                    Some((v, _)) => (v.clone(), weight),
                    None => return Ok(false),
                }
            }
            Event::DocumentEnd => return Ok(self.result.is_some()),
            _ => return Ok(false),
        };
        self.push(value, weight, at)?;
        Ok(false)
    }

    /// A collection starts: one more level, one more value.
    fn open(&mut self, at: (usize, usize)) -> Result<(), FormatError> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(too_deep(at.0, at.1));
        }
        self.count(1, false, at)
    }

    /// go-yaml's check, run as values are decoded.
    fn count(&mut self, weight: u64, alias: bool, at: (usize, usize)) -> Result<(), FormatError> {
        self.decoded = self.decoded.saturating_add(weight);
        if alias {
            self.aliased = self.aliased.saturating_add(weight);
        }
        if self.aliased > 100
            && self.decoded > 1000
            && self.aliased as f64 / self.decoded as f64 > allowed_alias_ratio(self.decoded)
        {
            return Err(FormatError::Unsupported {
                line: at.0,
                column: at.1,
                message: format!(
                    "the document contains excessive aliasing: its aliases expand to {} values \
                     from {} written out, more than go-yaml's alias budget allows; write the \
                     shared values out or use fewer aliases",
                    self.aliased,
                    self.decoded - self.aliased
                ),
            });
        }
        Ok(())
    }

    fn anchored(&mut self, v: Value, anchor: usize, weight: u64) -> Value {
        if anchor != 0 {
            self.anchors.insert(anchor, (v.clone(), weight));
        }
        v
    }

    fn push(&mut self, v: Value, weight: u64, at: (usize, usize)) -> Result<(), FormatError> {
        match self.stack.last_mut() {
            None => self.result = Some(v),
            Some(Frame::List {
                items,
                weight: total,
                ..
            }) => {
                *total = total.saturating_add(weight);
                items.push(v);
            }
            Some(Frame::Map {
                entries,
                keys,
                pending,
                weight: total,
                ..
            }) => {
                *total = total.saturating_add(weight);
                match pending.take() {
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
                                if keys.insert(mk.clone()) {
                                    entries.push((mk, mv));
                                }
                            }
                        }
                    }
                    Some(k) => {
                        keys.insert(k.clone());
                        entries.push((k, v));
                    }
                }
            }
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
