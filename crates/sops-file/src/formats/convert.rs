//! Converting a document to another format (`--output-type`), as sops does it.
//! The original layout belongs to the original format, so this is a
//! re-serialisation in the layout sops' store for the target format writes:
//!
//! * JSON: one tab per level, no comments.
//! * YAML: four spaces, sequences indented under their key, strings quoted as
//!   go-yaml quotes them, comments kept where sops keeps them.
//! * dotenv: the first document's top-level keys as `KEY=VALUE` lines, comments as
//!   `#...` lines; a nested map or list cannot be written (sops' error).
//! * INI: every top-level key is a section and must hold a map of scalars;
//!   written as go-ini writes it (`=` aligned per section, a blank line between
//!   sections, comments before the key they belong to).
//!
//! Scalars become dotenv/INI text as sops' `ValToString` makes them. An INI
//! source is first seen as sops sees it (go-ini's tree): a `DEFAULT` section
//! always comes first, a section's comment is its first item, and a key's comment
//! follows the key.
//!
//! The conversion works on plaintext documents and on encrypted ones alike: an
//! `ENC[...]` value is a string, an encrypted comment a comment.

use zeroize::Zeroizing;

use super::ini::{write_key, write_value};
use super::json::{go_json_string, json_float};
use super::yaml::render;
use super::{
    go_format_float, go_format_float_g, Comment, Document, Entry, Format, List, ListItem, Map,
    MapItem, Node, Scalar,
};

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error(
        "a YAML file with {0} documents cannot be written as JSON, which holds one; split it first"
    )]
    Documents(usize),
    #[error("converting to or from {0} is not supported")]
    Unsupported(&'static str),
    #[error(
        "the value of {0:?} is a map or a list, which a dotenv file cannot hold (sops: \"cannot use complex value in dotenv file\"); convert a flat file of KEY: value pairs"
    )]
    DotenvComplex(String),
    #[error(
        "{0:?} cannot become an INI section: each top-level key of a file written as INI must hold a map of keys (sops: \"Section values should always be TreeBranches\")"
    )]
    IniSection(String),
    #[error(
        "[{0}] {1}: INI values are text, and this one is a map or a list (sops would write Go's debug form of it, which no tool reads back); flatten it first"
    )]
    IniNested(String, String),
    #[error("{0}: an empty name cannot be written as an INI section or key")]
    IniEmptyName(&'static str),
}

/// `doc` (read as `from`) written in format `to`.
pub fn convert(
    doc: &Document,
    from: Format,
    to: Format,
) -> Result<Zeroizing<String>, ConvertError> {
    let ini_docs;
    let docs: &[Map] = if from == Format::Ini {
        ini_docs = doc.docs.iter().map(ini_tree).collect::<Vec<_>>();
        &ini_docs
    } else {
        &doc.docs
    };
    render(docs, to)
}

/// Documents as sops sees them (an INI file already through [`ini_tree`])
/// written in format `to`.
pub(super) fn render(docs: &[Map], to: Format) -> Result<Zeroizing<String>, ConvertError> {
    let mut out = Zeroizing::new(String::new());
    match to {
        Format::Binary => return Err(ConvertError::Unsupported(to.name())),
        Format::Json => {
            let [root] = docs else {
                return Err(ConvertError::Documents(docs.len()));
            };
            json_map(&mut out, root, 0);
            out.push('\n');
        }
        Format::Yaml => {
            for (i, root) in docs.iter().enumerate() {
                if i > 0 {
                    out.push_str("---\n");
                }
                yaml_map(&mut out, root, 0);
                if entries(root).next().is_none() {
                    out.push_str("{}\n");
                }
            }
        }
        Format::Dotenv => {
            if let Some(root) = docs.first() {
                dotenv(&mut out, root)?;
            }
        }
        Format::Ini => ini(&mut out, docs)?,
    }
    Ok(out)
}

/// The first top-level key whose value is null, if any: dotenv and INI have no
/// null, and sops writes `<nil>` for it, which is no `ENC[...]` value.
pub fn first_null(doc: &Document) -> Option<String> {
    doc.docs.iter().find_map(|root| {
        entries(root).find_map(|(k, v)| match v {
            Node::Leaf(l) if l.value == Scalar::Null => Some(k.to_string()),
            Node::Map(m) => entries(m).find_map(|(k2, v2)| match v2 {
                Node::Leaf(l) if l.value == Scalar::Null => Some(format!("{k}.{k2}")),
                _ => None,
            }),
            _ => None,
        })
    })
}

