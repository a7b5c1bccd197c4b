//! ISO 4217 currencies and their minor-unit exponents (JPY 0, USD 2, BHD 3, CLF 4).

use std::fmt;
use std::sync::OnceLock;

/// Active ISO 4217 codes whose exponent is not 2. Every other code in [`TWO_DECIMALS`] has 2.
const OTHER_EXPONENTS: &[(&str, u8)] = &[
    ("BHD", 3),
    ("BIF", 0),
    ("CLF", 4),
    ("CLP", 0),
    ("DJF", 0),
    ("GNF", 0),
    ("IQD", 3),
    ("ISK", 0),
    ("JOD", 3),
    ("JPY", 0),
    ("KMF", 0),
    ("KRW", 0),
    ("KWD", 3),
    ("LYD", 3),
    ("OMR", 3),
    ("PYG", 0),
    ("RWF", 0),
    ("TND", 3),
    ("UGX", 0),
    ("UYI", 0),
    ("UYW", 4),
    ("VND", 0),
    ("VUV", 0),
    ("XAF", 0),
    ("XOF", 0),
    ("XPF", 0),
];

/// Active ISO 4217 codes with two decimals. Funds and metals without a minor unit (XAU, XDR, ...) are
/// left out on purpose: an amount in them has no exact minor-unit form.
const TWO_DECIMALS: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD \
BTN BWP BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP \
GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD \
MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR \
RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS \
UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG ZWL";

/// ISO 4217 codes without a minor unit: funds, metals, the testing code and "no currency".
const NO_MINOR_UNIT: &str = "XAG XAU XBA XBB XBC XBD XDR XPD XPT XSU XTS XUA XXX";

/// Why `text` is not a currency recon can read, for a reject or a config error.
pub fn why_not_a_currency(text: &str) -> &'static str {
    match code_of(text) {
        _ if text.trim().is_empty() => "empty currency",
        Some(c) if NO_MINOR_UNIT.split(' ').any(|n| n.as_bytes() == c) => {
            "an ISO 4217 code without a minor unit (a fund, a metal, testing or no currency), so its amounts cannot be exact; give it an exponent in [currencies] if your systems use one"
        }
        _ => "not an ISO 4217 currency code",
    }
}

/// A code as written (`usd`, ` EUR `) in upper case, if it is three ASCII letters.
fn code_of(text: &str) -> Option<[u8; 3]> {
    match super::trim(text).as_bytes() {
        [a, b, c] if [a, b, c].iter().all(|x| x.is_ascii_alphabetic()) => Some([
            a.to_ascii_uppercase(),
            b.to_ascii_uppercase(),
            c.to_ascii_uppercase(),
        ]),
        _ => None,
    }
}

/// Every three-letter code's exponent, indexed by the code (AAA = 0 .. ZZZ = 26^3 - 1), with
/// [`UNKNOWN`] for codes that are not currencies: built once, looked up for every amount of a
/// run (a binary search over the codes took 3% of a run in mispredicted branches).
fn table() -> &'static [u8; 26 * 26 * 26] {
    static TABLE: OnceLock<Box<[u8; 26 * 26 * 26]>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut t = Box::new([UNKNOWN; 26 * 26 * 26]);
        let two = TWO_DECIMALS.split(' ').map(|c| (c, 2));
        for (c, exponent) in OTHER_EXPONENTS.iter().copied().chain(two) {
            let b = c.as_bytes();
            t[index([b[0], b[1], b[2]])] = exponent;
        }
        t
    })
}

const UNKNOWN: u8 = u8::MAX;

/// An upper-case code's place in [`table`].
fn index(code: [u8; 3]) -> usize {
    code.iter().fold(0, |i, &c| i * 26 + usize::from(c - b'A'))
}

/// A known ISO 4217 currency: its upper-case code and exponent.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency {
    code: [u8; 3],
    exponent: u8,
}

impl Currency {
    /// Looks a code up case-insensitively, after trimming spaces: `usd`, ` EUR ` and `Jpy` are accepted.
    pub fn parse(text: &str) -> Option<Currency> {
        Currency::lookup(code_of(text)?)
    }

    fn lookup(code: [u8; 3]) -> Option<Currency> {
        match table()[index(code)] {
            UNKNOWN => None,
            exponent => Some(Currency { code, exponent }),
        }
    }

    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.code).expect("currency codes are ASCII")
    }

    pub fn exponent(&self) -> u8 {
        self.exponent
    }

    /// The code (five bits a letter) and exponent in three bytes, for records spilled to disk.
    pub(crate) fn to_bytes(self) -> [u8; 3] {
        let letters = self.code.map(|c| u16::from(c - b'A'));
        let packed = letters[0] << 10 | letters[1] << 5 | letters[2];
        let [lo, hi] = packed.to_le_bytes();
        [lo, hi, self.exponent]
    }

    /// Reads [`Currency::to_bytes`] back; `None` if they are not such bytes.
    pub(crate) fn from_bytes(b: [u8; 3]) -> Option<Currency> {
        let packed = u16::from_le_bytes([b[0], b[1]]);
        let letter = |shift: u16| {
            let l = (packed >> shift & 31) as u8;
            (l < 26).then_some(b'A' + l)
        };
        Some(Currency {
            code: [letter(10)?, letter(5)?, letter(0)?],
            exponent: b[2],
        })
    }

    /// Formats minor units as a plain decimal in major units: `-1234` USD is `-12.34`, `1200` JPY `1200`.
    pub fn format(&self, minor: i128) -> String {
        format_scaled(minor, self.exponent)
    }
}

