use super::*;
use crate::formats::extract::parse_path;
use crate::formats::{apply_edits, Format};

fn set_text(format: Format, src: &str, path: &str, value: &str) -> Result<String, SetError> {
    let store = format.store();
    let doc = store.parse(src).expect("parses");
    let value = parse_value(value).expect("value");
    let out = set(store, src, &doc, &parse_path(path).expect("path"), &value)?;
    let text = apply_edits(src, out.edits).expect("applies").to_string();
    store.parse(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    Ok(text)
}

fn unset_text(format: Format, src: &str, path: &str) -> Result<String, UnsetError> {
    let store = format.store();
    let doc = store.parse(src).expect("parses");
    let edits = unset(store, src, &doc, &parse_path(path).expect("path"))?;
    let text = apply_edits(src, edits).expect("applies").to_string();
    store.parse(&text).unwrap_or_else(|e| panic!("{e}: {text}"));
    Ok(text)
}

#[test]
fn yaml_block_set_replace_insert() {
    let src = "# top\na: 2 # two\nb:\n  c: x\n  d: [1, 2]\nl:\n  - 1\n  - k: v\n";
    let y = Format::Yaml;
    assert_eq!(
        set_text(y, src, r#"["a"]"#, "3").unwrap(),
        src.replace("a: 2", "a: 3")
    );
    assert_eq!(
        set_text(y, src, r#"["b"]["c"]"#, r#""new""#).unwrap(),
        src.replace("c: x", "c: new")
    );
    assert_eq!(
        set_text(y, src, r#"["b"]["e"]"#, r#"{"f": "g"}"#).unwrap(),
        src.replace("  d: [1, 2]\n", "  d: [1, 2]\n  e:\n    f: g\n")
    );
    assert_eq!(
        set_text(y, src, r#"["b"]["d"][5]"#, r#""z""#).unwrap(),
        src.replace("[1, 2]", "[1, 2, z]")
    );
    assert_eq!(
        set_text(y, src, r#"["l"][9]"#, r#"{"x": [1]}"#).unwrap(),
        format!("{src}  - x:\n      - 1\n")
    );
    assert_eq!(
        set_text(y, src, r#"["a"]"#, r#"{"aa": "aaa"}"#).unwrap(),
        src.replace("a: 2 # two", "a:\n  aa: aaa # two")
    );
    assert_eq!(
        set_text(y, src, r#"["new"]["x"][3]"#, "true").unwrap(),
        format!("{src}new:\n  x:\n    - true\n")
    );
    assert_eq!(
        set_text(y, src, r#"["b"]"#, r#""flat""#).unwrap(),
        "# top\na: 2 # two\nb: flat\nl:\n  - 1\n  - k: v\n"
    );
    let same = set(
        y.store(),
        src,
        &y.store().parse(src).unwrap(),
        &parse_path(r#"["b"]["c"]"#).unwrap(),
        &parse_value(r#""x""#).unwrap(),
    )
    .unwrap();
    assert!(!same.changed && same.edits.is_empty());
    assert!(matches!(
        set_text(y, src, r#"["l"]["x"]"#, "1"),
        Err(SetError::KeyOnList(_))
    ));
    assert!(matches!(
        set_text(y, src, r#"["sops"]"#, "1"),
        Err(SetError::Metadata)
    ));
    assert_eq!(set_text(y, src, "[0]", "1").unwrap(), src);
}

#[test]
fn yaml_unset() {
    let src = "a: 1\nb:\n  c: x\nl:\n  - 1\n  - k: v\n    j: w\n";
    let y = Format::Yaml;
    assert_eq!(unset_text(y, src, r#"["a"]"#).unwrap(), &src[5..]);
    assert_eq!(
        unset_text(y, src, r#"["b"]["c"]"#).unwrap(),
        src.replace("  c: x", "  {}")
    );
    assert_eq!(
        unset_text(y, src, r#"["l"][0]"#).unwrap(),
        src.replace("  - 1\n", "")
    );
    assert_eq!(
        unset_text(y, src, r#"["l"][1]["k"]"#).unwrap(),
        src.replace("k: v\n    j: w", "j: w")
    );
    assert!(matches!(
        unset_text(y, src, r#"["z"]"#),
        Err(UnsetError::NotFound(_))
    ));
    assert!(matches!(
        unset_text(y, src, r#"["l"][7]"#),
        Err(UnsetError::NotFound(_))
    ));
    assert!(matches!(
        unset_text(y, src, r#"["a"]["q"]"#),
        Err(UnsetError::Scalar(_))
    ));
    assert_eq!(
        unset_text(y, "a: [1, 2]\n", r#"["a"][1]"#).unwrap(),
        "a: [1]\n"
    );
    assert_eq!(
        unset_text(y, "a: {b: 1, c: 2}\n", r#"["a"]["b"]"#).unwrap(),
        "a: {c: 2}\n"
    );
    assert_eq!(unset_text(y, "a: 1", r#"["a"]"#).unwrap(), "{}");
    assert_eq!(unset_text(y, "a: 1\nb: 2", r#"["b"]"#).unwrap(), "a: 1");
}

#[test]
fn json_layouts() {
    let j = Format::Json;
    let src = "{\n  \"a\": 2,\n  \"b\": {\n    \"c\": \"x\"\n  }\n}\n";
    assert_eq!(
        set_text(j, src, r#"["a"]"#, r#""s""#).unwrap(),
        src.replace("2", "\"s\"")
    );
    assert_eq!(
        set_text(j, src, r#"["b"]["d"]"#, r#"{"e": [1, true]}"#).unwrap(),
        src.replace(
            "\"c\": \"x\"\n",
            "\"c\": \"x\",\n    \"d\": {\n      \"e\": [\n        1,\n        true\n      ]\n    }\n"
        )
    );
    assert_eq!(
        set_text(j, r#"{"a": 2, "b": "ba"}"#, r#"["c"]"#, r#"{"cc": "ccc"}"#).unwrap(),
        r#"{"a": 2, "b": "ba", "c": {"cc": "ccc"}}"#
    );
    assert_eq!(
        unset_text(j, src, r#"["a"]"#).unwrap(),
        "{\n  \"b\": {\n    \"c\": \"x\"\n  }\n}\n"
    );
    assert_eq!(
        unset_text(j, r#"{"a": [1, 2]}"#, r#"["a"][1]"#).unwrap(),
        r#"{"a": [1]}"#
    );
    assert_eq!(
        unset_text(j, r#"{"a": [1]}"#, r#"["a"][0]"#).unwrap(),
        r#"{"a": []}"#
    );
}

#[test]
fn flat_formats() {
    let d = Format::Dotenv;
    assert_eq!(
        set_text(d, "A=1\n#c\nB=2\n", r#"["B"]"#, "3").unwrap(),
        "A=1\n#c\nB=3.0\n"
    );
    assert_eq!(
        set_text(d, "A=1", r#"["C"]"#, r#""x\ny""#).unwrap(),
        "A=1\nC=x\\ny"
    );
    assert!(matches!(
        set_text(d, "A=1\n", r#"["C"]"#, "{}"),
        Err(SetError::Put(PutError::Unsupported(_)))
    ));
    assert!(matches!(
        set_text(d, "A=1\n", r#"["C"]"#, "null"),
        Err(SetError::Put(PutError::Unsupported(_)))
    ));
    assert_eq!(unset_text(d, "A=1\nB=2\n", r#"["A"]"#).unwrap(), "B=2\n");
    let i = Format::Ini;
    let src = "top = 1\n\n[s]\n; note\nk = v\n";
    assert_eq!(
        set_text(i, src, r#"["s"]["k"]"#, r#""w""#).unwrap(),
        src.replace("k = v", "k = w")
    );
    assert_eq!(
        set_text(i, src, r#"["s"]["j"]"#, r#""a;b""#).unwrap(),
        format!("{src}j = `a;b`\n")
    );
    assert_eq!(
        set_text(i, src, r#"["t"]"#, r#"{"x": "y"}"#).unwrap(),
        format!("{src}\n[t]\nx = y\n")
    );
    assert!(set_text(i, src, r#"["t"]"#, r#""y""#).is_err());
    assert_eq!(
        unset_text(i, src, r#"["s"]["k"]"#).unwrap(),
        "top = 1\n\n[s]\n"
    );
    assert_eq!(unset_text(i, src, r#"["s"]"#).unwrap(), "top = 1\n\n");
}

#[test]
fn values_as_sops_reads_them() {
    assert!(matches!(parse_value("x"), Err(ValueError::NotJson)));
    assert!(matches!(parse_value("1 2"), Err(ValueError::NotJson)));
    assert!(matches!(
        parse_value(r#"1, "b": 2"#),
        Err(ValueError::NotJson)
    ));
    assert!(matches!(parse_value("[1]"), Err(ValueError::TopLevelList)));
    assert!(matches!(parse_value(""), Err(ValueError::NotJson)));
    assert!(parse_value(" \"x\"\n").is_ok());
    let deep = format!("{}{}", "{\"a\":".repeat(100_000), "}".repeat(100_000));
    assert!(parse_value(&deep).is_err());
}
