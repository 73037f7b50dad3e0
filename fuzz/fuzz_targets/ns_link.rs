//! Namespace link text, `net:[4026531840]` (ns.rs `parse_link`), as read
//! from `/proc/PID/ns/*`, `/proc/PID/fd/*` and mountinfo roots: any bytes
//! parse without a panic; what parses is exactly `NAME:[DIGITS]` for a known
//! type; and every (type, inode) written out reads back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use listns::fuzzing::{NsType, parse_link};

fuzz_target!(|data: &[u8]| {
    if let Some((ty, inum)) = parse_link(data) {
        let text = std::str::from_utf8(data).expect("parsed text is UTF-8");
        let (name, rest) = text.split_once(":[").unwrap();
        assert_eq!(name, ty.name());
        let digits = rest.strip_suffix(']').expect("ends with ]");
        assert!(
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()),
            "{text:?} parsed as {ty}:[{inum}]"
        );
        let canonical = digits.trim_start_matches('0');
        let canonical = if canonical.is_empty() { "0" } else { canonical };
        assert_eq!(canonical, inum.to_string());
    }

    if data.len() >= 9 {
        let ty = NsType::ALL[data[0] as usize % NsType::ALL.len()];
        let inum = u64::from_le_bytes(data[1..9].try_into().unwrap());
        assert_eq!(
            parse_link(format!("{ty}:[{inum}]").as_bytes()),
            Some((ty, inum))
        );
        // fd links that are not namespaces.
        for other in [format!("socket:[{inum}]"), format!("pipe:[{inum}]")] {
            assert_eq!(parse_link(other.as_bytes()), None);
        }
    }
});
