//! Normalisation: raw field text to canonical values (exact money, UTC instants, cleaned keys).
//!
//! Each function here takes one field's text and either returns the value or a reason a person can act
//! on; the loader turns the reason into a row of `rejects.csv` with file, line and field.

pub mod calendar;
pub mod currency;
pub mod key;
pub mod money;
pub mod time;
