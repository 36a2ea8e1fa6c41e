//! The INI store (sops-format-spec §5.4): the sops-compatible subset.
//!
//! sops reads INI through go-ini: the tree is `section → {key: string}`, keys
//! before the first section header live in section `DEFAULT` (written without a
//! header), comments (`;` or `#` lines, text trimmed) belong to the section of the
//! next key or header, and the metadata is a `[sops]` section of flattened keys
//! ([`super::flat`]). go-ini also strips quotes, cuts inline comments, joins lines
//! ending in `\`, accepts `:` as the delimiter and drops comments after the last
//! key; sops would decrypt such a file to something else than was encrypted, so
//! those are refused with a clear error instead of being normalized silently.
//!
//! Values (without the padding around `=`) and comment texts are replaced in
//! place; everything else stays byte for byte.

use zeroize::Zeroizing;

use super::flat::{self, FlatLine};
use super::{
    Comment, Document, Edit, Entry, FormatError, Leaf, LeafContext, Map, MapItem, Node, Scalar,
    Span, Store, Style, Value,
};

/// The INI store.
pub struct IniStore;

/// The section of keys written before any header.
const DEFAULT: &str = "DEFAULT";
/// The metadata section.
const SOPS: &str = "sops";

/// The lines of `src`: (start, end without the line break).
/// A UTF-8 byte order mark at the start is skipped, as go-ini skips it.
fn lines(src: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = if src.starts_with('\u{feff}') { 3 } else { 0 };
    while start < src.len() {
        let nl = src[start..].find('\n').map_or(src.len(), |i| start + i);
        let end = if nl > start && src.as_bytes()[nl - 1] == b'\r' {
            nl - 1
        } else {
            nl
        };
        out.push((start, end));
        start = nl + 1;
    }
    out
}

/// `range` of `src` without surrounding spaces and tabs.
fn trimmed(src: &str, start: usize, end: usize) -> (usize, usize) {
    let text = &src[start..end];
    let lead = text.len() - text.trim_start_matches([' ', '\t']).len();
    let trail = text.len() - text.trim_end_matches([' ', '\t']).len();
    if lead == text.len() {
        (start, start)
    } else {
        (start + lead, end - trail)
    }
}

struct Section {
    name: String,
    name_span: Span,
    line: usize,
    items: Vec<MapItem>,
    start: usize,
    end: usize,
}

fn err(line: usize, column: usize, message: impl Into<String>) -> FormatError {
    FormatError::Unsupported {
        line,
        column,
        message: message.into(),
    }
}

