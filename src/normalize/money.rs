//! Exact amounts: decimal text straight into integer minor units, never through a float.

use std::fmt;

/// Whether a source writes amounts in major units (`12.50`) or minor units (`1250`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Major,
    Minor,
}

/// How one source writes its numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumberFormat {
    pub decimal: char,
    pub thousands: Option<char>,
    pub unit: Unit,
}

impl Default for NumberFormat {
    fn default() -> Self {
        NumberFormat {
            decimal: '.',
            thousands: None,
            unit: Unit::Major,
        }
    }
}

/// Why an amount's text was not accepted. Each reason is shown to a person in `rejects.csv`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AmountError {
    Empty,
    NotADecimal,
    BadGrouping,
    /// More fractional digits than the currency's minor unit allows, and not all of them zero.
    TooPrecise {
        allowed: u8,
    },
    NotWhole,
    OutOfRange,
}

impl fmt::Display for AmountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AmountError::Empty => write!(f, "empty amount"),
            AmountError::NotADecimal => write!(f, "not a decimal amount"),
            AmountError::BadGrouping => write!(f, "malformed thousands grouping"),
            AmountError::TooPrecise { allowed } => {
                write!(
                    f,
                    "more decimals than the currency's minor unit allows ({allowed})"
                )
            }
            AmountError::NotWhole => write!(f, "a minor-unit amount must be a whole number"),
            AmountError::OutOfRange => write!(f, "out of range (beyond 64-bit minor units)"),
        }
    }
}

/// Parses `text` into minor units of a currency with `exponent` decimals.
///
/// Accepts a sign as `-12.00`, `+12.00`, `(12.00)` or `12.00-`; the source's decimal separator; its
/// thousands separator only in well-formed groups of three (`1.234.567,89`, never `1.23.4`); and a
/// decimal exponent (`1.5E3`) when the result is exact. Anything else is an error, never a rounding.
pub fn parse_amount(text: &str, format: &NumberFormat, exponent: u8) -> Result<i64, AmountError> {
    let s = super::trim(text);
    if let Some(v) = plain_amount(s, format, exponent) {
        return Ok(v);
    }
    general_amount(s, format, exponent)
}

/// The common case, read without allocating: `[-]digits[.digits]` with the source's decimal
/// point, at most 18 digits once scaled to minor units (so it cannot overflow), and no more
/// fraction digits than the unit holds. `None` for anything else, which [`general_amount`]
/// reads or rejects (a property test checks that the two agree).
fn plain_amount(s: &str, format: &NumberFormat, exponent: u8) -> Option<i64> {
    let (negative, b) = match s.as_bytes() {
        [b'-', rest @ ..] => (true, rest),
        b => (false, b),
    };
    let point = u8::try_from(format.decimal).ok().filter(u8::is_ascii)?;
    let scale = match format.unit {
        Unit::Major => usize::from(exponent),
        Unit::Minor => 0,
    };
    // More than 18 digits are refused below, before the value (which may have wrapped) is used.
    if b.len() > 19 {
        return None;
    }
    let mut v: i64 = 0;
    // Digits before the point, and after it once it is met.
    let (mut int, mut frac) = (0usize, None::<usize>);
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d < 10 {
            v = v.wrapping_mul(10).wrapping_add(i64::from(d));
            match &mut frac {
                None => int += 1,
                Some(n) => *n += 1,
            }
        } else if c == point && frac.is_none() && format.unit == Unit::Major {
            frac = Some(0);
        } else {
            return None;
        }
    }
    let frac = frac.unwrap_or(0);
    if int == 0 || frac > scale || int + scale > 18 {
        return None;
    }
    v *= 10i64.pow((scale - frac) as u32);
    Some(if negative { -v } else { v })
}

