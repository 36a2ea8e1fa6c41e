//! Converting a plaintext document to the other format (`--output-type`, as sops
//! allows). The original layout belongs to the original format, so this is a plain
//! re-serialisation in sops' own layout (JSON: one tab per level; YAML: four
//! spaces, sequences indented under their key). Comments do not carry over.

use zeroize::Zeroizing;

use super::json::{json_float, json_string};
use super::yaml::render;
use super::{Document, Format, List, ListItem, Map, MapItem, Node, Scalar};

#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error(
        "a YAML file with {0} documents cannot be written as JSON, which holds one; split it first"
    )]
    Documents(usize),
    #[error(
        "converting to or from {0} is not supported; git-sops converts only between YAML and JSON"
    )]
    Unsupported(&'static str),
}

/// `doc` (a plaintext document) written in format `to`.
pub fn convert(doc: &Document, to: Format) -> Result<Zeroizing<String>, ConvertError> {
    let mut out = Zeroizing::new(String::new());
    match to {
        Format::Dotenv | Format::Ini | Format::Binary => {
            return Err(ConvertError::Unsupported(to.name()))
        }
        Format::Json => {
            let [root] = &doc.docs[..] else {
                return Err(ConvertError::Documents(doc.docs.len()));
            };
            json_map(&mut out, root, 0);
            out.push('\n');
        }
        Format::Yaml => {
            for (i, root) in doc.docs.iter().enumerate() {
                if i > 0 {
                    out.push_str("---\n");
                }
                if entries(root).next().is_none() {
                    out.push_str("{}\n");
                } else {
                    yaml_map(&mut out, root, 0);
                }
            }
        }
    }
    Ok(out)
}

fn entries(map: &Map) -> impl Iterator<Item = (&str, &Node)> {
    map.items.iter().filter_map(|i| match i {
        MapItem::Entry(e) => Some((e.key.as_str(), &e.value)),
        MapItem::Comment(_) => None,
    })
}

fn elements(list: &List) -> impl Iterator<Item = &Node> {
    list.items.iter().filter_map(|i| match i {
        ListItem::Node(n) => Some(n),
        ListItem::Comment(_) => None,
    })
}

fn tabs(out: &mut String, depth: usize) {
    out.extend(std::iter::repeat_n('\t', depth));
}

fn json_node(out: &mut String, node: &Node, depth: usize) {
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
            Scalar::Str(s) => json_string(s),
            Scalar::Time(t) => json_string(t),
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
        out.push_str(&json_string(k));
        out.push_str(": ");
        json_node(out, v, depth + 1);
        out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
    }
    tabs(out, depth);
    out.push('}');
}

fn pad(out: &mut String, col: usize) {
    out.extend(std::iter::repeat_n(' ', col));
}

fn yaml_string(s: &str) -> String {
    if render::plain_safe(s, false) {
        s.to_string()
    } else {
        render::double_quoted(s)
    }
}

/// A scalar after `key:` or `- `; multi-line strings become literal blocks
/// whose content is indented at `col`.
fn yaml_scalar(value: &Scalar, col: usize) -> String {
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
        Scalar::Str(s) => yaml_string(s),
        Scalar::Null => "null".to_string(),
        typed => render::canonical(typed),
    }
}

fn yaml_map(out: &mut String, map: &Map, col: usize) {
    for (k, v) in entries(map) {
        pad(out, col);
        out.push_str(&yaml_string(k));
        out.push(':');
        yaml_value(out, v, col);
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

fn yaml_list(out: &mut String, list: &List, col: usize) {
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
        out.push_str(&nested[col + 2..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_and_json_convert_both_ways() {
        let yaml = "# c\na: x\nb:\n  c: [1, 2.5, true, null]\n  d:\n    - e: f\n      g: \"multi\\nline\\n\"\n    - []\nt: 2023-01-02\n";
        let doc = Format::Yaml.store().parse(yaml).unwrap();
        let json = convert(&doc, Format::Json).unwrap();
        assert_eq!(
            json.as_str(),
            "{\n\t\"a\": \"x\",\n\t\"b\": {\n\t\t\"c\": [\n\t\t\t1,\n\t\t\t2.5,\n\t\t\ttrue,\n\t\t\tnull\n\t\t],\n\t\t\"d\": [\n\t\t\t{\n\t\t\t\t\"e\": \"f\",\n\t\t\t\t\"g\": \"multi\\nline\\n\"\n\t\t\t},\n\t\t\t[]\n\t\t]\n\t},\n\t\"t\": \"2023-01-02T00:00:00Z\"\n}\n"
        );
        let back = convert(&doc, Format::Yaml).unwrap();
        let reparsed = Format::Yaml.store().parse(&back).unwrap();
        assert_eq!(
            convert(&reparsed, Format::Json).unwrap().as_str(),
            json.as_str(),
            "YAML output:\n{}",
            back.as_str()
        );
        let from_json = Format::Json.store().parse(&json).unwrap();
        let yaml2 = convert(&from_json, Format::Yaml).unwrap();
        assert!(
            Format::Yaml.store().parse(&yaml2).is_ok(),
            "{}",
            yaml2.as_str()
        );
    }

    #[test]
    fn several_documents_do_not_fit_json() {
        let doc = Format::Yaml.store().parse("a: 1\n---\nb: 2\n").unwrap();
        assert!(convert(&doc, Format::Json).is_err());
        assert_eq!(
            convert(&doc, Format::Yaml).unwrap().as_str(),
            "a: 1\n---\nb: 2\n"
        );
    }
}