impl Store for IniStore {
    fn parse(&self, src: &str) -> Result<Document, FormatError> {
        let mut sections: Vec<Section> = vec![Section {
            name: DEFAULT.to_string(),
            name_span: 0..0,
            line: 1,
            items: Vec::new(),
            start: 0,
            end: 0,
        }];
        let mut pending: Vec<Comment> = Vec::new();
        let mut meta: Vec<FlatLine> = Vec::new();
        let mut in_sops = false;
        let mut sops_start: Option<(usize, usize)> = None;
        let mut seen_keys: std::collections::HashSet<(String, String)> =
            std::collections::HashSet::new();
        for (index, &(line_start, line_end)) in lines(src).iter().enumerate() {
            let line = index + 1;
            let (start, end) = trimmed(src, line_start, line_end);
            let text = &src[start..end];
            let column = start - line_start + 1;
            if text.is_empty() {
                continue;
            }
            if text.starts_with(';') || text.starts_with('#') {
                let (cs, ce) = trimmed(src, start + 1, end);
                pending.push(Comment {
                    text: Zeroizing::new(src[cs..ce].to_string()),
                    span: cs..ce,
                    line,
                });
                continue;
            }
            if text.starts_with('[') {
                let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']')) else {
                    return Err(err(
                        line,
                        column,
                        "a section header must be `[name]` alone on its line",
                    ));
                };
                let name = inner.trim_matches([' ', '\t']);
                if name.is_empty() || name.contains(['[', ']']) {
                    return Err(err(
                        line,
                        column,
                        "a section name must not be empty or contain brackets",
                    ));
                }
                if name == DEFAULT {
                    let default = &sections[0];
                    if sections.len() > 1 || !default.items.is_empty() {
                        return Err(err(
                            line,
                            column,
                            "a [DEFAULT] header after keys outside any section or after another \
                             section: go-ini merges them and sops would reorder the file",
                        ));
                    }
                    sections[0].name_span = start + 1..end - 1;
                    sections[0].line = line;
                    sections[0].items.append(&mut comments(&mut pending));
                    continue;
                }
                if in_sops || name == SOPS && sops_start.is_some() {
                    return Err(err(
                        line,
                        column,
                        "the [sops] metadata section must come last, once",
                    ));
                }
                if name == SOPS {
                    if !pending.is_empty() {
                        return Err(err(
                            line,
                            column,
                            "comments before the [sops] section are not supported",
                        ));
                    }
                    in_sops = true;
                    sops_start = Some((line_start, line));
                    continue;
                }
                let (ns, ne) = trimmed(src, start + 1, end - 1);
                sections.push(Section {
                    name: name.to_string(),
                    name_span: ns..ne,
                    line,
                    items: comments(&mut pending),
                    start: line_start,
                    end: line_end,
                });
                continue;
            }
            let Some(eq) = text.find('=') else {
                return Err(err(
                    line,
                    column,
                    "expected `key = value`: this line has no `=` (go-ini: \"key-value delimiter \
                     not found\")",
                ));
            };
            let (ks, ke) = trimmed(src, start, start + eq);
            let key = &src[ks..ke];
            if key.is_empty() {
                return Err(err(line, column, "a key must not be empty"));
            }
            if key.contains(':') || key.starts_with(['"', '\'', '`']) {
                return Err(err(
                    line,
                    column,
                    "keys with `:` or quotes are read differently by go-ini (sops); not supported",
                ));
            }
            let (vs, ve) = trimmed(src, start + eq + 1, end);
            let value = &src[vs..ve];
            if in_sops {
                meta.push(FlatLine {
                    key: key.to_string(),
                    value: value.to_string(),
                    span: vs..ve,
                    line,
                    column: vs - line_start + 1,
                });
                continue;
            }
            if value.starts_with(['"', '\'', '`'])
                || value.contains([';', '#'])
                || value.ends_with('\\')
            {
                return Err(err(
                    line,
                    vs - line_start + 1,
                    "go-ini (and so sops) strips quotes, cuts `;`/`#` inline comments and joins \
                     lines ending in `\\`, so this value would not decrypt to what was \
                     encrypted; not supported",
                ));
            }
            let section = sections
                .last_mut()
                .ok_or_else(|| err(line, column, "internal"))?;
            let id = (section.name.clone(), key.to_string());
            if !seen_keys.insert(id) {
                return Err(err(
                    line,
                    column,
                    format!(
                        "duplicate key {key:?} in section [{}]: go-ini (and so sops) keeps only one",
                        section.name
                    ),
                ));
            }
            section.items.append(&mut comments(&mut pending));
            section.items.push(MapItem::Entry(Entry {
                key: key.to_string(),
                key_span: ks..ke,
                value: Node::Leaf(Leaf {
                    value: Scalar::Str(Zeroizing::new(value.to_string())),
                    span: vs..ve,
                    style: Style::Plain,
                    line,
                    column: vs - line_start + 1,
                    context: LeafContext::default(),
                }),
                span: ks..ve,
                line,
            }));
            section.end = line_end;
        }
        if let Some(c) = pending.first() {
            return Err(err(
                c.line,
                1,
                "a comment after the last key: go-ini (and so sops) drops it; not supported",
            ));
        }
        if in_sops && meta.is_empty() {
            return Err(err(0, 0, "the [sops] section is empty"));
        }
        let mut items: Vec<MapItem> = sections
            .into_iter()
            .filter(|s| s.name != DEFAULT || !s.items.is_empty())
            .map(|s| {
                MapItem::Entry(Entry {
                    key: s.name,
                    key_span: s.name_span,
                    value: Node::Map(Map {
                        items: s.items,
                        flow: false,
                        span: s.start..s.end,
                    }),
                    span: s.start..s.end,
                    line: s.line,
                })
            })
            .collect();
        if let Some((start, line)) = sops_start {
            items.push(MapItem::Entry(flat::unflatten(
                &meta,
                start..src.len(),
                line,
            )?));
        }
        Ok(Document {
            docs: vec![Map {
                items,
                flow: false,
                span: 0..src.len(),
            }],
            newline: if src.contains("\r\n") { "\r\n" } else { "\n" },
        })
    }

    fn encrypted_leaf(&self, _leaf: &Leaf, enc: &str) -> String {
        enc.to_string()
    }

    fn plain_leaf(&self, _leaf: &Leaf, value: &Scalar, _spelling: &str) -> String {
        match value {
            Scalar::Str(s) => s.to_string(),
            other => String::from_utf8_lossy(&crate::sops::plaintext::canonical_bytes(other))
                .into_owned(),
        }
    }

    fn list_comment(&self, _src: &str, _leaf: &Leaf, _text: &str) -> Option<Edit> {
        None
    }

    fn insert_metadata(&self, src: &str, doc: &Document, meta: &Value) -> Vec<Edit> {
        let nl = doc.newline;
        let pairs = flat::flatten(meta);
        let width = pairs
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        let mut block = format!("[{SOPS}]");
        for (k, v) in pairs {
            let pad = width - k.chars().count();
            block.push_str(&format!("{nl}{k}{} = {v}", " ".repeat(pad)));
        }
        let text = if src.is_empty() {
            format!("{block}{nl}")
        } else if src.ends_with('\n') {
            format!("{nl}{block}{nl}")
        } else {
            format!("{nl}{nl}{block}")
        };
        vec![Edit::insert(src.len(), text)]
    }

    fn remove_metadata(&self, src: &str, _doc: &Document) -> Vec<Edit> {
        let all = lines(src);
        let Some(pos) = all.iter().position(|&(s, e)| {
            let (s, e) = trimmed(src, s, e);
            src[s..e]
                .strip_prefix('[')
                .and_then(|t| t.strip_suffix(']'))
                .map(|t| t.trim_matches([' ', '\t']))
                == Some(SOPS)
        }) else {
            return Vec::new();
        };
        let header = all[pos].0;
        let end = all[pos + 1..]
            .iter()
            .find(|&&(s, e)| {
                let (s, e) = trimmed(src, s, e);
                src[s..e].starts_with('[')
            })
            .map_or(src.len(), |&(s, _)| s);
        let mut start = header;
        let before = &src[..start];
        // The blank line sops (and insertion) puts before the section.
        for blank in ["\r\n\r\n", "\n\n"] {
            if before.ends_with(blank) {
                start -= blank.len() / 2;
                break;
            }
        }
        if end == src.len() && !src.ends_with('\n') && start > 0 {
            // The file had no final newline: take the line break added before the block.
            start -= if src[..start].ends_with("\r\n") { 2 } else { 1 };
        }
        vec![Edit::replace(start..end, "")]
    }
}

