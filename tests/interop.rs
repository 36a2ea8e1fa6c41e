//! Interop with the real sops 3.11 and the age CLI, over the corpus in
//! `tests/corpus/` (byte-identity round trips) and `tests/normalize/` (values that
//! legitimately come back in a normalised spelling).
//!
//! For every corpus file:
//!  (a) our encryption decrypts with sops 3.11 to the same tree as the reference
//!      (sops' own encryption of the plaintext, decrypted by sops);
//!  (b) sops' encryption decrypts with git-sops to the same tree;
//!  (c) our decrypt of our encrypt gives back the original bytes exactly;
//!  (d) our file encrypts exactly the leaves sops encrypts (same types, same number
//!      of encrypted comments), and nothing sops hides is readable in ours.

mod common;

use common::*;
use serde_json::Value;

// ---------------------------------------------------------------------------------
// The corpus
// ---------------------------------------------------------------------------------

/// Run (a)–(d) on one plaintext; `roundtrip` is what (c) must give back.
fn check_interop(name: &str, src: &[u8], roundtrip: &[u8]) {
    let key = AgeKey::generate();
    let env = Env::with_keys(&[&key]);
    let ext = ext_of(name);
    let (reference, sops_enc) = reference_tree(&env, src, ext, &key);
    env.write(name, src);
    let mut checks = Checks::new();

    let ours = env
        .git_sops()
        .args(["encrypt", "--age", &key.recipient, name])
        .run();
    let ours = match ours.success() {
        true => ours.stdout,
        false => {
            ours.assert_no_panic();
            panic!("{name}: git-sops cannot encrypt it: {}", ours.describe());
        }
    };
    let ours_name = format!("ours.enc.{ext}");
    env.write(&ours_name, &ours);

    checks.check(
        "a: sops 3.11 decrypts our encryption to the reference tree",
        || {
            let tree = sops_tree(&env, &ours, ext, "our encryption");
            assert_tree_eq(&reference, &tree, "sops decrypt of ours vs reference");
        },
    );
    checks.check("d: same leaves encrypted as sops, nothing leaks", || {
        assert_same_encryption(&ours, &sops_enc, &reference, ext, "ours vs sops");
    });
    checks.check("c: our decrypt(our encrypt(x)) == x byte for byte", || {
        let back = env
            .git_sops()
            .args(["decrypt", &ours_name])
            .run()
            .ok()
            .stdout;
        assert_bytes_eq(roundtrip, &back, "round trip");
    });
    checks.check(
        "b: we decrypt sops' encryption to the reference tree",
        || {
            let sops_name = format!("sops.enc.{ext}");
            env.write(&sops_name, &sops_enc);
            let plain = env
                .git_sops()
                .args(["decrypt", &sops_name])
                .run()
                .ok()
                .stdout;
            if ext == "json" {
                let ours: Value = serde_json::from_slice(&plain).unwrap_or_else(|e| {
                    panic!(
                        "our decryption is not JSON ({e}):\n{}",
                        String::from_utf8_lossy(&plain)
                    )
                });
                assert_eq!(
                    Some(&ours),
                    reference.json.as_ref(),
                    "JSON value of our decryption"
                );
            }
            let again = sops_encrypt_as(
                &env,
                &plain,
                ext,
                &key.recipient,
                &[],
                "sops cannot read our decryption of its file",
            );
            let tree = sops_tree(&env, &again, ext, "our decryption, re-encrypted by sops");
            assert_tree_eq(
                &reference,
                &tree,
                "our decryption of sops' file vs reference",
            );
        },
    );
    checks.finish(name);
}

fn check_corpus_file(name: &str) {
    let src = fixture("corpus", name);
    check_interop(name, &src, &src);
}

