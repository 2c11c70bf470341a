//! Human sizes: "64KiB", "256MiB", "1GiB", "4096", "2M".

use crate::error::{Error, Result};

pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit() && c != '_').unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let digits: String = digits.chars().filter(|&c| c != '_').collect();
    if digits.is_empty() {
        return Err(Error::invalid(format!(
            "bad size {text:?}: expected a number with an optional unit (KiB, MiB, GiB, TiB)"
        )));
    }
    let value: u64 = digits.parse().map_err(|_| Error::invalid(format!("bad size {text:?}: number too large")))?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        other => {
            return Err(Error::invalid(format!("bad size {text:?}: unknown unit {other:?} (use KiB, MiB, GiB, TiB)")))
        }
    };
    value.checked_mul(1u64 << shift).ok_or_else(|| Error::invalid(format!("bad size {text:?}: overflows 64 bits")))
}

/// Format a byte count the way the inputs are written ("1GiB", "12KiB", "100B").
pub fn format_size(bytes: u64) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{}{unit}", bytes >> shift);
        }
    }
    format!("{bytes}B")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("64KiB").unwrap(), 65536);
        assert_eq!(parse_size("256MiB").unwrap(), 256 << 20);
        assert_eq!(parse_size("1GiB").unwrap(), 1 << 30);
        assert_eq!(parse_size("2m").unwrap(), 2 << 20);
        assert!(parse_size("abc").is_err());
        assert!(parse_size("1XB").is_err());
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("16777216TiB").is_err());
    }

    #[test]
    fn formats() {
        assert_eq!(format_size(1 << 30), "1GiB");
        assert_eq!(format_size(12 << 10), "12KiB");
        assert_eq!(format_size(100), "100B");
    }
}
