//! Escaping for text placed in HTML and SVG (element content and quoted attributes).

use std::fmt::Write;

/// `text` with `& < > " '` replaced by entities, safe in content and quoted attributes.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A fragment identifier made of `[a-z0-9-]` only, so it needs no escaping anywhere.
pub fn slug(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() {
            out.push(b.to_ascii_lowercase() as char);
        } else {
            let _ = write!(out, "-{b:02x}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(esc(r#"<a href="x">&'</a>"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
        assert_eq!(esc("plain [0..2] rw-p"), "plain [0..2] rw-p");
    }

    #[test]
    fn slugs_are_distinct_and_plain() {
        assert_eq!(slug("cow_both"), "cow-5fboth");
        assert_ne!(slug("a.b"), slug("a_b"));
        assert!(slug("<x y>").chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }
}