/// [`parse_amount`] in full: signs in every place exports put them, thousands separators,
/// exponents, trailing zeros beyond the unit, and the reason for what it cannot read.
fn general_amount(mut s: &str, format: &NumberFormat, exponent: u8) -> Result<i64, AmountError> {
    if s.is_empty() {
        return Err(AmountError::Empty);
    }
    let mut negative = false;
    if let Some(inner) = s.strip_prefix('(').and_then(|r| r.strip_suffix(')')) {
        negative = true;
        s = inner;
    }
    if let Some(rest) = s.strip_prefix('-') {
        if negative {
            return Err(AmountError::NotADecimal);
        }
        negative = true;
        s = rest;
    } else if let Some(rest) = s.strip_prefix('+') {
        if negative {
            return Err(AmountError::NotADecimal);
        }
        s = rest;
    } else if let Some(rest) = s.strip_suffix('-') {
        if negative {
            return Err(AmountError::NotADecimal);
        }
        negative = true;
        s = rest;
    }

    let (mantissa, exp10) = match s.find(['e', 'E']) {
        Some(i) => {
            let e: i32 = s[i + 1..].parse().map_err(|_| AmountError::NotADecimal)?;
            // `1.234e2` in a source with `.` thousands: a program wrote a float, not 1234e2.
            if format.thousands.is_some_and(|t| s[..i].contains(t)) {
                return Err(AmountError::NotADecimal);
            }
            (&s[..i], e)
        }
        None => (s, 0),
    };
    let (int_part, frac_part) = match mantissa.split_once(format.decimal) {
        // `12.00` in a minor-unit column is a major-unit value that slipped in: 12 cents would be wrong.
        Some(_) if format.unit == Unit::Minor => return Err(AmountError::NotWhole),
        Some((i, f)) => (i, f),
        None => (mantissa, ""),
    };
    let int_digits = ungroup(int_part, format.thousands)?;
    if !frac_part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AmountError::NotADecimal);
    }
    if int_digits.is_empty() && frac_part.is_empty() {
        return Err(AmountError::NotADecimal);
    }

    // value = digits * 10^(-frac_len + exp10); minor = value * 10^unit_exponent.
    let unit_exponent = match format.unit {
        Unit::Major => exponent as i64,
        Unit::Minor => 0,
    };
    let shift = unit_exponent + exp10 as i64 - frac_part.len() as i64;
    let mut digits: Vec<u8> = int_digits
        .bytes()
        .chain(frac_part.bytes())
        .map(|b| b - b'0')
        .collect();
    if shift < 0 {
        let drop = (-shift) as usize;
        let cut = digits.len().saturating_sub(drop);
        if digits[cut..].iter().any(|&d| d != 0) {
            return Err(match format.unit {
                Unit::Major => AmountError::TooPrecise { allowed: exponent },
                Unit::Minor => AmountError::NotWhole,
            });
        }
        digits.truncate(cut);
    }
    let mut value: i128 = 0;
    for d in digits.iter().skip_while(|&&d| d == 0) {
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(*d as i128))
            .ok_or(AmountError::OutOfRange)?;
    }
    if shift > 0 && value != 0 {
        let factor = 10i128.checked_pow(u32::try_from(shift).map_err(|_| AmountError::OutOfRange)?);
        value = factor
            .and_then(|f| value.checked_mul(f))
            .ok_or(AmountError::OutOfRange)?;
    }
    if negative {
        value = -value;
    }
    i64::try_from(value).map_err(|_| AmountError::OutOfRange)
}

