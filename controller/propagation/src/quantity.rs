//! Kubernetes quantities (`500m`, `2`, `1.5`, `512Mi`, `1G`, `1e3`), as the API server reads
//! them, turned into whole milli-units so that the scheduler does integer arithmetic only.
//!
//! Grammar (Kubernetes' `resource.Quantity`): an optional sign, a decimal number, then either a
//! binary suffix (`Ki` `Mi` `Gi` `Ti` `Pi` `Ei`), a decimal suffix (`n` `u` `m` `` `k` `M` `G`
//! `T` `P` `E`) or a decimal exponent (`e3`, `E-2`). Like `Quantity.MilliValue()`, a value finer
//! than a milli-unit rounds up (`1n` is 1 milli-unit). A JSON number is read as its decimal text.

use thiserror::Error;

/// Why a quantity could not be read.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum QuantityError {
    #[error("empty quantity")]
    Empty,
    #[error("quantity {0:?} is not a number with an optional suffix")]
    Syntax(String),
    #[error("quantity {0:?} has an unknown suffix")]
    Suffix(String),
    #[error("quantity {0:?} is too large")]
    Overflow(String),
    #[error("expected a quantity (string or number), found {0}")]
    NotAQuantity(&'static str),
}

/// `value` in milli-units: `"500m"` → 500, `"2"` → 2000, `"1Ki"` → 1 024 000.
///
/// # Errors
/// Syntax errors, unknown suffixes, and values beyond `i128` milli-units.
pub fn parse_milli(value: &str) -> Result<i128, QuantityError> {
    let text = value.trim();
    if text.is_empty() {
        return Err(QuantityError::Empty);
    }
    let (negative, unsigned) = match text.as_bytes()[0] {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let number_end = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(number_end);
    let decimal = Decimal::parse(number).ok_or_else(|| QuantityError::Syntax(value.to_owned()))?;
    let scale = Scale::parse(suffix).ok_or_else(|| QuantityError::Suffix(value.to_owned()))?;
    let milli = decimal
        .to_milli(scale)
        .ok_or_else(|| QuantityError::Overflow(value.to_owned()))?;
    Ok(if negative { -milli } else { milli })
}

/// A quantity as found in JSON: a string, or a number read as its decimal text.
///
/// # Errors
/// As [`parse_milli`]; other JSON types are [`QuantityError::NotAQuantity`].
pub fn parse_json_milli(value: &serde_json::Value) -> Result<i128, QuantityError> {
    match value {
        serde_json::Value::String(text) => parse_milli(text),
        serde_json::Value::Number(number) => match number.as_i64() {
            Some(whole) => Ok(i128::from(whole) * 1000),
            None => parse_milli(&number.to_string()),
        },
        serde_json::Value::Null => Err(QuantityError::NotAQuantity("null")),
        serde_json::Value::Bool(_) => Err(QuantityError::NotAQuantity("a boolean")),
        serde_json::Value::Array(_) => Err(QuantityError::NotAQuantity("an array")),
        serde_json::Value::Object(_) => Err(QuantityError::NotAQuantity("an object")),
    }
}

/// The digits of a decimal number, without its point: `12.5` is `125` with 1 fraction digit.
struct Decimal {
    digits: u128,
    fraction_digits: u32,
}

impl Decimal {
    fn parse(text: &str) -> Option<Self> {
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
            return None;
        }
        // Trailing zeros of the fraction carry no value; dropping them keeps long inputs in range.
        let fraction = fraction.trim_end_matches('0');
        let mut digits: u128 = 0;
        for byte in whole.bytes().chain(fraction.bytes()) {
            digits = digits
                .checked_mul(10)?
                .checked_add(u128::from(byte - b'0'))?;
        }
        let fraction_digits = u32::try_from(fraction.len()).ok()?;
        Some(Self {
            digits,
            fraction_digits,
        })
    }

    /// `self × scale` in milli-units, rounded up.
    fn to_milli(&self, scale: Scale) -> Option<i128> {
        let (mut numerator, mut exponent) = (self.digits, -i64::from(self.fraction_digits) + 3);
        match scale {
            Scale::Binary(power) => numerator = numerator.checked_mul(1u128 << power)?,
            Scale::Decimal(power) => exponent += i64::from(power),
        }
        let value = if exponent >= 0 {
            numerator.checked_mul(10u128.checked_pow(u32::try_from(exponent).ok()?)?)?
        } else {
            let divisor = u32::try_from(-exponent)
                .ok()
                .and_then(|e| 10u128.checked_pow(e));
            match divisor {
                Some(divisor) => numerator.div_ceil(divisor),
                // Smaller than any representable divisor: a non-zero value still rounds up to 1.
                None => u128::from(numerator > 0),
            }
        };
        i128::try_from(value).ok()
    }
}

