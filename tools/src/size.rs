//! Byte sizes on the command line: `4096`, `4k`, `128K`, `1m`, `2GiB`.
//! Suffixes are binary (k = 1024), as dd, fio and iscsi-perf users expect.

/// Parses a size; `k`, `m`, `g`, `t` (any case, optionally followed by `i`
/// and/or `b`) multiply by powers of 1024. Usable as a clap value parser.
pub fn parse_size(input: &str) -> Result<u64, String> {
    let s = input.trim();
    let digits_end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, suffix) = s.split_at(digits_end);
    if digits.is_empty() {
        return Err(format!(
            "{input:?} is not a size (expected e.g. 4096, 4k, 1m)"
        ));
    }
    let shift = match suffix.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "ki" | "kib" => 10,
        "m" | "mb" | "mi" | "mib" => 20,
        "g" | "gb" | "gi" | "gib" => 30,
        "t" | "tb" | "ti" | "tib" => 40,
        _ => return Err(format!("{input:?}: unknown size suffix {suffix:?}")),
    };
    let value: u64 = digits
        .parse()
        .map_err(|_| format!("{input:?} is too large"))?;
    value
        .checked_mul(1u64 << shift)
        .ok_or_else(|| format!("{input:?} is too large"))
}

/// `1073741824 (1.00 GiB)`: the exact figure first, then a readable one.
pub fn describe_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{bytes} bytes ({value:.2} {})", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn suffixes_are_binary() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("4k"), Ok(4096));
        assert_eq!(parse_size("128K"), Ok(128 * 1024));
        assert_eq!(parse_size("1m"), Ok(1 << 20));
        assert_eq!(parse_size("1MiB"), Ok(1 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("1t"), Ok(1 << 40));
        assert_eq!(parse_size("512b"), Ok(512));
        assert_eq!(parse_size(" 8k "), Ok(8192));
        assert_eq!(parse_size("0"), Ok(0));
    }

    #[test]
    fn garbage_is_refused() {
        for bad in [
            "",
            "k",
            "-4k",
            "4x",
            "1.5m",
            "4 k",
            "0x10",
            "99999999999999999999",
        ] {
            assert!(parse_size(bad).is_err(), "{bad:?} accepted");
        }
        assert!(parse_size("16777216t").is_err(), "overflow accepted");
    }

    #[test]
    fn describes_bytes() {
        assert_eq!(describe_bytes(512), "512 bytes");
        assert_eq!(describe_bytes(1 << 30), "1073741824 bytes (1.00 GiB)");
        assert_eq!(describe_bytes(1536), "1536 bytes (1.50 KiB)");
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC{0,24}") {
            let _ = parse_size(&s);
        }

        #[test]
        fn plain_numbers_round_trip(n in any::<u64>()) {
            prop_assert_eq!(parse_size(&n.to_string()), Ok(n));
        }

        #[test]
        fn kibibytes_multiply(n in 0u64..(1 << 40)) {
            prop_assert_eq!(parse_size(&format!("{n}k")), Ok(n * 1024));
        }
    }
}
