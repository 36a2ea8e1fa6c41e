//! Floats spelled as Go spells them: sops' plaintext and MAC use `'f'`
//! formatting, go-yaml and sops' dotenv/INI stores `'g'`/`'G'`.

/// Go `strconv.FormatFloat(f, 'f', -1, 64)`, the text sops gives every float
/// (in the MAC and as the canonical plaintext): shortest round-trip digits, never
/// an exponent, infinities as `+Inf`/`-Inf`. Rust's `Display` for `f64` prints the
/// same digits for finite values.
pub(crate) fn go_format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".to_string()
    } else if f == f64::INFINITY {
        "+Inf".to_string()
    } else if f == f64::NEG_INFINITY {
        "-Inf".to_string()
    } else {
        format!("{f}")
    }
}

/// Go `strconv.FormatFloat(f, 'g', -1, 64)` (`'G'` when `upper`): shortest
/// round-trip digits, in exponent form (`1.5e+09`, at least two exponent digits)
/// when the decimal exponent is below -4 or at least 6. go-yaml prints floats
/// this way, and sops' dotenv and INI stores with `'G'`.
pub(crate) fn go_format_float_g(f: f64, upper: bool) -> String {
    if !f.is_finite() {
        return go_format_float(f);
    }
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..6).contains(&exp) {
        return format!("{f}");
    }
    let sign = if exp < 0 { '-' } else { '+' };
    let e = if upper { 'E' } else { 'e' };
    format!("{mantissa}{e}{sign}{:02}", exp.abs())
}

#[cfg(test)]
mod tests {
    use super::go_format_float_g;

    #[test]
    fn floats_format_like_go_g() {
        for (f, g) in [
            (1234568000.0, "1.234568e+09"),
            (1234567890.45, "1.23456789045e+09"),
            (100000.0, "100000"),
            (1e21, "1e+21"),
            (0.000001, "1e-06"),
            (0.0001, "0.0001"),
            (1.5, "1.5"),
            (-2.5e-7, "-2.5e-07"),
            (1e100, "1e+100"),
        ] {
            assert_eq!(go_format_float_g(f, false), g, "{f}");
        }
        assert_eq!(go_format_float_g(1e21, true), "1E+21");
    }
}