/// Take the pending comments as map items.
fn comments(pending: &mut Vec<Comment>) -> Vec<MapItem> {
    pending.drain(..).map(MapItem::Comment).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::{apply_edits, find_entry};

    fn parse(src: &str) -> Document {
        IniStore.parse(src).unwrap()
    }

    /// (section, key, value, span text) for every leaf, and comment texts as ("#", text).
    fn shape(src: &str) -> Vec<(String, String, String)> {
        let doc = parse(src);
        let mut out = Vec::new();
        for item in &doc.docs[0].items {
            let MapItem::Entry(section) = item else {
                continue;
            };
            if section.key == SOPS {
                continue;
            }
            let Node::Map(m) = &section.value else {
                continue;
            };
            for i in &m.items {
                match i {
                    MapItem::Entry(Entry {
                        key,
                        value: Node::Leaf(l),
                        ..
                    }) => {
                        let Scalar::Str(s) = &l.value else { panic!() };
                        assert_eq!(&src[l.span.clone()], s.as_str());
                        out.push((section.key.clone(), key.clone(), s.to_string()));
                    }
                    MapItem::Comment(c) => {
                        assert_eq!(&src[c.span.clone()], c.text.as_str());
                        out.push((section.key.clone(), "#".into(), c.text.to_string()));
                    }
                    _ => {}
                }
            }
        }
        out
    }

    fn t(a: &str, b: &str, c: &str) -> (String, String, String) {
        (a.into(), b.into(), c.into())
    }

    fn meta() -> Value {
        Value::Map(vec![
            (
                "lastmodified".into(),
                Value::Str("2026-01-01T00:00:00Z".into()),
            ),
            ("mac".into(), Value::Str("ENC[x]".into())),
            (
                "age".into(),
                Value::List(vec![Value::Map(vec![
                    ("recipient".into(), Value::Str("age1xyz".into())),
                    ("enc".into(), Value::Str("a\nb\n".into())),
                ])]),
            ),
            ("version".into(), Value::Str("3.11.0".into())),
        ])
    }

    fn insert(src: &str) -> String {
        let doc = parse(src);
        apply_edits(src, IniStore.insert_metadata(src, &doc, &meta()))
            .unwrap()
            .to_string()
    }

    fn remove(src: &str) -> String {
        let doc = parse(src);
        apply_edits(src, IniStore.remove_metadata(src, &doc))
            .unwrap()
            .to_string()
    }

    #[test]
    fn sections_keys_default_and_comments() {
        let src = "top = 1\n; c1\n[s1]\n# c2\nk1 = v1\n  k2=v2  \nempty =\n[ s2 ]\r\nx = y z\r\n";
        assert_eq!(
            shape(src),
            vec![
                t("DEFAULT", "top", "1"),
                t("s1", "#", "c1"),
                t("s1", "#", "c2"),
                t("s1", "k1", "v1"),
                t("s1", "k2", "v2"),
                t("s1", "empty", ""),
                t("s2", "x", "y z"),
            ]
        );
    }

    #[test]
    fn refuses_what_go_ini_reads_differently() {
        for (src, line) in [
            ("[s]\nk = \"q\"\n", 2),
            ("[s]\nk = a ; c\n", 2),
            ("[s]\nk = a \\\n", 2),
            ("[s]\nk: v\n", 2),
            ("[s]\nk\n", 2),
            ("[s]\nk = 1\nk = 2\n", 3),
            ("[s]\nk = v\n; trailing\n", 3),
            ("a = 1\n[DEFAULT]\n", 2),
            ("[s\n", 1),
        ] {
            match IniStore.parse(src) {
                Err(FormatError::Unsupported { line: l, .. }) => assert_eq!(l, line, "{src:?}"),
                other => panic!("{src:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_bom_is_skipped_as_go_ini_does() {
        assert_eq!(shape("\u{feff}[s]\nk = v\n"), vec![t("s", "k", "v")]);
    }

    #[test]
    fn duplicate_sections_are_kept() {
        assert_eq!(shape("[s]\nk = v\n[s]\nj = w\n").len(), 2);
    }

    #[test]
    fn metadata_section_is_written_like_go_ini() {
        assert_eq!(
            insert("[s]\nk = v\n"),
            "[s]\nk = v\n\n[sops]\n\
             age__list_0__map_enc       = a\\nb\\n\n\
             age__list_0__map_recipient = age1xyz\n\
             lastmodified               = 2026-01-01T00:00:00Z\n\
             mac                        = ENC[x]\n\
             version                    = 3.11.0\n"
        );
    }

    #[test]
    fn metadata_reads_back() {
        let out = insert("[s]\nk = v\n");
        let doc = parse(&out);
        let v = Value::from_node(&find_entry(&doc.docs[0], "sops").unwrap().value);
        assert_eq!(v.get("version"), Some(&Value::Str("3.11.0".into())));
        let Some(Value::List(age)) = v.get("age") else {
            panic!()
        };
        assert_eq!(age[0].get("enc"), Some(&Value::Str("a\nb\n".into())));
        // The metadata keys are not data.
        assert_eq!(shape(&out), vec![t("s", "k", "v")]);
    }

    #[test]
    fn insert_then_remove_is_identity() {
        for src in [
            "",
            "\n",
            "[s]\nk = v\n",
            "[s]\nk = v",
            "a=1\r\n[s]\r\nk = v\r\n",
            "k = v\n\n",
        ] {
            let with = insert(src);
            assert_eq!(remove(&with), src, "{src:?}");
        }
    }

    #[test]
    fn removes_sops_written_metadata() {
        let src = "[s]\nk = x\n\n[sops]\nversion = 3.11.0\nmac     = y\n";
        assert_eq!(remove(src), "[s]\nk = x\n");
    }
}
