//! Property tests over generated documents:
//!
//! * our encrypt → our decrypt gives the original bytes (YAML with comments,
//!   indentation styles, block scalars, quoting; JSON with several layouts),
//!   in-process through the library (`sops_file::file::seal` / `load` / `open`,
//!   what the binary calls), so many cases cost no process each;
//! * for a smaller number of cases (each case runs sops several times), sops 3.11
//!   decrypts the encryption of the real binary to the same tree as its own
//!   encryption of the input.
//!
//! Generated values avoid the spellings that legitimately come back normalised
//! (hex/octal ints, `.Inf`, timestamps, escapes in double quotes, folded scalars).

mod common;

use common::*;
use proptest::prelude::*;
use proptest::test_runner::Config;
use sops_file::datakey::DataKey;
use sops_file::encrypt::FreshIvs;
use sops_file::file;
use sops_file::formats::Format;
use sops_file::metadata::{MasterKey, Metadata};

// ---------------------------------------------------------------------------------
// YAML documents
// ---------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Node {
    /// A scalar, already spelled (plain, quoted, typed); `""` spells a null.
    Scalar(String),
    /// A literal block scalar: header (`|` or `|-`) and its lines.
    Block(&'static str, Vec<String>),
    Map(Vec<Entry>),
    List(Vec<Node>),
}

#[derive(Clone, Debug)]
struct Entry {
    key: String,
    value: Node,
    head_comment: Option<String>,
    inline_comment: Option<String>,
    blank_line_before: bool,
}

#[derive(Clone, Debug)]
struct YamlDoc {
    step: usize,
    indent_sequences: bool,
    header: Option<String>,
    root: Vec<Entry>,
    footer: Option<String>,
    final_newline: bool,
}

fn comment_text() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9 ,.:'-]{0,20}".prop_map(|s| format!("# {}", s.trim_end()))
}

fn yaml_scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-z][a-z0-9 _.-]{0,14}[a-z0-9]".prop_filter("no double space at ends", |s| !s.contains("  ")),
        1 => "[a-zA-Z0-9 ,:#'-]{0,14}".prop_map(|s| format!("'{}'", s.replace('\'', "''"))),
        1 => "[a-zA-Z0-9 ,:#'-]{0,14}".prop_map(|s| format!("\"{s}\"")),
        1 => prop::sample::select(vec!["héllo wörld", "日本語", "🔐 secret", "ключ", "'ünï'", "\"ça va\""]).prop_map(String::from),
        2 => any::<i64>().prop_map(|i| i.to_string()),
        1 => (-10_000i64..10_000).prop_map(|i| i.to_string()),
        2 => (any::<bool>(), 0u32..10_000, "[0-9]{1,4}").prop_map(|(neg, i, f)| format!("{}{i}.{f}", if neg { "-" } else { "" })),
        1 => (1u32..100, 0u32..12).prop_map(|(m, e)| format!("{m}e{e}")),
        // `True`/`False` come back lower-case (corpus: yaml-bool-title-case.yaml).
        1 => prop::sample::select(vec!["true", "false", "TRUE", "FALSE"]).prop_map(String::from),
        1 => prop::sample::select(vec!["null", "~", "", "\"\"", "''"]).prop_map(String::from),
    ]
}

fn yaml_key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => "[a-z][a-z0-9_]{0,9}".prop_filter("a string key", |k| !matches!(k.as_str(), "true" | "false" | "null")),
        1 => "[a-z][a-z0-9]{0,5}_unencrypted",
        1 => prop::sample::select(vec!["clé", "ключ", "\"quoted key\"", "'single key'", "with space"]).prop_map(String::from),
    ]
}

fn entry(value: impl Strategy<Value = Node>) -> impl Strategy<Value = Entry> {
    (
        yaml_key(),
        value,
        prop::option::weighted(0.25, comment_text()),
        prop::option::weighted(0.25, comment_text()),
        prop::bool::weighted(0.1),
    )
        .prop_map(
            |(key, value, head_comment, inline_comment, blank_line_before)| Entry {
                key,
                value,
                head_comment,
                inline_comment,
                blank_line_before,
            },
        )
}

