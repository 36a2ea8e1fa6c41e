//! Typed plaintext: how a tree value becomes the bytes that are encrypted and
//! hashed into the MAC, and how decrypted bytes become a typed value again
//! (docs/sops-format.md §1.2).
//!
//! The MAC always uses sops' canonical form (Go `Itoa`, `FormatFloat('f',-1)`,
//! `True`/`False`, RFC3339Nano). The *encrypted* bytes may instead carry the
//! value's original spelling (`1.50`, `+1`, `TRUE`) whenever sops' own parser for
//! that type (Go `Atoi`, `ParseFloat`, `ParseBool`) reads the spelling back as the
//! same value: sops then decrypts it to the same tree and its MAC still matches,
//! while git-sops can restore the file byte for byte.

use zeroize::Zeroizing;

use super::cipher::TypeTag;
use crate::formats::time::Time;
use crate::formats::{go_format_float, Scalar};

/// Why decrypted bytes are not a valid value of their type tag.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("the decrypted value is not a valid `{0}` (the file may have been edited by hand)")]
pub struct BadPlaintext(pub &'static str);

/// The type tag sops writes for a value; `None` for null (never encrypted).
pub(crate) fn type_tag(value: &Scalar) -> Option<TypeTag> {
    Some(match value {
        Scalar::Str(_) => TypeTag::Str,
        Scalar::Int(_) => TypeTag::Int,
        Scalar::Float(_) => TypeTag::Float,
        Scalar::Bool(_) => TypeTag::Bool,
        Scalar::Time(_) => TypeTag::Time,
        Scalar::Null => return None,
    })
}

/// sops' `ToBytes`: the canonical plaintext, as hashed into the MAC.
pub(crate) fn canonical_bytes(value: &Scalar) -> Zeroizing<Vec<u8>> {
    Zeroizing::new(match value {
        Scalar::Str(s) => s.as_bytes().to_vec(),
        Scalar::Int(i) => i.to_string().into_bytes(),
        Scalar::Float(f) => go_format_float(*f).into_bytes(),
        Scalar::Bool(true) => b"True".to_vec(),
        Scalar::Bool(false) => b"False".to_vec(),
        Scalar::Time(t) => t.as_bytes().to_vec(),
        Scalar::Null => Vec::new(),
    })
}

/// The bytes to encrypt: `spelling` (the value's text in the source) when sops'
/// parser reads it back as the same value, else the canonical form.
pub(crate) fn encrypted_bytes(value: &Scalar, spelling: &str) -> Zeroizing<Vec<u8>> {
    let carries = match value {
        Scalar::Int(i) => go_atoi(spelling) == Some(*i),
        Scalar::Float(f) => {
            is_decimal_float(spelling) && spelling.parse::<f64>().is_ok_and(|p| same_float(p, *f))
        }
        Scalar::Bool(b) => go_parse_bool(spelling) == Some(*b),
        _ => false,
    };
    if carries {
        Zeroizing::new(spelling.as_bytes().to_vec())
    } else {
        canonical_bytes(value)
    }
}

/// Parse decrypted bytes as sops does for their type tag (`Comment` and `Str` → string).
pub fn decode(tag: TypeTag, bytes: &[u8]) -> Result<Scalar, BadPlaintext> {
    let text = || std::str::from_utf8(bytes).map_err(|_| BadPlaintext(tag.as_str()));
    Ok(match tag {
        TypeTag::Str | TypeTag::Comment | TypeTag::Bytes => {
            // Strings in YAML/JSON files are UTF-8; raw bytes only occur in the binary store.
            Scalar::Str(Zeroizing::new(text()?.to_string()))
        }
        TypeTag::Int => Scalar::Int(go_atoi(text()?).ok_or(BadPlaintext("int"))?),
        TypeTag::Float => Scalar::Float(go_parse_float(text()?).ok_or(BadPlaintext("float"))?),
        TypeTag::Bool => Scalar::Bool(go_parse_bool(text()?).ok_or(BadPlaintext("bool"))?),
        TypeTag::Time => Scalar::Time(canonical_time(text()?).ok_or(BadPlaintext("time"))?),
    })
}

fn same_float(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

/// Go `strconv.Atoi`: optional sign, decimal digits, within 64 bits.
pub(crate) fn go_atoi(s: &str) -> Option<i64> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.strip_prefix('+').unwrap_or(s).parse().ok()
}

/// Go `strconv.ParseBool`.
pub(crate) fn go_parse_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Plain decimal floating-point syntax (a subset of what Go's `ParseFloat` takes).
fn is_decimal_float(s: &str) -> bool {
    let s = s.strip_prefix(['+', '-']).unwrap_or(s);
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = digits(int)
        && frac.is_none_or(digits)
        && (!int.is_empty() || frac.is_some_and(|f| !f.is_empty()));
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    mantissa_ok && exponent_ok
}

/// Go `strconv.ParseFloat(s, 64)` for the forms sops writes and reads: decimal
/// (with exponent), and case-insensitive `inf`/`infinity`/`nan` with a sign.
/// Out-of-range values are an error in Go, so they are here.
pub(crate) fn go_parse_float(s: &str) -> Option<f64> {
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let negative = s.starts_with('-');
    let lower = unsigned.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(if negative {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        });
    }
    if lower == "nan" && unsigned.len() == s.len() {
        return Some(f64::NAN);
    }
    if !is_decimal_float(s) {
        return None;
    }
    let f: f64 = s.parse().ok()?;
    f.is_finite().then_some(f)
}

/// Normalise an RFC3339 timestamp to Go's `MarshalText` (RFC3339Nano) form: trailing
/// fractional zeros dropped, `Z` for a zero offset. `None` if it is not RFC3339.
pub(crate) fn canonical_time(s: &str) -> Option<String> {
    Time::parse_rfc3339(s).map(|t| t.to_rfc3339_nano())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_format_like_go() {
        for (f, s) in [
            (1.5, "1.5"),
            (2.0, "2"),
            (1e3, "1000"),
            (2.5e-7, "0.00000025"),
            (-0.0, "-0"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ] {
            assert_eq!(go_format_float(f), s);
        }
        assert_eq!(go_format_float(1e300).len(), 301);
    }

    #[test]
    fn spelling_is_carried_only_when_sops_reads_it_back_the_same() {
        let enc = |v: Scalar, s: &str| String::from_utf8(encrypted_bytes(&v, s).to_vec()).unwrap();
        assert_eq!(enc(Scalar::Float(1.5), "1.50"), "1.50");
        assert_eq!(enc(Scalar::Float(1000.0), "1e3"), "1e3");
        assert_eq!(enc(Scalar::Float(f64::INFINITY), ".inf"), "+Inf");
        assert_eq!(enc(Scalar::Int(1), "+1"), "+1");
        assert_eq!(enc(Scalar::Int(15), "017"), "15"); // YAML octal; Atoi would read 17
        assert_eq!(enc(Scalar::Int(31), "0x1F"), "31");
        assert_eq!(enc(Scalar::Int(1000), "1_000"), "1000");
        assert_eq!(enc(Scalar::Bool(true), "TRUE"), "TRUE");
        assert_eq!(enc(Scalar::Bool(false), "no"), "False");
        // The MAC never sees the spelling.
        assert_eq!(canonical_bytes(&Scalar::Float(1.5)).as_slice(), b"1.5");
        assert_eq!(canonical_bytes(&Scalar::Bool(true)).as_slice(), b"True");
    }

    #[test]
    fn decodes_like_go() {
        assert_eq!(decode(TypeTag::Int, b"+7").unwrap(), Scalar::Int(7));
        assert!(decode(TypeTag::Int, b"0x1").is_err());
        assert!(decode(TypeTag::Int, b"99999999999999999999").is_err());
        assert_eq!(decode(TypeTag::Float, b"1.50").unwrap(), Scalar::Float(1.5));
        assert_eq!(
            decode(TypeTag::Float, b"+Inf").unwrap(),
            Scalar::Float(f64::INFINITY)
        );
        assert!(decode(TypeTag::Float, b"1e400").is_err());
        assert_eq!(decode(TypeTag::Bool, b"True").unwrap(), Scalar::Bool(true));
        assert!(decode(TypeTag::Bool, b"yes").is_err());
    }

    #[test]
    fn times_normalise_like_go_marshal_text() {
        assert_eq!(
            canonical_time("2023-01-02T00:00:00Z").unwrap(),
            "2023-01-02T00:00:00Z"
        );
        assert_eq!(
            canonical_time("2001-12-14t21:59:43.10-05:00").unwrap(),
            "2001-12-14T21:59:43.1-05:00"
        );
        assert_eq!(
            canonical_time("2001-12-14T21:59:43+00:00").unwrap(),
            "2001-12-14T21:59:43Z"
        );
        assert!(canonical_time("2001-12-14").is_none());
        assert!(canonical_time("2001-13-14T00:00:00Z").is_none());
    }
}