fn entries(map: &Map) -> impl Iterator<Item = (&str, &Node)> {
    map.items.iter().filter_map(|i| match i {
        MapItem::Entry(e) => Some((e.key.as_str(), &e.value)),
        MapItem::Comment(_) => None,
    })
}

pub(super) fn elements(list: &List) -> impl Iterator<Item = &Node> {
    list.items.iter().filter_map(|i| match i {
        ListItem::Node(n) => Some(n),
        ListItem::Comment(_) => None,
    })
}

// ---------------------------------------------------------------------------------
// An INI document as go-ini (and so sops) sees it
// ---------------------------------------------------------------------------------

fn joined(comments: &[&Comment], line: usize) -> MapItem {
    let text: Vec<&str> = comments.iter().map(|c| c.text.as_str()).collect();
    MapItem::Comment(Comment {
        text: Zeroizing::new(text.join("\n")),
        span: 0..0,
        line,
    })
}

/// go-ini's tree of a parsed INI file: `DEFAULT` first (empty if the file has no
/// keys outside a section), the comments before a section header as the
/// section's first item, the comments before a key after that key.
pub(super) fn ini_tree(root: &Map) -> Map {
    let mut items = Vec::new();
    let has_default = entries(root).next().is_some_and(|(k, _)| k == "DEFAULT");
    if !has_default {
        items.push(MapItem::Entry(Entry {
            key: "DEFAULT".to_string(),
            key_span: 0..0,
            value: Node::Map(Map::default()),
            span: 0..0,
            line: 0,
        }));
    }
    for item in &root.items {
        let MapItem::Entry(section) = item else {
            continue;
        };
        let Node::Map(keys) = &section.value else {
            items.push(item.clone());
            continue;
        };
        let mut out = Vec::new();
        let mut pending: Vec<&Comment> = Vec::new();
        let mut header_comments: Vec<&Comment> = Vec::new();
        for i in &keys.items {
            match i {
                MapItem::Comment(c) if c.line < section.line => header_comments.push(c),
                MapItem::Comment(c) => pending.push(c),
                MapItem::Entry(e) => {
                    out.push(MapItem::Entry(e.clone()));
                    if !pending.is_empty() {
                        out.push(joined(&pending, e.line));
                        pending.clear();
                    }
                }
            }
        }
        if !header_comments.is_empty() {
            out.insert(0, joined(&header_comments, section.line));
        }
        items.push(MapItem::Entry(Entry {
            value: Node::Map(Map {
                items: out,
                flow: false,
                span: keys.span.clone(),
            }),
            ..section.clone()
        }));
    }
    Map {
        items,
        flow: false,
        span: root.span.clone(),
    }
}

// ---------------------------------------------------------------------------------
// dotenv and INI
// ---------------------------------------------------------------------------------

/// sops' `ValToString`: the text a scalar becomes in a dotenv or INI file.
pub fn val_to_string(v: &Scalar) -> String {
    match v {
        Scalar::Str(s) => s.to_string(),
        Scalar::Int(i) => i.to_string(),
        Scalar::Float(f) if f.is_finite() => {
            let g = go_format_float_g(*f, true);
            if g.contains(['.', 'E']) {
                g
            } else {
                format!("{f:.1}")
            }
        }
        Scalar::Float(f) => go_format_float(*f),
        Scalar::Bool(b) => b.to_string(),
        // Go's `time.RFC3339`: no fractional seconds.
        Scalar::Time(t) => match t.find('.') {
            Some(dot) => {
                let digits = t[dot + 1..]
                    .find(|c: char| !c.is_ascii_digit())
                    .map_or(t.len(), |n| dot + 1 + n);
                format!("{}{}", &t[..dot], &t[digits..])
            }
            None => t.clone(),
        },
        Scalar::Null => "<nil>".to_string(),
    }
}

fn dotenv(out: &mut String, root: &Map) -> Result<(), ConvertError> {
    for item in &root.items {
        match item {
            MapItem::Comment(c) => {
                out.push('#');
                out.push_str(&c.text);
                out.push('\n');
            }
            MapItem::Entry(e) => {
                let Node::Leaf(leaf) = &e.value else {
                    return Err(ConvertError::DotenvComplex(e.key.clone()));
                };
                out.push_str(&e.key);
                out.push('=');
                out.push_str(&val_to_string(&leaf.value).replace('\n', "\\n"));
                out.push('\n');
            }
        }
    }
    Ok(())
}

/// One INI section as sops hands it to go-ini: its comment, and (key, value,
/// comment) per key, a later comment after a key replacing an earlier one.
struct Section<'a> {
    name: &'a str,
    comment: Option<&'a str>,
    keys: Vec<(&'a str, String, Option<&'a str>)>,
}

