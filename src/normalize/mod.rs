//! Normalisation: raw field text to canonical values (exact money, UTC instants, cleaned keys).
//!
//! Each function here takes one field's text and either returns the value or a reason a person can act
//! on; the loader turns the reason into a row of `rejects.csv` with file, line and field.

pub mod calendar;
pub mod currency;
pub mod key;
pub mod money;
pub mod time;

/// `str::trim`, with the common case decided from the two end bytes alone: a value that starts and
/// ends with a graphic ASCII byte (`!` to `~`) is returned as it is (the standard trim decodes
/// characters from each end, 2% of a run where every field of every row is trimmed). Anything
/// else, Unicode spaces included, goes to `str::trim`.
pub fn trim(s: &str) -> &str {
    let solid = |b: Option<&u8>| b.is_some_and(u8::is_ascii_graphic);
    match solid(s.as_bytes().first()) && solid(s.as_bytes().last()) {
        true => s,
        false => s.trim(),
    }
}

/// The last value computed, by what it was computed from: records of one file or segment share
/// a few dates, so a loader or a decoder asks for the same one many times in a row, and only a
/// change of key computes anew.
#[derive(Debug, Clone)]
pub struct Last<K, V>(Option<(K, V)>);

impl<K, V> Default for Last<K, V> {
    fn default() -> Self {
        Last(None)
    }
}

impl<K: PartialEq + Copy, V: Copy> Last<K, V> {
    /// The value for `key`: the last one if `key` is the last key, else `make()`'s, remembered.
    pub fn get(&mut self, key: K, make: impl FnOnce() -> Option<V>) -> Option<V> {
        match self.0 {
            Some((k, v)) if k == key => Some(v),
            _ => {
                let v = make()?;
                self.0 = Some((key, v));
                Some(v)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn trim_is_str_trim() {
        let cases = [
            "",
            " ",
            "a",
            " a",
            "a ",
            "\ta\n",
            "\u{a0}a",
            "a\u{3000}",
            "é",
            " é ",
            "a b",
            "\u{b}x",
            "x\u{1f}",
            "\u{1c}x",
            "\u{85}x",
            "x\u{2028}",
            "x\u{7f}",
            "~",
        ];
        for t in cases {
            assert_eq!(super::trim(t), t.trim(), "{t:?}");
        }
    }
}