/// What the suffix multiplies by: `2^power` or `10^power`.
#[derive(Clone, Copy)]
enum Scale {
    Binary(u32),
    Decimal(i32),
}

impl Scale {
    fn parse(suffix: &str) -> Option<Self> {
        Some(match suffix {
            "Ki" => Self::Binary(10),
            "Mi" => Self::Binary(20),
            "Gi" => Self::Binary(30),
            "Ti" => Self::Binary(40),
            "Pi" => Self::Binary(50),
            "Ei" => Self::Binary(60),
            "n" => Self::Decimal(-9),
            "u" => Self::Decimal(-6),
            "m" => Self::Decimal(-3),
            "" => Self::Decimal(0),
            "k" => Self::Decimal(3),
            "M" => Self::Decimal(6),
            "G" => Self::Decimal(9),
            "T" => Self::Decimal(12),
            "P" => Self::Decimal(15),
            "E" => Self::Decimal(18),
            _ => return Self::exponent(suffix),
        })
    }

    /// `e3`, `E-2`, `e+6`.
    fn exponent(suffix: &str) -> Option<Self> {
        let rest = suffix.strip_prefix(['e', 'E'])?;
        let digits = rest.strip_prefix(['+', '-']).unwrap_or(rest);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        rest.parse::<i32>().ok().map(Self::Decimal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_kubernetes_accepts() {
        let cases: &[(&str, i128)] = &[
            ("500m", 500),
            ("2", 2000),
            ("1.5", 1500),
            ("0.1", 100),
            (".5", 500),
            ("5.", 5000),
            ("512Mi", 512 * 1024 * 1024 * 1000),
            ("1Ki", 1_024_000),
            ("1G", 1_000_000_000_000),
            ("1e3", 1_000_000),
            ("1E-3", 1),
            ("1.5e+2", 150_000),
            ("100u", 1),
            ("1n", 1),
            ("0", 0),
            ("-1", -1000),
            ("+250m", 250),
            ("1.0000000000000000000000000000000000000", 1000),
            ("8Ei", (1i128 << 63) * 1000),
        ];
        let got: Vec<(&str, Result<i128, QuantityError>)> =
            cases.iter().map(|(t, _)| (*t, parse_milli(t))).collect();
        let want: Vec<(&str, Result<i128, QuantityError>)> =
            cases.iter().map(|(t, v)| (*t, Ok(*v))).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn errors_name_the_input() {
        assert_eq!(parse_milli(""), Err(QuantityError::Empty));
        assert_eq!(
            parse_milli("abc"),
            Err(QuantityError::Syntax("abc".to_owned()))
        );
        assert_eq!(
            parse_milli("1.2.3"),
            Err(QuantityError::Syntax("1.2.3".to_owned()))
        );
        assert_eq!(
            parse_milli("12Xi"),
            Err(QuantityError::Suffix("12Xi".to_owned()))
        );
        assert_eq!(
            parse_milli("1e"),
            Err(QuantityError::Suffix("1e".to_owned()))
        );
        assert_eq!(
            parse_milli("1e99"),
            Err(QuantityError::Overflow("1e99".to_owned()))
        );
    }

    #[test]
    fn json_numbers_and_strings() {
        use serde_json::json;
        let got: Vec<Result<i128, QuantityError>> = [
            json!(2),
            json!(0.25),
            json!("250m"),
            json!(true),
            json!(null),
        ]
        .iter()
        .map(parse_json_milli)
        .collect();
        assert_eq!(
            got,
            vec![
                Ok(2000),
                Ok(250),
                Ok(250),
                Err(QuantityError::NotAQuantity("a boolean")),
                Err(QuantityError::NotAQuantity("null")),
            ]
        );
    }
}