fn section_of<'a>(name: &'a str, map: &'a Map) -> Result<Section<'a>, ConvertError> {
    if name.is_empty() {
        return Err(ConvertError::IniEmptyName("section"));
    }
    let mut items = map.items.iter().peekable();
    let comment = match items.peek() {
        Some(MapItem::Comment(c)) => {
            items.next();
            Some(c.text.as_str())
        }
        _ => None,
    };
    let mut keys: Vec<(&str, String, Option<&str>)> = Vec::new();
    for item in items {
        match item {
            MapItem::Comment(c) => {
                if let Some(last) = keys.last_mut() {
                    last.2 = Some(c.text.as_str());
                }
            }
            MapItem::Entry(e) => {
                let Node::Leaf(leaf) = &e.value else {
                    return Err(ConvertError::IniNested(name.to_string(), e.key.clone()));
                };
                if e.key.is_empty() {
                    return Err(ConvertError::IniEmptyName("key"));
                }
                let value = val_to_string(&leaf.value);
                // go-ini keeps one key per name: a repeated one takes the new value
                // in the old place.
                match keys.iter_mut().find(|k| k.0 == e.key) {
                    Some(k) => k.1 = value,
                    None => keys.push((e.key.as_str(), value, None)),
                }
            }
        }
    }
    Ok(Section {
        name,
        comment,
        keys,
    })
}

/// go-ini's comment lines: a section comment's lines keep their text, a key
/// comment's lines are trimmed; a line that starts with `#` or `;` keeps it.
fn ini_comment(out: &mut String, text: &str, trim: bool) {
    for line in text.split('\n') {
        match line.chars().next() {
            Some(c @ ('#' | ';')) => {
                out.push(c);
                out.push(' ');
                out.push_str(line[1..].trim());
            }
            _ => {
                out.push_str("; ");
                out.push_str(if trim { line.trim() } else { line });
            }
        }
        out.push('\n');
    }
}

