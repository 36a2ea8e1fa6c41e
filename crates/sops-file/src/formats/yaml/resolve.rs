//! Typing of plain scalars, mirroring go-yaml v3 `resolve.go` exactly.
//!
//! sops decodes YAML with go-yaml v3 into `interface{}`, so the type a plain scalar
//! gets there decides the `type:` tag of its ciphertext and the bytes that enter the
//! MAC. This module reproduces that decision (including Go `strconv.ParseInt` base-0
//! rules, `ParseFloat` range errors and `time.Parse` with yaml.v3's four layouts) and
//! formats timestamps the way Go's `MarshalText` does (RFC3339Nano).

use zeroize::Zeroizing;

use super::super::time::Time;
use super::super::Scalar;

/// Why a plain scalar cannot be carried by sops.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ResolveError {
    /// An integer in the uint64 range above i64: sops fails on it.
    Uint64,
}

/// The typed value of a plain (untagged) scalar.
pub(crate) fn resolve_plain(s: &str) -> Result<Scalar, ResolveError> {
    let first = s.as_bytes().first().copied();
    match first {
        None => return Ok(Scalar::Null),
        Some(c) => {
            if let Some(v) = resolve_map(s) {
                return Ok(v);
            }
            match c {
                b'.' => {
                    if let Some(f) = go_parse_float(s) {
                        return Ok(Scalar::Float(f));
                    }
                }
                b'0'..=b'9' | b'+' | b'-' => {
                    if let Some(t) = parse_timestamp(s) {
                        return Ok(Scalar::Time(t));
                    }
                    return resolve_number(s);
                }
                _ => {}
            }
        }
    }
    Ok(Scalar::Str(Zeroizing::new(s.to_string())))
}

/// The fixed spellings of `resolve.go`'s `resolveMap` (merge key `<<` excluded: the
/// caller refuses it).
fn resolve_map(s: &str) -> Option<Scalar> {
    Some(match s {
        "true" | "True" | "TRUE" => Scalar::Bool(true),
        "false" | "False" | "FALSE" => Scalar::Bool(false),
        "~" | "null" | "Null" | "NULL" => Scalar::Null,
        ".nan" | ".NaN" | ".NAN" => Scalar::Float(f64::NAN),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => Scalar::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => Scalar::Float(f64::NEG_INFINITY),
        _ => return None,
    })
}

/// The digit/sign branch of `resolve()`: ints, uints (refused), floats, `0b`/`0o`.
fn resolve_number(s: &str) -> Result<Scalar, ResolveError> {
    let plain: String = s.chars().filter(|&c| c != '_').collect();
    if let Some(i) = go_parse_int(&plain) {
        return Ok(Scalar::Int(i));
    }
    if go_parse_uint(&plain).is_some() {
        return Err(ResolveError::Uint64);
    }
    if is_yaml_style_float(&plain) {
        if let Some(f) = go_parse_float(&plain) {
            return Ok(Scalar::Float(f));
        }
    }
    if let Some(rest) = plain.strip_prefix("0b") {
        if let Some(v) = parse_digits(rest, 2) {
            return int_or_uint(v, false);
        }
    } else if let Some(rest) = plain.strip_prefix("-0b") {
        if let Some(v) = parse_digits(rest, 2) {
            if let Some(i) = neg(v) {
                return Ok(Scalar::Int(i));
            }
        }
    }
    if let Some(rest) = plain.strip_prefix("0o") {
        if let Some(v) = parse_digits(rest, 8) {
            return int_or_uint(v, false);
        }
    } else if let Some(rest) = plain.strip_prefix("-0o") {
        if let Some(v) = parse_digits(rest, 8) {
            if let Some(i) = neg(v) {
                return Ok(Scalar::Int(i));
            }
        }
    }
    Ok(Scalar::Str(Zeroizing::new(s.to_string())))
}

fn int_or_uint(v: u64, _neg: bool) -> Result<Scalar, ResolveError> {
    i64::try_from(v)
        .map(Scalar::Int)
        .map_err(|_| ResolveError::Uint64)
}

fn neg(v: u64) -> Option<i64> {
    if v <= i64::MAX as u64 {
        Some(-(v as i64))
    } else if v == 1u64 << 63 {
        Some(i64::MIN)
    } else {
        None
    }
}

/// `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`
fn is_yaml_style_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let st = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - st
    };
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Go `strconv.ParseFloat(s, 64)` for the decimal forms yaml reaches it with:
/// `None` on syntax errors and on overflow (Go returns ErrRange for ±Inf results).
pub(crate) fn go_parse_float(s: &str) -> Option<f64> {
    let lower = s.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    if body.starts_with("inf") || body.starts_with("nan") {
        return match body {
            "inf" | "infinity" => Some(if lower.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            }),
            "nan" if lower == "nan" => Some(f64::NAN),
            _ => None,
        };
    }
    if s.contains('_') || body.starts_with("0x") {
        return None;
    }
    let f: f64 = s.parse().ok()?;
    if f.is_infinite() {
        None
    } else {
        Some(f)
    }
}

/// Go `strconv.ParseInt(s, 0, 64)` (underscores already removed).
pub(crate) fn go_parse_int(s: &str) -> Option<i64> {
    let (negative, body) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let v = go_parse_uint(body)?;
    if negative {
        neg(v)
    } else {
        i64::try_from(v).ok()
    }
}

/// Go `strconv.ParseUint(s, 0, 64)` (no sign allowed).
pub(crate) fn go_parse_uint(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let b = s.as_bytes();
    let (base, digits) = if b[0] == b'0' {
        if b.len() >= 3 && (b[1] | 0x20) == b'b' {
            (2, &s[2..])
        } else if b.len() >= 3 && (b[1] | 0x20) == b'o' {
            (8, &s[2..])
        } else if b.len() >= 3 && (b[1] | 0x20) == b'x' {
            (16, &s[2..])
        } else {
            (8, &s[1..])
        }
    } else {
        (10, s)
    };
    if digits.is_empty() {
        // "0" alone: the loop over no digits yields 0.
        return if base == 8 && s == "0" { Some(0) } else { None };
    }
    parse_digits(digits, base)
}

fn parse_digits(s: &str, base: u32) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut v: u64 = 0;
    for c in s.chars() {
        let d = c.to_digit(base)?;
        v = v.checked_mul(u64::from(base))?.checked_add(u64::from(d))?;
    }
    Some(v)
}

/// yaml.v3 `parseTimestamp`, as the Go RFC3339Nano text of the instant.
pub(crate) fn parse_timestamp(s: &str) -> Option<String> {
    Time::parse_yaml(s).map(|t| t.to_rfc3339_nano())
}

/// Parse Go RFC3339(Nano) text back into parts: used to decide how a decrypted
/// time is rendered (`YYYY-MM-DD` when it is midnight UTC).
pub(crate) fn is_midnight_utc_date(t: &str) -> Option<&str> {
    let date = t.strip_suffix("T00:00:00Z")?;
    if date.len() == 10 {
        Some(date)
    } else {
        None
    }
}

/// The sops plaintext of a scalar (what `plain_leaf` gets as `spelling` for files
/// sops wrote).
#[cfg(test)]
pub(crate) fn canonical_spelling(v: &Scalar) -> String {
    match v {
        Scalar::Str(s) => s.to_string(),
        Scalar::Int(i) => i.to_string(),
        Scalar::Float(f) => crate::formats::go_format_float(*f),
        Scalar::Bool(true) => "True".to_string(),
        Scalar::Bool(false) => "False".to_string(),
        Scalar::Time(t) => t.clone(),
        Scalar::Null => String::new(),
    }
}
