//! "Did you mean" suggestions for misspelt names (settings, profile keys, commands).

/// The candidate nearest to `word` by edit distance, if it is near enough to be a likely typo.
#[must_use]
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = word.to_lowercase().replace('-', "_");
    candidates
        .iter()
        .map(|c| (strsim::levenshtein(&word, c), *c))
        .filter(|(d, c)| *d <= (c.len() / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_typos_and_ignores_strangers() {
        let names = ["workers", "queue", "rate"];
        assert_eq!(super::closest("wokers", &names), Some("workers"));
        assert_eq!(super::closest("qeue", &names), Some("queue"));
        assert_eq!(super::closest("zebra", &names), None);
    }
}