fn ini(out: &mut String, docs: &[Map]) -> Result<(), ConvertError> {
    let mut sections = Vec::new();
    for root in docs {
        for (name, value) in entries(root) {
            let Node::Map(map) = value else {
                return Err(ConvertError::IniSection(name.to_string()));
            };
            sections.push(section_of(name, map)?);
        }
    }
    let last = sections.len().saturating_sub(1);
    for (i, section) in sections.iter().enumerate() {
        if let Some(c) = section.comment.filter(|c| !c.is_empty()) {
            ini_comment(out, c, false);
        }
        // go-ini writes no header for a first section named DEFAULT, and nothing
        // at all when that section is empty.
        if i > 0 || !section.name.eq_ignore_ascii_case("DEFAULT") {
            out.push('[');
            out.push_str(section.name);
            out.push_str("]\n");
        } else if section.keys.is_empty() {
            continue;
        }
        let keys: Vec<String> = section.keys.iter().map(|k| write_key(k.0)).collect();
        let width = keys.iter().map(String::len).max().unwrap_or(0);
        for (key, (_, value, comment)) in keys.iter().zip(&section.keys) {
            if let Some(c) = comment.filter(|c| !c.is_empty()) {
                ini_comment(out, c, true);
            }
            out.push_str(key);
            out.extend(std::iter::repeat_n(' ', width - key.len()));
            out.push_str(" = ");
            out.push_str(&write_value(value));
            out.push('\n');
        }
        if i < last {
            out.push('\n');
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------
// JSON
// ---------------------------------------------------------------------------------

fn tabs(out: &mut String, depth: usize) {
    out.extend(std::iter::repeat_n('\t', depth));
}

pub(super) fn json_node(out: &mut String, node: &Node, depth: usize) {
    match node {
        Node::Map(m) => json_map(out, m, depth),
        Node::List(l) => {
            let items: Vec<&Node> = elements(l).collect();
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                tabs(out, depth + 1);
                json_node(out, item, depth + 1);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            tabs(out, depth);
            out.push(']');
        }
        Node::Leaf(leaf) => out.push_str(&match &leaf.value {
            Scalar::Str(s) => go_json_string(s),
            Scalar::Time(t) => go_json_string(t),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => json_float(*f),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Null => "null".to_string(),
        }),
    }
}

fn json_map(out: &mut String, map: &Map, depth: usize) {
    let items: Vec<(&str, &Node)> = entries(map).collect();
    if items.is_empty() {
        out.push_str("{}");
        return;
    }
    out.push_str("{\n");
    for (i, (k, v)) in items.iter().enumerate() {
        tabs(out, depth + 1);
        out.push_str(&go_json_string(k));
        out.push_str(": ");
        json_node(out, v, depth + 1);
        out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
    }
    tabs(out, depth);
    out.push('}');
}

// ---------------------------------------------------------------------------------
// YAML
// ---------------------------------------------------------------------------------

fn pad(out: &mut String, col: usize) {
    out.extend(std::iter::repeat_n(' ', col));
}

/// A comment as sops hands it to go-yaml: `#` and its text, each line.
fn yaml_comment(out: &mut String, c: &Comment, col: usize) {
    for line in c.text.split('\n') {
        pad(out, col);
        out.push('#');
        out.push_str(line);
        out.push('\n');
    }
}

/// A scalar after `key:` or `- `; multi-line strings become literal blocks
/// whose content is indented at `col`.
pub(super) fn yaml_scalar(value: &Scalar, col: usize) -> String {
    match value {
        Scalar::Str(s) if s.contains('\n') && !s.lines().any(|l| l.starts_with([' ', '\t'])) => {
            let body = s.trim_end_matches('\n');
            let chomp = match s.len() - body.len() {
                0 => "-",
                1 => "",
                _ => "+",
            };
            let mut text = format!("|{chomp}\n");
            for line in s.split_inclusive('\n') {
                if line != "\n" {
                    text.push_str(&" ".repeat(col));
                }
                text.push_str(line);
            }
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text.pop();
            text
        }
        Scalar::Str(s) if s.contains('\n') => render::double_quoted(s),
        Scalar::Str(s) => render::go_yaml_string(s),
        Scalar::Null => "null".to_string(),
        // go-yaml prints a float in Go's shortest `g` form, `1` for 1.0 included.
        Scalar::Float(f) if f.is_finite() => go_format_float_g(*f, false),
        // go-yaml marshals a time.Time as RFC3339Nano, which the value already is.
        Scalar::Time(t) => t.clone(),
        typed => render::canonical(typed),
    }
}

fn yaml_map(out: &mut String, map: &Map, col: usize) {
    for item in &map.items {
        match item {
            MapItem::Comment(c) => yaml_comment(out, c, col),
            MapItem::Entry(e) => {
                pad(out, col);
                out.push_str(&render::go_yaml_string(&e.key));
                out.push(':');
                yaml_value(out, &e.value, col);
            }
        }
    }
}

/// The rest of a line after `key:`, and any nested lines.
fn yaml_value(out: &mut String, v: &Node, col: usize) {
    match v {
        Node::Map(m) if entries(m).next().is_some() => {
            out.push('\n');
            yaml_map(out, m, col + 4);
        }
        Node::Map(_) => out.push_str(" {}\n"),
        Node::List(l) if elements(l).next().is_some() => {
            out.push('\n');
            yaml_list(out, l, col + 4);
        }
        Node::List(_) => out.push_str(" []\n"),
        Node::Leaf(leaf) => {
            out.push(' ');
            out.push_str(&yaml_scalar(&leaf.value, col + 4));
            out.push('\n');
        }
    }
}

pub(super) fn yaml_list(out: &mut String, list: &List, col: usize) {
    for item in elements(list) {
        // Write the item as if indented two further, then put `- ` over the
        // first line's indentation.
        let mut nested = String::new();
        match item {
            Node::Map(m) if entries(m).next().is_some() => yaml_map(&mut nested, m, col + 2),
            Node::List(l) if elements(l).next().is_some() => yaml_list(&mut nested, l, col + 2),
            Node::Map(_) => nested = format!("{}{{}}\n", " ".repeat(col + 2)),
            Node::List(_) => nested = format!("{}[]\n", " ".repeat(col + 2)),
            Node::Leaf(leaf) => {
                nested = format!(
                    "{}{}\n",
                    " ".repeat(col + 2),
                    yaml_scalar(&leaf.value, col + 2)
                );
            }
        }
        pad(out, col);
        out.push_str("- ");
        out.push_str(nested.get(col + 2..).unwrap_or(""));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conv(src: &str, from: Format, to: Format) -> Result<String, ConvertError> {
        let doc = from.store().parse(src).unwrap();
        convert(&doc, from, to).map(|s| s.to_string())
    }

    #[test]
    fn yaml_and_json_convert_both_ways() {
        let yaml = "a: x\nb:\n  c: [1, 2.5, true, null]\n  d:\n    - e: f\n      g: \"multi\\nline\\n\"\n    - []\nt: 2023-01-02\n";
        let doc = Format::Yaml.store().parse(yaml).unwrap();
        let json = convert(&doc, Format::Yaml, Format::Json).unwrap();
        assert_eq!(
            json.as_str(),
            "{\n\t\"a\": \"x\",\n\t\"b\": {\n\t\t\"c\": [\n\t\t\t1,\n\t\t\t2.5,\n\t\t\ttrue,\n\t\t\tnull\n\t\t],\n\t\t\"d\": [\n\t\t\t{\n\t\t\t\t\"e\": \"f\",\n\t\t\t\t\"g\": \"multi\\nline\\n\"\n\t\t\t},\n\t\t\t[]\n\t\t]\n\t},\n\t\"t\": \"2023-01-02T00:00:00Z\"\n}\n"
        );
        let back = convert(&doc, Format::Yaml, Format::Yaml).unwrap();
        let reparsed = Format::Yaml.store().parse(&back).unwrap();
        assert_eq!(
            convert(&reparsed, Format::Yaml, Format::Json)
                .unwrap()
                .as_str(),
            json.as_str(),
            "YAML output:\n{}",
            back.as_str()
        );
        let from_json = Format::Json.store().parse(&json).unwrap();
        let yaml2 = convert(&from_json, Format::Json, Format::Yaml).unwrap();
        assert!(
            Format::Yaml.store().parse(&yaml2).is_ok(),
            "{}",
            yaml2.as_str()
        );
    }

    #[test]
    fn several_documents_do_not_fit_json() {
        let doc = Format::Yaml.store().parse("a: 1\n---\nb: 2\n").unwrap();
        assert!(convert(&doc, Format::Yaml, Format::Json).is_err());
        assert_eq!(
            convert(&doc, Format::Yaml, Format::Yaml).unwrap().as_str(),
            "a: 1\n---\nb: 2\n"
        );
    }

    #[test]
    fn flat_yaml_to_dotenv_as_sops_writes_it() {
        let yaml = "# top\nA: hello\nB: 1\nC: 1.5\nD: true\nE: null\nF: 2023-01-02T03:04:05.5Z\nG: \"multi\\nline\"\nJ: 1e21\nK: 100000.0\n";
        assert_eq!(
            conv(yaml, Format::Yaml, Format::Dotenv).unwrap(),
            "# top\nA=hello\nB=1\nC=1.5\nD=true\nE=<nil>\nF=2023-01-02T03:04:05Z\nG=multi\\nline\nJ=1E+21\nK=100000.0\n"
        );
        assert!(matches!(
            conv("a:\n  b: 1\n", Format::Yaml, Format::Dotenv),
            Err(ConvertError::DotenvComplex(k)) if k == "a"
        ));
    }

    #[test]
    fn yaml_to_ini_as_go_ini_writes_it() {
        let yaml = "s1:\n  # first\n  a: x\n  # after a\n  long_key: 2\n  e: \"\"\n  f: \"multi\\nline\"\n  g: \" sp \"\n  h: \"a;b\"\ns2: {}\nDEFAULT:\n  k: v\n";
        assert_eq!(
            conv(yaml, Format::Yaml, Format::Ini).unwrap(),
            ";  first\n[s1]\n; after a\na        = x\nlong_key = 2\ne        = \nf        = \"\"\"multi\nline\"\"\"\ng        = \" sp \"\nh        = `a;b`\n\n[s2]\n\n[DEFAULT]\nk = v\n"
        );
        assert!(matches!(
            conv("a: 1\n", Format::Yaml, Format::Ini),
            Err(ConvertError::IniSection(k)) if k == "a"
        ));
        assert!(matches!(
            conv("s:\n  a: [1]\n", Format::Yaml, Format::Ini),
            Err(ConvertError::IniNested(..))
        ));
    }

    #[test]
    fn ini_is_seen_as_go_ini_sees_it() {
        let ini = "; c0\n[s1]\n; c1\nk = v\nj = 1\n";
        assert_eq!(
            conv(ini, Format::Ini, Format::Yaml).unwrap(),
            "DEFAULT: {}\ns1:\n    #c0\n    k: v\n    #c1\n    j: \"1\"\n"
        );
        assert!(matches!(
            conv(ini, Format::Ini, Format::Dotenv),
            Err(ConvertError::DotenvComplex(k)) if k == "DEFAULT"
        ));
        assert_eq!(
            conv("top = 1\n", Format::Ini, Format::Ini).unwrap(),
            "top = 1\n"
        );
    }

    #[test]
    fn dotenv_to_yaml_quotes_and_comments_as_sops() {
        assert_eq!(
            conv("# c1\nA=1\n#c2\ny=x y\n", Format::Dotenv, Format::Yaml).unwrap(),
            "# c1\nA: \"1\"\n#c2\n\"y\": x y\n"
        );
    }
}
