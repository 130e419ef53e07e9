//! Rates, sizes and durations as dummynet/ipfw and tc users write them.
//!
//! Every parser reads a decimal number, optional spaces, and a unit, and
//! returns an exact integer in the base unit. Decimals ("1.5Gbit/s") are read
//! with integer arithmetic, never through `f64`, and rounded to the nearest
//! base unit (halves away from zero), so every integer result is exact.
//! Negative numbers, exponents ("1e6"), empty strings, unknown units and
//! results that overflow a `u64` are rejected with a message that quotes the
//! input.
//!
//! # Rates ([`parse_rate`]) — bits per second
//! - Prefixes `k`, `M`, `G`, `T` (any case) are SI: 1000, 1000², 1000³, 1000⁴.
//!   Binary prefixes (`Ki`…) are not used for rates and are rejected.
//! - Bits: `bit`, `bits`, `bit/s`, `bits/s`, `bit/sec`, `bps` (any case for the
//!   words; `bps` with a lower-case `b`), or no unit at all: `64000`, `100M`.
//! - Bytes (× 8): `Byte`, `Bytes`, `Byte/s`, `Bytes/s` (any case for the
//!   words), `B`, `B/s`, `Bps` (upper-case `B`).
//! - So `"100Mbps"` and `"2.5gbps"` are **bits** per second, as in dummynet's
//!   ipfw parser and in everyday networking usage. Note that `tc` reads
//!   `mbps` as mega*bytes* per second: a `tc` rate of `100mbps` must be
//!   written `"100MByte/s"` (or `"800Mbit/s"`) here; `tc`'s `mbit` is
//!   accepted as is.
//! - Zero is rejected ("no limit" is the configuration's business, e.g.
//!   `"unlimited"`); [`parse_rate_or_zero`] accepts it.
//!
//! # Sizes ([`parse_size`]) — bytes
//! - Case-insensitive. Prefixes are binary, as in dummynet (`queue 50KBytes`)
//!   and tc: `k` = 1024, `m` = 1024², `g` = 1024³, `t` = 1024⁴, with or without
//!   an `i` (`KiB` = `KB` = `K` = 1024).
//! - Units: none, `b`, `byte`, `bytes` — all bytes (`b` is a byte here, as in
//!   tc sizes). Bits are not accepted for sizes.
//! - Examples: `"1500"`, `"1500B"`, `"64k"`, `"50KB"`, `"50KBytes"`, `"2KiB"`, `"1MB"`.
//!
//! # Durations ([`parse_duration`]) — nanoseconds
//! - No unit means **milliseconds**, as dummynet's `delay 80`.
//! - `ns`, `us`/`µs`/`μs`, `ms`, `s`/`sec`, `min`, `h` (and their long
//!   forms: `nsec`, `usec`, `msec`, `secs`, `second(s)`, `mins`,
//!   `minute(s)`, `hour(s)`); case-insensitive.
//! - A bare `m` is rejected as ambiguous (minutes or milliseconds?); write
//!   `min` or `ms`.
//!
//! The `format_*` functions write a value back in the largest unit that
//! represents it exactly; the parsers read their output back to the same
//! value.

use std::fmt;

/// What kind of quantity a string was supposed to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quantity {
    /// A bit rate.
    Rate,
    /// A size in bytes.
    Size,
    /// A duration.
    Duration,
}

impl Quantity {
    /// The word used in messages.
    pub fn name(self) -> &'static str {
        match self {
            Quantity::Rate => "rate",
            Quantity::Size => "size",
            Quantity::Duration => "duration",
        }
    }

    /// A valid example, quoted in messages.
    pub fn example(self) -> &'static str {
        match self {
            Quantity::Rate => "100Mbit/s",
            Quantity::Size => "64KB",
            Quantity::Duration => "20ms",
        }
    }

    /// The base unit of the parsed value.
    pub fn base_unit(self) -> &'static str {
        match self {
            Quantity::Rate => "bit/s",
            Quantity::Size => "bytes",
            Quantity::Duration => "ns",
        }
    }
}

