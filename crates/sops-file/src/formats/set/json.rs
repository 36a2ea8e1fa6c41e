//! [`Store::put`](crate::formats::Store::put) and `take` for JSON: a new or
//! replaced value is written in the layout of the object or array it goes
//! into (its members' indentation and indentation unit, its `": "` and `, `
//! spacing, one line when it is on one line); a removed member takes its
//! separator with it.

use zeroize::Zeroizing;

use super::{entries, span_of, values, PutError, Slot};
use crate::formats::json::{indent_after_newline, inline_separator, json_float, json_string};
use crate::formats::{Document, Edit, Map, MapItem, Node, Scalar};

/// How a collection lays out its members.
struct Layout {
    nl: &'static str,
    /// Members on one line, separated by `comma`.
    compact: bool,
    /// Indentation of the collection's members (multi-line).
    member: String,
    /// One level of indentation (multi-line).
    unit: String,
    colon: String,
    comma: String,
}

/// The `": "` of the file: from the first member of the first object that has one.
fn file_colon(src: &str, doc: &Document) -> String {
    fn find(src: &str, map: &Map) -> Option<String> {
        let first = entries(map).next()?;
        src.get(first.key_span.end..span_of(&first.value).start)
            .and_then(|gap| inline_separator(gap, ':'))
    }
    doc.docs
        .first()
        .and_then(|root| find(src, root))
        .unwrap_or_else(|| ": ".into())
}

/// The layout of the collection spanning `span` whose members span `members`.
fn layout(
    src: &str,
    doc: &Document,
    span: &std::ops::Range<usize>,
    members: &[std::ops::Range<usize>],
) -> Layout {
    let colon = file_colon(src, doc);
    let line_indent = |at: usize| -> String {
        let start = super::line_start(src, at);
        src[start..]
            .chars()
            .take_while(|c| *c == ' ' || *c == '\t')
            .collect()
    };
    let compact = |comma: String| Layout {
        nl: doc.newline,
        compact: true,
        member: String::new(),
        unit: String::new(),
        colon: colon.clone(),
        comma,
    };
    let (Some(first), Some(last)) = (members.first(), members.last()) else {
        return compact(", ".into());
    };
    let opening = src.get(span.start + 1..first.start).unwrap_or("");
    match indent_after_newline(opening) {
        Some(member) => {
            let close = span.end.saturating_sub(1);
            let closing = src.get(last.end..close).unwrap_or("");
            let base = indent_after_newline(closing).unwrap_or_else(|| line_indent(span.start));
            let unit = member
                .strip_prefix(base.as_str())
                .filter(|u| !u.is_empty())
                .map_or_else(|| member.clone(), str::to_string);
            Layout {
                nl: doc.newline,
                compact: false,
                member,
                unit,
                colon,
                comma: ",".into(),
            }
        }
        None => {
            let comma = members
                .get(1)
                .and_then(|second| src.get(first.end..second.start))
                .and_then(|gap| inline_separator(gap, ','))
                .unwrap_or_else(|| if colon.ends_with(' ') { ", " } else { "," }.into());
            compact(comma)
        }
    }
}

impl Layout {
    /// Write `node`, whose first line sits at indentation `indent`.
    fn write(&self, out: &mut String, node: &Node, indent: &str) {
        match node {
            Node::Leaf(l) => out.push_str(&match &l.value {
                Scalar::Str(s) => Zeroizing::new(json_string(s)),
                Scalar::Time(t) => Zeroizing::new(json_string(t)),
                Scalar::Int(i) => Zeroizing::new(i.to_string()),
                Scalar::Float(f) => Zeroizing::new(json_float(*f)),
                Scalar::Bool(b) => Zeroizing::new(b.to_string()),
                Scalar::Null => Zeroizing::new("null".to_string()),
            }),
            Node::Map(m) => {
                let members: Vec<_> = entries(m).collect();
                if members.is_empty() {
                    out.push_str("{}");
                    return;
                }
                out.push('{');
                let inner = format!("{indent}{}", self.unit);
                for (i, e) in members.iter().enumerate() {
                    self.separator(out, i, &inner);
                    out.push_str(&json_string(&e.key));
                    out.push_str(&self.colon);
                    self.write(out, &e.value, &inner);
                }
                self.close(out, indent);
                out.push('}');
            }
            Node::List(l) => {
                let items: Vec<_> = values(l).collect();
                if items.is_empty() {
                    out.push_str("[]");
                    return;
                }
                out.push('[');
                let inner = format!("{indent}{}", self.unit);
                for (i, item) in items.iter().enumerate() {
                    self.separator(out, i, &inner);
                    self.write(out, item, &inner);
                }
                self.close(out, indent);
                out.push(']');
            }
        }
    }

