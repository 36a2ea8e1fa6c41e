//! Times, the one place they are read and written: the strict RFC 3339 that
//! sops' `time` values and `lastmodified` use ([`Time::parse_rfc3339`]), the
//! looser timestamps yaml.v3 types as times in a YAML file
//! ([`Time::parse_yaml`]), and Go's two spellings of an instant, RFC3339Nano (a
//! `time` value's plaintext) and RFC3339 (the MAC's AAD, `lastmodified`,
//! `created_at`). docs/sops-format.md §1.2 and §3 say where each is used.

use std::time::{SystemTime, UNIX_EPOCH};

/// A calendar time with its UTC offset, as written (no time-zone conversion).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Time {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
    nanos: u32,
    /// Seconds east of UTC.
    offset: i64,
}

impl Time {
    /// Strict RFC 3339, as Go's `time.Parse(time.RFC3339Nano, …)` takes it:
    /// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, `t`/`z` accepted, at most
    /// nine fraction digits, a real calendar day.
    pub fn parse_rfc3339(s: &str) -> Option<Time> {
        let b = s.as_bytes();
        let two = |i: usize| two_digits(b.get(i..i + 2)?);
        if b.len() < 20 || !b[..4].iter().all(u8::is_ascii_digit) {
            return None;
        }
        if b[4] != b'-'
            || b[7] != b'-'
            || !matches!(b[10], b'T' | b't')
            || b[13] != b':'
            || b[16] != b':'
        {
            return None;
        }
        let year = i64::from(two(0)? * 100 + two(2)?);
        let (month, day, hour, min, sec) = (two(5)?, two(8)?, two(11)?, two(14)?, two(17)?);
        if !(1..=12).contains(&month) || day < 1 || day > days_in(month, year) {
            return None;
        }
        if hour > 23 || min > 59 || sec > 59 {
            return None;
        }
        let mut rest = &s[19..];
        let mut nanos = 0;
        if let Some(after_dot) = rest.strip_prefix('.') {
            let len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            if len == 0 || len > 9 {
                return None;
            }
            nanos = fraction_nanos(&after_dot[..len]);
            rest = &after_dot[len..];
        }
        let offset = match rest {
            "Z" | "z" => 0,
            _ => {
                let zb = rest.as_bytes();
                if zb.len() != 6 || !matches!(zb[0], b'+' | b'-') || zb[3] != b':' {
                    return None;
                }
                let (h, m) = (two_digits(&zb[1..3])?, two_digits(&zb[4..6])?);
                if h > 23 || m > 59 {
                    return None;
                }
                signed(zb[0], h, m)
            }
        };
        Some(Time {
            year,
            month,
            day,
            hour,
            min,
            sec,
            nanos,
            offset,
        })
    }

    /// yaml.v3 `parseTimestamp`: four digits then `-`, then one of the layouts
    /// `2006-1-2T15:4:5.999999999Z07:00`, the same with `t`,
    /// `2006-1-2 15:4:5.999999999` (UTC) and `2006-1-2` (midnight UTC).
    pub fn parse_yaml(s: &str) -> Option<Time> {
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
        let date = Time {
            year,
            month,
            day,
            hour: 0,
            min: 0,
            sec: 0,
            nanos: 0,
            offset: 0,
        };
        if p == b.len() {
            return Some(date);
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
        let mut nanos = 0;
        if p + 1 < b.len() && (b[p] == b'.' || b[p] == b',') && b[p + 1].is_ascii_digit() {
            p += 1;
            let st = p;
            while p < b.len() && b[p].is_ascii_digit() {
                p += 1;
            }
            nanos = fraction_nanos(&s[st..p]);
        }
        let offset = if sep == b' ' {
            0
        } else if b.get(p) == Some(&b'Z') {
            p += 1;
            0
        } else if matches!(b.get(p), Some(b'+' | b'-')) && b.len() >= p + 6 && b[p + 3] == b':' {
            let (h, m) = (two_digits(&b[p + 1..p + 3])?, two_digits(&b[p + 4..p + 6])?);
            if h > 24 || m > 60 {
                return None;
            }
            let off = signed(b[p], h, m);
            p += 6;
            off
        } else {
            return None;
        };
        if p != b.len() {
            return None;
        }
        Some(Time {
            hour,
            min,
            sec,
            nanos,
            offset,
            ..date
        })
    }

    /// Now, in UTC, whole seconds (how sops writes `lastmodified`).
    pub fn now() -> Time {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let (days, secs) = (unix.div_euclid(86400), unix.rem_euclid(86400));
        let (year, month, day) = civil_from_days(days);
        Time {
            year,
            month,
            day,
            hour: (secs / 3600) as u32,
            min: (secs % 3600 / 60) as u32,
            sec: (secs % 60) as u32,
            nanos: 0,
            offset: 0,
        }
    }

    /// Go's RFC3339Nano: the fraction without trailing zeros, `Z` for UTC.
    pub fn to_rfc3339_nano(self) -> String {
        let mut out = self.date_time();
        if self.nanos > 0 {
            out.push('.');
            out.push_str(format!("{:09}", self.nanos).trim_end_matches('0'));
        }
        out.push_str(&self.zone());
        out
    }

    /// Go's RFC3339: whole seconds, `Z` for UTC.
    pub fn to_rfc3339(self) -> String {
        format!("{}{}", self.date_time(), self.zone())
    }

    fn date_time(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.min, self.sec
        )
    }

