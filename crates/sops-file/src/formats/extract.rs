//! `sops decrypt --extract '["a"]["b"][0]'`: one value of a decrypted document,
//! printed the way sops 3.11 prints it. This module owns the path syntax and
//! what each kind of value becomes in each output format; the caller decrypts.
//!
//! What sops does, and so what this does (checked against sops 3.11 by
//! `tests/cli_sops_parity.rs`):
//!
//! * A string is printed raw, without a newline, whatever the output format
//!   (a binary file's tree is `{"data": <bytes>}`, so `["data"]` is its bytes).
//! * A map is printed as a whole file of the output format, in sops' layout
//!   (the layout of `--output-type` conversion, [`super::convert`]). For YAML,
//!   sops replaces only the first document, so the other documents of a
//!   multi-document file follow it; JSON and dotenv take the first one only.
//! * Anything else (number, bool, null, time, list) is sops' `EmitValue`: YAML
//!   as go-yaml marshals it (with a newline), JSON indented with tabs (no
//!   newline), INI as Go's compact `json.Marshal` (maps inside a list in Go's
//!   `{"Key":..,"Value":..}` form), and an error for dotenv and binary.
//!
//! Where sops crashes or prints its internal structures, this is an error
//! instead (exit codes are the caller's): a key applied to a list or a scalar
//! and a negative index (sops panics), an index applied to a map (sops prints
//! its n-th internal `{key, value}` item), `[]` and `["]` (sops panics).
//!
//! The parser and the walk are linear in the length of the path and never panic.

use zeroize::Zeroizing;

use super::convert::{elements, ini_tree, json_node, render, yaml_list, yaml_scalar, ConvertError};
use super::json::{go_json_string, json_float};
use super::{Document, Format, List, Map, MapItem, Node, Scalar};

/// One step of a path: a map key (`["key"]` or `['key']`) or a list index (`[0]`).
#[derive(Clone, PartialEq, Eq)]
pub enum Component {
    /// The key's bytes: sops cuts the quotes off by byte, so a key may end in
    /// half a UTF-8 character (and then matches nothing).
    Key(Vec<u8>),
    Index(i64),
}

impl std::fmt::Debug for Component {
    // Keys are names, not values, but the path may be typed by a user: show it
    // the way the error messages do.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Component::Key(k) => write!(f, "['{}']", String::from_utf8_lossy(k)),
            Component::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path sops cannot parse (its exit code 91, `InvalidTreePathFormat`).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PathError {
    #[error("component {0} doesn't end with ]")]
    Unclosed(String),
    /// sops panics on `[]`.
    #[error("component [] is empty; write [\"key\"] for a map key or [N] for a list index")]
    Empty,
    /// sops panics on `["]`.
    #[error("component [{0}] has an opening quote and no closing one")]
    LoneQuote(char),
    #[error("strconv.Atoi: parsing {0:?}: invalid syntax")]
    NotANumber(String),
    #[error("strconv.Atoi: parsing {0:?}: value out of range")]
    OutOfRange(String),
}

/// Parse a `--extract` path as sops' `parseTreePath` does: split on `[`, skip
/// empty pieces (so `""`, `[` and `[[` are the empty path: no extraction), each
/// other piece must end with `]`; a piece starting with `"` or `'` is a key (its
/// first and last character cut off, whatever they are), anything else a
/// decimal integer as Go's `strconv.Atoi` reads it.
pub fn parse_path(arg: &str) -> Result<Vec<Component>, PathError> {
    let mut path = Vec::new();
    for piece in arg.split('[') {
        if piece.is_empty() {
            continue;
        }
        let Some(inner) = piece.strip_suffix(']') else {
            return Err(PathError::Unclosed(piece.to_string()));
        };
        let bytes = inner.as_bytes();
        match bytes.first() {
            None => return Err(PathError::Empty),
            Some(&q @ (b'"' | b'\'')) => {
                if bytes.len() < 2 {
                    return Err(PathError::LoneQuote(char::from(q)));
                }
                path.push(Component::Key(bytes[1..bytes.len() - 1].to_vec()));
            }
            Some(_) => path.push(Component::Index(parse_atoi(inner)?)),
        }
    }
    Ok(path)
}

/// Go's `strconv.Atoi` on a 64-bit machine: an optional sign, then ASCII digits.
fn parse_atoi(s: &str) -> Result<i64, PathError> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PathError::NotANumber(s.to_string()));
    }
    s.parse::<i64>()
        .map_err(|_| PathError::OutOfRange(s.to_string()))
}