    fn separator(&self, out: &mut String, index: usize, indent: &str) {
        if self.compact {
            if index > 0 {
                out.push_str(&self.comma);
            }
        } else {
            if index > 0 {
                out.push(',');
            }
            out.push_str(self.nl);
            out.push_str(indent);
        }
    }

    fn close(&self, out: &mut String, indent: &str) {
        if !self.compact {
            out.push_str(self.nl);
            out.push_str(indent);
        }
    }

    /// What goes before a new member after the last one.
    fn next_member(&self) -> String {
        if self.compact {
            self.comma.clone()
        } else {
            format!(",{}{}", self.nl, self.member)
        }
    }
}

fn member_spans(slot: &Slot<'_>) -> (std::ops::Range<usize>, Vec<std::ops::Range<usize>>) {
    match slot {
        Slot::Entry { map, .. } | Slot::NewEntry { map, .. } => (
            map.span.clone(),
            entries(map).map(|e| e.span.clone()).collect(),
        ),
        Slot::Item { list, .. } | Slot::NewItem { list, .. } => {
            (list.span.clone(), values(list).map(span_of).collect())
        }
    }
}

pub(crate) fn put(
    src: &str,
    doc: &Document,
    slot: Slot<'_>,
    value: &Node,
) -> Result<Vec<Edit>, PutError> {
    let (span, members) = member_spans(&slot);
    let layout = layout(src, doc, &span, &members);
    let mut text = Zeroizing::new(String::new());
    let old = match slot {
        Slot::Entry { map, item, .. } => match map.items.get(item) {
            Some(MapItem::Entry(e)) => Some(span_of(&e.value)),
            _ => return Err(PutError::Layout("no such member".into())),
        },
        Slot::Item { list, item, .. } => match list.items.get(item) {
            Some(crate::formats::ListItem::Node(n)) => Some(span_of(n)),
            _ => return Err(PutError::Layout("no such item".into())),
        },
        Slot::NewEntry { key, .. } => {
            if !members.is_empty() {
                text.push_str(&layout.next_member());
            }
            text.push_str(&json_string(key));
            text.push_str(&layout.colon);
            None
        }
        Slot::NewItem { .. } => {
            if !members.is_empty() {
                text.push_str(&layout.next_member());
            }
            None
        }
    };
    layout.write(&mut text, value, &layout.member);
    match old {
        Some(old) => Ok(vec![Edit::replace(old, text.to_string())]),
        None => {
            let at = members.last().map_or(span.start + 1, |m| m.end);
            Ok(vec![Edit::insert(at, text.to_string())])
        }
    }
}

pub(crate) fn take(src: &str, slot: Slot<'_>) -> Result<Vec<Edit>, PutError> {
    let (span, members) = member_spans(&slot);
    let target = match slot {
        Slot::Entry { map, item, .. } => match map.items.get(item) {
            Some(MapItem::Entry(e)) => e.span.clone(),
            _ => return Err(PutError::Layout("no such member".into())),
        },
        Slot::Item { list, item, .. } => match list.items.get(item) {
            Some(crate::formats::ListItem::Node(n)) => span_of(n),
            _ => return Err(PutError::Layout("no such item".into())),
        },
        _ => return Err(PutError::Layout("nothing to remove".into())),
    };
    let index = members
        .iter()
        .position(|m| *m == target)
        .ok_or_else(|| PutError::Layout("no such member".into()))?;
    let range = if index > 0 {
        // `,<gap>member`: from the end of the one before.
        members[index - 1].end..target.end
    } else if let Some(next) = members.get(1) {
        target.start..next.start
    } else {
        // The only member: the collection becomes empty (`{}`, `[]`).
        span.start + 1..span.end.saturating_sub(1).max(span.start + 1)
    };
    let _ = src;
    Ok(vec![Edit::replace(range, "")])
}
