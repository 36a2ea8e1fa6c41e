//! The dotenv store (docs/sops-format.md §5.3).
//!
//! sops splits the file on `\n` (a `\r` stays part of the line), drops empty lines,
//! takes a line starting with `#` as a comment (its text is the rest of the line)
//! and every other line as `KEY=VALUE`: the key is every byte before the first `=`
//! (so `export A` and `A ` are keys), the value every byte after it, verbatim. The
//! two characters `\n` in a value stand for a newline. Every value is a string.
//! Keys starting with `sops_` hold the flattened metadata ([`super::flat_metadata`]); they
//! are presented as one top-level `sops` map.
//!
//! Values and comments are replaced in place; blank lines and everything else stay
//! as they are. Duplicate keys are kept, in order, as sops keeps them.

use zeroize::Zeroizing;

use super::flat_metadata::{self, FlatLine};
use super::Comment;
use super::{
    Document, Edit, Entry, FormatError, Leaf, LeafContext, Map, MapItem, Node, Scalar, Store,
    Style, Value,
};

/// The dotenv store.
pub(crate) struct DotenvStore;

/// The prefix of metadata keys.
const PREFIX: &str = "sops_";

/// The lines of `src` as `(start, end)` byte offsets, without their `\n`.
fn lines(src: &str) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= src.len() {
            return None;
        }
        let end = src[start..].find('\n').map_or(src.len(), |i| start + i);
        let line = (start, end);
        start = end + 1;
        Some(line)
    })
}

impl Store for DotenvStore {
    fn parse(&self, src: &str) -> Result<Document, FormatError> {
        let mut items = Vec::new();
        let mut meta: Vec<FlatLine> = Vec::new();
        let mut meta_span: Option<(usize, usize, usize)> = None;
        let mut seen = std::collections::HashSet::new();
        let mut duplicate: Option<(usize, String)> = None;
        for (index, (start, end)) in lines(src).enumerate() {
            let line_no = index + 1;
            let text = &src[start..end];
            if text.is_empty() {
                continue;
            }
            if let Some(comment) = text.strip_prefix('#') {
                items.push(MapItem::Comment(Comment {
                    text: Zeroizing::new(comment.to_string()),
                    span: start + 1..end,
                    line: line_no,
                }));
                continue;
            }
            let Some(eq) = text.find('=') else {
                return Err(FormatError::Syntax {
                    line: line_no,
                    column: 1,
                    message: "a dotenv line must be KEY=VALUE or a # comment, and this one has \
                              no `=` (sops: \"invalid dotenv input line\")"
                        .to_string(),
                });
            };
            let key = &text[..eq];
            let value_span = start + eq + 1..end;
            if let Some(flat_key) = key.strip_prefix(PREFIX) {
                meta.push(FlatLine {
                    key: flat_key.to_string(),
                    value: src[value_span.clone()].to_string(),
                    span: value_span,
                    line: line_no,
                    column: eq + 2,
                });
                let first = meta_span.map_or((start, line_no), |(s, _, l)| (s, l));
                meta_span = Some((first.0, end, first.1));
                continue;
            }
            if !seen.insert(key) && duplicate.is_none() {
                duplicate = Some((line_no, key.to_string()));
            }
            let leaf = Leaf {
                value: Scalar::Str(Zeroizing::new(flat_metadata::unescape(
                    &src[value_span.clone()],
                ))),
                span: value_span,
                style: Style::Plain,
                line: line_no,
                column: eq + 2,
                context: LeafContext::default(),
            };
            items.push(MapItem::Entry(Entry {
                key: key.to_string(),
                key_span: start..start + eq,
                value: Node::Leaf(leaf),
                span: start..end,
                line: line_no,
            }));
        }
        // sops keeps duplicate keys (both encrypted under the same AAD), so an
        // encrypted file that has them is read as it is; a plaintext one is
        // refused: which value wins depends on the program that loads the file.
        if let (Some((line, key)), None) = (duplicate, meta_span) {
            return Err(FormatError::Unsupported {
                line,
                column: 1,
                message: format!(
                    "duplicate key {key:?}: dotenv loaders disagree on which value wins; \
                     remove one (sops would keep both)"
                ),
            });
        }
        if let Some((start, end, line)) = meta_span {
            items.push(MapItem::Entry(flat_metadata::unflatten(
                &meta,
                start..end,
                line,
            )?));
        }
        Ok(Document {
            docs: vec![Map {
                items,
                flow: false,
                span: 0..src.len(),
            }],
            newline: "\n",
            hollow: None,
        })
    }

