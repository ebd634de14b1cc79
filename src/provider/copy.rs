//! Recognising history an agent wrote again: the time helpers the
//! parsers' copy rules share.
//!
//! Agents copy earlier history into a session file when a session is
//! resumed or forked (Codex writes a new file with the old session's
//! `session_meta` and records; Claude Code 2.0 re-writes the transcript
//! into the same file with new uuids and one timestamp for the whole
//! batch). A parser marks the records it recognises as copies
//! ([`crate::event::Event::copied`]); a command in them is history and
//! never runs. The rules per provider are in each parser's module
//! documentation and in SECURITY.md.

/// Within a Codex copy, consecutive records are written in one burst
/// (at most 11 ms apart in the real files); a record written longer than
/// this after the one before it is the session's own.
pub const COPY_GAP_MS: i64 = 2_000;

/// Milliseconds since the Unix epoch of an RFC 3339 UTC timestamp as the
/// agents write it (`2025-09-16T06:12:37.389Z`; fractions of any length,
/// `Z` or `+00:00`). `None` for anything else: callers then keep their
/// safer assumption.
pub fn rfc3339_millis(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let rest = &s[19..];
    let (millis, zone) = match rest.strip_prefix('.') {
        Some(frac) => {
            let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return None;
            }
            let ms = frac[..digits.min(3)]
                .bytes()
                .chain(std::iter::repeat(b'0'))
                .take(3)
                .fold(0i64, |acc, c| acc * 10 + i64::from(c - b'0'));
            (ms, &frac[digits..])
        }
        None => (0, rest),
    };
    if zone != "Z" && zone != "+00:00" {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(((days * 24 + hour) * 60 + min) * 60_000 + sec * 1000 + millis)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The creation time (ms since the epoch) a time-ordered UUID (version 7)
/// carries in its first 48 bits; `None` for any other id.
pub fn uuid_v7_millis(id: &str) -> Option<i64> {
    let b = id.as_bytes();
    if b.len() != 36 || b[14] != b'7' {
        return None;
    }
    let ok = b.iter().enumerate().all(|(i, &c)| match i {
        8 | 13 | 18 | 23 => c == b'-',
        _ => c.is_ascii_hexdigit(),
    });
    if !ok {
        return None;
    }
    let hex: String = id[..8].chars().chain(id[9..13].chars()).collect();
    i64::from_str_radix(&hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_as_the_agents_write_them() {
        assert_eq!(rfc3339_millis("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(rfc3339_millis("1970-01-01T00:00:01.5Z"), Some(1500));
        // 2025-09-16T06:12:37.389Z, checked with `date -u -d … +%s%3N`.
        assert_eq!(
            rfc3339_millis("2025-09-16T06:12:37.389Z"),
            Some(1_758_003_157_389)
        );
        assert_eq!(
            rfc3339_millis("2025-09-16T06:12:37.389123+00:00"),
            Some(1_758_003_157_389)
        );
        assert_eq!(
            rfc3339_millis("2024-02-29T23:59:59.999Z"),
            Some(1_709_251_199_999)
        );
        for bad in [
            "",
            "t0",
            "2025-09-16 06:12:37Z",
            "2025-13-16T06:12:37Z",
            "2025-09-16T06:12:37",
            "2025-09-16T06:12:37+02:00",
            "2025-09-16T06:12:37.Z",
            "2025-09-16T0x:12:37Z",
            "２０２５-09-16T06:12:37Z",
        ] {
            assert_eq!(rfc3339_millis(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn time_ordered_uuids_carry_their_creation_time() {
        // A Codex turn id minted at 2026-04-15T17:58:29Z or so.
        let t = uuid_v7_millis("019d924b-6b70-7963-9863-ad2e0ee1f9c1").unwrap();
        assert_eq!(t, 0x019d_924b_6b70);
        assert!(rfc3339_millis("2026-04-15T17:58:23.701Z").is_some_and(|s| t > s));
        assert_eq!(
            uuid_v7_millis("613a9a68-8816-40b2-a2d4-041ade599da6"),
            None,
            "a random (v4) uuid"
        );
        assert_eq!(uuid_v7_millis("turn-1"), None);
        assert_eq!(uuid_v7_millis("019d924b-6b70-7963-9863-ad2e0ee1f9cg"), None);
    }
}