impl fmt::Display for Quantity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A string that is not a valid rate, size or duration. Every message quotes
/// the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// Not a number followed by a known unit.
    #[error("{input:?} is not a {what} (expected e.g. {:?})", what.example())]
    Invalid {
        /// The rejected text.
        input: String,
        /// What it should have been.
        what: Quantity,
    },
    /// A negative number.
    #[error("{input:?} is not a {what}: it is negative")]
    Negative {
        /// The rejected text.
        input: String,
        /// What it should have been.
        what: Quantity,
    },
    /// Zero (or a value that rounds to zero) where zero is not allowed.
    #[error("{input:?} is not a {what}: it must be more than 0 {}", what.base_unit())]
    Zero {
        /// The rejected text.
        input: String,
        /// What it should have been.
        what: Quantity,
    },
    /// The value does not fit in a `u64` of the base unit.
    #[error("{input:?} is too large for a {what} (at most {} {})", u64::MAX, what.base_unit())]
    TooLarge {
        /// The rejected text.
        input: String,
        /// What it should have been.
        what: Quantity,
    },
    /// A unit that could mean two things.
    #[error("{input:?} is ambiguous: {hint}")]
    Ambiguous {
        /// The rejected text.
        input: String,
        /// How to write it unambiguously.
        hint: String,
    },
}

/// An exact decimal: `mantissa / 10^scale`.
struct Decimal {
    mantissa: u128,
    scale: u32,
}

/// Most digits read (not counting leading zeros), and most fraction digits.
/// With at most 24 digits and a unit of at most 8·1000⁴, the product never
/// overflows a `u128`, so a value is "too large" only when it really is.
const MAX_DIGITS: u32 = 24;

enum NumError {
    Invalid,
    Negative,
}

/// Splits `s` (already trimmed) into an exact decimal and the unit text after
/// it (leading spaces removed).
fn split_number(s: &str) -> Result<(Decimal, &str), NumError> {
    if s.starts_with('-') {
        return Err(NumError::Negative);
    }
    let mut mantissa: u128 = 0;
    let mut scale = 0u32;
    let mut digits = 0u32;
    let mut seen_digit = false;
    let mut seen_point = false;
    let mut end = s.len();
    for (i, c) in s.char_indices() {
        match c {
            '0'..='9' => {
                seen_digit = true;
                // Leading zeros do not count towards the precision limit.
                if mantissa != 0 || c != '0' {
                    digits += 1;
                }
                if seen_point {
                    scale += 1;
                }
                if digits > MAX_DIGITS || scale > MAX_DIGITS {
                    return Err(NumError::Invalid);
                }
                mantissa = mantissa * 10 + u128::from(c as u8 - b'0');
            }
            '.' if !seen_point => seen_point = true,
            _ => {
                end = i;
                break;
            }
        }
    }
    if !seen_digit {
        return Err(NumError::Invalid);
    }
    Ok((Decimal { mantissa, scale }, s[end..].trim_start()))
}

/// `d * mult`, rounded to the nearest integer (halves up).
fn scale(d: &Decimal, mult: u128) -> Option<u64> {
    let div = 10u128.checked_pow(d.scale)?;
    let num = d.mantissa.checked_mul(mult)?;
    let q = num / div;
    let r = num % div;
    let q = if r >= div - r { q + 1 } else { q };
    u64::try_from(q).ok()
}

fn parse_with(
    input: &str,
    what: Quantity,
    unit: impl FnOnce(&str, &str) -> Result<u128, UnitError>,
) -> Result<u64, UnitError> {
    let s = input.trim();
    let (num, rest) = split_number(s).map_err(|e| match e {
        NumError::Invalid => UnitError::Invalid {
            input: input.to_owned(),
            what,
        },
        NumError::Negative => UnitError::Negative {
            input: input.to_owned(),
            what,
        },
    })?;
    let number_text = &s[..s.len() - rest.len()];
    let mult = unit(rest, number_text.trim_end())?;
    scale(&num, mult).ok_or_else(|| UnitError::TooLarge {
        input: input.to_owned(),
        what,
    })
}