    fn encrypted_leaf(&self, _leaf: &Leaf, enc: &str) -> String {
        enc.to_string()
    }

    fn plain_leaf(&self, _leaf: &Leaf, value: &Scalar, _spelling: &str) -> String {
        match value {
            Scalar::Str(s) => flat_metadata::escape(s),
            // A typed value comes from a file sops converted from YAML or JSON
            // (`--output-type dotenv`); sops prints it with its `ValToString`.
            other => super::convert::val_to_string(other),
        }
    }

    fn list_comment(&self, _src: &str, _leaf: &Leaf, _text: &str) -> Option<Edit> {
        None
    }

    fn insert_metadata(&self, src: &str, _doc: &Document, meta: &Value) -> Vec<Edit> {
        let block: String = flat_metadata::flatten(meta)
            .into_iter()
            .map(|(k, v)| format!("{PREFIX}{k}={v}\n"))
            .collect();
        let text = if src.is_empty() || src.ends_with('\n') {
            block
        } else {
            // Keep the missing final newline: removal takes this one away again.
            format!("\n{}", block.strip_suffix('\n').unwrap_or(&block))
        };
        vec![Edit::insert(src.len(), text)]
    }

    fn remove_metadata(&self, src: &str, _doc: &Document) -> Vec<Edit> {
        let mut edits = Vec::new();
        for (start, end) in lines(src) {
            if !src[start..end].starts_with(PREFIX) || !src[start..end].contains('=') {
                continue;
            }
            edits.push(Edit::replace(start..(end + 1).min(src.len()), ""));
        }
        let mut edits = merge(edits);
        // A block that ends the file without a final newline was preceded by one we
        // added (the file had none): take it away again.
        if let Some(last) = edits.last_mut() {
            if last.span.end == src.len()
                && !src.ends_with('\n')
                && last.span.start > 0
                && src.as_bytes()[last.span.start - 1] == b'\n'
            {
                last.span.start -= 1;
            }
        }
        edits
    }

    fn put(
        &self,
        src: &str,
        _doc: &Document,
        slot: super::set::Slot<'_>,
        value: &Node,
    ) -> Result<Vec<Edit>, super::set::PutError> {
        super::set::dotenv_put(src, slot, value)
    }

    fn take(
        &self,
        src: &str,
        _doc: &Document,
        slot: super::set::Slot<'_>,
    ) -> Result<Vec<Edit>, super::set::PutError> {
        super::set::dotenv_take(src, slot)
    }
}

