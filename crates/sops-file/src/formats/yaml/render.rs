//! Replacement text for leaves: `ENC[...]` when encrypting, the plaintext when
//! decrypting, and the scalar spellings the metadata emitter shares.
//!
//! Encrypted values keep the leaf's original style as a marker (`'ENC'`, `"ENC"`,
//! `|-` block), so that decryption can restore the style: a quoted string comes back
//! quoted the same way, a block scalar comes back as a block with the same chomping.
//! Typed values (ints, floats, bools, timestamps) are written with their original
//! spelling when it still reads back as the same value, else canonically.

use super::resolve;
use crate::formats::{Leaf, Scalar, Style};

pub fn nl(leaf: &Leaf) -> &'static str {
    if Ctx::of(leaf).crlf {
        "\r\n"
    } else {
        "\n"
    }
}

/// The YAML-specific rendering context of a leaf.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ctx {
    pub indent: usize,
    pub(crate) block_parent: usize,
    pub crlf: bool,
}

impl Ctx {
    pub fn of(leaf: &Leaf) -> Ctx {
        Ctx {
            indent: leaf.context.indent,
            block_parent: leaf.context.block_parent,
            crlf: leaf.context.crlf,
        }
    }
}

pub fn encrypted(leaf: &Leaf, enc: &str) -> String {
    let pad = " ".repeat(Ctx::of(leaf).indent);
    match leaf.style {
        Style::Plain if leaf.context.in_flow => format!("'{enc}'"),
        Style::Plain => enc.to_string(),
        Style::SingleQuoted => format!("'{}'", enc.replace('\'', "''")),
        Style::DoubleQuoted => double_quoted(enc),
        Style::Literal | Style::Folded => {
            let head = if leaf.style == Style::Literal {
                "|-"
            } else {
                ">-"
            };
            // The span took the file's last line break in (a line of indentation
            // only follows it): give the break back, or the value would lose its
            // final line break when it is decrypted.
            let tail = match &leaf.value {
                Scalar::Str(s) if leaf.context.no_break_after && s.ends_with('\n') => nl(leaf),
                _ => "",
            };
            format!("{head}{}{pad}{enc}{tail}", nl(leaf))
        }
    }
}

pub fn plain(leaf: &Leaf, value: &Scalar, spelling: &str) -> String {
    let flow = leaf.context.in_flow;
    match value {
        Scalar::Str(s) => string(leaf, s),
        Scalar::Null => "null".to_string(),
        // `True`/`False` is how sops itself stores every bool, so in files sops
        // wrote it carries no spelling; render YAML's usual lowercase.
        Scalar::Bool(b) if matches!(spelling, "True" | "False") => canonical(&Scalar::Bool(*b)),
        typed => {
            if plain_safe(spelling, flow) && same_value(spelling, typed) {
                spelling.to_string()
            } else {
                canonical(typed)
            }
        }
    }
}

fn same_value(spelling: &str, v: &Scalar) -> bool {
    match (resolve::resolve_plain(spelling), v) {
        (Ok(Scalar::Int(a)), Scalar::Int(b)) => a == *b,
        (Ok(Scalar::Float(a)), Scalar::Float(b)) => {
            a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
        }
        (Ok(Scalar::Bool(a)), Scalar::Bool(b)) => a == *b,
        (Ok(Scalar::Time(a)), Scalar::Time(b)) => a == *b,
        _ => false,
    }
}

/// The canonical YAML spelling of a typed scalar (reads back as the same value).
pub fn canonical(v: &Scalar) -> String {
    match v {
        Scalar::Int(i) => i.to_string(),
        Scalar::Float(f) => canonical_float(*f),
        Scalar::Bool(true) => "true".to_string(),
        Scalar::Bool(false) => "false".to_string(),
        Scalar::Time(t) => {
            resolve::is_midnight_utc_date(t).map_or_else(|| t.clone(), str::to_string)
        }
        Scalar::Null => "null".to_string(),
        Scalar::Str(s) => double_quoted(s),
    }
}

pub(crate) fn canonical_float(f: f64) -> String {
    if f.is_nan() {
        ".nan".to_string()
    } else if f == f64::INFINITY {
        ".inf".to_string()
    } else if f == f64::NEG_INFINITY {
        "-.inf".to_string()
    } else {
        // go-yaml's form; `.0` where it would read back as an integer.
        let s = crate::formats::go_format_float_g(f, false);
        if s.contains(['.', 'e', 'E']) {
            s
        } else {
            format!("{s}.0")
        }
    }
}

