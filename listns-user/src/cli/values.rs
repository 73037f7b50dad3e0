//! Values the command line parses beyond clap's own: listen addresses,
//! ring-buffer sizes and durations.

use std::time::Duration;

/// `PORT` (loopback) or `ADDR:PORT`.
pub fn parse_listen(s: &str) -> Result<std::net::SocketAddr, String> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.parse()
        .map_err(|_| format!("{s:?} is not PORT or ADDR:PORT (127.0.0.1:9433, [::1]:9433)"))
}

/// `--ring-buffer-size`: bytes, with an optional K/KiB or M/MiB suffix; a
/// power of two and a multiple of the page size, as the kernel requires.
pub fn parse_ring_bytes(s: &str) -> Result<u32, String> {
    ring_bytes(s, crate::sys::page_size() as u64)
}

fn ring_bytes(s: &str, page: u64) -> Result<u32, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(digits);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size in bytes (e.g. 16K, 8M, 65536)"))?;
    let mult: u64 = match unit.trim() {
        "" => 1,
        "K" | "k" | "KiB" => 1 << 10,
        "M" | "m" | "MiB" => 1 << 20,
        other => {
            return Err(format!(
                "unknown unit {other:?} (bytes, or a K or M suffix: 16K, 8M)"
            ));
        }
    };
    let bytes = n
        .checked_mul(mult)
        .filter(|&b| b <= 1 << 31)
        .ok_or_else(|| format!("{s} is too large (at most 2G)"))?;
    if bytes < page || !bytes.is_power_of_two() {
        let up = bytes.max(page).next_power_of_two();
        let down = (up / 2).max(page);
        let hint = if down == up || bytes < page {
            format!("{up}")
        } else {
            format!("{down} or {up}")
        };
        return Err(format!(
            "{bytes} bytes: the ring buffer must be a power of two and a multiple of the \
             page size ({page} bytes); try {hint}"
        ));
    }
    Ok(bytes as u32)
}

/// A duration: a bare number is seconds (`30`, `0.5`), or a number with a
/// unit as humantime reads it (`500ms`, `2s`, `1m`, `1h`, `1m30s`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if let Ok(secs) = t.parse::<f64>() {
        return Duration::try_from_secs_f64(secs).map_err(|_| {
            format!("{s:?} is not a duration: seconds (0 or more), or a unit: 500ms, 2s, 1m, 1h")
        });
    }
    humantime::parse_duration(t).map_err(|e| {
        format!("{s:?} is not a duration ({e}): seconds, or a unit: 500ms, 2s, 1m, 1h")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_address_defaults_to_loopback() {
        assert_eq!(parse_listen("9433").unwrap().to_string(), "127.0.0.1:9433");
        assert_eq!(
            parse_listen("0.0.0.0:80").unwrap().to_string(),
            "0.0.0.0:80"
        );
        assert_eq!(parse_listen("[::1]:9").unwrap().to_string(), "[::1]:9");
        assert!(parse_listen("localhost").is_err());
    }

    #[test]
    fn ring_sizes_in_bytes_and_units() {
        assert_eq!(ring_bytes("16384", 4096), Ok(16384));
        assert_eq!(ring_bytes("16K", 4096), Ok(16384));
        assert_eq!(ring_bytes("16KiB", 4096), Ok(16384));
        assert_eq!(ring_bytes("8M", 4096), Ok(8 << 20));
        assert_eq!(ring_bytes("4096", 4096), Ok(4096));
        assert_eq!(ring_bytes("2048M", 4096), Ok(1 << 31));
    }

    #[test]
    fn bad_ring_sizes_say_why_and_what_would_do() {
        let e = ring_bytes("10000", 4096).unwrap_err();
        assert!(
            e.contains("power of two") && e.contains("try 8192 or 16384"),
            "{e}"
        );
        let e = ring_bytes("2048", 4096).unwrap_err();
        assert!(
            e.contains("page size (4096 bytes)") && e.contains("try 4096"),
            "{e}"
        );
        assert!(ring_bytes("0", 4096).unwrap_err().contains("try 4096"));
        assert!(ring_bytes("4096M", 4096).unwrap_err().contains("too large"));
        assert!(
            ring_bytes("16Q", 4096)
                .unwrap_err()
                .contains("unknown unit")
        );
        assert!(ring_bytes("lots", 4096).unwrap_err().contains("not a size"));
        // A 64 KiB page: 16K is not a multiple of it.
        assert!(ring_bytes("16K", 65536).unwrap_err().contains("try 65536"));
    }

    #[test]
    fn durations_take_units_and_bare_seconds() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("500ms"), Ok(ms(500)));
        assert_eq!(parse_duration("2s"), Ok(ms(2000)));
        assert_eq!(parse_duration("1m"), Ok(ms(60_000)));
        assert_eq!(parse_duration("1h"), Ok(ms(3_600_000)));
        assert_eq!(parse_duration("1m30s"), Ok(ms(90_000)));
        // A bare number stays seconds, as before.
        assert_eq!(parse_duration("30"), Ok(ms(30_000)));
        assert_eq!(parse_duration("0.25"), Ok(ms(250)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn bad_durations_say_what_would_do() {
        for bad in ["-1", "soon", "5 parsecs", "", "inf", "NaN"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("500ms, 2s, 1m, 1h"), "{bad:?}: {e}");
        }
    }
}