fn dedup_keys(mut entries: Vec<Entry>) -> Vec<Entry> {
    let mut seen = std::collections::HashSet::new();
    entries.retain(|e| seen.insert(e.key.trim_matches(['"', '\'']).to_string()));
    entries
}

fn yaml_node() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        6 => yaml_scalar().prop_map(Node::Scalar),
        1 => (prop::sample::select(vec!["|", "|-"]), prop::collection::vec("[a-z][a-z ]{0,12}[a-z]", 1..4))
            .prop_map(|(h, lines)| Node::Block(h, lines)),
    ];
    leaf.prop_recursive(3, 24, 5, |inner| {
        prop_oneof![
            prop::collection::vec(entry(inner.clone()), 0..5).prop_map(|e| Node::Map(dedup_keys(e))),
            prop::collection::vec(
                prop_oneof![
                    3 => yaml_scalar().prop_map(Node::Scalar),
                    1 => prop::collection::vec(entry(inner), 1..4).prop_map(|e| Node::Map(dedup_keys(e))),
                ],
                0..4
            )
            .prop_map(Node::List),
        ]
    })
}

fn yaml_doc() -> impl Strategy<Value = YamlDoc> {
    (
        prop::sample::select(vec![2usize, 4]),
        any::<bool>(),
        prop::option::weighted(0.3, comment_text()),
        prop::collection::vec(entry(yaml_node()), 1..6),
        prop::option::weighted(0.3, comment_text()),
        prop::bool::weighted(0.9),
    )
        .prop_map(
            |(step, indent_sequences, header, root, footer, final_newline)| YamlDoc {
                step,
                indent_sequences,
                header,
                root: dedup_keys(root),
                footer,
                final_newline,
            },
        )
}

fn ends_with_block(entries: &[Entry]) -> bool {
    match entries.last().map(|e| &e.value) {
        Some(Node::Block(..)) => true,
        Some(Node::Map(m)) => ends_with_block(m),
        Some(Node::List(items)) => matches!(items.last(), Some(Node::Map(m)) if ends_with_block(m)),
        _ => false,
    }
}

impl YamlDoc {
    fn render(&self) -> String {
        let mut out = String::new();
        if let Some(h) = &self.header {
            out.push_str(h);
            out.push('\n');
        }
        self.map(&self.root, 0, &mut out);
        // A closing comment only with a final newline: without one, go-yaml attaches
        // it to the last nested map (corpus: yaml-no-final-newline-nested-comment.yaml).
        // Nor after a top-level sequence written at column 0
        // (corpus: yaml-comment-after-unindented-list-at-eof.yaml).
        let flush_list_last = !self.indent_sequences
            && matches!(self.root.last(), Some(Entry { value: Node::List(l), .. }) if !l.is_empty());
        if let Some(f) = self
            .footer
            .as_ref()
            .filter(|_| self.final_newline && !flush_list_last)
        {
            out.push_str(f);
            out.push('\n');
        }
        // A literal block at the very end without a final newline has no line break
        // in its value; known divergence, kept out of the generator (corpus:
        // yaml-literal-block-no-final-newline.yaml).
        if !self.final_newline && !ends_with_block(&self.root) {
            while out.ends_with('\n') {
                out.pop();
            }
        }
        out
    }

    fn map(&self, entries: &[Entry], indent: usize, out: &mut String) {
        let pad = " ".repeat(indent);
        let mut after_flush_list = false;
        for e in entries {
            if e.blank_line_before {
                out.push('\n');
            }
            // Known divergence, kept out of the generator (corpus file
            // yaml-comment-after-unindented-list.yaml covers it): a comment right
            // after a sequence at the same indentation as its key.
            let suppress = after_flush_list && !e.blank_line_before;
            if let Some(c) = e.head_comment.as_ref().filter(|_| !suppress) {
                out.push_str(&format!("{pad}{c}\n"));
            }
            after_flush_list =
                !self.indent_sequences && matches!(&e.value, Node::List(l) if !l.is_empty());
            out.push_str(&format!("{pad}{}:", e.key));
            self.value(&e.value, e.inline_comment.as_deref(), indent, out);
        }
    }

