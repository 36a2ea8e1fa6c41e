//! [`Store::put`](crate::formats::Store::put) and `take` for the flat stores,
//! dotenv (`KEY=VALUE` lines) and INI (`[section]` and `key = value` lines):
//! what sops 3.11 can write into them, and where a new line goes.

use zeroize::Zeroizing;

use super::{after_line, entries, line_start, PutError, Slot};
use crate::formats::convert::val_to_string;
use crate::formats::ini::{write_key, write_value};
use crate::formats::{flat_metadata, Document, Edit, Map, MapItem, Node, Scalar};

/// The text a scalar VALUE becomes in a dotenv or INI file (sops'
/// `ValToString`), or why it cannot be one.
fn scalar_text(node: &Node, format: &str, key: &str) -> Result<Zeroizing<String>, PutError> {
    match node {
        Node::Leaf(l) if l.value == Scalar::Null => Err(PutError::Unsupported(format!(
            "{key:?}: a {format} file cannot hold null (sops writes `<nil>`, which no tool can decrypt); give it a value or unset it"
        ))),
        Node::Leaf(l) => Ok(Zeroizing::new(val_to_string(&l.value))),
        _ => Err(PutError::Unsupported(format!(
            "cannot use complex value in {format} file; offending key {key} (sops: \"Could not marshal tree\")"
        ))),
    }
}

fn entry_key(map: &Map, item: usize) -> Result<&crate::formats::Entry, PutError> {
    match map.items.get(item) {
        Some(MapItem::Entry(e)) => Ok(e),
        _ => Err(PutError::Layout("no such entry".into())),
    }
}

/// Insert a line at the end of `src`, keeping a missing final newline missing.
fn append_line(src: &str, line: &str, nl: &str) -> Edit {
    if src.is_empty() || src.ends_with('\n') {
        Edit::insert(src.len(), format!("{line}{nl}"))
    } else {
        Edit::insert(src.len(), format!("{nl}{line}"))
    }
}

/// Remove the lines from the one holding `start` to the one holding `end`;
/// at the end of a file without a final newline, the break before them.
fn remove_lines(src: &str, start: usize, end: usize) -> Edit {
    let from = line_start(src, start);
    let to = after_line(src, end);
    if to == src.len() && !src.ends_with('\n') && from > 0 {
        let back = if src[..from].ends_with("\r\n") { 2 } else { 1 };
        return Edit::replace(from - back..to, "");
    }
    Edit::replace(from..to, "")
}

pub(crate) fn dotenv_put(src: &str, slot: Slot<'_>, value: &Node) -> Result<Vec<Edit>, PutError> {
    match slot {
        Slot::Entry {
            map,
            item,
            depth: 0,
        } => {
            let entry = entry_key(map, item)?;
            let Node::Leaf(old) = &entry.value else {
                return Err(PutError::Layout("a dotenv value is a line".into()));
            };
            let text = scalar_text(value, "dotenv", &entry.key)?;
            Ok(vec![Edit::replace(
                old.span.clone(),
                flat_metadata::escape(&text),
            )])
        }
        Slot::NewEntry { key, depth: 0, .. } => {
            let text = scalar_text(value, "dotenv", key)?;
            if key.is_empty() || key.contains(['=', '\n']) || key.starts_with('#') {
                return Err(PutError::Unsupported(format!(
                    "{key:?} cannot be a dotenv key (a key is the text before the first `=` of a line, not empty, not starting with `#`)"
                )));
            }
            if key.starts_with("sops_") {
                return Err(PutError::Unsupported(format!(
                    "{key:?}: dotenv keys starting with sops_ hold the file's metadata"
                )));
            }
            let line = Zeroizing::new(format!("{key}={}", flat_metadata::escape(&text)));
            Ok(vec![append_line(src, &line, "\n")])
        }
        Slot::Entry { map, item, .. } => {
            let key = entry_key(map, item)
                .map(|e| e.key.clone())
                .unwrap_or_default();
            Err(PutError::Unsupported(format!(
                "cannot use complex value in dotenv file; offending key {key}"
            )))
        }
        Slot::NewEntry { key, .. } => Err(PutError::Unsupported(format!(
            "cannot use complex value in dotenv file; offending key {key}"
        ))),
        Slot::Item { .. } | Slot::NewItem { .. } => {
            Err(PutError::Unsupported("a dotenv file holds no lists".into()))
        }
    }
}