/// Splits an optional leading prefix letter (k, m, g, t in any case) off `u`.
/// Returns the exponent (0 for no prefix) and the rest.
fn split_prefix(u: &str) -> (u32, &str) {
    let mut chars = u.chars();
    let exp = match chars.next() {
        Some('k' | 'K') => 1,
        Some('m' | 'M') => 2,
        Some('g' | 'G') => 3,
        Some('t' | 'T') => 4,
        _ => return (0, u),
    };
    (exp, chars.as_str())
}

/// Parses a rate into bits per second. Zero is rejected. See the
/// [module documentation](self) for the units.
///
/// ```
/// use sched::units::parse_rate;
/// assert_eq!(parse_rate("40Mbit/s"), Ok(40_000_000));
/// assert_eq!(parse_rate("1.5Gbit"), Ok(1_500_000_000));
/// assert_eq!(parse_rate("1MByte/s"), Ok(8_000_000));
/// ```
pub fn parse_rate(s: &str) -> Result<u64, UnitError> {
    let v = parse_rate_or_zero(s)?;
    if v == 0 {
        return Err(UnitError::Zero {
            input: s.to_owned(),
            what: Quantity::Rate,
        });
    }
    Ok(v)
}

/// Like [`parse_rate`], but `"0"`, `"0bit/s"` and values that round to 0 are accepted.
pub fn parse_rate_or_zero(s: &str) -> Result<u64, UnitError> {
    let what = Quantity::Rate;
    parse_with(s, what, |unit, _| {
        let (exp, rest) = split_prefix(unit);
        let lower = rest.to_ascii_lowercase();
        let per_unit: u128 = match (rest, lower.as_str()) {
            (_, "" | "bit" | "bits" | "bit/s" | "bits/s" | "bit/sec" | "bits/sec") => 1,
            ("bps", _) => 1,
            ("B" | "B/s" | "Bps", _) => 8,
            (_, "byte" | "bytes" | "byte/s" | "bytes/s" | "byte/sec" | "bytes/sec") => 8,
            _ => {
                return Err(UnitError::Invalid {
                    input: s.to_owned(),
                    what,
                })
            }
        };
        Ok(per_unit * 1000u128.pow(exp))
    })
}

/// Parses a size into bytes (binary prefixes: `K` = 1024). Zero is accepted.
/// See the [module documentation](self) for the units.
///
/// ```
/// use sched::units::parse_size;
/// assert_eq!(parse_size("50KBytes"), Ok(51_200));
/// assert_eq!(parse_size("1500"), Ok(1500));
/// ```
pub fn parse_size(s: &str) -> Result<u64, UnitError> {
    let what = Quantity::Size;
    parse_with(s, what, |unit, _| {
        let lower = unit.to_ascii_lowercase();
        let (exp, rest) = split_prefix(&lower);
        let rest = if exp > 0 {
            rest.strip_prefix('i').unwrap_or(rest)
        } else {
            rest
        };
        match rest {
            "" | "b" | "byte" | "bytes" => Ok(1024u128.pow(exp)),
            _ => Err(UnitError::Invalid {
                input: s.to_owned(),
                what,
            }),
        }
    })
}

/// Parses a duration into nanoseconds; no unit means milliseconds. Zero is
/// accepted. See the [module documentation](self) for the units.
///
/// ```
/// use sched::units::parse_duration;
/// assert_eq!(parse_duration("80ms"), Ok(80_000_000));
/// assert_eq!(parse_duration("80"), Ok(80_000_000));
/// assert_eq!(parse_duration("1.5s"), Ok(1_500_000_000));
/// ```
pub fn parse_duration(s: &str) -> Result<u64, UnitError> {
    let what = Quantity::Duration;
    parse_with(s, what, |unit, number| {
        let lower = unit.to_lowercase();
        Ok(match lower.as_str() {
            "ns" | "nsec" | "nsecs" => 1,
            "us" | "µs" | "μs" | "usec" | "usecs" => 1_000,
            "" | "ms" | "msec" | "msecs" => 1_000_000,
            "s" | "sec" | "secs" | "second" | "seconds" => 1_000_000_000,
            "min" | "mins" | "minute" | "minutes" => 60_000_000_000,
            "h" | "hr" | "hour" | "hours" => 3_600_000_000_000,
            "m" => {
                return Err(UnitError::Ambiguous {
                    input: s.to_owned(),
                    hint: format!(
                        "write \"{number}min\" for minutes or \"{number}ms\" for milliseconds"
                    ),
                })
            }
            _ => {
                return Err(UnitError::Invalid {
                    input: s.to_owned(),
                    what,
                })
            }
        })
    })
}

