//! Abuse: the parsers a user can reach (durations, knob values, the `:` command line, profiles)
//! meet arbitrary input without panicking, and what they accept prints back to itself. 100,000 cases each by default;
//! `ABUSE_CASES=10000000 cargo test --release --test abuse` runs longer.

use pooltune::duration;
use pooltune::profile::parse::parse;
use pooltune::settings::{KNOB_NAMES, Knob};
use pooltune::tui::cmdline;
use proptest::prelude::*;
use proptest::test_runner::Config;

fn cases() -> u32 {
    std::env::var("ABUSE_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(100_000)
}

/// Text that looks like what users type: numbers, units, signs, names, and noise.
fn typed() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,40}",
        "[-+]?[0-9]{0,25}(\\.[0-9]{0,25})?(e[-+]?[0-9]{1,4})? ?(ns|us|µs|ms|s|m|h|d|w|y|x|)",
        "[a-z_ -]{0,20} [-+0-9.a-z/]{0,20}",
    ]
}

proptest! {
    #![proptest_config(Config { cases: cases(), ..Config::default() })]

    #[test]
    fn durations(text in typed()) {
        if let Ok(d) = duration::parse(&text) {
            // What parses prints back to the same duration.
            prop_assert_eq!(duration::parse(&duration::format(d)).ok(), Some(d));
        }
    }

    #[test]
    fn knob_values(name in 0..KNOB_NAMES.len(), value in typed()) {
        if let Ok(k) = Knob::parse(KNOB_NAMES[name], &value) {
            // What parses prints back to the same knob (recordings and profiles rely on it).
            prop_assert_eq!(Knob::parse(k.name(), &k.value_text()), Ok(k));
        }
    }

    #[test]
    fn command_lines(line in typed()) {
        let _ = cmdline::parse(&line);
    }

    #[test]
    fn profiles(text in "(\\[\\[?[a-z]{0,8}\\]\\]?\\n|[a-z_]{0,10} = (\"[^\"\\n]{0,10}\"|[-0-9.e]{0,8}|true|nan|inf|\\[\\])\\n|\\PC{0,20}\\n){0,12}") {
        let _ = parse("abuse.toml", &text);
    }
}
