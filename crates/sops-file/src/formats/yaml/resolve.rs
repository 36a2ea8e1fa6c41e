//! Typing of plain scalars, mirroring go-yaml v3 `resolve.go` exactly.
//!
//! sops decodes YAML with go-yaml v3 into `interface{}`, so the type a plain scalar
//! gets there decides the `type:` tag of its ciphertext and the bytes that enter the
//! MAC. This module reproduces that decision (including Go `strconv.ParseInt` base-0
//! rules, `ParseFloat` range errors and `time.Parse` with yaml.v3's four layouts) and
//! formats timestamps the way Go's `MarshalText` does (RFC3339Nano).

use zeroize::Zeroizing;

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

/// yaml.v3 `parseTimestamp`: four digits then `-`, then one of the layouts
/// `2006-1-2T15:4:5.999999999Z07:00`, the same with `t`, `2006-1-2 15:4:5.999999999`
/// and `2006-1-2`. Returns the Go RFC3339Nano text of the instant.
pub(crate) fn parse_timestamp(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    let year: i64 = s[..4].parse().ok()?;
    let mut p = 5;
    let month = getnum(b, &mut p)?;
    expect(b, &mut p, b'-')?;
    let day = getnum(b, &mut p)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in(month, year) {
        return None;
    }
    if p == b.len() {
        return Some(format_rfc3339(year, month, day, 0, 0, 0, 0, Some(0)));
    }
    let sep = b[p];
    if sep != b'T' && sep != b't' && sep != b' ' {
        return None;
    }
    p += 1;
    let hour = getnum(b, &mut p)?;
    expect(b, &mut p, b':')?;
    let min = getnum(b, &mut p)?;
    expect(b, &mut p, b':')?;
    let sec = getnum(b, &mut p)?;
    if hour >= 24 || min >= 60 || sec >= 60 {
        return None;
    }
    // Fraction: optional, `.` or `,` then digits (Go keeps up to 9).
    let mut nanos: u32 = 0;
    if p + 1 < b.len() && (b[p] == b'.' || b[p] == b',') && b[p + 1].is_ascii_digit() {
        p += 1;
        let st = p;
        while p < b.len() && b[p].is_ascii_digit() {
            p += 1;
        }
        let frac = &s[st..p];
        let mut digits: String = frac.chars().take(9).collect();
        while digits.len() < 9 {
            digits.push('0');
        }
        nanos = digits.parse().ok()?;
    }
    let offset = if sep == b' ' {
        if p != b.len() {
            return None;
        }
        0
    } else {
        if p >= b.len() {
            return None;
        }
        if b[p] == b'Z' {
            p += 1;
            0
        } else if (b[p] == b'+' || b[p] == b'-') && b.len() >= p + 6 && b[p + 3] == b':' {
            let hh = two_digits(&b[p + 1..p + 3])?;
            let mm = two_digits(&b[p + 4..p + 6])?;
            if hh > 24 || mm > 60 {
                return None;
            }
            let off = (hh * 3600 + mm * 60) as i64;
            let off = if b[p] == b'-' { -off } else { off };
            p += 6;
            off
        } else {
            return None;
        }
    };
    if p != b.len() {
        return None;
    }
    Some(format_rfc3339(
        year,
        month,
        day,
        hour,
        min,
        sec,
        nanos,
        Some(offset),
    ))
}

fn two_digits(b: &[u8]) -> Option<u32> {
    if b.len() == 2 && b.iter().all(u8::is_ascii_digit) {
        Some(u32::from(b[0] - b'0') * 10 + u32::from(b[1] - b'0'))
    } else {
        None
    }
}

/// Go's non-fixed `getnum`: one or two digits.
fn getnum(b: &[u8], p: &mut usize) -> Option<u32> {
    let d0 = *b.get(*p)?;
    if !d0.is_ascii_digit() {
        return None;
    }
    *p += 1;
    let mut v = u32::from(d0 - b'0');
    if let Some(&d1) = b.get(*p) {
        if d1.is_ascii_digit() {
            v = v * 10 + u32::from(d1 - b'0');
            *p += 1;
        }
    }
    Some(v)
}

fn expect(b: &[u8], p: &mut usize, c: u8) -> Option<()> {
    if b.get(*p) == Some(&c) {
        *p += 1;
        Some(())
    } else {
        None
    }
}

fn days_in(month: u32, year: i64) -> u32 {
    match month {
        2 => {
            if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 {
                29
            } else {
                28
            }
        }
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[allow(clippy::too_many_arguments)]
fn format_rfc3339(
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
    nanos: u32,
    offset: Option<i64>,
) -> String {
    let mut out = format!("{year:04}-{month:02}-{day:02}T{hour:02}:{min:02}:{sec:02}");
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    match offset.unwrap_or(0) {
        0 => out.push('Z'),
        off => {
            let sign = if off < 0 { '-' } else { '+' };
            let a = off.unsigned_abs();
            out.push_str(&format!("{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60));
        }
    }
    out
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
