//! Small readers of `key=value` and `key: value` fields shared by the parsers.

/// The value of `key` (such as `finder!("max_new_tokens=")`) where it starts a word, up to
/// a space, comma or `)`.
pub fn value_after<'a>(text: &'a str, key: &memchr::memmem::Finder<'_>) -> Option<&'a str> {
    let at = key
        .find_iter(text.as_bytes())
        .find(|&i| i == 0 || matches!(text.as_bytes()[i - 1], b' ' | b'(' | b','))?;
    let rest = &text[at + key.needle().len()..];
    let end = rest.find([' ', ',', ')']).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// Whether `$text` contains the literal `$needle`. The searcher is built once per call site
/// (a plain `str::contains` rebuilds it on every call, which dominated the parse stage).
macro_rules! has {
    ($text:expr, $needle:literal) => {
        $crate::parsers::fields::find!($text, $needle).is_some()
    };
}

/// The searcher for the literal `$needle` (a `&'static memmem::Finder`), built once per
/// call site: `str::find` and friends build one on every call.
macro_rules! finder {
    ($needle:literal) => {{
        static FINDER: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
            std::sync::LazyLock::new(|| memchr::memmem::Finder::new($needle));
        &*FINDER
    }};
}

/// Where the literal `$needle` first occurs in `$text`; the searcher is built once per call
/// site.
macro_rules! find {
    ($text:expr, $needle:literal) => {
        $crate::parsers::fields::finder!($needle).find(AsRef::<[u8]>::as_ref($text))
    };
}

pub(crate) use {find, finder, has};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_start_at_word_boundaries() {
        let t = "session_id=242, input_tokens=19, max_new_tokens=512)";
        assert_eq!(value_after(t, finder!("input_tokens=")), Some("19"));
        assert_eq!(value_after(t, finder!("max_new_tokens=")), Some("512"));
        assert_eq!(
            value_after(t, finder!("new_tokens=")),
            None,
            "not inside another key"
        );
    }
}