macro_rules! corpus {
    ($($test:ident => $file:literal,)*) => {
        $( #[test] fn $test() { check_corpus_file($file) } )*
        const CORPUS: &[&str] = &[$($file),*];
    };
}

corpus! {
    corpus_yaml_comments => "yaml-comments.yaml",
    corpus_yaml_strings => "yaml-strings.yaml",
    corpus_yaml_block_scalars => "yaml-block-scalars.yaml",
    corpus_yaml_typed_scalars => "yaml-typed-scalars.yaml",
    corpus_yaml_float_specials => "yaml-float-specials.yaml",
    corpus_yaml_unicode => "yaml-unicode.yaml",
    corpus_yaml_multi_document => "yaml-multi-document.yaml",
    corpus_yaml_flow_collections => "yaml-flow-collections.yaml",
    corpus_yaml_nested_lists_of_maps => "yaml-nested-lists-of-maps.yaml",
    corpus_yaml_indent_2 => "yaml-indent-2.yaml",
    corpus_yaml_indent_4 => "yaml-indent-4.yaml",
    corpus_yaml_unencrypted_suffix => "yaml-unencrypted-suffix.yaml",
    corpus_yaml_empty_values => "yaml-empty-values.yaml",
    corpus_yaml_empty_document => "yaml-empty-document.yaml",
    corpus_yaml_quoted_keys => "yaml-quoted-keys.yaml",
    corpus_yaml_crlf => "yaml-crlf.yaml",
    corpus_yaml_bom => "yaml-bom.yaml",
    corpus_yaml_no_final_newline => "yaml-no-final-newline.yaml",
    corpus_yaml_no_final_newline_comment => "yaml-no-final-newline-comment.yaml",
    corpus_yaml_comment_after_unindented_list => "yaml-comment-after-unindented-list.yaml",
    corpus_yaml_comment_after_unindented_list_at_eof => "yaml-comment-after-unindented-list-at-eof.yaml",
    corpus_json_nested => "json-nested.json",
    corpus_json_arrays => "json-arrays.json",
    corpus_json_numbers => "json-numbers.json",
    corpus_json_unicode => "json-unicode.json",
    corpus_json_escapes => "json-escapes.json",
    corpus_json_four_spaces => "json-four-spaces.json",
    corpus_json_one_line => "json-one-line.json",
    corpus_json_compact => "json-compact.json",
    corpus_json_no_final_newline => "json-no-final-newline.json",
    corpus_json_empty_values => "json-empty-values.json",
    corpus_json_empty_object => "json-empty-object.json",
    corpus_json_unencrypted_suffix => "json-unencrypted-suffix.json",
    corpus_json_crlf => "json-crlf.json",
}

#[test]
fn every_corpus_file_has_a_test() {
    let mut listed: Vec<&str> = CORPUS.to_vec();
    listed.sort();
    assert_eq!(
        fixture_names("corpus"),
        listed,
        "tests/corpus and the corpus! list differ"
    );
}

// ---------------------------------------------------------------------------------
// Comment binding: every comment gets the path sops gives it (tests/comments/)
// ---------------------------------------------------------------------------------

/// Every comment of a parsed YAML text with the AAD git-sops binds it to, and
/// the path of every collection.
fn comment_paths(text: &str) -> (Vec<(String, String)>, Vec<String>) {
    use sops_file::formats::{ListItem, MapItem};
    fn aad(path: &[String]) -> String {
        if path.is_empty() {
            ":".into()
        } else {
            path.iter().map(|k| format!("{k}:")).collect()
        }
    }
    let doc = sops_file::formats::yaml::parse(text).unwrap_or_else(|e| panic!("git-sops: {e}"));
    let (mut comments, mut paths) = (Vec::new(), Vec::new());
    let mut work: Vec<(Items<'_>, Vec<String>)> = doc
        .docs
        .iter()
        .rev()
        .map(|m| (Items::Map(m), Vec::new()))
        .collect();
    while let Some((items, path)) = work.pop() {
        let mut later = Vec::new();
        match items {
            Items::Map(m) => {
                for item in &m.items {
                    match item {
                        MapItem::Comment(c) => comments.push((c.text.to_string(), aad(&path))),
                        MapItem::Entry(e) => {
                            let mut p = path.clone();
                            p.push(e.key.clone());
                            later.extend(child(&e.value, p));
                        }
                    }
                }
            }
            Items::List(l) => {
                for item in &l.items {
                    match item {
                        ListItem::Comment(c) => comments.push((c.text.to_string(), aad(&path))),
                        ListItem::Node(n) => later.extend(child(n, path.clone())),
                    }
                }
            }
        }
        paths.push(aad(&path));
        work.extend(later.into_iter().rev());
    }
    (comments, paths)
}

enum Items<'a> {
    Map(&'a sops_file::formats::Map),
    List(&'a sops_file::formats::List),
}

fn child(node: &sops_file::formats::Node, path: Vec<String>) -> Option<(Items<'_>, Vec<String>)> {
    use sops_file::formats::Node;
    match node {
        Node::Leaf(_) => None,
        Node::Map(m) => Some((Items::Map(m), path)),
        Node::List(l) => Some((Items::List(l), path)),
    }
}

/// The comment lines of a text (trimmed), with their indentation, in order.
fn comment_lines(text: &str) -> Vec<(usize, String)> {
    text.lines()
        .map(|l| (l.len() - l.trim_start().len(), l.trim().to_string()))
        .filter(|(_, l)| l.starts_with('#'))
        .collect()
}

fn check_comment_case(name: &str) {
    use sops_file::formats::{apply_edits, Store};
    use sops_file::{cipher, keygroups};
    let src = fixture("comments", name);
    let text = String::from_utf8(src.clone()).expect("UTF-8 case");
    let key = AgeKey::generate();
    let env = Env::with_keys(&[&key]);
    let mut checks = Checks::new();

    checks.check(
        "every comment is bound to the path sops binds it to",
        || {
            // sops reads our file with the `sops:` entry after each document; that
            // layout's binding is the one to match. sops would not encrypt a `sops`
            // key, so an ordinary key stands where the entry goes.
            let (ours, mut paths) = comment_paths(&text);
            paths.push("zsops:".into());
            let doc = sops_file::formats::yaml::parse(&text).expect("parse");
            let store = sops_file::formats::yaml::YamlStore;
            let edits = store
                .insert_metadata(&text, &doc, &sops_file::formats::Value::Str("x".into()))
                .into_iter()
                .map(|mut e| {
                    e.text = e.text.replacen("sops:", "zsops:", 1);
                    e
                })
                .collect();
            let with_entry = apply_edits(&text, edits).expect("insert").to_string();
            let enc = sops_encrypt(&env, with_entry.as_bytes(), "yaml", &key.recipient, &[]);
            let enc = String::from_utf8(enc).expect("UTF-8");
            let (_, meta) = sops_file::decrypt::load(&store, &enc).expect("read sops' metadata");
            let ids = sops_file::keys::age::Identities::from_text("test key", &key.identity)
                .expect("identity");
            let data_key = keygroups::recover(&meta, &keygroups::Keyring::with_age(ids))
                .expect("open sops' data key");
            let mut sops_paths = Vec::new();
            for m in enc_regex().captures_iter(&enc) {
                if &m[1] != "comment" {
                    continue;
                }
                let v = cipher::EncValue::parse(&m[0]).expect("ENC value");
                let (plain, aad) = paths
                    .iter()
                    .find_map(|aad| {
                        cipher::decrypt(&data_key, &v, aad)
                            .ok()
                            .map(|p| (String::from_utf8_lossy(&p).into_owned(), aad.clone()))
                    })
                    .unwrap_or_else(|| panic!("no path of the document opens {}", &m[0]));
                sops_paths.push((plain, aad));
            }
            let mut ours = ours;
            ours.retain(|(t, _)| sops_paths.iter().any(|(s, _)| s == t));
            ours.sort();
            sops_paths.sort();
            assert_eq!(ours, sops_paths, "(comment, path) by git-sops vs sops");
        },
    );
    env.write("plain.yaml", &src);
    let ours = env
        .git_sops()
        .args(["encrypt", "--age", &key.recipient, "plain.yaml"])
        .run()
        .ok()
        .stdout;
    checks.check("sops opens every comment of our file", || {
        env.write("ours.enc.yaml", &ours);
        let out = env
            .sops()
            .args(["decrypt", "--input-type", "yaml", "--output-type", "yaml"])
            .arg("ours.enc.yaml")
            .run()
            .ok();
        let err = out.stderr.clone();
        assert!(
            !err.contains("unencrypted comment") && !out.stdout_str().contains("ENC["),
            "sops could not open a comment of our file:\n{err}\n{}",
            out.stdout_str()
        );
    });
    checks.check(
        "we open and place the comments of sops' file as sops does",
        || {
            let theirs = sops_encrypt(&env, &src, "yaml", &key.recipient, &[]);
            env.write("sops.enc.yaml", &theirs);
            let reference = env.sops().args(["decrypt", "sops.enc.yaml"]).run().ok();
            if reference.stderr.contains("unencrypted comment") {
                return; // sops cannot read its own file here; nothing to match
            }
            let out = env.git_sops().args(["decrypt", "sops.enc.yaml"]).run().ok();
            assert_eq!(out.stderr.clone(), "", "warnings on sops' file");
            assert_eq!(
                comment_lines(&out.stdout_str()),
                comment_lines(&reference.stdout_str()),
                "where the comments land in our decryption vs sops'"
            );
        },
    );
    checks.check("our decrypt(our encrypt(x)) == x byte for byte", || {
        env.write("ours.enc.yaml", &ours);
        let back = env
            .git_sops()
            .args(["decrypt", "ours.enc.yaml"])
            .run()
            .ok()
            .stdout;
        assert_bytes_eq(&src, &back, "round trip");
    });
    checks.finish(name);
}

macro_rules! comment_cases {
    ($($test:ident => $file:literal,)*) => {
        $( #[test] fn $test() { check_comment_case($file) } )*
        const COMMENT_CASES: &[&str] = &[$($file),*];
    };
}

comment_cases! {
    comments_two_lines_end_nested_map => "01-two-lines-end-nested-map.yaml",
    comments_blank_line_splits_foot => "02-blank-line-splits-foot.yaml",
    comments_crlf_every_line_break_splits => "03-crlf-every-line-break-splits.yaml",
    comments_each_depth_keeps_its_block => "04-each-depth-keeps-its-block.yaml",
    comments_two_lines_end_list => "05-two-lines-end-list.yaml",
    comments_end_of_file => "06-end-of-file.yaml",
    comments_end_of_file_no_final_newline => "07-end-of-file-no-final-newline.yaml",
    comments_second_document => "08-second-document.yaml",
    comments_end_of_file_after_blank_line => "09-end-of-file-after-blank-line.yaml",
    comments_deeper_and_dedented_columns => "10-deeper-and-dedented-columns.yaml",
    comments_bom => "11-bom.yaml",
    comments_inline_on_map_key_then_deeper_lines => "12-inline-on-map-key-then-deeper-lines.yaml",
    comments_two_lines_deep_before_block_scalar => "13-two-lines-deep-before-block-scalar.yaml",
    comments_foot_after_inline_then_odd_column => "14-foot-after-inline-then-odd-column.yaml",
    comments_two_lines_after_quoted_value => "15-two-lines-after-quoted-value.yaml",
    comments_two_space_indent_end_of_file => "16-two-space-indent-end-of-file.yaml",
    comments_deep_indent_comment_on_parent_key => "17-deep-indent-comment-on-parent-key.yaml",
    comments_flow_and_dedented_lines_in_nested_map => "18-flow-and-dedented-lines-in-nested-map.yaml",
    comments_foot_lines_at_two_columns => "19-foot-lines-at-two-columns.yaml",
    comments_column_zero_line_inside_nested_map => "20-column-zero-line-inside-nested-map.yaml",
    comments_indentless_list_item_map_foot => "21-indentless-list-item-map-foot.yaml",
    comments_deeper_second_line => "22-deeper-second-line.yaml",
    comments_indentless_item_key_comments_end_of_file => "23-indentless-item-key-comments-end-of-file.yaml",
    comments_null_value_then_comment_at_key_column => "24-null-value-then-comment-at-key-column.yaml",
    comments_list_item_null_deep_comment => "25-list-item-null-deep-comment.yaml",
    comments_null_value_deeper_comment_end_of_file => "26-null-value-deeper-comment-end-of-file.yaml",
    comments_dash_comment_before_next_key => "27-dash-comment-before-next-key.yaml",
    comments_nested_null_deep_comment => "28-nested-null-deep-comment.yaml",
    comments_list_foot_then_deeper => "29-list-foot-then-deeper.yaml",
    comments_list_foot_before_empty_flow => "30-list-foot-before-empty-flow.yaml",
    comments_block_scalar_then_comments_no_final_newline => "31-block-scalar-then-comments-no-final-newline.yaml",
    comments_multi_document_list_foot => "32-multi-document-list-foot.yaml",
    comments_null_value_comment_at_key_column => "33-null-value-comment-at-key-column.yaml",
    comments_line_comment_dedented_foot_multi_document => "34-line-comment-dedented-foot-multi-document.yaml",
    comments_flow_comments_bind_to_inner_collections => "35-flow-comments-bind-to-inner-collections.yaml",
    comments_comment_before_empty_last_item => "36-comment-before-empty-last-item.yaml",
    comments_comment_after_dash_before_empty_item => "37-comment-after-dash-before-empty-item.yaml",
}

/// A comment encrypted for another collection than the one it binds to now (as
/// files written by an earlier git-sops with another binding, or by sops, whose
/// output does not always read back with the binding it encrypted with) still
/// decrypts, without a warning.
#[test]
fn comments_bound_elsewhere_by_the_writer_still_decrypt() {
    use sops_file::{cipher, keygroups};
    let key = AgeKey::generate();
    let env = Env::with_keys(&[&key]);
    // `# c` binds to the top level (it is handed to the `sops` key after the list).
    let src = "k1:\n  - 5\n  # c\n  -\n";
    env.write("plain.yaml", src);
    let enc = env
        .git_sops()
        .args(["encrypt", "--age", &key.recipient, "plain.yaml"])
        .run()
        .ok()
        .stdout_str();
    let store = sops_file::formats::yaml::YamlStore;
    let (_, meta) = sops_file::decrypt::load(&store, &enc).expect("metadata");
    let ids = sops_file::keys::age::Identities::from_text("test key", &key.identity).unwrap();
    let data_key = keygroups::recover(&meta, &keygroups::Keyring::with_age(ids)).unwrap();
    let m = enc_regex()
        .captures_iter(&enc)
        .find(|m| &m[1] == "comment")
        .expect("an encrypted comment")
        .get(0)
        .unwrap()
        .as_str()
        .to_string();
    // The same comment as bound to the list `k1`.
    let other = cipher::encrypt(
        &data_key,
        b" c",
        "k1:",
        cipher::TypeTag::Comment,
        &cipher::random_iv(),
    );
    env.write("old.enc.yaml", enc.replace(&m, &other));
    let out = env.git_sops().args(["decrypt", "old.enc.yaml"]).run().ok();
    assert_eq!(out.stdout_str(), src);
    assert_eq!(out.stderr, "", "no warning");
}

#[test]
fn every_comment_case_has_a_test() {
    let mut listed: Vec<&str> = COMMENT_CASES.to_vec();
    listed.sort();
    assert_eq!(
        fixture_names("comments"),
        listed,
        "tests/comments and the comment_cases! list differ"
    );
}

// ---------------------------------------------------------------------------------
// Normalisations: values whose spelling may change (and only these)
// ---------------------------------------------------------------------------------

fn check_normalization(case: &str, ext: &str) {
    let input = fixture("normalize", &format!("{case}.{ext}"));
    let expected = fixture("normalize", &format!("{case}.expected.{ext}"));
    // The expectation must itself be the same tree as the input.
    let key = AgeKey::generate();
    let env = Env::with_keys(&[&key]);
    let (t_in, _) = reference_tree(&env, &input, ext, &key);
    let (t_exp, _) = reference_tree(&env, &expected, ext, &key);
    assert_tree_eq(
        &t_in,
        &t_exp,
        &format!("{case}: the .expected file is not the same tree"),
    );
    check_interop(&format!("{case}.{ext}"), &input, &expected);
}

macro_rules! normalizations {
    ($($test:ident => ($case:literal, $ext:literal),)*) => {
        $( #[test] fn $test() { check_normalization($case, $ext) } )*
        const NORMALIZE: &[(&str, &str)] = &[$(($case, $ext)),*];
    };
}

normalizations! {
    normalize_yaml_int_bases => ("yaml-int-bases", "yaml"),
    normalize_yaml_inf_nan_case => ("yaml-inf-nan-case", "yaml"),
    normalize_yaml_double_quoted_escapes => ("yaml-double-quoted-escapes", "yaml"),
    normalize_yaml_multi_line_scalars => ("yaml-multi-line-scalars", "yaml"),
    normalize_yaml_folded => ("yaml-folded", "yaml"),
    normalize_json_escapes => ("json-escapes", "json"),
    normalize_yaml_flow_single_quoted => ("yaml-flow-single-quoted", "yaml"),
    normalize_yaml_bool_title_case => ("yaml-bool-title-case", "yaml"),
    normalize_yaml_float_plus_inf => ("yaml-float-plus-inf", "yaml"),
    normalize_yaml_literal_block_no_final_newline => ("yaml-literal-block-no-final-newline", "yaml"),
    // Found by fuzzing (store_yaml): a comment or spaces after a multi-line value
    // must not be taken into a literal block when it comes back.
    normalize_yaml_multi_line_plain_comment => ("yaml-multi-line-plain-comment", "yaml"),
}

#[test]
fn every_normalization_file_has_a_test() {
    let mut listed: Vec<String> = NORMALIZE
        .iter()
        .flat_map(|(c, e)| [format!("{c}.{e}"), format!("{c}.expected.{e}")])
        .collect();
    listed.sort();
    assert_eq!(
        fixture_names("normalize"),
        listed,
        "tests/normalize and the list differ"
    );
}

/// Timestamps: sops encrypts them as RFC3339Nano (`type:time`); the spelling we
/// get back is either the date (`YYYY-MM-DD`) or the normalised RFC3339 form.
#[test]
fn normalize_yaml_timestamps() {
    let input = "date: 2023-01-02\n\
                 utc: 2001-12-14T21:59:43Z\n\
                 lower_t_fraction: 2001-12-14t21:59:43.10-05:00\n\
                 space_separated: 2001-12-14 21:59:43.10\n\
                 quoted_is_a_string: \"2023-01-02\"\n";
    let acceptable: &[&[&str]] = &[
        &["date: 2023-01-02", "date: 2023-01-02T00:00:00Z"],
        &["utc: 2001-12-14T21:59:43Z"],
        &["lower_t_fraction: 2001-12-14T21:59:43.1-05:00"],
        &["space_separated: 2001-12-14T21:59:43.1Z"],
        &["quoted_is_a_string: \"2023-01-02\""],
    ];
    let key = AgeKey::generate();
    let env = Env::with_keys(&[&key]);
    let (reference, sops_enc) = reference_tree(&env, input.as_bytes(), "yaml", &key);
    env.write("times.yaml", input);
    let ours = env
        .git_sops()
        .args(["encrypt", "--age", &key.recipient, "times.yaml"])
        .run()
        .ok()
        .stdout;
    let counts = enc_type_counts(&ours);
    assert_eq!(
        counts.get("time"),
        Some(&4),
        "timestamps are type:time like sops: {counts:?}"
    );
    assert_same_encryption(&ours, &sops_enc, &reference, "yaml", "timestamps");
    let tree = sops_tree(&env, &ours, "yaml", "our encryption");
    assert_tree_eq(&reference, &tree, "sops decrypt of our timestamps");
    env.write("times.enc.yaml", &ours);
    let back = env
        .git_sops()
        .args(["decrypt", "times.enc.yaml"])
        .run()
        .ok()
        .stdout_str();
    let lines: Vec<&str> = back.lines().collect();
    assert_eq!(lines.len(), acceptable.len(), "decrypted:\n{back}");
    for (line, ok) in lines.iter().zip(acceptable) {
        assert!(
            ok.contains(line),
            "decrypted line {line:?} is none of {ok:?}\n{back}"
        );
    }
    assert!(back.ends_with('\n'));
    // Whatever spelling we chose, it is the same tree for sops.
    let again = sops_encrypt(&env, back.as_bytes(), "yaml", &key.recipient, &[]);
    assert_tree_eq(
        &reference,
        &sops_tree(&env, &again, "yaml", "re-encrypted"),
        "timestamps (b)",
    );
}

// ---------------------------------------------------------------------------------
// Selectors and mac_only_encrypted, via flags and via .sops.yaml, both directions
// ---------------------------------------------------------------------------------

const SELECTOR_YAML: &str = "\
# header comment
name: demo-app
public_url: https://demo.example
password: top-secret-password
api_secret: api-secret-value
db:
  host_plain: db.example
  # sops:crypt
  user: db-user
  password: db-password
  # sops:nocrypt
  port: 5432
  token: db-token-value
nested_secret:
  child: child-value
items:
  - name: first
    token: item-token
  - plain-list-item
";

const SELECTOR_JSON: &str = r#"{
  "name": "demo-app",
  "public_url": "https://demo.example",
  "password": "top-secret-password",
  "api_secret": "api-secret-value",
  "db": {
    "host_plain": "db.example",
    "user": "db-user",
    "password": "db-password",
    "port": 5432,
    "token": "db-token-value"
  },
  "nested_secret": {
    "child": "child-value"
  },
  "items": [
    {
      "name": "first",
      "token": "item-token"
    },
    "plain-list-item"
  ]
}
"#;

const SELECTOR_KEYS: &[&str] = &[
    "unencrypted_suffix",
    "encrypted_suffix",
    "unencrypted_regex",
    "encrypted_regex",
    "unencrypted_comment_regex",
    "encrypted_comment_regex",
    "mac_only_encrypted",
];

#[derive(Clone, Copy, PartialEq)]
enum Via {
    Flags,
    Config,
}

/// `selector` is a metadata key from SELECTOR_KEYS; `value` its value
/// (`mac_only_encrypted` is combined with `encrypted_regex: ^password$`).
fn check_selector(ext: &str, selector: &str, value: &str, via: Via) {
    let key = AgeKey::generate();
    let env = Env::with_keys(&[&key]);
    let src = if ext == "json" {
        SELECTOR_JSON
    } else {
        SELECTOR_YAML
    };
    let name = format!("secrets.{ext}");
    env.write(&name, src);
    let flag = format!("--{}", selector.replace('_', "-"));
    let (ours, sops_enc) = match via {
        Via::Flags => {
            let sel_args: Vec<String> = if selector == "mac_only_encrypted" {
                vec![
                    flag.clone(),
                    "--encrypted-regex".into(),
                    "^password$".into(),
                ]
            } else {
                vec![flag.clone(), value.into()]
            };
            let ours = env
                .git_sops()
                .args(["encrypt", "--age", &key.recipient])
                .args(&sel_args)
                .arg(&name)
                .run()
                .ok()
                .stdout;
            // sops 3.11's `encrypt` subcommand has only the four key selectors; the
            // comment regexes and --mac-only-encrypted exist on the legacy `-e` form.
            let legacy = selector.contains("comment") || selector == "mac_only_encrypted";
            let sops = env
                .sops()
                .args(if legacy {
                    ["-e", "--age"]
                } else {
                    ["encrypt", "--age"]
                })
                .arg(&key.recipient)
                .args(&sel_args)
                .arg(&name)
                .run();
            assert!(
                sops.success(),
                "sops refuses the selector: {}",
                sops.describe()
            );
            (ours, sops.stdout)
        }
        Via::Config => {
            let sel = if selector == "mac_only_encrypted" {
                "    mac_only_encrypted: true\n    encrypted_regex: '^password$'\n".to_string()
            } else {
                format!("    {selector}: '{value}'\n")
            };
            env.write(
                ".sops.yaml",
                format!(
                    "creation_rules:\n  - path_regex: secrets\\.(yaml|json)$\n    age: {}\n{sel}",
                    key.recipient
                ),
            );
            let ours = env.git_sops().args(["encrypt", &name]).run().ok().stdout;
            let sops = env.sops().args(["encrypt", &name]).run();
            assert!(sops.success(), "sops refuses the rule: {}", sops.describe());
            (ours, sops.stdout)
        }
    };
    let what = format!(
        "{selector}={value} ({ext}, via {})",
        if via == Via::Flags {
            "flags"
        } else {
            ".sops.yaml"
        }
    );
    let reference = sops_tree(&env, &sops_enc, ext, "sops' encryption");
    let mut checks = Checks::new();
    checks.check("metadata names the same selector as sops'", || {
        let (mo, ms) = (metadata(&ours, ext), metadata(&sops_enc, ext));
        for k in SELECTOR_KEYS {
            let norm = |v: Option<&Value>| {
                v.map(|v| v.as_str().map(String::from).unwrap_or(v.to_string()))
            };
            assert_eq!(norm(mo.get(*k)), norm(ms.get(*k)), "metadata field {k}");
        }
    });
    checks.check("a: sops decrypts ours to the same tree", || {
        let tree = sops_tree(&env, &ours, ext, "our encryption");
        assert_tree_eq(&reference, &tree, &what);
    });
    checks.check("d: the same leaves and comments are encrypted", || {
        assert_same_encryption(&ours, &sops_enc, &reference, ext, &what);
    });
    checks.check("c: our round trip is byte-identical", || {
        env.write(format!("ours.enc.{ext}"), &ours);
        let back = env
            .git_sops()
            .args(["decrypt", &format!("ours.enc.{ext}")])
            .run()
            .ok()
            .stdout;
        assert_bytes_eq(src.as_bytes(), &back, &what);
    });
    checks.check("b: we decrypt sops' file to the same tree", || {
        env.write(format!("sops.enc.{ext}"), &sops_enc);
        let plain = env
            .git_sops()
            .args(["decrypt", &format!("sops.enc.{ext}")])
            .run()
            .ok()
            .stdout;
        // Encrypting our output with sops needs no rule: drop the config first.
        let _ = std::fs::remove_file(env.path(".sops.yaml"));
        let again = sops_encrypt_as(
            &env,
            &plain,
            ext,
            &key.recipient,
            &[],
            "sops cannot read our decryption",
        );
        assert_tree_eq(
            &reference,
            &sops_tree(&env, &again, ext, "re-encrypted"),
            &what,
        );
    });
    if selector == "mac_only_encrypted" {
        checks.check(
            "mac_only_encrypted: editing an unencrypted value keeps the MAC valid",
            || {
                let edited = String::from_utf8(ours.clone())
                    .unwrap()
                    .replacen("demo-app", "demo-ppa", 1);
                env.write(format!("edited.{ext}"), &edited);
                env.sops().args(["decrypt", &format!("edited.{ext}")]).run();
                let sops = env.sops().args(["decrypt", &format!("edited.{ext}")]).run();
                assert!(sops.success(), "sops: {}", sops.describe());
                let out = env
                    .git_sops()
                    .args(["decrypt", &format!("edited.{ext}")])
                    .run()
                    .ok();
                assert!(out.stdout_str().contains("demo-ppa"));
            },
        );
    }
    checks.finish(&what);
}

macro_rules! selector_tests {
    ($($test:ident => ($ext:literal, $sel:literal, $val:literal, $via:expr),)*) => {
        $( #[test] fn $test() { check_selector($ext, $sel, $val, $via) } )*
    };
}

selector_tests! {
    selector_yaml_unencrypted_suffix_flag => ("yaml", "unencrypted_suffix", "_plain", Via::Flags),
    selector_yaml_unencrypted_suffix_config => ("yaml", "unencrypted_suffix", "_plain", Via::Config),
    selector_yaml_encrypted_suffix_flag => ("yaml", "encrypted_suffix", "_secret", Via::Flags),
    selector_yaml_encrypted_suffix_config => ("yaml", "encrypted_suffix", "_secret", Via::Config),
    selector_yaml_unencrypted_regex_flag => ("yaml", "unencrypted_regex", "^(name|public)", Via::Flags),
    selector_yaml_unencrypted_regex_config => ("yaml", "unencrypted_regex", "^(name|public)", Via::Config),
    selector_yaml_encrypted_regex_flag => ("yaml", "encrypted_regex", "^(password|token)$", Via::Flags),
    selector_yaml_encrypted_regex_config => ("yaml", "encrypted_regex", "^(password|token)$", Via::Config),
    selector_yaml_unencrypted_comment_regex_flag => ("yaml", "unencrypted_comment_regex", "sops:nocrypt", Via::Flags),
    selector_yaml_unencrypted_comment_regex_config => ("yaml", "unencrypted_comment_regex", "sops:nocrypt", Via::Config),
    selector_yaml_encrypted_comment_regex_flag => ("yaml", "encrypted_comment_regex", "sops:crypt", Via::Flags),
    selector_yaml_encrypted_comment_regex_config => ("yaml", "encrypted_comment_regex", "sops:crypt", Via::Config),
    selector_yaml_mac_only_encrypted_flag => ("yaml", "mac_only_encrypted", "true", Via::Flags),
    selector_yaml_mac_only_encrypted_config => ("yaml", "mac_only_encrypted", "true", Via::Config),
    selector_json_unencrypted_suffix_flag => ("json", "unencrypted_suffix", "_plain", Via::Flags),
    selector_json_encrypted_suffix_config => ("json", "encrypted_suffix", "_secret", Via::Config),
    selector_json_unencrypted_regex_flag => ("json", "unencrypted_regex", "^(name|public)", Via::Flags),
    selector_json_encrypted_regex_config => ("json", "encrypted_regex", "^(password|token)$", Via::Config),
    selector_json_mac_only_encrypted_flag => ("json", "mac_only_encrypted", "true", Via::Flags),
}

#[test]
fn two_selectors_are_refused_like_sops() {
    let key = AgeKey::generate();
    let env = Env::with_keys(&[&key]);
    env.write("s.yaml", SELECTOR_YAML);
    let args = [
        "--age",
        key.recipient.as_str(),
        "--encrypted-regex",
        "^password$",
        "--unencrypted-suffix",
        "_plain",
        "s.yaml",
    ];
    let sops = env.sops().arg("encrypt").args(args).run();
    assert!(!sops.success(), "sops refuses two selectors");
    let ours = env.git_sops().arg("encrypt").args(args).run().fails();
    assert!(ours.stdout.is_empty(), "nothing on stdout when refusing");
}

// ---------------------------------------------------------------------------------
// Recipients, age stanzas, key groups
// ---------------------------------------------------------------------------------

#[test]
fn multiple_recipients_each_open_the_file() {
    let (k1, k2, k3) = (AgeKey::generate(), AgeKey::generate(), AgeKey::generate());
    let env = Env::with_keys(&[&k1]);
    let src = fixture("corpus", "yaml-comments.yaml");
    env.write("multi.yaml", &src);
    let ours = env
        .git_sops()
        .args([
            "encrypt",
            "--age",
            &format!("{},{}", k1.recipient, k2.recipient),
        ])
        .args(["--age", &k3.recipient, "multi.yaml"])
        .run()
        .ok()
        .stdout;
    let mut got = age_recipients(&ours, "yaml");
    got.sort();
    let mut want = vec![
        k1.recipient.clone(),
        k2.recipient.clone(),
        k3.recipient.clone(),
    ];
    want.sort();
    assert_eq!(got, want, "every --age recipient gets a stanza");
    let sops_enc = env
        .sops()
        .args(["encrypt", "--age"])
        .arg(format!(
            "{},{},{}",
            k1.recipient, k2.recipient, k3.recipient
        ))
        .arg("multi.yaml")
        .run()
        .ok()
        .stdout;
    let reference = sops_tree(&env, &sops_enc, "yaml", "sops' encryption");
    env.write("ours.enc.yaml", &ours);
    env.write("sops.enc.yaml", &sops_enc);
    for k in [&k1, &k2, &k3] {
        let mut env1 = Env::new();
        env1.use_identities(&[k]);
        env1.write("ours.enc.yaml", &ours);
        env1.write("sops.enc.yaml", &sops_enc);
        let by_sops = env1
            .sops()
            .args(["decrypt", "ours.enc.yaml"])
            .run()
            .ok()
            .stdout_str();
        assert_eq!(
            by_sops, reference.canonical,
            "sops with only {} opens ours",
            k.recipient
        );
        let by_us = env1
            .git_sops()
            .args(["decrypt", "ours.enc.yaml"])
            .run()
            .ok()
            .stdout;
        assert_bytes_eq(&src, &by_us, "our decrypt with one of three identities");
        env1.git_sops()
            .args(["decrypt", "sops.enc.yaml"])
            .run()
            .ok();
    }
}

/// Our `enc` stanzas are ordinary armored age files: the age CLI opens each to the
/// same 32-byte data key.
#[test]
fn our_age_stanzas_open_with_the_age_cli() {
    let (k1, k2) = (AgeKey::generate(), AgeKey::generate());
    for ext in ["yaml", "json"] {
        let env = Env::with_keys(&[&k1]);
        let name = format!("f.{ext}");
        let src = if ext == "json" {
            SELECTOR_JSON
        } else {
            SELECTOR_YAML
        };
        env.write(&name, src);
        let ours = env
            .git_sops()
            .args([
                "encrypt",
                "--age",
                &format!("{},{}", k1.recipient, k2.recipient),
                &name,
            ])
            .run()
            .ok()
            .stdout;
        let meta = metadata(&ours, ext);
        let stanzas = meta["age"].as_array().expect("age list").clone();
        assert_eq!(stanzas.len(), 2);
        let mut keys = Vec::new();
        for (stanza, k) in stanzas.iter().zip([&k1, &k2]) {
            assert_eq!(stanza["recipient"].as_str(), Some(k.recipient.as_str()));
            let enc = stanza["enc"].as_str().expect("enc is a string");
            assert!(
                enc.starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n"),
                "{enc}"
            );
            assert!(
                enc.trim_end().ends_with("-----END AGE ENCRYPTED FILE-----"),
                "{enc}"
            );
            env.write("stanza.age", enc);
            env.write("id.txt", k.key_file_text());
            let out = env
                .tool("age")
                .args(["-d", "-i", "id.txt", "stanza.age"])
                .run();
            assert!(out.success(), "age -d: {}", out.describe());
            assert_eq!(out.stdout.len(), 32, "the data key is 32 raw bytes");
            keys.push(out.stdout);
        }
        assert_eq!(keys[0], keys[1], "one data key wrapped for every recipient");
    }
}

/// A file whose `enc` was made by the age CLI (`age -r -a`) opens with git-sops
/// and with sops: our age unwrapping is plain age, not something only we read.
#[test]
fn enc_made_by_the_age_cli_opens_with_us_and_sops() {
    let (k1, k2) = (AgeKey::generate(), AgeKey::generate());
    let env = Env::with_keys(&[&k1]);
    let sops_enc = sops_encrypt(&env, SELECTOR_JSON.as_bytes(), "json", &k1.recipient, &[]);
    let mut doc: Value = serde_json::from_slice(&sops_enc).unwrap();
    let enc = doc["sops"]["age"][0]["enc"].as_str().unwrap().to_string();
    env.write("stanza.age", &enc);
    env.write("id1.txt", k1.key_file_text());
    let data_key = env
        .tool("age")
        .args(["-d", "-i", "id1.txt", "stanza.age"])
        .run();
    assert!(data_key.success(), "{}", data_key.describe());
    let rewrapped = env
        .tool("age")
        .args(["-a", "-r", &k2.recipient])
        .stdin(&data_key.stdout)
        .run();
    assert!(rewrapped.success(), "{}", rewrapped.describe());
    doc["sops"]["age"] = serde_json::json!([{
        "recipient": k2.recipient,
        "enc": String::from_utf8(rewrapped.stdout).unwrap(),
    }]);
    let file = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    let mut env2 = Env::new();
    env2.use_identities(&[&k2]);
    env2.write("rewrapped.json", &file);
    let by_sops = env2.sops().args(["decrypt", "rewrapped.json"]).run();
    assert!(by_sops.success(), "sops: {}", by_sops.describe());
    let by_us = env2
        .git_sops()
        .args(["decrypt", "rewrapped.json"])
        .run()
        .ok();
    let a: Value = serde_json::from_slice(&by_us.stdout).expect("our output is JSON");
    let b: Value = serde_json::from_slice(&by_sops.stdout).unwrap();
    assert_eq!(a, b);
}

#[test]
fn key_groups_with_shamir_threshold_interoperate() {
    let (k1, k2, k3) = (AgeKey::generate(), AgeKey::generate(), AgeKey::generate());
    let env = Env::with_keys(&[&k1, &k2, &k3]);
    env.write(
        ".sops.yaml",
        format!(
            "creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n      - age:\n          - {}\n      - age:\n          - {}\n      - age:\n          - {}\n",
            k1.recipient, k2.recipient, k3.recipient
        ),
    );
    let src = fixture("corpus", "yaml-nested-lists-of-maps.yaml");
    env.write("groups.yaml", &src);
    let ours = env
        .git_sops()
        .args(["encrypt", "groups.yaml"])
        .run()
        .ok()
        .stdout;
    let meta = metadata(&ours, "yaml");
    assert_eq!(
        meta["key_groups"].as_array().map(Vec::len),
        Some(3),
        "{meta:#}"
    );
    assert!(meta["shamir_threshold"] == Value::String("2".into()) || meta["shamir_threshold"] == 2);
    let sops_enc = env
        .sops()
        .args(["encrypt", "groups.yaml"])
        .run()
        .ok()
        .stdout;
    let reference = sops_tree(&env, &sops_enc, "yaml", "sops' key groups");
    env.write("ours.enc.yaml", &ours);
    env.write("sops.enc.yaml", &sops_enc);
    // Any two of the three keys are enough, for sops and for us.
    for pair in [[&k1, &k2], [&k2, &k3], [&k1, &k3]] {
        let mut e = Env::new();
        e.use_identities(&pair);
        e.write("ours.enc.yaml", &ours);
        e.write("sops.enc.yaml", &sops_enc);
        let s = e
            .sops()
            .args(["decrypt", "ours.enc.yaml"])
            .run()
            .ok()
            .stdout_str();
        assert_eq!(s, reference.canonical);
        let o = e
            .git_sops()
            .args(["decrypt", "ours.enc.yaml"])
            .run()
            .ok()
            .stdout;
        assert_bytes_eq(&src, &o, "our key-group round trip");
        e.git_sops().args(["decrypt", "sops.enc.yaml"]).run().ok();
    }
    // One key is not enough: exit 128 like sops.
    let mut e = Env::new();
    e.use_identities(&[&k1]);
    e.write("ours.enc.yaml", &ours);
    let s = e.sops().args(["decrypt", "ours.enc.yaml"]).run();
    assert_eq!(s.code, Some(128), "sops: {}", s.describe());
    let o = e
        .git_sops()
        .args(["decrypt", "ours.enc.yaml"])
        .run()
        .fails();
    assert_eq!(o.code, Some(128), "{}", o.describe());
}

#[test]
fn shamir_threshold_flag_overrides_the_rule() {
    let (k1, k2, k3) = (AgeKey::generate(), AgeKey::generate(), AgeKey::generate());
    let env = Env::with_keys(&[&k1, &k2]);
    env.write(
        ".sops.yaml",
        format!(
            "creation_rules:\n  - shamir_threshold: 2\n    key_groups:\n      - age: [{}]\n      - age: [{}]\n      - age: [{}]\n",
            k1.recipient, k2.recipient, k3.recipient
        ),
    );
    env.write("t.yaml", "a: b\n");
    let ours = env
        .git_sops()
        .args([
            "encrypt",
            "--shamir-secret-sharing-threshold",
            "3",
            "t.yaml",
        ])
        .run()
        .ok()
        .stdout;
    let meta = metadata(&ours, "yaml");
    assert!(
        meta["shamir_threshold"] == Value::String("3".into()) || meta["shamir_threshold"] == 3,
        "{meta:#}"
    );
    env.write("t.enc.yaml", &ours);
    // Two of three keys no longer suffice, for sops either.
    assert_eq!(
        env.sops().args(["decrypt", "t.enc.yaml"]).run().code,
        Some(128)
    );
    let o = env.git_sops().args(["decrypt", "t.enc.yaml"]).run().fails();
    assert_eq!(o.code, Some(128), "{}", o.describe());
}

// ---------------------------------------------------------------------------------
// .sops.yaml creation rules
// ---------------------------------------------------------------------------------

fn rules_env() -> (Env, AgeKey, AgeKey, AgeKey) {
    let (prod, dev, other) = (AgeKey::generate(), AgeKey::generate(), AgeKey::generate());
    let env = Env::with_keys(&[&prod, &dev, &other]);
    env.write(
        ".sops.yaml",
        format!(
            "# first match wins\ncreation_rules:\n  - path_regex: ^secrets/prod/.*\\.yaml$\n    age: {}\n    encrypted_regex: ^(password|token)$\n  - path_regex: secrets/.*\\.yaml$\n    age: >-\n      {},\n      {}\n  - age: {}\n",
            prod.recipient, dev.recipient, other.recipient, other.recipient
        ),
    );
    (env, prod, dev, other)
}

#[test]
fn creation_rules_first_match_wins_from_a_subdirectory() {
    let (env, prod, dev, other) = rules_env();
    env.write("secrets/prod/app.yaml", SELECTOR_YAML);
    env.write("secrets/dev/app.yaml", SELECTOR_YAML);
    env.write("notes/x.json", SELECTOR_JSON);
    let sub = env.path("secrets");
    for (file, ext, want) in [
        ("prod/app.yaml", "yaml", vec![prod.recipient.clone()]),
        (
            "dev/app.yaml",
            "yaml",
            vec![dev.recipient.clone(), other.recipient.clone()],
        ),
        ("../notes/x.json", "json", vec![other.recipient.clone()]),
    ] {
        let ours = env
            .git_sops()
            .current_dir(&sub)
            .args(["encrypt", file])
            .run()
            .ok()
            .stdout;
        let sops = env.sops().current_dir(&sub).args(["encrypt", file]).run();
        assert!(sops.success(), "{}", sops.describe());
        let mut got = age_recipients(&ours, ext);
        got.sort();
        let mut want = want.clone();
        want.sort();
        assert_eq!(got, want, "{file}: recipients from the first matching rule");
        let mut sops_got = age_recipients(&sops.stdout, ext);
        sops_got.sort();
        assert_eq!(got, sops_got, "{file}: same recipients as sops");
        let reference = sops_tree(&env, &sops.stdout, ext, "sops");
        assert_same_encryption(&ours, &sops.stdout, &reference, ext, file);
        assert_tree_eq(&reference, &sops_tree(&env, &ours, ext, "ours"), file);
    }
}

#[test]
fn no_matching_creation_rule_is_an_error() {
    let key = AgeKey::generate();
    let env = Env::with_keys(&[&key]);
    env.write(
        ".sops.yaml",
        format!(
            "creation_rules:\n  - path_regex: ^only/this\\.yaml$\n    age: {}\n",
            key.recipient
        ),
    );
    env.write("other.yaml", "a: b\n");
    assert!(!env.sops().args(["encrypt", "other.yaml"]).run().success());
    let out = env.git_sops().args(["encrypt", "other.yaml"]).run().fails();
    let err = out.stderr.to_lowercase();
    assert!(
        err.contains("creation rule") || err.contains("no matching"),
        "{}",
        out.describe()
    );
    assert!(
        out.stderr.contains("other.yaml"),
        "names the file: {}",
        out.describe()
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn config_flag_and_filename_override_pick_the_rule() {
    let (prod, other) = (AgeKey::generate(), AgeKey::generate());
    let env = Env::with_keys(&[&prod, &other]);
    env.write(
        "conf/custom-sops.yaml",
        format!(
            "creation_rules:\n  - path_regex: prod\\.yaml$\n    age: {}\n  - age: {}\n",
            prod.recipient, other.recipient
        ),
    );
    env.write("x.yaml", "secret: value\n");
    // --config: the file is not .sops.yaml and is not found by the upward search.
    let ours = env
        .git_sops()
        .args(["encrypt", "--config", "conf/custom-sops.yaml", "x.yaml"])
        .run()
        .ok()
        .stdout;
    assert_eq!(age_recipients(&ours, "yaml"), vec![other.recipient.clone()]);
    // stdin + --filename-override: rule and format come from the override.
    let ours = env
        .git_sops()
        .args([
            "encrypt",
            "--config",
            "conf/custom-sops.yaml",
            "--filename-override",
            "prod.yaml",
            "-",
        ])
        .stdin("secret: value\n")
        .run()
        .ok()
        .stdout;
    assert_eq!(age_recipients(&ours, "yaml"), vec![prod.recipient.clone()]);
    env.write("stdin.enc.yaml", &ours);
    assert_eq!(
        env.sops()
            .args(["decrypt", "stdin.enc.yaml"])
            .run()
            .ok()
            .stdout_str(),
        "secret: value\n"
    );
    // decrypt from stdin with --filename-override / --input-type.
    let back = env
        .git_sops()
        .args(["decrypt", "--filename-override", "whatever.yaml", "-"])
        .stdin(&ours)
        .run()
        .ok();
    assert_eq!(back.stdout_str(), "secret: value\n");
    let back = env
        .git_sops()
        .args(["decrypt", "--input-type", "yaml"])
        .stdin(&ours)
        .run()
        .ok();
    assert_eq!(back.stdout_str(), "secret: value\n");
}

// ---------------------------------------------------------------------------------
// Key discovery and keygen
// ---------------------------------------------------------------------------------

fn sops_file_for(key: &AgeKey) -> (Vec<u8>, &'static str) {
    let env = Env::with_keys(&[key]);
    let src = "user: admin\npassword: hunter2 # the password\n";
    (
        sops_encrypt(&env, src.as_bytes(), "yaml", &key.recipient, &[]),
        src,
    )
}

#[test]
fn key_discovery_sops_age_key() {
    let key = AgeKey::generate();
    let (enc, _) = sops_file_for(&key);
    let mut env = Env::new();
    env.set("SOPS_AGE_KEY", format!("{}\n", key.identity));
    env.write("f.enc.yaml", &enc);
    let out = env.git_sops().args(["decrypt", "f.enc.yaml"]).run().ok();
    assert_eq!(
        out.stdout_str(),
        env.sops()
            .args(["decrypt", "f.enc.yaml"])
            .run()
            .ok()
            .stdout_str()
    );
}

#[test]
fn key_discovery_sops_age_key_file() {
    let key = AgeKey::generate();
    let (enc, _) = sops_file_for(&key);
    let mut env = Env::new();
    let other = AgeKey::generate();
    env.use_identities(&[&other, &key]);
    env.write("f.enc.yaml", &enc);
    env.git_sops().args(["decrypt", "f.enc.yaml"]).run().ok();
}

#[test]
fn key_discovery_sops_age_key_cmd() {
    let key = AgeKey::generate();
    let (enc, _) = sops_file_for(&key);
    let mut env = Env::new();
    let kf = env.root.join("secret-store.txt");
    std::fs::write(&kf, key.key_file_text()).unwrap();
    env.set("SOPS_AGE_KEY_CMD", format!("cat {}", kf.display()));
    env.write("f.enc.yaml", &enc);
    assert!(
        env.sops().args(["decrypt", "f.enc.yaml"]).run().success(),
        "sops honours SOPS_AGE_KEY_CMD"
    );
    env.git_sops().args(["decrypt", "f.enc.yaml"]).run().ok();
}

#[test]
fn key_discovery_default_key_file_xdg_and_home() {
    let key = AgeKey::generate();
    let (enc, _) = sops_file_for(&key);
    // $XDG_CONFIG_HOME/sops/age/keys.txt
    let env = Env::new();
    let p = env.xdg_config_home.join("sops/age/keys.txt");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, key.key_file_text()).unwrap();
    env.write("f.enc.yaml", &enc);
    env.git_sops().args(["decrypt", "f.enc.yaml"]).run().ok();
    // ~/.config/sops/age/keys.txt when XDG_CONFIG_HOME is unset.
    let mut env = Env::new();
    env.remove("XDG_CONFIG_HOME");
    let p = env.home.join(".config/sops/age/keys.txt");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, key.key_file_text()).unwrap();
    env.write("f.enc.yaml", &enc);
    assert!(env.sops().args(["decrypt", "f.enc.yaml"]).run().success());
    env.git_sops().args(["decrypt", "f.enc.yaml"]).run().ok();
}

#[test]
fn keygen_writes_the_default_key_file_and_refuses_to_overwrite() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new();
    let out = env.git_sops().arg("keygen").run().ok();
    let recipient = out.stdout_str().trim().to_string();
    assert!(
        recipient.starts_with("age1") && !recipient.contains('\n'),
        "stdout: {recipient:?}"
    );
    let path = env.xdg_config_home.join("sops/age/keys.txt");
    let meta = std::fs::metadata(&path).expect("keys.txt created, folders too");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "key file mode");
    // The age CLI agrees on the recipient.
    let y = env.tool("age-keygen").arg("-y").arg(&path).run();
    assert!(y.success(), "{}", y.describe());
    assert_eq!(String::from_utf8_lossy(&y.stdout).trim(), recipient);
    // A file for that recipient opens through the default key file, for sops and us.
    env.write("k.yaml", "token: abc123\n");
    let enc = env
        .git_sops()
        .args(["encrypt", "--age", &recipient, "k.yaml"])
        .run()
        .ok()
        .stdout;
    env.write("k.enc.yaml", &enc);
    assert_eq!(
        env.sops()
            .args(["decrypt", "k.enc.yaml"])
            .run()
            .ok()
            .stdout_str(),
        "token: abc123\n"
    );
    assert_eq!(
        env.git_sops()
            .args(["decrypt", "k.enc.yaml"])
            .run()
            .ok()
            .stdout_str(),
        "token: abc123\n"
    );
    // A second keygen refuses and leaves the file alone.
    let before = std::fs::read(&path).unwrap();
    let again = env.git_sops().arg("keygen").run().fails();
    assert!(
        again.stderr.contains("keys.txt"),
        "names the file: {}",
        again.describe()
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "existing key file untouched"
    );
}

#[test]
fn keygen_uses_home_config_without_xdg() {
    let mut env = Env::new();
    env.remove("XDG_CONFIG_HOME");
    let out = env.git_sops().arg("keygen").run().ok();
    assert!(out.stdout_str().trim().starts_with("age1"));
    assert!(env.home.join(".config/sops/age/keys.txt").is_file());
}

// ---------------------------------------------------------------------------------
// I/O modes: stdin, --output, --in-place, type conversion
// ---------------------------------------------------------------------------------

#[test]
fn in_place_and_output_round_trip() {
    let key = AgeKey::generate();
    let env = Env::with_keys(&[&key]);
    let src = fixture("corpus", "yaml-comments.yaml");
    env.write("f.yaml", &src);
    let out = env
        .git_sops()
        .args(["encrypt", "--age", &key.recipient, "-i", "f.yaml"])
        .run()
        .ok();
    assert!(out.stdout.is_empty(), "in-place prints nothing on stdout");
    let enc = env.read("f.yaml");
    assert!(
        enc_type_counts(&enc).contains_key("str"),
        "encrypted in place"
    );
    assert!(env.sops().args(["decrypt", "f.yaml"]).run().success());
    env.git_sops()
        .args(["decrypt", "--in-place", "f.yaml"])
        .run()
        .ok();
    assert_bytes_eq(&src, &env.read("f.yaml"), "decrypt -i after encrypt -i");
    env.git_sops()
        .args([
            "encrypt",
            "--age",
            &key.recipient,
            "--output",
            "out.enc.yaml",
            "f.yaml",
        ])
        .run()
        .ok();
    assert_bytes_eq(&src, &env.read("f.yaml"), "--output leaves the input alone");
    env.git_sops()
        .args(["decrypt", "--output", "out.yaml", "out.enc.yaml"])
        .run()
        .ok();
    assert_bytes_eq(&src, &env.read("out.yaml"), "decrypt --output");
}

#[test]
fn stdin_encrypt_and_decrypt() {
    let key = AgeKey::generate();
    let env = Env::with_keys(&[&key]);
    let src = fixture("corpus", "json-nested.json");
    let enc = env
        .git_sops()
        .args([
            "encrypt",
            "--age",
            &key.recipient,
            "--input-type",
            "json",
            "-",
        ])
        .stdin(&src)
        .run()
        .ok()
        .stdout;
    let _: Value = serde_json::from_slice(&enc).expect("encrypted JSON on stdout");
    let back = env
        .git_sops()
        .args(["decrypt", "--input-type", "json", "-"])
        .stdin(&enc)
        .run()
        .ok()
        .stdout;
    assert_bytes_eq(&src, &back, "stdin round trip");
}

/// `--output-type json` for a YAML file: sops converts; git-sops may convert (then
/// it must give sops' tree) or refuse cleanly (each file stays in its own format).
fn converts_or_refuses_cleanly(out: Output, file: &str) -> Option<Output> {
    if out.success() {
        return Some(out);
    }
    let out = out.fails();
    assert!(
        out.stderr.contains(file),
        "names the file: {}",
        out.describe()
    );
    assert!(
        out.stderr.to_lowercase().contains("not supported"),
        "says conversion is not supported: {}",
        out.describe()
    );
    assert!(out.stdout.is_empty());
    None
}

#[test]
fn decrypt_output_type_json() {
    let key = AgeKey::generate();
    let env = Env::with_keys(&[&key]);
    let src = fixture("corpus", "yaml-nested-lists-of-maps.yaml");
    let enc = sops_encrypt(&env, &src, "yaml", &key.recipient, &[]);
    env.write("f.enc.yaml", &enc);
    let ours = env
        .git_sops()
        .args(["decrypt", "--output-type", "json", "f.enc.yaml"])
        .run();
    let Some(ours) = converts_or_refuses_cleanly(ours, "f.enc.yaml") else {
        return;
    };
    let sops = env
        .sops()
        .args(["decrypt", "--output-type", "json", "f.enc.yaml"])
        .run()
        .ok();
    let (a, b): (Value, Value) = (
        serde_json::from_slice(&ours.stdout).expect("JSON"),
        serde_json::from_slice(&sops.stdout).unwrap(),
    );
    assert_eq!(a.to_string(), b.to_string(), "same JSON, same key order");
}

#[test]
fn encrypt_output_type_json() {
    let key = AgeKey::generate();
    let env = Env::with_keys(&[&key]);
    let src = fixture("corpus", "yaml-nested-lists-of-maps.yaml");
    env.write("f.yaml", &src);
    let ours = env
        .git_sops()
        .args([
            "encrypt",
            "--age",
            &key.recipient,
            "--output-type",
            "json",
            "f.yaml",
        ])
        .run();
    let Some(ours) = converts_or_refuses_cleanly(ours, "f.yaml") else {
        return;
    };
    let _: Value = serde_json::from_slice(&ours.stdout).expect("a JSON file");
    let sops = sops_encrypt(&env, &src, "yaml", &key.recipient, &[]);
    env.write("s.enc.yaml", &sops);
    let reference = env
        .sops()
        .args(["decrypt", "--output-type", "json", "s.enc.yaml"])
        .run()
        .ok()
        .stdout_str();
    env.write("o.enc.json", &ours.stdout);
    let got = env
        .sops()
        .args(["decrypt", "o.enc.json"])
        .run()
        .ok()
        .stdout_str();
    let (a, b): (Value, Value) = (
        serde_json::from_str(&got).unwrap(),
        serde_json::from_str(&reference).unwrap(),
    );
    assert_eq!(a.to_string(), b.to_string());
}

/// Encrypting the same plaintext twice gives different ciphertexts (fresh data
/// key and IVs), and both decrypt to the original.
#[test]
fn encryption_is_randomised() {
    let key = AgeKey::generate();
    let env = Env::with_keys(&[&key]);
    env.write("f.yaml", "a: same value\n");
    let one = env
        .git_sops()
        .args(["encrypt", "--age", &key.recipient, "f.yaml"])
        .run()
        .ok()
        .stdout;
    let two = env
        .git_sops()
        .args(["encrypt", "--age", &key.recipient, "f.yaml"])
        .run()
        .ok()
        .stdout;
    assert_ne!(one, two);
}

/// The public sops test key works as a recipient and identity (fixtures for it
/// may be committed).
#[test]
fn public_sops_test_key_round_trips_with_sops() {
    let key = AgeKey::sops_test_key();
    let env = Env::with_keys(&[&key]);
    env.write("f.yaml", "a: b\n");
    let ours = env
        .git_sops()
        .args(["encrypt", "--age", &key.recipient, "f.yaml"])
        .run()
        .ok()
        .stdout;
    env.write("f.enc.yaml", &ours);
    assert_eq!(
        env.sops()
            .args(["decrypt", "f.enc.yaml"])
            .run()
            .ok()
            .stdout_str(),
        "a: b\n"
    );
}

/// The harness itself: (d)'s checks notice a leaked value and a leaked comment
/// (sops' own file, doctored), so a passing (d) means something.
#[test]
fn harness_detects_leaks() {
    let key = AgeKey::generate();
    let env = Env::with_keys(&[&key]);
    let src = "# a private remark\nuser: admin\npassword: hunter2-secret\n";
    let (reference, sops_enc) = reference_tree(&env, src.as_bytes(), "yaml", &key);
    assert_same_encryption(&sops_enc, &sops_enc, &reference, "yaml", "identity");
    let text = String::from_utf8(sops_enc.clone()).unwrap();
    let re = regex::Regex::new(r"password: ENC\[[^\]]*\]").unwrap();
    let leaked_value = re.replace(&text, "password: hunter2-secret").into_owned();
    let value_caught = std::panic::catch_unwind(|| {
        assert_same_encryption(
            leaked_value.as_bytes(),
            &sops_enc,
            &reference,
            "yaml",
            "value",
        )
    });
    assert!(value_caught.is_err(), "a plaintext value must be caught");
    let re = regex::Regex::new(r"#ENC\[[^\]]*type:comment\]").unwrap();
    let leaked_comment = re.replace(&text, "# a private remark").into_owned();
    let comment_caught = std::panic::catch_unwind(|| {
        assert_no_leaks(
            leaked_comment.as_bytes(),
            &sops_enc,
            &reference,
            "yaml",
            "comment",
        )
    });
    assert!(
        comment_caught.is_err(),
        "a plaintext comment must be caught"
    );
}