/// Writes `v` with the largest of the given units that divides it exactly.
fn format_exact(v: u64, units: &[(u64, &str)]) -> String {
    for &(size, name) in units {
        if v != 0 && size > 1 && v % size == 0 {
            return format!("{}{name}", v / size);
        }
    }
    let base = units.last().map_or("", |u| u.1);
    format!("{v}{base}")
}

/// Writes a rate in bits per second as `"40Mbit/s"`, `"1500bit/s"`: exact,
/// and read back to the same value by [`parse_rate_or_zero`].
pub fn format_rate(bps: u64) -> String {
    format_exact(
        bps,
        &[
            (1_000_000_000_000, "Tbit/s"),
            (1_000_000_000, "Gbit/s"),
            (1_000_000, "Mbit/s"),
            (1_000, "Kbit/s"),
            (1, "bit/s"),
        ],
    )
}

/// Writes a size in bytes as `"50KB"`, `"1500B"` (binary prefixes): exact,
/// and read back to the same value by [`parse_size`].
pub fn format_size(bytes: u64) -> String {
    format_exact(
        bytes,
        &[
            (1 << 40, "TB"),
            (1 << 30, "GB"),
            (1 << 20, "MB"),
            (1 << 10, "KB"),
            (1, "B"),
        ],
    )
}