pub(crate) fn dotenv_take(src: &str, slot: Slot<'_>) -> Result<Vec<Edit>, PutError> {
    match slot {
        Slot::Entry {
            map,
            item,
            depth: 0,
        } => {
            let entry = entry_key(map, item)?;
            Ok(vec![remove_lines(src, entry.span.start, entry.span.end)])
        }
        _ => Err(PutError::Layout("a dotenv file is flat".into())),
    }
}

/// The `key = value` lines of a new INI section's (or a replaced one's) keys.
fn ini_lines(value: &Node, section: &str, nl: &str) -> Result<Zeroizing<String>, PutError> {
    let Node::Map(map) = value else {
        return Err(PutError::Unsupported(format!(
            "[{section}]: every top-level value of an INI file is a section, a map of keys (sops: \"Section values should always be TreeBranches\")"
        )));
    };
    let mut out = Zeroizing::new(String::new());
    for e in entries(map) {
        let line = ini_line(&e.key, &e.value, section)?;
        if !out.is_empty() {
            out.push_str(nl);
        }
        out.push_str(&line);
    }
    Ok(out)
}

fn ini_line(key: &str, value: &Node, section: &str) -> Result<Zeroizing<String>, PutError> {
    if key.is_empty() || key.contains(['\n', '\r']) || key.starts_with(['[', ';', '#']) {
        return Err(PutError::Unsupported(format!(
            "[{section}] {key:?} cannot be an INI key"
        )));
    }
    let text = match value {
        Node::Leaf(_) => scalar_text(value, "INI", key)?,
        _ => {
            return Err(PutError::Unsupported(format!(
                "[{section}] {key}: INI values are text, and this one is a map or a list (sops would write Go's debug form of it, which no tool reads back)"
            )))
        }
    };
    Ok(Zeroizing::new(format!(
        "{} = {}",
        write_key(key),
        write_value(&text)
    )))
}

fn check_section_name(name: &str) -> Result<(), PutError> {
    if name.is_empty() || name.contains([']', '\n', '\r']) {
        return Err(PutError::Unsupported(format!(
            "{name:?} cannot be an INI section name"
        )));
    }
    Ok(())
}

/// Has this section a `[name]` header line (`DEFAULT` usually has none)?
fn has_header(src: &str, section: &crate::formats::Entry) -> bool {
    !section.key_span.is_empty()
        && src[line_start(src, section.key_span.start)..section.key_span.start]
            .trim_start()
            .starts_with('[')
}