    /// The value after `key:` (or after `- `), starting on the key's line.
    fn value(&self, v: &Node, inline: Option<&str>, indent: usize, out: &mut String) {
        let comment = |out: &mut String| {
            if let Some(c) = inline {
                out.push(' ');
                out.push_str(c);
            }
        };
        match v {
            Node::Scalar(s) if s.is_empty() => out.push('\n'),
            Node::Scalar(s) => {
                out.push(' ');
                out.push_str(s);
                comment(out);
                out.push('\n');
            }
            Node::Block(h, lines) => {
                out.push(' ');
                out.push_str(h);
                out.push('\n');
                let pad = " ".repeat(indent + self.step);
                for l in lines {
                    out.push_str(&format!("{pad}{l}\n"));
                }
            }
            // No inline comment after `{}` / `[]`: sops 3.11 itself does not round-trip
            // it (it re-emits `a: {} # c` as `a: {\n    #ENC[..]\n}` and then drops the
            // comment on decrypt), so there is no reference tree to compare with.
            Node::Map(m) if m.is_empty() => out.push_str(" {}\n"),
            Node::List(l) if l.is_empty() => out.push_str(" []\n"),
            Node::Map(m) => {
                comment(out);
                out.push('\n');
                self.map(m, indent + self.step, out);
            }
            Node::List(items) => {
                comment(out);
                out.push('\n');
                let at = if self.indent_sequences {
                    indent + self.step
                } else {
                    indent
                };
                self.list(items, at, out);
            }
        }
    }

    fn list(&self, items: &[Node], indent: usize, out: &mut String) {
        let pad = " ".repeat(indent);
        for item in items {
            match item {
                Node::Map(m) if !m.is_empty() => {
                    // The first entry shares the `- ` line; no head comment there.
                    let mut m = m.clone();
                    m[0].head_comment = None;
                    m[0].blank_line_before = false;
                    let mut sub = String::new();
                    self.map(&m, indent + 2, &mut sub);
                    out.push_str(&pad);
                    out.push_str("- ");
                    out.push_str(&sub[indent + 2..]);
                }
                Node::Scalar(s) if s.is_empty() => out.push_str(&format!("{pad}- null\n")),
                other => {
                    out.push_str(&pad);
                    out.push('-');
                    self.value(other, None, indent, out);
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// JSON documents
// ---------------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum J {
    Leaf(String),
    Obj(Vec<(String, J)>),
    Arr(Vec<J>),
}

#[derive(Clone, Debug)]
struct JsonDoc {
    layout: usize,
    root: Vec<(String, J)>,
    final_newline: bool,
}

fn json_string() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9 _.:/-]{0,16}",
        1 => prop::collection::vec(prop::sample::select(vec!["a", " ", "\\\"", "\\\\", "\\n", "\\t", "é", "🔐"]), 0..6)
            .prop_map(|v| v.concat()),
    ]
    .prop_map(|s| format!("\"{s}\""))
}

fn json_leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => json_string(),
        2 => (-1_000_000_000_000i64..1_000_000_000_000).prop_map(|i| i.to_string()),
        2 => (any::<bool>(), 0u32..10_000, "[0-9]{1,4}").prop_map(|(neg, i, f)| format!("{}{i}.{f}", if neg { "-" } else { "" })),
        1 => (1u32..100, prop::sample::select(vec!["e", "E", "e+", "e-"]), 0u32..12).prop_map(|(m, e, x)| format!("{m}{e}{x}")),
        1 => prop::sample::select(vec!["true", "false", "null", "-0", "0"]).prop_map(String::from),
    ]
}

fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![5 => "[a-z][a-z0-9_]{0,9}", 1 => "[a-z]{1,5}_unencrypted", 1 => Just("clé".to_string())]
}

