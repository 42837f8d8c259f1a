//! Strings a target sent us, made safe to print on a terminal.

use std::borrow::Cow;

/// `s` with control characters (ESC, CR, C1 controls...) escaped as `\u{..}`,
/// so that names and INQUIRY strings chosen by a target cannot drive the
/// user's terminal or forge extra output lines.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_untouched() {
        assert!(matches!(printable("iqn.2026-11.a:b ünï"), Cow::Borrowed(_)));
    }

    #[test]
    fn controls_are_escaped() {
        assert_eq!(
            printable("a\x1b[2Jb\nc\u{9b}"),
            "a\\u{1b}[2Jb\\u{a}c\\u{9b}"
        );
    }
}