fn string(leaf: &Leaf, s: &str) -> String {
    let flow = leaf.context.in_flow;
    match leaf.style {
        // In flow collections plain values are stored as `'ENC'` too: a
        // single-quoted flow string comes back plain when plain reads the same.
        Style::SingleQuoted if flow && plain_safe(s, true) && resolves_to_str(s) => s.to_string(),
        Style::SingleQuoted => single_or_double(s),
        Style::DoubleQuoted => double_quoted(s),
        Style::Plain if flow => {
            if plain_safe(s, true) && resolves_to_str(s) {
                s.to_string()
            } else {
                single_or_double(s)
            }
        }
        Style::Plain => {
            if plain_safe(s, false) && resolves_to_str(s) {
                s.to_string()
            } else if s.contains('\n') && !leaf.context.text_follows {
                literal(leaf, s).unwrap_or_else(|| double_quoted(s))
            } else {
                double_quoted(s)
            }
        }
        Style::Literal if !flow => literal(leaf, s).unwrap_or_else(|| double_quoted(s)),
        Style::Folded if !flow => folded(leaf, s)
            .or_else(|| literal(leaf, s))
            .unwrap_or_else(|| double_quoted(s)),
        _ => double_quoted(s),
    }
}

fn resolves_to_str(s: &str) -> bool {
    s != "<<" && matches!(resolve::resolve_plain(s), Ok(Scalar::Str(_)))
}

/// A one-line string as go-yaml emits it in block context: plain when that reads
/// back as the same string and is no YAML 1.1 boolean (`yes`, `off`, ...) or
/// base-60 number (`1:20`), which go-yaml quotes for older readers; otherwise
/// single-quoted when it can be, else double-quoted.
pub(crate) fn go_yaml_string(s: &str) -> String {
    let old_bool = matches!(
        s,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "on"
            | "On"
            | "ON"
            | "off"
            | "Off"
            | "OFF"
    );
    let base60 = {
        let t = s.strip_prefix(['-', '+']).unwrap_or(s);
        t.contains(':')
            && t.starts_with(|c: char| c.is_ascii_digit())
            && t.split(':').skip(1).all(|p| {
                let p = p.split('.').next().unwrap_or(p);
                !p.is_empty() && p.len() <= 2 && p.bytes().all(|b| b.is_ascii_digit())
            })
    };
    if !resolves_to_str(s) || old_bool || base60 {
        double_quoted(s)
    } else if plain_safe(s, false) {
        s.to_string()
    } else {
        single_or_double(s)
    }
}

/// Printable in the YAML (and go-yaml) sense, excluding line separators and BOM.
pub(crate) fn printable(c: char) -> bool {
    matches!(c, ' '..='~' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
        && !matches!(c, '\u{2028}' | '\u{2029}' | '\u{FEFF}')
}

/// Can `s` be written as a plain scalar (block context, or flow if `flow`)?
/// Typing is checked separately.
pub(crate) fn plain_safe(s: &str, flow: bool) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !s.chars().all(printable) {
        return false;
    }
    if s.starts_with(' ') || s.ends_with(' ') || s.ends_with(':') {
        return false;
    }
    if s.contains(": ") || s.contains(" #") {
        return false;
    }
    let second = s.chars().nth(1);
    match first {
        ',' | '[' | ']' | '{' | '}' | '#' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%'
        | '@' | '`' => return false,
        '-' | '?' | ':' => match second {
            None | Some(' ') => return false,
            Some(c) if flow && matches!(c, ',' | '[' | ']' | '{' | '}') => return false,
            _ => {}
        },
        _ => {}
    }
    if s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    if flow && s.contains([',', '[', ']', '{', '}']) {
        return false;
    }
    if flow && s.contains(':') {
        return false;
    }
    true
}

fn single_or_double(s: &str) -> String {
    if s.chars().all(printable) {
        format!("'{}'", s.replace('\'', "''"))
    } else {
        double_quoted(s)
    }
}