/// Why a path could not be extracted. [`ExtractError::is_dump_error`] tells
/// sops' "could not write it" errors (its exit code 4) from a path that does
/// not fit the document (its exit code 1).
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("error truncating tree: component {0:?} not found")]
    NotFound(Component),
    /// sops panics here.
    #[error("error truncating tree: component {0:?} not found: the value there is {1}, not a map")]
    KeyOnNonMap(Component, &'static str),
    /// For a map, sops prints its n-th internal entry; for a scalar it says this.
    #[error("error truncating tree: component {0:?} is integer, but tree part is not a slice (it is {1})")]
    IndexOnNonList(Component, &'static str),
    /// A negative index makes sops panic; a large one is this error in sops too.
    #[error("error truncating tree: component {0:?} accesses out of bounds")]
    OutOfBounds(Component),
    #[error("Error dumping tree: the dotenv store only supports emitting strings, got {0}")]
    DotenvValue(&'static str),
    #[error("Error dumping tree: Binary files are not structured and extracting a single value is not possible")]
    BinaryValue,
    #[error("Error dumping file: error emitting binary store: no binary data found in tree")]
    BinaryNoData,
    #[error("Error dumping file: error emitting binary store: 'data' key in tree does not have a string value")]
    BinaryDataNotString,
    #[error("Error dumping file: {0}")]
    Convert(#[from] ConvertError),
}

impl ExtractError {
    /// The value was found but cannot be written in the output format.
    pub fn is_dump_error(&self) -> bool {
        matches!(
            self,
            ExtractError::DotenvValue(_)
                | ExtractError::BinaryValue
                | ExtractError::BinaryNoData
                | ExtractError::BinaryDataNotString
                | ExtractError::Convert(_)
        )
    }
}

enum At<'a> {
    Map(&'a Map),
    List(&'a List),
    Scalar(&'a Scalar),
}

impl<'a> At<'a> {
    fn of(node: &'a Node) -> At<'a> {
        match node {
            Node::Map(m) => At::Map(m),
            Node::List(l) => At::List(l),
            Node::Leaf(l) => At::Scalar(&l.value),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            At::Map(_) => "a map",
            At::List(_) => "a list",
            At::Scalar(Scalar::Str(_)) => "a string",
            At::Scalar(_) => "a scalar",
        }
    }
}

/// The value at `path` in the first document of `doc` (a plaintext of format
/// `from`), written as sops writes it in format `to`. An empty `path` is the
/// caller's business (sops then decrypts the whole file).
pub fn extract(
    doc: &Document,
    from: Format,
    path: &[Component],
    to: Format,
) -> Result<Zeroizing<Vec<u8>>, ExtractError> {
    // sops sees an INI file as go-ini's tree (a DEFAULT section first).
    let docs: Vec<Map> = if from == Format::Ini {
        doc.docs.iter().map(ini_tree).collect()
    } else {
        doc.docs.clone()
    };
    let empty = Map::default();
    let mut at = At::Map(docs.first().unwrap_or(&empty));
    for c in path {
        at = step(at, c)?;
    }
    match at {
        At::Map(m) => emit_map(m, &docs, to),
        At::Scalar(Scalar::Str(s)) => Ok(Zeroizing::new(s.as_bytes().to_vec())),
        At::Scalar(v) => emit_value(Value::Scalar(v), to),
        At::List(l) => emit_value(Value::List(l), to),
    }
}

/// `--extract` on a binary file, whose tree is `{"data": <the bytes>}`.
pub fn extract_binary(
    plaintext: &[u8],
    path: &[Component],
) -> Result<Zeroizing<Vec<u8>>, ExtractError> {
    let Some((first, rest)) = path.split_first() else {
        return Ok(Zeroizing::new(plaintext.to_vec()));
    };
    match first {
        Component::Key(k) if k == b"data" => match rest.first() {
            None => Ok(Zeroizing::new(plaintext.to_vec())),
            Some(c @ Component::Key(_)) => Err(ExtractError::KeyOnNonMap(c.clone(), "a string")),
            Some(c @ Component::Index(_)) => {
                Err(ExtractError::IndexOnNonList(c.clone(), "a string"))
            }
        },
        Component::Key(_) => Err(ExtractError::NotFound(first.clone())),
        Component::Index(_) => Err(ExtractError::IndexOnNonList(first.clone(), "a map")),
    }
}

fn step<'a>(at: At<'a>, c: &Component) -> Result<At<'a>, ExtractError> {
    match (c, &at) {
        (Component::Key(k), At::Map(m)) => m
            .items
            .iter()
            .find_map(|i| match i {
                MapItem::Entry(e) if e.key.as_bytes() == k.as_slice() => Some(At::of(&e.value)),
                _ => None,
            })
            .ok_or_else(|| ExtractError::NotFound(c.clone())),
        (Component::Key(_), _) => Err(ExtractError::KeyOnNonMap(c.clone(), at.kind())),
        (Component::Index(i), At::List(l)) => usize::try_from(*i)
            .ok()
            .and_then(|i| elements(l).nth(i))
            .map(At::of)
            .ok_or_else(|| ExtractError::OutOfBounds(c.clone())),
        (Component::Index(_), _) => Err(ExtractError::IndexOnNonList(c.clone(), at.kind())),
    }
}

/// A map: sops puts it in place of the first document and writes the file.
fn emit_map(map: &Map, docs: &[Map], to: Format) -> Result<Zeroizing<Vec<u8>>, ExtractError> {
    if to == Format::Binary {
        // sops' binary store writes the string under a top-level `data` key.
        let data = map.items.iter().find_map(|i| match i {
            MapItem::Entry(e) if e.key == "data" => Some(&e.value),
            _ => None,
        });
        return match data {
            Some(Node::Leaf(l)) => match &l.value {
                Scalar::Str(s) => Ok(Zeroizing::new(s.as_bytes().to_vec())),
                _ => Err(ExtractError::BinaryDataNotString),
            },
            Some(_) => Err(ExtractError::BinaryDataNotString),
            None => Err(ExtractError::BinaryNoData),
        };
    }
    let mut out: Vec<Map> = Vec::with_capacity(docs.len().max(1));
    out.push(map.clone());
    // sops' JSON (and dotenv) stores write the first document only.
    if matches!(to, Format::Yaml | Format::Ini) {
        out.extend(docs.iter().skip(1).cloned());
    }
    let text = render(&out, to)?;
    Ok(Zeroizing::new(text.as_bytes().to_vec()))
}

enum Value<'a> {
    Scalar(&'a Scalar),
    List(&'a List),
}

impl Value<'_> {
    /// The Go type sops names in its dotenv error.
    fn go_type(&self) -> &'static str {
        match self {
            Value::List(_) => "[]interface {}",
            Value::Scalar(Scalar::Str(_)) => "string",
            Value::Scalar(Scalar::Int(_)) => "int",
            Value::Scalar(Scalar::Float(_)) => "float64",
            Value::Scalar(Scalar::Bool(_)) => "bool",
            Value::Scalar(Scalar::Time(_)) => "time.Time",
            Value::Scalar(Scalar::Null) => "<nil>",
        }
    }
}

/// sops' `EmitValue` for anything but a string or a map.
fn emit_value(v: Value, to: Format) -> Result<Zeroizing<Vec<u8>>, ExtractError> {
    let mut out = Zeroizing::new(String::new());
    match to {
        Format::Yaml => match v {
            Value::Scalar(s) => {
                out.push_str(&yaml_scalar(s, 0));
                out.push('\n');
            }
            Value::List(l) if elements(l).next().is_none() => out.push_str("[]\n"),
            Value::List(l) => yaml_list(&mut out, l, 0),
        },
        Format::Json => match v {
            // A JSON scalar is what Go's json.Marshal writes, as in INI.
            Value::Scalar(s) => go_json_scalar(&mut out, s),
            Value::List(l) => json_node(&mut out, &Node::List(l.clone()), 0),
        },
        Format::Ini => match v {
            Value::Scalar(s) => go_json_scalar(&mut out, s),
            Value::List(l) => go_json_list(&mut out, l),
        },
        Format::Dotenv => return Err(ExtractError::DotenvValue(v.go_type())),
        Format::Binary => return Err(ExtractError::BinaryValue),
    }
    Ok(Zeroizing::new(out.as_bytes().to_vec()))
}

// Go's compact `json.Marshal` of sops' tree values (what its INI store emits).

fn go_json_scalar(out: &mut String, s: &Scalar) {
    match s {
        Scalar::Str(v) => out.push_str(&go_json_string(v)),
        Scalar::Time(t) => out.push_str(&go_json_string(t)),
        Scalar::Int(i) => out.push_str(&i.to_string()),
        Scalar::Float(f) => out.push_str(&json_float(*f)),
        Scalar::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Scalar::Null => out.push_str("null"),
    }
}

fn go_json_node(out: &mut String, n: &Node) {
    match n {
        Node::Leaf(l) => go_json_scalar(out, &l.value),
        Node::List(l) => go_json_list(out, l),
        Node::Map(m) => go_json_map(out, m),
    }
}

/// An empty list is Go's nil slice to sops: `null`.
fn go_json_list(out: &mut String, l: &List) {
    if elements(l).next().is_none() {
        out.push_str("null");
        return;
    }
    out.push('[');
    for (i, n) in elements(l).enumerate() {
        if i > 0 {
            out.push(',');
        }
        go_json_node(out, n);
    }
    out.push(']');
}

/// A `TreeBranch` is a slice of `{Key, Value}` items to `json.Marshal`;
/// a comment is an item whose key is `{"Value": text}`.
fn go_json_map(out: &mut String, m: &Map) {
    if m.items.is_empty() {
        out.push_str("null");
        return;
    }
    out.push('[');
    for (i, item) in m.items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match item {
            MapItem::Entry(e) => {
                out.push_str("{\"Key\":");
                out.push_str(&go_json_string(&e.key));
                out.push_str(",\"Value\":");
                go_json_node(out, &e.value);
                out.push('}');
            }
            MapItem::Comment(c) => {
                out.push_str("{\"Key\":{\"Value\":");
                out.push_str(&go_json_string(&c.text));
                out.push_str("},\"Value\":null}");
            }
        }
    }
    out.push(']');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Component {
        Component::Key(k.as_bytes().to_vec())
    }

    #[test]
    fn paths_parse_as_sops_parses_them() {
        assert_eq!(
            parse_path(r#"["a"]['b'][0][+1][-2][01]"#).unwrap(),
            vec![
                key("a"),
                key("b"),
                Component::Index(0),
                Component::Index(1),
                Component::Index(-2),
                Component::Index(1)
            ]
        );
        assert_eq!(parse_path("").unwrap(), vec![]);
        assert_eq!(parse_path("[").unwrap(), vec![]);
        assert_eq!(parse_path("[[").unwrap(), vec![]);
        assert_eq!(parse_path(r#"["a"]]"#).unwrap(), vec![key("a\"")]);
        assert_eq!(parse_path(r#"["a\"]"#).unwrap(), vec![key("a\\")]);
        assert_eq!(parse_path(r#"[""]"#).unwrap(), vec![key("")]);
        assert_eq!(parse_path("[]"), Err(PathError::Empty));
        assert_eq!(parse_path("]"), Err(PathError::Empty));
        assert_eq!(parse_path(r#"["]"#), Err(PathError::LoneQuote('"')));
        assert!(matches!(parse_path("a"), Err(PathError::Unclosed(_))));
        assert!(matches!(parse_path(r#"["a""#), Err(PathError::Unclosed(_))));
        assert!(matches!(parse_path("[a]"), Err(PathError::NotANumber(_))));
        assert!(matches!(parse_path("[ 1]"), Err(PathError::NotANumber(_))));
        assert!(matches!(parse_path("[+]"), Err(PathError::NotANumber(_))));
        assert!(matches!(parse_path("[1_0]"), Err(PathError::NotANumber(_))));
        assert!(matches!(
            parse_path("[99999999999999999999]"),
            Err(PathError::OutOfRange(_))
        ));
        // Cutting the quotes by byte may leave half a character: no panic.
        assert_eq!(
            parse_path("[\"é]").unwrap(),
            vec![Component::Key(vec![0xc3])]
        );
    }

    proptest::proptest! {
        #[test]
        fn parsing_any_path_never_panics(s in "\\PC{0,40}") {
            let _ = parse_path(&s);
        }

        #[test]
        fn extracting_any_path_never_panics(s in "[\\[\\]\"'ab0-9+-]{0,24}") {
            let doc = Format::Yaml
                .store()
                .parse("a:\n  b: [x, 1, {c: d}, []]\n  s: str\n")
                .unwrap();
            if let Ok(path) = parse_path(&s) {
                for to in [Format::Yaml, Format::Json, Format::Dotenv, Format::Ini, Format::Binary] {
                    let _ = extract(&doc, Format::Yaml, &path, to);
                }
                let _ = extract_binary(b"bytes", &path);
            }
        }
    }

    fn ex(src: &str, path: &str, to: Format) -> Result<String, ExtractError> {
        let doc = Format::Yaml.store().parse(src).unwrap();
        extract(&doc, Format::Yaml, &parse_path(path).unwrap(), to)
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
    }

    #[test]
    fn values_print_as_sops_prints_them() {
        let src = "a:\n  b: [x, 1, true, 1.5, null, {k: v}, [p, q], []]\n  m: |\n    multi\n";
        assert_eq!(ex(src, r#"["a"]["b"][0]"#, Format::Yaml).unwrap(), "x");
        assert_eq!(ex(src, r#"["a"]["m"]"#, Format::Json).unwrap(), "multi\n");
        assert_eq!(ex(src, r#"["a"]["b"][1]"#, Format::Yaml).unwrap(), "1\n");
        assert_eq!(ex(src, r#"["a"]["b"][1]"#, Format::Json).unwrap(), "1");
        assert_eq!(ex(src, r#"["a"]["b"][3]"#, Format::Ini).unwrap(), "1.5");
        assert_eq!(ex(src, r#"["a"]["b"][4]"#, Format::Yaml).unwrap(), "null\n");
        assert_eq!(
            ex(src, r#"["a"]["b"][5]"#, Format::Json).unwrap(),
            "{\n\t\"k\": \"v\"\n}\n"
        );
        assert_eq!(
            ex(src, r#"["a"]["b"][6]"#, Format::Yaml).unwrap(),
            "- p\n- q\n"
        );
        assert_eq!(ex(src, r#"["a"]["b"][7]"#, Format::Ini).unwrap(), "null");
        assert_eq!(
            ex(src, r#"["a"]["b"]"#, Format::Ini).unwrap(),
            r#"["x",1,true,1.5,null,[{"Key":"k","Value":"v"}],["p","q"],null]"#
        );
        assert!(matches!(
            ex(src, r#"["a"]["b"][1]"#, Format::Dotenv),
            Err(ExtractError::DotenvValue("int"))
        ));
        assert!(matches!(
            ex(src, r#"["a"]["b"]["x"]"#, Format::Yaml),
            Err(ExtractError::KeyOnNonMap(..))
        ));
        assert!(matches!(
            ex(src, r#"["a"][0]"#, Format::Yaml),
            Err(ExtractError::IndexOnNonList(..))
        ));
        assert!(matches!(
            ex(src, r#"["a"]["b"][-1]"#, Format::Yaml),
            Err(ExtractError::OutOfBounds(..))
        ));
        assert!(matches!(
            ex(src, r#"["zz"]"#, Format::Yaml),
            Err(ExtractError::NotFound(..))
        ));
    }
}
