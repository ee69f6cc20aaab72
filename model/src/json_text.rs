//! JSON text written by hand where serde_json's general path is the cost: a string's
//! escaping. serde_json looks each byte up in a table; log text is almost all plain ASCII,
//! so here eight bytes are checked at once and copied as runs. The output is serde_json's,
//! byte for byte (tested against it), so readers cannot tell which wrote it.

/// Each byte's low seven bits set: the carries of `haszero` stay within their byte.
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Whether any byte of `w` is a control character (< 0x20), `"` or `\`: what JSON escapes.
/// Exact (no false positives): each test adds only within a byte's low seven bits.
#[inline]
fn needs_escape(w: u64) -> bool {
    let under_0x20 = !((w & LOW7) + 0x6060_6060_6060_6060) & !w & HIGH;
    let zero_in = |x: u64| !(((x & LOW7) + LOW7) | x | LOW7) != 0;
    under_0x20 != 0 || zero_in(w ^ 0x2222_2222_2222_2222) || zero_in(w ^ 0x5c5c_5c5c_5c5c_5c5c)
}

/// Appends `s` to `out` as a JSON string, quotes included, escaped as serde_json escapes:
/// `"` `\` and the short forms `\b \t \n \f \r`, other control characters as `\u00xx`,
/// everything else as it is.
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut run = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(chunk) = bytes.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            if !needs_escape(u64::from_le_bytes(word)) {
                i += 8;
                continue;
            }
        }
        // A byte at a time in a word that needs an escape, and in the last few bytes.
        let b = bytes[i];
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            0x08 => b'b',
            b'\t' => b't',
            b'\n' => b'n',
            0x0c => b'f',
            b'\r' => b'r',
            0..0x20 => 0,
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&bytes[run..i]);
        if short != 0 {
            out.extend_from_slice(&[b'\\', short]);
        } else {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let (hi, lo) = (HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]);
            out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hi, lo]);
        }
        i += 1;
        run = i;
    }
    out.extend_from_slice(&bytes[run..]);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ours(s: &str) -> String {
        let mut out = Vec::new();
        write_str(&mut out, s);
        String::from_utf8(out).expect("UTF-8 in, UTF-8 out")
    }

    #[test]
    fn every_character_class_is_written_as_serde_json_writes_it() {
        let mut cases: Vec<String> = vec![
            String::new(),
            "plain ascii text that runs past one word".into(),
            "quote \" and backslash \\ mid-word".into(),
            "\u{7f} DEL, é, 日本語, 🚀 emoji".into(),
            "INFO 12-05 [logger.py:43] Received request chatcmpl-1: prompt: 'a\\nb'".into(),
        ];
        // Every byte below 0x80 at every position of a 17-byte text: each lane of a word,
        // and the tail after the last whole word.
        for b in 0u8..0x80 {
            for at in 0..17 {
                let mut s = vec![b'x'; 17];
                s[at] = b;
                cases.push(String::from_utf8(s).expect("ASCII"));
            }
        }
        for s in &cases {
            assert_eq!(
                ours(s),
                serde_json::to_string(s).expect("a string"),
                "{s:?}"
            );
        }
    }

    #[test]
    fn the_word_test_finds_exactly_the_bytes_json_escapes() {
        for b in 0..=255u8 {
            for lane in 0..8 {
                let mut w = [b'a'; 8];
                w[lane] = b;
                let wanted = b < 0x20 || b == b'"' || b == b'\\';
                assert_eq!(
                    needs_escape(u64::from_le_bytes(w)),
                    wanted,
                    "{b:#x} in lane {lane}"
                );
            }
        }
    }
}
