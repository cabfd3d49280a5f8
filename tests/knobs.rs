//! Every row of the knob table shows up everywhere a knob can be set or read: `run --help`,
//! profiles, the `:` line, the `?` overlay and the README's table. Iterates the table, so a knob
//! added to it is checked here without touching this file.

use std::process::{Command, Stdio};
use std::time::Duration;

use pooltune::engine::Command as EngineCommand;
use pooltune::metrics::Snapshot;
use pooltune::settings::{KNOBS, KnobSpec, Settings, ValueKind, markdown_table};
use pooltune::tui::State;
use pooltune::tui::cmdline::{Line, parse};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

/// The example value as a TOML value of the knob's kind.
fn toml_value(spec: &KnobSpec) -> String {
    let bare = matches!(spec.kind, ValueKind::Count | ValueKind::Number | ValueKind::Rate)
        && spec.example.parse::<f64>().is_ok();
    if bare { spec.example.to_string() } else { format!("\"{}\"", spec.example) }
}

#[test]
fn run_help_lists_every_knob_flag_with_its_limits() {
    let out =
        Command::new(env!("CARGO_BIN_EXE_pooltune")).args(["run", "--help"]).stdin(Stdio::null()).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for spec in KNOBS {
        let flag = format!("--{} <{}>", spec.flag, spec.value_name);
        let line = help.lines().find(|l| l.contains(&flag)).unwrap_or_else(|| panic!("run --help lacks {flag}"));
        assert!(line.contains(spec.help), "{flag}: {line}");
        if let Some(range) = (spec.range)().filter(|_| !matches!(spec.kind, ValueKind::Choice(_))) {
            assert!(line.contains(&range), "{flag} does not say its range {range}: {line}");
        }
    }
}

/// `pooltune model` words its flags in its own symbols, but what they accept is the table's.
#[test]
fn model_help_states_the_tables_limits_for_the_knobs_it_shares() {
    let out =
        Command::new(env!("CARGO_BIN_EXE_pooltune")).args(["model", "--help"]).stdin(Stdio::null()).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for key in ["rate", "service", "workers", "queue", "service_dist", "service_cv", "arrival"] {
        let spec = KnobSpec::find(key).unwrap();
        let flag = format!("--{} <", spec.flag);
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(&flag))
            .unwrap_or_else(|| panic!("model --help lacks {flag}"));
        let accepts = spec.accepts(" | ").unwrap();
        // The model takes no `max` rate: only the numeric range is stated.
        let accepts = accepts.trim_end_matches(", or max");
        assert!(line.contains(accepts), "{flag} does not say {accepts}: {line}");
    }
}

#[test]
fn a_profile_sets_every_knob_where_it_may() {
    for spec in KNOBS {
        let value = toml_value(spec);
        let workload = format!("[workload]\n{} = {value}\n", spec.key);
        let p = pooltune::profile::parse::parse("w.toml", &workload)
            .unwrap_or_else(|e| panic!("[workload] {} = {value}: {e}", spec.key));
        assert_eq!(p.workload.len(), 1);
        assert_eq!(p.workload[0].name(), spec.key);
        assert_eq!(p.workload[0].value_text(), spec.example);
        let phase = format!("[[phase]]\nat = \"1s\"\n{} = {value}\n", spec.key);
        let parsed = pooltune::profile::parse::parse("p.toml", &phase);
        if spec.live {
            let p = parsed.unwrap_or_else(|e| panic!("[[phase]] {} = {value}: {e}", spec.key));
            assert_eq!(p.phases[0].knobs[0].name(), spec.key);
        } else {
            let e = parsed.expect_err("a knob fixed for a run has no place in a phase");
            assert!(e.message.contains("unknown key"), "{e}");
        }
    }
}

#[test]
fn the_command_line_takes_every_live_knob_and_refuses_the_rest() {
    for spec in KNOBS {
        let line = format!("{} {}", spec.key, spec.example);
        match parse(&line) {
            Ok(Line::Engine(EngineCommand::Set(k))) if spec.live => assert_eq!(k.name(), spec.key),
            Err(e) if !spec.live => assert!(e.contains("fixed for a run"), ":{line}: {e}"),
            other => panic!(":{line} gave {other:?} (live: {})", spec.live),
        }
    }
}

#[test]
fn the_help_overlay_names_every_live_knob() {
    let mut state =
        State::new(Snapshot::initial(Settings { threads: 2, ..Settings::default() }), Duration::from_secs(1));
    state.help = true;
    let mut t = Terminal::new(TestBackend::new(200, 60)).unwrap();
    t.draw(|f| f.render_widget(&state, f.area())).unwrap();
    let text = format!("{}", t.backend());
    let words: Vec<&str> = text.split(|c: char| !(c.is_alphanumeric() || c == '_')).collect();
    for spec in KNOBS.iter().filter(|s| s.live) {
        assert!(words.contains(&spec.key), "the ? overlay at 200x60 does not name {}", spec.key);
    }
}

#[test]
fn the_readme_table_is_the_knob_table() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let table = markdown_table();
    assert!(
        readme.contains(&table),
        "README.md's knob table differs from the knob table; paste this in its place:\n{table}"
    );
}