/// The integer part's digits with well-formed thousands separators removed.
fn ungroup(int_part: &str, thousands: Option<char>) -> Result<String, AmountError> {
    let grouped = thousands.is_some_and(|t| int_part.contains(t));
    if !grouped {
        return if int_part.bytes().all(|b| b.is_ascii_digit()) {
            Ok(int_part.to_string())
        } else {
            Err(AmountError::NotADecimal)
        };
    }
    let sep = thousands.expect("checked above");
    let groups: Vec<&str> = int_part.split(sep).collect();
    for (i, g) in groups.iter().enumerate() {
        if !g.bytes().all(|b| b.is_ascii_digit()) {
            return Err(AmountError::NotADecimal);
        }
        let ok = if i == 0 {
            (1..=3).contains(&g.len())
        } else {
            g.len() == 3
        };
        if !ok {
            return Err(AmountError::BadGrouping);
        }
    }
    Ok(groups.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOT: NumberFormat = NumberFormat {
        decimal: '.',
        thousands: Some(','),
        unit: Unit::Major,
    };
    const COMMA: NumberFormat = NumberFormat {
        decimal: ',',
        thousands: Some('.'),
        unit: Unit::Major,
    };
    const PLAIN: NumberFormat = NumberFormat {
        decimal: '.',
        thousands: None,
        unit: Unit::Major,
    };
    const MINOR: NumberFormat = NumberFormat {
        decimal: '.',
        thousands: None,
        unit: Unit::Minor,
    };

    #[test]
    fn parses_exactly() {
        let cases: &[(&str, &NumberFormat, u8, i64)] = &[
            ("12.50", &PLAIN, 2, 1250),
            ("12.5", &PLAIN, 2, 1250),
            ("12", &PLAIN, 2, 1200),
            (".5", &PLAIN, 2, 50),
            ("5.", &PLAIN, 2, 500),
            ("-12.00", &PLAIN, 2, -1200),
            ("+3.01", &PLAIN, 2, 301),
            ("(12.00)", &PLAIN, 2, -1200),
            ("12.00-", &PLAIN, 2, -1200),
            ("  7.10 ", &PLAIN, 2, 710),
            ("1,234.50", &DOT, 2, 123_450),
            ("1,234,567.89", &DOT, 2, 123_456_789),
            ("1.234,50", &COMMA, 2, 123_450),
            ("98.765.432.109.876,54", &COMMA, 2, 9_876_543_210_987_654),
            ("-0,01", &COMMA, 2, -1),
            ("1200", &PLAIN, 0, 1200),
            ("1.200", &COMMA, 0, 1200),
            ("12.345", &PLAIN, 3, 12_345),
            ("12.3400", &PLAIN, 2, 1234),
            ("1E3", &PLAIN, 2, 100_000),
            ("1.5E2", &DOT, 2, 15_000),
            ("1E3", &MINOR, 2, 1000),
            ("1.5e-1", &PLAIN, 2, 15),
            ("2040000", &MINOR, 2, 2_040_000),
            ("-18759", &MINOR, 2, -18_759),
            ("98765432109876.54", &PLAIN, 2, 9_876_543_210_987_654),
            ("92233720368547758.07", &PLAIN, 2, i64::MAX),
            ("-92233720368547758.08", &PLAIN, 2, i64::MIN),
            ("0.00", &PLAIN, 2, 0),
            ("000012.50", &PLAIN, 2, 1250),
        ];
        for (text, format, exponent, want) in cases {
            assert_eq!(
                parse_amount(text, format, *exponent),
                Ok(*want),
                "{text:?} exponent {exponent}"
            );
        }
    }

    #[test]
    fn rejects_with_reason() {
        use AmountError::*;
        let cases: &[(&str, &NumberFormat, u8, AmountError)] = &[
            ("", &PLAIN, 2, Empty),
            ("   ", &PLAIN, 2, Empty),
            ("12,5O", &COMMA, 2, NotADecimal),
            ("abc", &PLAIN, 2, NotADecimal),
            ("1,234.50", &PLAIN, 2, NotADecimal),
            ("1.23.4,00", &COMMA, 2, BadGrouping),
            ("12,34.00", &DOT, 2, BadGrouping),
            ("1234,567.00", &DOT, 2, BadGrouping),
            ("12.345", &PLAIN, 2, TooPrecise { allowed: 2 }),
            ("1200.5", &PLAIN, 0, TooPrecise { allowed: 0 }),
            ("1.5e-3", &PLAIN, 2, TooPrecise { allowed: 2 }),
            ("12.5", &MINOR, 2, NotWhole),
            ("12.00", &MINOR, 2, NotWhole),
            ("(+12)", &PLAIN, 2, NotADecimal),
            ("1,234e2", &DOT, 2, NotADecimal),
            ("92233720368547758.08", &PLAIN, 2, OutOfRange),
            (
                "99999999999999999999999999999999999999999",
                &PLAIN,
                2,
                OutOfRange,
            ),
            ("1e40", &PLAIN, 2, OutOfRange),
            ("-", &PLAIN, 2, NotADecimal),
            ("(-12)", &PLAIN, 2, NotADecimal),
            ("$12.00", &PLAIN, 2, NotADecimal),
            ("1e", &PLAIN, 2, NotADecimal),
            ("NaN", &PLAIN, 2, NotADecimal),
        ];
        for (text, format, exponent, want) in cases {
            assert_eq!(
                parse_amount(text, format, *exponent).as_ref(),
                Err(want),
                "{text:?}"
            );
        }
    }

    #[test]
    fn a_million_cents_sum_exactly() {
        let one_cent = parse_amount("0.01", &PLAIN, 2).unwrap();
        let total: i128 = (0..1_000_000).map(|_| one_cent as i128).sum();
        assert_eq!(total, 1_000_000);
    }

    proptest::proptest! {
        #![proptest_config(crate::proptest_config(5_000, "tests/money.proptest-regressions"))]
        #[test]
        fn the_plain_path_reads_what_the_general_path_reads(
            t in "-?[0-9]{0,20}([.,][0-9]{0,5})?",
            exponent in 0u8..4,
            which in 0usize..4,
        ) {
            let format = [DOT, COMMA, PLAIN, MINOR][which];
            if let Some(v) = plain_amount(&t, &format, exponent) {
                proptest::prop_assert_eq!(Ok(v), general_amount(&t, &format, exponent), "{}", t);
            }
        }
    }

    #[test]
    fn the_plain_path_leaves_the_unusual_to_the_general_path() {
        assert_eq!(plain_amount("21.95", &PLAIN, 2), Some(2195));
        assert_eq!(plain_amount("-3", &DOT, 3), Some(-3000));
        assert_eq!(plain_amount("7,5", &COMMA, 2), Some(750));
        assert_eq!(plain_amount("1250", &MINOR, 2), Some(1250));
        for (t, format) in [
            ("21.950", &PLAIN),              // more digits than cents: trailing zeros
            ("1,234.00", &DOT),              // thousands
            ("+5", &PLAIN),                  // other signs
            (".5", &PLAIN),                  // no integer digit
            ("12.5", &MINOR),                // a point in minor units
            ("1234567890123456789", &MINOR), // 19 digits
        ] {
            assert_eq!(plain_amount(t, format, 2), None, "{t}");
        }
    }
}