pub(crate) fn ini_put(
    src: &str,
    doc: &Document,
    slot: Slot<'_>,
    value: &Node,
) -> Result<Vec<Edit>, PutError> {
    let nl = doc.newline;
    match slot {
        // A whole section: its keys replace the old ones (and their comments).
        Slot::Entry {
            map,
            item,
            depth: 0,
        } => {
            let section = entry_key(map, item)?;
            let lines = ini_lines(value, &section.key, nl)?;
            let Node::Map(keys) = &section.value else {
                return Err(PutError::Layout("a section is a map".into()));
            };
            let header = has_header(src, section);
            let body_start = if header {
                after_line(src, section.key_span.start)
            } else {
                keys.span.start
            };
            let body_end = keys.span.end;
            if body_end < body_start {
                // A header alone: the keys go after it.
                if lines.is_empty() {
                    return Ok(Vec::new());
                }
                return Ok(vec![Edit::insert(body_end, format!("{nl}{}", &*lines))]);
            }
            Ok(vec![Edit::replace(body_start..body_end, lines.to_string())])
        }
        Slot::NewEntry { key, depth: 0, .. } => {
            check_section_name(key)?;
            let lines = ini_lines(value, key, nl)?;
            if key == "DEFAULT" {
                // Keys outside any section: at the top, without a header.
                if lines.is_empty() {
                    return Ok(Vec::new());
                }
                let gap = if src.trim().is_empty() { "" } else { nl };
                return Ok(vec![Edit::insert(0, format!("{}{nl}{gap}", &*lines))]);
            }
            let mut block = format!("[{key}]");
            if !lines.is_empty() {
                block.push_str(nl);
                block.push_str(&lines);
            }
            let text = if src.trim().is_empty() {
                format!("{block}{nl}")
            } else if src.ends_with('\n') {
                format!("{nl}{block}{nl}")
            } else {
                format!("{nl}{nl}{block}")
            };
            Ok(vec![Edit::insert(src.len(), text)])
        }
        Slot::Entry {
            map,
            item,
            depth: 1,
        } => {
            let entry = entry_key(map, item)?;
            let Node::Leaf(old) = &entry.value else {
                return Err(PutError::Layout("an INI value is text".into()));
            };
            let section = section_name(doc, map);
            let line = ini_line(&entry.key, value, &section)?;
            // Only the value changes: keep the key and the padding around `=`.
            let text = match value {
                Node::Leaf(_) => write_value(&scalar_text(value, "INI", &entry.key)?),
                _ => line.to_string(),
            };
            Ok(vec![Edit::replace(old.span.clone(), text)])
        }
        Slot::NewEntry { map, key, depth: 1 } => {
            let section = section_name(doc, map);
            let line = ini_line(key, value, &section)?;
            Ok(vec![Edit::insert(map.span.end, format!("{nl}{}", &*line))])
        }
        Slot::Entry { .. } | Slot::NewEntry { .. } => Err(PutError::Unsupported(
            "an INI file holds sections of keys, nothing deeper".into(),
        )),
        Slot::Item { .. } | Slot::NewItem { .. } => {
            Err(PutError::Unsupported("an INI file holds no lists".into()))
        }
    }
}

/// The name of the section whose map is `map`.
fn section_name(doc: &Document, map: &Map) -> String {
    doc.docs
        .first()
        .and_then(|root| {
            entries(root).find(|e| matches!(&e.value, Node::Map(m) if std::ptr::eq(m, map)))
        })
        .map(|e| e.key.clone())
        .unwrap_or_default()
}

pub(crate) fn ini_take(src: &str, slot: Slot<'_>) -> Result<Vec<Edit>, PutError> {
    let Slot::Entry { map, item, depth } = slot else {
        return Err(PutError::Layout("an INI file holds no lists".into()));
    };
    let entry = entry_key(map, item)?;
    // go-ini gives the comments before a key or header to it: they go too (a
    // comment left after the last key would not read back).
    let mut first = item;
    while first > 0 && matches!(map.items[first - 1], MapItem::Comment(_)) {
        first -= 1;
    }
    let comment_start = match map.items.get(first) {
        Some(MapItem::Comment(c)) if first < item => Some(c.span.start),
        _ => None,
    };
    match depth {
        0 => {
            let Node::Map(keys) = &entry.value else {
                return Err(PutError::Layout("a section is a map".into()));
            };
            // Comments before the header are the section's first items.
            let header_comment = keys.items.iter().find_map(|i| match i {
                MapItem::Comment(c) if c.line < entry.line => Some(c.span.start),
                _ => None,
            });
            let start = [Some(entry.span.start), header_comment]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(entry.span.start);
            let end = keys.span.end.max(entry.span.end);
            Ok(vec![remove_lines(src, start, end)])
        }
        _ => {
            let start = comment_start.unwrap_or(entry.span.start);
            Ok(vec![remove_lines(src, start, entry.span.end)])
        }
    }
}
