//! Comma-separated lists as people type them: in command-line flags, URL parameters, the
//! configuration's environment overrides and the catalogue's `-- own:` lines. One reading for
//! all of them: items trimmed, empty items (`a,,b`, a trailing comma) dropped.

/// The items of a comma-separated list, trimmed, without empty ones.
pub fn items(s: &str) -> impl Iterator<Item = &str> {
    s.split(',').map(str::trim).filter(|v| !v.is_empty())
}

/// [`items`] as owned strings; `None` is the empty list.
pub fn parse(s: Option<&str>) -> Vec<String> {
    items(s.unwrap_or("")).map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_trimmed_and_empty_ones_dropped() {
        assert_eq!(parse(Some(" MI, RM ,,TO,")), ["MI", "RM", "TO"]);
        assert!(parse(Some(" , ")).is_empty());
        assert!(parse(None).is_empty());
    }
}
