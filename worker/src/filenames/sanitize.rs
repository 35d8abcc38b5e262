//! Value sanitising as paperless-ngx does it (pathvalidate 3.3.1 `sanitize_filename`,
//! universal platform, replacement `-`; spec §5.6) and Django's `slugify`.

use unicode_normalization::UnicodeNormalization;

/// Longest sanitised value, in UTF-8 bytes.
pub const MAX_VALUE_BYTES: usize = 255;

/// Windows device names pathvalidate refuses (compared case-insensitively).
const RESERVED: &[&str] = &[
    "CON", "PRN", "AUX", "CLOCK$", "NUL", "COM0", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6",
    "COM7", "COM8", "COM9", "LPT0", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8",
    "LPT9", "COM¹", "COM²", "COM³", "LPT¹", "LPT²", "LPT³",
];

fn is_reserved(part: &str) -> bool {
    let upper = part.to_uppercase();
    RESERVED.iter().any(|r| *r == upper)
}

/// One value (title, correspondent, type, tag list, string-like custom fields) made safe as a
/// single path component: `/ \ : * ? " < > |` and control characters become `-`, at most 255
/// bytes, reserved device names get a `_`, leading spaces and trailing spaces/dots go.
pub fn sanitize(value: &str) -> String {
    if value.is_empty() {
        return String::new();
    }
    let replaced: String = value
        .chars()
        .map(|c| match c {
            '/' | '\\' | ':' | '*' | '?' | '"' | '<' | '>' | '|' => '-',
            c if (c as u32) < 0x20 || c as u32 == 0x7f => '-',
            c => c,
        })
        .collect();
    let truncated = truncate_bytes(&replaced, MAX_VALUE_BYTES);
    // One validation pass, fixing only the first problem found.
    let first = truncated.split('.').next().unwrap_or_default();
    if is_reserved(first) {
        return truncated
            .split('.')
            .map(|p| {
                if is_reserved(p) {
                    format!("{p}_")
                } else {
                    p.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(".");
    }
    if truncated.starts_with(' ') || truncated.ends_with([' ', '.']) {
        let stripped = truncated.trim_start_matches(' ').trim_end_matches(' ');
        if stripped == "." || stripped == ".." {
            return stripped.to_string();
        }
        return stripped.trim_end_matches([' ', '.']).to_string();
    }
    truncated.to_string()
}

/// The longest prefix of `s` of at most `max` bytes that does not split a character.
pub fn truncate_bytes(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Django's `slugify`: NFKD to ASCII, drop everything but word characters, spaces and hyphens,
/// lower-case, runs of spaces/hyphens to one `-`, `-` and `_` trimmed at both ends.
pub fn slugify(value: &str) -> String {
    let ascii: String = value.nfkd().filter(char::is_ascii).collect();
    let kept: String = ascii
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-' || c.is_whitespace())
        .collect();
    let mut out = String::with_capacity(kept.len());
    let mut in_run = false;
    for c in kept.chars() {
        if c == '-' || c.is_whitespace() {
            if !in_run {
                out.push('-');
            }
            in_run = true;
        } else {
            out.push(c);
            in_run = false;
        }
    }
    out.trim_matches(['-', '_']).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// §8.7, the pathvalidate reference, row by row.
    #[test]
    fn sanitiser_reference_rows() {
        let rows: &[(&str, &str)] = &[
            ("my\\invalid/../title:yay", "my-invalid-..-title-yay"),
            ("This. is the title.", "This. is the title"),
            ("title. ", "title"),
            ("  title  ", "title"),
            ("a<b>c|d?e*f\"g", "a-b-c-d-e-f-g"),
            ("tab\there", "tab-here"),
            ("new\nline", "new-line"),
            ("CON", "CON_"),
            ("NUL.txt", "NUL_.txt"),
            ("COM1", "COM1_"),
            ("con.con", "con_.con_"),
            (".", "."),
            ("..", ".."),
            ("...", ""),
            ("x\0y", "x-y"),
            ("x\u{7f}y", "x-y"),
            ("x\u{200b}y", "x\u{200b}y"),
            (
                "Some Title! With @ Special # Characters",
                "Some Title! With @ Special # Characters",
            ),
            ("-none-", "-none-"),
            ("", ""),
            ("AC/DC", "AC-DC"),
            ("a:b*c?d", "a-b-c-d"),
        ];
        for (input, want) in rows {
            assert_eq!(sanitize(input), *want, "sanitize({input:?})");
        }
        assert_eq!(sanitize(&"a".repeat(300)), "a".repeat(255));
        let u = sanitize(&"ü".repeat(200));
        assert_eq!(u, "ü".repeat(127));
        assert_eq!(u.len(), 254);
    }

    #[test]
    fn slugify_is_djangos() {
        assert_eq!(
            slugify("Some Title! With @ Special # Characters"),
            "some-title-with-special-characters"
        );
        assert_eq!(
            slugify("John's @ Office - Workplace"),
            "johns-office-workplace"
        );
        assert_eq!(slugify("Brussels @ Belgium!"), "brussels-belgium");
        assert_eq!(slugify("Café Müller"), "cafe-muller");
        assert_eq!(slugify("-none-"), "none");
        assert_eq!(slugify(" _a__b_ "), "a__b");
    }
}