fn json_obj(inner: impl Strategy<Value = J>) -> impl Strategy<Value = Vec<(String, J)>> {
    prop::collection::vec((json_key(), inner), 0..5).prop_map(|mut v| {
        let mut seen = std::collections::HashSet::new();
        v.retain(|(k, _)| seen.insert(k.clone()));
        v
    })
}

fn json_doc() -> impl Strategy<Value = JsonDoc> {
    let node = json_leaf()
        .prop_map(J::Leaf)
        .prop_recursive(3, 24, 5, |inner| {
            prop_oneof![
                json_obj(inner.clone()).prop_map(J::Obj),
                prop::collection::vec(inner, 0..4).prop_map(J::Arr),
            ]
        });
    (0usize..5, json_obj(node), prop::bool::weighted(0.85)).prop_map(
        |(layout, root, final_newline)| JsonDoc {
            layout,
            root,
            final_newline,
        },
    )
}

impl JsonDoc {
    /// Layouts: tab, 2 spaces, 4 spaces (pretty); one line with spaces; compact.
    fn render(&self) -> String {
        let mut out = String::new();
        self.obj(&self.root, 0, &mut out);
        if self.final_newline {
            out.push('\n');
        }
        out
    }

    fn unit(&self) -> Option<&'static str> {
        match self.layout {
            0 => Some("\t"),
            1 => Some("  "),
            2 => Some("    "),
            _ => None,
        }
    }

    fn sep(&self, depth: usize, out: &mut String) {
        match self.unit() {
            Some(u) => {
                out.push('\n');
                out.push_str(&u.repeat(depth));
            }
            None if self.layout == 3 => out.push(' '),
            None => {}
        }
    }

    fn colon(&self) -> &'static str {
        if self.layout == 4 {
            ":"
        } else {
            ": "
        }
    }

    fn obj(&self, entries: &[(String, J)], depth: usize, out: &mut String) {
        if entries.is_empty() {
            out.push_str("{}");
            return;
        }
        out.push('{');
        for (i, (k, v)) in entries.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            if self.unit().is_some() || i > 0 {
                self.sep(depth + 1, out);
            }
            out.push_str(&format!("\"{k}\"{}", self.colon()));
            self.node(v, depth + 1, out);
        }
        if self.unit().is_some() {
            self.sep(depth, out);
        }
        out.push('}');
    }

    fn node(&self, v: &J, depth: usize, out: &mut String) {
        match v {
            J::Leaf(s) => out.push_str(s),
            J::Obj(e) => self.obj(e, depth, out),
            J::Arr(items) if items.is_empty() => out.push_str("[]"),
            J::Arr(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    if self.unit().is_some() || i > 0 {
                        self.sep(depth + 1, out);
                    }
                    self.node(item, depth + 1, out);
                }
                if self.unit().is_some() {
                    self.sep(depth, out);
                }
                out.push(']');
            }
        }
    }
}

// ---------------------------------------------------------------------------------
// The properties
// ---------------------------------------------------------------------------------

/// `cases` by default; `PROPTEST_CASES=N` runs N cases instead (deeper local runs).
fn config(cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    Config {
        cases,
        // Each case runs processes: keep shrinking bounded.
        max_shrink_iters: 200,
        ..Config::default()
    }
}

/// The generated plaintext must be something sops accepts (else the generator is wrong).
fn sops_accepts(env: &Env, src: &str, ext: &str, key: &AgeKey) -> bool {
    env.write(format!("probe.{ext}"), src);
    env.sops()
        .args(["encrypt", "--age", &key.recipient, &format!("probe.{ext}")])
        .run()
        .success()
}