/// The currencies of a run: ISO 4217, with the exponents the config overrides or adds
/// (`[currencies] JPY = 2` for an export that writes yen with two decimals).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Currencies {
    overrides: Vec<Currency>,
}

impl Currencies {
    /// Builds the overrides; `Err` names the bad entry.
    pub fn new(entries: &[(String, u8)]) -> Result<Currencies, String> {
        let mut overrides = Vec::new();
        for (code, exponent) in entries {
            let b = code.as_bytes();
            if b.len() != 3 || !b.iter().all(u8::is_ascii_uppercase) {
                return Err(format!(
                    "{code:?} is not a three-letter upper-case currency code"
                ));
            }
            if *exponent > 9 {
                return Err(format!(
                    "{code}: exponent {exponent} is more than 9 decimals"
                ));
            }
            overrides.push(Currency {
                code: [b[0], b[1], b[2]],
                exponent: *exponent,
            });
        }
        Ok(Currencies { overrides })
    }

    /// Like [`Currency::parse`], with the run's overrides first.
    pub fn parse(&self, text: &str) -> Option<Currency> {
        let code = code_of(text)?;
        match self.overrides.iter().find(|c| c.code == code) {
            Some(c) => Some(*c),
            None => Currency::lookup(code),
        }
    }
}

/// Formats an integer scaled by `10^exponent` as a decimal string, exactly.
pub fn format_scaled(value: i128, exponent: u8) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let digits = value.unsigned_abs().to_string();
    let e = exponent as usize;
    if e == 0 {
        return format!("{sign}{digits}");
    }
    let padded = format!("{digits:0>width$}", width = e + 1);
    let (int, frac) = padded.split_at(padded.len() - e);
    format!("{sign}{int}.{frac}")
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn currencies_round_trip_through_three_bytes_and_other_bytes_are_refused() {
        use super::Currency;
        for code in ["AAA", "ZZZ", "JPY", "BHD", "USD"] {
            for exponent in [0, 2, 3, 18] {
                let c = Currency {
                    code: code.as_bytes().try_into().unwrap(),
                    exponent,
                };
                assert_eq!(Currency::from_bytes(c.to_bytes()), Some(c), "{code}");
            }
        }
        // A letter past Z (26 to 31) in any place.
        for packed in [26u16 << 10, 27 << 5, 31] {
            let [lo, hi] = packed.to_le_bytes();
            assert_eq!(Currency::from_bytes([lo, hi, 2]), None, "{packed}");
        }
    }

    #[test]
    fn a_code_without_a_minor_unit_is_told_apart_from_no_code() {
        assert_eq!(why_not_a_currency(" "), "empty currency");
        assert_eq!(why_not_a_currency("EURO"), "not an ISO 4217 currency code");
        assert_eq!(why_not_a_currency("QQQ"), "not an ISO 4217 currency code");
        for code in ["XXX", "xau", " XDR "] {
            assert!(Currency::parse(code).is_none(), "{code}");
            assert!(
                why_not_a_currency(code).starts_with("an ISO 4217 code without a minor unit"),
                "{code}"
            );
        }
    }

    use super::*;

    #[test]
    fn exponents_and_case() {
        let cases = [
            ("usd", "USD", 2),
            ("JPY", "JPY", 0),
            (" bhd ", "BHD", 3),
            ("Clf", "CLF", 4),
            ("eur", "EUR", 2),
        ];
        for (text, code, exp) in cases {
            let c = Currency::parse(text).unwrap_or_else(|| panic!("{text} should parse"));
            assert_eq!((c.code(), c.exponent()), (code, exp), "{text}");
        }
        for bad in ["", "US", "USDX", "XAU", "ZZZ", "U$D", "€"] {
            assert_eq!(Currency::parse(bad), None, "{bad:?} must not parse");
        }
    }

    #[test]
    fn overrides_come_first_and_may_add_codes() {
        let run = Currencies::new(&[("JPY".into(), 2), ("XBT".into(), 8)]).unwrap();
        assert_eq!(run.parse("jpy").map(|c| c.exponent()), Some(2));
        assert_eq!(run.parse("XBT").map(|c| c.exponent()), Some(8));
        assert_eq!(run.parse("EUR").map(|c| c.exponent()), Some(2));
        assert!(Currencies::new(&[("jpy".into(), 2)]).is_err());
        assert!(Currencies::new(&[("JPY".into(), 12)]).is_err());
    }

    #[test]
    fn formats_exactly() {
        let usd = Currency::parse("USD").unwrap();
        let jpy = Currency::parse("JPY").unwrap();
        let bhd = Currency::parse("BHD").unwrap();
        assert_eq!(usd.format(-1234), "-12.34");
        assert_eq!(usd.format(5), "0.05");
        assert_eq!(usd.format(-5), "-0.05");
        assert_eq!(usd.format(0), "0.00");
        assert_eq!(jpy.format(1200), "1200");
        assert_eq!(bhd.format(12345), "12.345");
        assert_eq!(usd.format(9_876_543_210_987_654), "98765432109876.54");
        assert_eq!(usd.format(i64::MAX as i128 * 4), "368934881474191032.28");
    }
}