    fn zone(&self) -> String {
        if self.offset == 0 {
            return "Z".to_string();
        }
        let sign = if self.offset < 0 { '-' } else { '+' };
        let a = self.offset.unsigned_abs();
        format!("{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60)
    }
}

fn signed(sign: u8, h: u32, m: u32) -> i64 {
    let off = i64::from(h * 3600 + m * 60);
    if sign == b'-' {
        -off
    } else {
        off
    }
}

/// Up to nine fraction digits as nanoseconds (more are cut, as Go cuts them).
fn fraction_nanos(digits: &str) -> u32 {
    digits
        .bytes()
        .chain(std::iter::repeat(b'0'))
        .take(9)
        .fold(0, |n, d| n * 10 + u32::from(d - b'0'))
}

fn two_digits(b: &[u8]) -> Option<u32> {
    (b.len() == 2 && b.iter().all(u8::is_ascii_digit))
        .then(|| u32::from(b[0] - b'0') * 10 + u32::from(b[1] - b'0'))
}

/// Go's non-fixed `getnum`: one or two digits.
fn getnum(b: &[u8], p: &mut usize) -> Option<u32> {
    let d0 = *b.get(*p)?;
    if !d0.is_ascii_digit() {
        return None;
    }
    *p += 1;
    let mut v = u32::from(d0 - b'0');
    if let Some(&d1) = b.get(*p).filter(|d| d.is_ascii_digit()) {
        v = v * 10 + u32::from(d1 - b'0');
        *p += 1;
    }
    Some(v)
}

fn expect(b: &[u8], p: &mut usize, c: u8) -> Option<()> {
    (b.get(*p) == Some(&c)).then(|| *p += 1)
}

fn days_in(month: u32, year: i64) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The civil date of a day count from 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m as u32, d as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nano(s: &str) -> Option<String> {
        Time::parse_rfc3339(s).map(|t| t.to_rfc3339_nano())
    }

    #[test]
    fn rfc3339_is_strict_and_spelled_like_go() {
        assert_eq!(
            nano("2023-01-02T00:00:00Z").unwrap(),
            "2023-01-02T00:00:00Z"
        );
        assert_eq!(
            nano("2001-12-14t21:59:43.10-05:00").unwrap(),
            "2001-12-14T21:59:43.1-05:00"
        );
        assert_eq!(
            nano("2001-12-14T21:59:43+00:00").unwrap(),
            "2001-12-14T21:59:43Z"
        );
        assert_eq!(
            nano("2001-12-14T21:59:43.000000000z").unwrap(),
            "2001-12-14T21:59:43Z"
        );
        for bad in [
            "2001-12-14",
            "2001-13-14T00:00:00Z",
            "2001-02-30T00:00:00Z",
            "2001-12-14T24:00:00Z",
            "2001-12-14T21:59:43.1234567890Z",
            "2001-12-14T21:59:43+24:00",
            "2001-12-14T21:59:43",
        ] {
            assert!(Time::parse_rfc3339(bad).is_none(), "{bad}");
        }
        let t = Time::parse_rfc3339("2024-03-01T10:20:30.5+02:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2024-03-01T10:20:30+02:00");
    }

    #[test]
    fn yaml_timestamps_follow_yaml_v3() {
        let y = |s: &str| Time::parse_yaml(s).map(|t| t.to_rfc3339_nano());
        assert_eq!(y("2001-12-14").unwrap(), "2001-12-14T00:00:00Z");
        assert_eq!(y("2001-1-2 3:4:5.5").unwrap(), "2001-01-02T03:04:05.5Z");
        assert_eq!(
            y("2001-12-14t21:59:43,10-05:00").unwrap(),
            "2001-12-14T21:59:43.1-05:00"
        );
        assert!(y("2001-02-29").is_none() && y("2001-12-14T21:59:43").is_none());
        assert!(y("2001-12-14 21:59:43Z").is_none());
    }

    #[test]
    fn now_is_utc_whole_seconds() {
        let now = Time::now().to_rfc3339();
        assert!(now.ends_with('Z') && now.len() == 20, "{now}");
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11016), (2000, 2, 29));
    }
}