/// A double-quoted scalar with minimal escapes.
pub(crate) fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if printable(c) => out.push(c),
            c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02X}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push_str(&format!("\\U{:08X}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// Split a block scalar value into its body lines and its trailing newline count.
pub(super) fn body_and_trailing(s: &str) -> (&str, usize) {
    let body = s.trim_end_matches('\n');
    (body, s.len() - body.len())
}

pub(super) fn chomp(body_empty: bool, trailing: usize) -> &'static str {
    match (body_empty, trailing) {
        (_, 0) => "-",
        (true, _) => "+",
        (false, 1) => "",
        _ => "+",
    }
}

/// The indentation indicator needed when the first content line starts with a space.
fn indicator(leaf: &Leaf, body: &str) -> Option<Option<usize>> {
    let first_nonempty = body.split('\n').find(|l| !l.is_empty());
    let needs = first_nonempty.is_some_and(|l| l.starts_with(' '));
    if !needs {
        return Some(None);
    }
    let ctx = Ctx::of(leaf);
    let m = ctx.indent.checked_sub(ctx.block_parent)?;
    if (1..=9).contains(&m) {
        Some(Some(m))
    } else {
        None
    }
}

/// The block's last line break, which is normally left to the source after
/// the value's span, when no line break follows it there.
fn final_break(out: &mut String, leaf: &Leaf, trailing: usize) {
    if trailing > 0 && leaf.context.no_break_after {
        out.push_str(nl(leaf));
    }
}

/// A literal block scalar for `s` at the leaf's content indentation; `None` if the
/// value cannot be written that way (non-printable characters, `\r`).
pub fn literal(leaf: &Leaf, s: &str) -> Option<String> {
    if !s.chars().all(|c| c == '\n' || c == '\t' || printable(c)) {
        return None;
    }
    let (body, trailing) = body_and_trailing(s);
    // Leading whitespace-only lines would confuse indentation detection.
    let ind = indicator(leaf, body)?;
    let nl = nl(leaf);
    let pad = " ".repeat(Ctx::of(leaf).indent);
    let mut out = String::from("|");
    if let Some(m) = ind {
        out.push_str(&m.to_string());
    }
    out.push_str(chomp(body.is_empty(), trailing));
    if body.is_empty() {
        // Keep chomping: the header's line break and one per empty line but the
        // last, whose break is left to the source.
        for _ in 0..trailing {
            out.push_str(nl);
        }
        final_break(&mut out, leaf, trailing);
        return Some(out);
    }
    literal_lines(&mut out, body, trailing, &pad, nl);
    final_break(&mut out, leaf, trailing);
    Some(out)
}

/// A literal block's content after its header: each line of `body` at `pad`
/// (empty lines empty), then a line break per trailing one but the last, which
/// is left to what follows the block. Shared with the metadata writer.
pub(super) fn literal_lines(out: &mut String, body: &str, trailing: usize, pad: &str, nl: &str) {
    for line in body.split('\n') {
        out.push_str(nl);
        if !line.is_empty() {
            out.push_str(pad);
            out.push_str(line);
        }
    }
    for _ in 1..trailing {
        out.push_str(nl);
    }
}

/// A folded block scalar for `s`: each paragraph on one line. `None` when a line
/// starts with whitespace (folding would not reproduce it) or the value is not
/// printable.
pub fn folded(leaf: &Leaf, s: &str) -> Option<String> {
    if !s.chars().all(|c| c == '\n' || c == '\t' || printable(c)) {
        return None;
    }
    let (body, trailing) = body_and_trailing(s);
    if body
        .split('\n')
        .any(|l| l.starts_with(' ') || l.starts_with('\t') || l.ends_with(' ') || l.ends_with('\t'))
    {
        return None;
    }
    let nl = nl(leaf);
    let pad = " ".repeat(Ctx::of(leaf).indent);
    let mut out = String::from(">");
    out.push_str(chomp(body.is_empty(), trailing));
    if body.is_empty() {
        for _ in 0..trailing {
            out.push_str(nl);
        }
        final_break(&mut out, leaf, trailing);
        return Some(out);
    }
    let parts: Vec<&str> = body.split('\n').collect();
    let mut seen_text = false;
    let mut empties = 0;
    for part in parts {
        if part.is_empty() {
            if seen_text {
                empties += 1;
            } else {
                out.push_str(nl);
            }
            continue;
        }
        if seen_text {
            // k newlines between paragraphs need k empty lines.
            for _ in 0..=empties {
                out.push_str(nl);
            }
        }
        out.push_str(nl);
        out.push_str(&pad);
        out.push_str(part);
        seen_text = true;
        empties = 0;
    }
    for _ in 1..trailing {
        out.push_str(nl);
    }
    final_break(&mut out, leaf, trailing);
    Some(out)
}