fn our_round_trip(src: &str, format: Format) -> Result<(), TestCaseError> {
    let key = DataKey::from_bytes([7; 32]);
    let mut meta = Metadata {
        key_groups: vec![vec![MasterKey::Age(sops_file::metadata::AgeKey {
            recipient: shared_key().recipient.clone(),
            enc: "-----BEGIN AGE ENCRYPTED FILE-----\nYWdl\n-----END AGE ENCRYPTED FILE-----\n"
                .into(),
        })]],
        shamir_threshold: 0,
        lastmodified: String::new(),
        mac: String::new(),
        selector: None,
        mac_only_encrypted: false,
        version: String::new(),
    };
    let sealed = match file::seal(format, src.as_bytes(), &key, &mut meta, &mut FreshIvs) {
        Ok(sealed) => sealed,
        Err(e) => {
            return Err(TestCaseError::fail(format!(
                "encrypt failed for:\n{src}\n{e}"
            )))
        }
    };
    let enc = String::from_utf8_lossy(&sealed).into_owned();
    let Some(loaded) = file::load(format, &sealed) else {
        return Err(TestCaseError::fail(format!(
            "our encryption does not read back:\n{enc}"
        )));
    };
    let opened = match loaded.open(&key) {
        Ok(opened) => opened,
        Err(e) => return Err(TestCaseError::fail(format!("decrypt failed: {e}\n{enc}"))),
    };
    prop_assert_eq!(
        String::from_utf8_lossy(&opened.plaintext).into_owned(),
        src.to_string(),
        "round trip changed the bytes; encrypted form:\n{}",
        enc
    );
    Ok(())
}

fn sops_reads_ours(src: &str, ext: &str) -> Result<(), TestCaseError> {
    let key = shared_key();
    let env = Env::with_keys(&[key]);
    prop_assert!(
        sops_accepts(&env, src, ext, key),
        "generator produced input sops refuses:\n{src}"
    );
    let (reference, sops_enc) = reference_tree(&env, src.as_bytes(), ext, key);
    env.write(format!("p.{ext}"), src);
    let enc = env
        .git_sops()
        .args(["encrypt", "--age", &key.recipient, &format!("p.{ext}")])
        .run()
        .ok();
    let tree = sops_tree(&env, &enc.stdout, ext, "our encryption");
    assert_tree_eq(
        &reference,
        &tree,
        &format!("sops decrypt of our encryption of:\n{src}"),
    );
    assert_same_encryption(
        &enc.stdout,
        &sops_enc,
        &reference,
        ext,
        &format!("encrypted leaves of:\n{src}"),
    );
    Ok(())
}

fn shared_key() -> &'static AgeKey {
    static KEY: std::sync::OnceLock<AgeKey> = std::sync::OnceLock::new();
    KEY.get_or_init(AgeKey::generate)
}

proptest! {
    // In-process: many cases are cheap.
    #![proptest_config(config(256))]

    #[test]
    fn yaml_our_round_trip_is_byte_identical(doc in yaml_doc()) {
        our_round_trip(&doc.render(), Format::Yaml)?;
    }

    #[test]
    fn json_our_round_trip_is_byte_identical(doc in json_doc()) {
        our_round_trip(&doc.render(), Format::Json)?;
    }
}

proptest! {
    #![proptest_config(config(16))]

    #[test]
    fn yaml_sops_decrypts_ours_to_the_reference_tree(doc in yaml_doc()) {
        sops_reads_ours(&doc.render(), "yaml")?;
    }

    #[test]
    fn json_sops_decrypts_ours_to_the_reference_tree(doc in json_doc()) {
        sops_reads_ours(&doc.render(), "json")?;
    }
}

/// The generators only produce documents sops 3.11 accepts (checked on a sample,
/// independent of git-sops, so a generator bug is not mistaken for ours).
#[test]
fn generators_produce_valid_documents() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let key = shared_key();
    let env = Env::with_keys(&[key]);
    let mut runner = TestRunner::deterministic();
    for _ in 0..24 {
        let y = yaml_doc().new_tree(&mut runner).unwrap().current().render();
        assert!(
            sops_accepts(&env, &y, "yaml", key),
            "sops refuses generated YAML:\n{y}"
        );
        let j = json_doc().new_tree(&mut runner).unwrap().current().render();
        assert!(
            sops_accepts(&env, &j, "json", key),
            "sops refuses generated JSON:\n{j}"
        );
    }
}