/// Writes a duration in nanoseconds as `"80ms"`, `"1500us"`: exact, and read
/// back to the same value by [`parse_duration`].
pub fn format_duration(ns: u64) -> String {
    format_exact(
        ns,
        &[
            (3_600_000_000_000, "h"),
            (60_000_000_000, "min"),
            (1_000_000_000, "s"),
            (1_000_000, "ms"),
            (1_000, "us"),
            (1, "ns"),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rates_dummynet_and_tc_spellings() {
        let cases: &[(&str, u64)] = &[
            ("100Mbit/s", 100_000_000),
            ("1Gbit", 1_000_000_000),
            ("300Kbit/s", 300_000),
            ("40Mbit/s", 40_000_000),
            ("100mbit", 100_000_000),
            ("10kbit", 10_000),
            ("1.5Gbit/s", 1_500_000_000),
            ("2.5gbps", 2_500_000_000),
            ("100Mbps", 100_000_000),
            ("64000bit/s", 64_000),
            ("64000", 64_000),
            ("100M", 100_000_000),
            ("1Tbit/s", 1_000_000_000_000),
            ("10 Mbit/s", 10_000_000),
            ("  10Mbit/s  ", 10_000_000),
            ("1bits/s", 1),
            ("5 bit/sec", 5),
            ("1MByte/s", 8_000_000),
            ("1MBytes/s", 8_000_000),
            ("1MB/s", 8_000_000),
            ("1MBps", 8_000_000),
            ("2KB", 16_000),
            ("1byte/s", 8),
            ("12.5MByte/s", 100_000_000),
            ("0.5bit/s", 1),  // rounds half up
            ("0.49bit/s", 0), // only with parse_rate_or_zero
            ("1.0000001Mbit/s", 1_000_000),
            ("007kbit", 7_000),
            ("1.", 1),
            (".5k", 500),
        ];
        for &(s, want) in cases {
            assert_eq!(parse_rate_or_zero(s), Ok(want), "{s}");
            if want > 0 {
                assert_eq!(parse_rate(s), Ok(want), "{s}");
            }
        }
    }

    #[test]
    fn rate_rejects_with_messages_that_quote_the_input() {
        let e = parse_rate("40Mbot/s").expect_err("bad unit");
        assert_eq!(
            e.to_string(),
            r#""40Mbot/s" is not a rate (expected e.g. "100Mbit/s")"#
        );
        let e = parse_rate("-5Mbit/s").expect_err("negative");
        assert_eq!(e.to_string(), r#""-5Mbit/s" is not a rate: it is negative"#);
        let e = parse_rate("0bit/s").expect_err("zero");
        assert_eq!(
            e.to_string(),
            r#""0bit/s" is not a rate: it must be more than 0 bit/s"#
        );
        assert!(matches!(parse_rate("0.4"), Err(UnitError::Zero { .. })));
        let e = parse_rate("20000000Tbit/s").expect_err("overflow");
        assert_eq!(
            e.to_string(),
            r#""20000000Tbit/s" is too large for a rate (at most 18446744073709551615 bit/s)"#
        );
        for bad in [
            "",
            "   ",
            "Mbit/s",
            "fast",
            "1e6",
            "1e6bit/s",
            "1..5Mbit",
            "1.5.5Mbit",
            "+5Mbit",
            "1KiBit/s",
            "1 K bit",
            "10mbits/ss",
            "BPS",
            "10Xbit",
            "0x10",
            "1,000bit",
            "١٢٣bit",
            "1.0000000000000000000000000000001Mbit",
        ] {
            let e = parse_rate(bad).expect_err(bad);
            assert!(e.to_string().contains(&format!("{bad:?}")), "{bad}: {e}");
        }
    }

    #[test]
    fn sizes_use_binary_prefixes() {
        let cases: &[(&str, u64)] = &[
            ("50KB", 51_200),
            ("50KBytes", 51_200),
            ("1000Kbytes", 1_024_000),
            ("64k", 65_536),
            ("1MB", 1_048_576),
            ("1500", 1500),
            ("1500B", 1500),
            ("1500 bytes", 1500),
            ("1byte", 1),
            ("2KiB", 2048),
            ("2kib", 2048),
            ("1G", 1 << 30),
            ("1GiB", 1 << 30),
            ("1TB", 1 << 40),
            ("1.5KB", 1536),
            ("0.5k", 512),
            ("0", 0),
            ("0.3", 0),
            ("0.5", 1),
        ];
        for &(s, want) in cases {
            assert_eq!(parse_size(s), Ok(want), "{s}");
        }
        for bad in ["", "KB", "1Kbit", "1iB", "1.5.5K", "-1KB", "1 KB B", "1PB"] {
            let e = parse_size(bad).expect_err(bad);
            assert!(e.to_string().contains(&format!("{bad:?}")), "{bad}: {e}");
        }
        assert_eq!(
            parse_size("50KBit").expect_err("bits").to_string(),
            r#""50KBit" is not a size (expected e.g. "64KB")"#
        );
        assert!(matches!(
            parse_size("16777216TB"),
            Err(UnitError::TooLarge { .. })
        ));
        assert_eq!(parse_size("16777215TB"), Ok(16_777_215u64 << 40));
    }

    #[test]
    fn durations() {
        let cases: &[(&str, u64)] = &[
            ("20ms", 20_000_000),
            ("80ms", 80_000_000),
            ("80", 80_000_000),
            ("1s", 1_000_000_000),
            ("1 sec", 1_000_000_000),
            ("500us", 500_000),
            ("500µs", 500_000),
            ("500μs", 500_000),
            ("500usec", 500_000),
            ("100ns", 100),
            ("1.5ms", 1_500_000),
            ("0.0015s", 1_500_000),
            ("2min", 120_000_000_000),
            ("1h", 3_600_000_000_000),
            ("30S", 30_000_000_000),
            ("0", 0),
            ("0.4ns", 0),
            ("0.5ns", 1),
            ("1.25", 1_250_000),
        ];
        for &(s, want) in cases {
            assert_eq!(parse_duration(s), Ok(want), "{s}");
        }
        let e = parse_duration("2m").expect_err("ambiguous");
        assert_eq!(
            e.to_string(),
            r#""2m" is ambiguous: write "2min" for minutes or "2ms" for milliseconds"#
        );
        let e = parse_duration("20 lightyears").expect_err("unit");
        assert_eq!(
            e.to_string(),
            r#""20 lightyears" is not a duration (expected e.g. "20ms")"#
        );
        assert!(matches!(
            parse_duration("-1ms"),
            Err(UnitError::Negative { .. })
        ));
        assert!(matches!(
            parse_duration("6000000h"),
            Err(UnitError::TooLarge { .. })
        ));
        for bad in ["", "ms", "1d", "1ms2", "1 m s", "1e3ms"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn format_is_exact_and_readable() {
        assert_eq!(format_rate(40_000_000), "40Mbit/s");
        assert_eq!(format_rate(1_500), "1500bit/s");
        assert_eq!(format_rate(0), "0bit/s");
        assert_eq!(format_size(51_200), "50KB");
        assert_eq!(format_size(1500), "1500B");
        assert_eq!(format_duration(80_000_000), "80ms");
        assert_eq!(format_duration(1_500_000), "1500us");
        assert_eq!(format_duration(120_000_000_000), "2min");
    }

    /// Renders `v / 10^d` as a decimal string with exactly `d` fraction digits.
    fn decimal(v: u64, d: u32) -> String {
        let p = 10u64.pow(d);
        if d == 0 {
            v.to_string()
        } else {
            format!("{}.{:0width$}", v / p, v % p, width = d as usize)
        }
    }

    proptest! {
        #[test]
        fn rate_round_trips(v in 0u64..=u64::MAX) {
            prop_assert_eq!(parse_rate_or_zero(&format_rate(v)), Ok(v));
            prop_assert_eq!(parse_rate_or_zero(&format!("{v}bit/s")), Ok(v));
        }

        #[test]
        fn size_round_trips(v in 0u64..=u64::MAX) {
            prop_assert_eq!(parse_size(&format_size(v)), Ok(v));
            prop_assert_eq!(parse_size(&format!("{v}")), Ok(v));
        }

        #[test]
        fn duration_round_trips(v in 0u64..=u64::MAX) {
            prop_assert_eq!(parse_duration(&format_duration(v)), Ok(v));
            prop_assert_eq!(parse_duration(&format!("{v}ns")), Ok(v));
        }

        /// A decimal with a prefix: "m.ddd Mbit/s" is exactly m.ddd * 10^6.
        #[test]
        fn decimal_rates_are_exact(v in 0u64..1_000_000_000_000, d in 0u32..=6) {
            let s = format!("{}Mbit/s", decimal(v, d));
            let want = u128::from(v) * 1_000_000 / 10u128.pow(d);
            prop_assert_eq!(u128::from(parse_rate_or_zero(&s).expect("valid")), want);
            let s = format!("{}KByte/s", decimal(v, d.min(3)));
            let want = u128::from(v) * 8_000 / 10u128.pow(d.min(3));
            prop_assert_eq!(u128::from(parse_rate_or_zero(&s).expect("valid")), want);
        }

        /// Decimals that are not whole base units round to the nearest one.
        #[test]
        fn decimal_sizes_round_to_nearest(v in 0u64..1_000_000_000, d in 0u32..=9) {
            let s = format!("{}KB", decimal(v, d));
            let exact = u128::from(v) * 1024;
            let div = 10u128.pow(d);
            let got = u128::from(parse_size(&s).expect("valid"));
            prop_assert!(got * div + div / 2 >= exact && got * div <= exact + div / 2,
                "{} -> {}", s, got);
        }

        #[test]
        fn decimal_durations_are_exact(v in 0u64..1_000_000_000_000, d in 0u32..=6) {
            let s = format!("{}ms", decimal(v, d));
            let want = u128::from(v) * 1_000_000 / 10u128.pow(d);
            prop_assert_eq!(u128::from(parse_duration(&s).expect("valid")), want);
        }

        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,24}") {
            let _ = parse_rate(&s);
            let _ = parse_size(&s);
            let _ = parse_duration(&s);
        }

        #[test]
        fn numberish_text_never_panics(s in "[-+. 0-9]{0,40}[a-zA-Zµ/ ]{0,8}") {
            for r in [parse_rate(&s), parse_size(&s), parse_duration(&s)] {
                if let Err(e) = r {
                    let msg = e.to_string();
                    prop_assert!(msg.contains(&format!("{s:?}")), "{}", msg);
                }
            }
        }
    }
}