/// Merge overlapping deletions (all edits are deletions, in order).
fn merge(edits: Vec<Edit>) -> Vec<Edit> {
    let mut out: Vec<Edit> = Vec::new();
    for e in edits {
        match out.last_mut() {
            Some(last) if e.span.start <= last.span.end => {
                last.span.end = last.span.end.max(e.span.end);
            }
            _ => out.push(e),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::formats::apply_edits;

    fn parse(src: &str) -> Document {
        DotenvStore.parse(src).unwrap()
    }

    fn entries(doc: &Document) -> Vec<(String, String, String)> {
        doc.docs[0]
            .items
            .iter()
            .filter_map(|i| match i {
                MapItem::Entry(Entry {
                    key,
                    value: Node::Leaf(l),
                    ..
                }) => match &l.value {
                    Scalar::Str(s) => Some((key.clone(), s.to_string(), l.span.start.to_string())),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    fn meta() -> Value {
        Value::Map(vec![
            (
                "age".into(),
                Value::List(vec![Value::Map(vec![
                    ("recipient".into(), Value::Str("age1xyz".into())),
                    (
                        "enc".into(),
                        Value::Str("-----BEGIN AGE-----\nabc\n-----END AGE-----\n".into()),
                    ),
                ])]),
            ),
            (
                "lastmodified".into(),
                Value::Str("2026-01-01T00:00:00Z".into()),
            ),
            ("mac".into(), Value::Str("ENC[x]".into())),
            (
                "unencrypted_suffix".into(),
                Value::Str("_unencrypted".into()),
            ),
            ("version".into(), Value::Str("3.11.0".into())),
        ])
    }

    fn insert(src: &str) -> String {
        let doc = parse(src);
        apply_edits(src, DotenvStore.insert_metadata(src, &doc, &meta()))
            .unwrap()
            .to_string()
    }

    fn remove(src: &str) -> String {
        let doc = parse(src);
        apply_edits(src, DotenvStore.remove_metadata(src, &doc))
            .unwrap()
            .to_string()
    }

    #[test]
    fn keys_values_and_spans_are_verbatim() {
        let src = "A=1\nexport B=\"q x\"\nE =v=w\n  S = x \nEMPTY=\nN=a\\nb\nC=x\r\n";
        let doc = parse(src);
        let got = entries(&doc);
        let keys: Vec<_> = got.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(keys, ["A", "export B", "E ", "  S ", "EMPTY", "N", "C"]);
        let values: Vec<_> = got.iter().map(|e| e.1.as_str()).collect();
        assert_eq!(values, ["1", "\"q x\"", "v=w", " x ", "", "a\nb", "x\r"]);
        for item in &doc.docs[0].items {
            if let MapItem::Entry(Entry {
                value: Node::Leaf(l),
                ..
            }) = item
            {
                assert_eq!(
                    &src[l.span.clone()],
                    flat_metadata::escape(match &l.value {
                        Scalar::Str(s) => s,
                        _ => unreachable!(),
                    })
                );
            }
        }
    }

    #[test]
    fn comments_blank_lines_and_duplicates() {
        let src = "# top\n\nA=1\n#\nA=2\nsops_version=3.11.0\n";
        let doc = parse(src);
        let items = &doc.docs[0].items;
        assert_eq!(items.len(), 5);
        match &items[0] {
            MapItem::Comment(c) => {
                assert_eq!(c.text.as_str(), " top");
                assert_eq!(&src[c.span.clone()], " top");
            }
            _ => panic!("expected a comment"),
        }
        assert_eq!(entries(&doc).len(), 2);
    }

    #[test]
    fn a_line_without_equals_is_an_error_with_its_line() {
        for (src, line) in [("A=1\nnoeq\n", 2), ("A=1\n\n   \n", 3), ("A=1\r\n\r\n", 2)] {
            match DotenvStore.parse(src) {
                Err(FormatError::Syntax {
                    line: l, message, ..
                }) => {
                    assert_eq!(l, line, "{src:?}");
                    assert!(message.contains("no `=`"));
                }
                other => panic!("{src:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn duplicate_keys_are_refused_in_plaintext_only() {
        match DotenvStore.parse("A=1\nB=2\nA=3\n") {
            Err(FormatError::Unsupported { line, message, .. }) => {
                assert_eq!(line, 3);
                assert!(message.contains("duplicate key \"A\""));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn empty_file_is_an_empty_map() {
        assert!(parse("").docs[0].items.is_empty());
        assert!(parse("\n\n").docs[0].items.is_empty());
    }

    #[test]
    fn metadata_is_flattened_exactly_as_sops() {
        let out = insert("A=1\n");
        assert_eq!(
            out,
            "A=1\n\
             sops_age__list_0__map_enc=-----BEGIN AGE-----\\nabc\\n-----END AGE-----\\n\n\
             sops_age__list_0__map_recipient=age1xyz\n\
             sops_lastmodified=2026-01-01T00:00:00Z\n\
             sops_mac=ENC[x]\n\
             sops_unencrypted_suffix=_unencrypted\n\
             sops_version=3.11.0\n"
        );
    }

    #[test]
    fn metadata_reads_back_as_a_nested_map() {
        let out = insert("A=1\n");
        let doc = parse(&out);
        let entry = crate::formats::find_entry(&doc.docs[0], "sops").unwrap();
        let value = Value::from_node(&entry.value);
        let mut expected = meta();
        // Read back in the sorted order of the flattened keys.
        if let Value::Map(m) = &mut expected {
            if let Some((_, Value::List(l))) = m.first_mut() {
                if let Some(Value::Map(k)) = l.first_mut() {
                    k.reverse();
                }
            }
        }
        assert_eq!(value, expected);
    }

    #[test]
    fn flattening_numbers_bools_nulls_and_groups() {
        let meta = Value::Map(vec![
            ("shamir_threshold".into(), Value::Int(2)),
            (
                "key_groups".into(),
                Value::List(vec![
                    Value::Map(vec![
                        ("hc_vault".into(), Value::List(vec![])),
                        (
                            "age".into(),
                            Value::List(vec![Value::Map(vec![(
                                "recipient".into(),
                                Value::Str("r".into()),
                            )])]),
                        ),
                    ]),
                    Value::Map(vec![("x".into(), Value::Null)]),
                ]),
            ),
            ("mac_only_encrypted".into(), Value::Bool(true)),
        ]);
        assert_eq!(
            flat_metadata::flatten(&meta),
            vec![
                (
                    "key_groups__list_0__map_age__list_0__map_recipient".to_string(),
                    "r".to_string()
                ),
                ("mac_only_encrypted".to_string(), "true".to_string()),
                ("shamir_threshold".to_string(), "2".to_string()),
            ]
        );
    }

    #[test]
    fn conflicting_metadata_keys_are_errors() {
        assert!(DotenvStore.parse("sops_a=1\nsops_a__map_b=2\n").is_err());
        assert!(DotenvStore.parse("sops_a=1\nsops_a=2\n").is_err());
        assert!(DotenvStore.parse("sops_a__bogus=1\n").is_err());
    }

    #[test]
    fn insert_then_remove_is_identity() {
        for src in [
            "",
            "A=1\n",
            "A=1",
            "# c\n\nA=1\n\n",
            "A=1\r\nB=2\r\n",
            "A=1\r\nB=2",
            "\n",
        ] {
            let with = insert(src);
            assert!(DotenvStore.parse(&with).is_ok());
            assert_eq!(remove(&with), src, "{src:?}");
        }
    }

    #[test]
    fn removes_metadata_written_by_sops() {
        let src = "A=1\nsops_version=3.11.0\nB=2\nsops_mac=x\n";
        assert_eq!(remove(src), "A=1\nB=2\n");
    }

    #[test]
    fn renders_newlines_escaped() {
        let leaf = Leaf {
            value: Scalar::Str(Zeroizing::new(String::new())),
            span: 0..0,
            style: Style::Plain,
            line: 1,
            column: 1,
            context: LeafContext::default(),
        };
        let v = Scalar::Str(Zeroizing::new("a\nb".to_string()));
        assert_eq!(DotenvStore.plain_leaf(&leaf, &v, "a\nb"), "a\\nb");
        assert_eq!(DotenvStore.encrypted_leaf(&leaf, "ENC[x]"), "ENC[x]");
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        fn line() -> impl Strategy<Value = String> {
            prop_oneof![
                "#[^\n]{0,12}",
                "[A-Za-z_ ][A-Za-z0-9_ .-]{0,8}=[^\n]{0,16}",
                Just(String::new()),
            ]
        }

        /// Lines with distinct keys (`K<i>` in front), none of them metadata.
        fn lines() -> impl Strategy<Value = Vec<String>> {
            proptest::collection::vec(line(), 0..8).prop_map(|ls| {
                ls.into_iter()
                    .enumerate()
                    .map(|(i, l)| {
                        if l.starts_with('#') || l.is_empty() {
                            l
                        } else {
                            format!("K{i}{l}")
                        }
                    })
                    .collect()
            })
        }

        proptest! {
            #[test]
            fn metadata_round_trips(lines in lines(),
                                    final_newline in any::<bool>()) {
                let mut src = lines.join("\n");
                if final_newline && !src.is_empty() {
                    src.push('\n');
                }
                let with = insert(&src);
                let doc = DotenvStore.parse(&with).unwrap();
                prop_assert!(crate::formats::find_entry(&doc.docs[0], "sops").is_some());
                prop_assert_eq!(remove(&with), src);
            }

            #[test]
            fn values_and_spans_agree(lines in lines()) {
                let src = lines.join("\n");
                let doc = DotenvStore.parse(&src).unwrap();
                for item in &doc.docs[0].items {
                    if let MapItem::Entry(Entry { value: Node::Leaf(l), .. }) = item {
                        if let Scalar::Str(s) = &l.value {
                            prop_assert_eq!(&src[l.span.clone()], flat_metadata::escape(s));
                        }
                    }
                }
            }
        }
    }
}
