//! Profiles: the shipped ones validate and run; invalid ones are refused with located messages
//! (snapshotted); no input makes the parser panic; a recording replays to itself.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use pooltune::profile::library::{self, SHIPPED};
use pooltune::profile::parse::{parse, parse_bytes};
use pooltune::settings::Knob;
use proptest::prelude::*;

fn pooltune(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pooltune")).args(args).stdin(Stdio::null()).output().unwrap()
}

#[test]
fn every_shipped_profile_parses_and_every_file_is_shipped() {
    let all = library::shipped().unwrap();
    assert!(all.len() >= 8);
    for p in &all {
        assert!(!p.description.is_empty(), "{} has no description", p.name);
    }
    let mut files: Vec<String> = std::fs::read_dir("profiles")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| Path::new(f).extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    let mut shipped: Vec<String> = SHIPPED.iter().map(|(f, _)| (*f).to_string()).collect();
    shipped.sort();
    assert_eq!(files, shipped, "profiles/ and the compiled-in list differ");
}

#[test]
fn invalid_fixtures_are_refused_with_their_position() {
    let dir = Path::new("tests/fixtures/invalid");
    let mut names: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    names.sort();
    let mut all = String::new();
    for path in &names {
        let label = path.display().to_string();
        let err = parse_bytes(&label, &std::fs::read(path).unwrap()).expect_err(&label);
        let text = err.to_string();
        assert!(text.starts_with(&format!("{label}:")), "{text}");
        all.push_str(&text);
        all.push('\n');
        // The command line says the same, on stderr, with exit status 2.
        let o = pooltune(&["validate", &label]);
        assert_eq!(o.status.code(), Some(2), "{label}");
        assert_eq!(String::from_utf8_lossy(&o.stderr).trim(), text);
        let o = pooltune(&["run", &label, "--headless"]);
        assert_eq!(o.status.code(), Some(2), "{label}");
        assert!(String::from_utf8_lossy(&o.stderr).contains(&text), "{label}: {}", String::from_utf8_lossy(&o.stderr));
    }
    insta::assert_snapshot!(all);
}

#[test]
fn a_file_that_is_not_text_is_refused() {
    let bytes = b"name = \"x\"\n\xff\xfe\x00binary";
    let err = parse_bytes("blob.toml", bytes).unwrap_err();
    assert_eq!((err.line, err.col), (2, 1));
    assert!(err.message.contains("not a text file"), "{err}");
    let err = parse_bytes("nul.toml", b"name = \"x\"\0").unwrap_err();
    assert!(err.message.contains("not a text file"), "{err}");
}

#[test]
fn validate_accepts_the_shipped_profiles() {
    let files: Vec<String> = SHIPPED.iter().map(|(f, _)| format!("profiles/{f}")).collect();
    let mut args = vec!["validate"];
    args.extend(files.iter().map(String::as_str));
    let o = pooltune(&args);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let o = pooltune(&["profiles"]);
    let out = String::from_utf8_lossy(&o.stdout);
    for p in library::shipped().unwrap() {
        assert!(out.contains(&p.name) && out.contains(&p.description), "{out}");
    }
}

#[test]
fn unknown_profile_names_say_what_exists() {
    let o = pooltune(&["run", "kneee", "--headless"]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("did you mean 'knee'") || err.contains("Did you mean 'knee'"), "{err}");
}

proptest! {
    // The parser meets arbitrary text and mutated real profiles without panicking.
    #![proptest_config(ProptestConfig { cases: 4000, ..ProptestConfig::default() })]
    #[test]
    fn the_parser_never_panics_on_text(text in "\\PC{0,400}") {
        let _ = parse("fuzz.toml", &text);
    }

    #[test]
    fn the_parser_never_panics_on_mutated_profiles(which in 0..SHIPPED.len(), at in 0usize..2000, insert in "[\\[\\]=\"'.,#\\n0-9a-z_ -]{0,12}", cut in 0usize..20) {
        let base = SHIPPED[which].1;
        let at = base.floor_char_boundary(at.min(base.len()));
        let end = base.floor_char_boundary((at + cut).min(base.len()));
        let text = format!("{}{}{}", &base[..at], insert, &base[end..]);
        let _ = parse("fuzz.toml", &text);
    }

    #[test]
    fn the_parser_never_panics_on_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_bytes("fuzz.toml", &bytes);
    }
}

fn json(o: &Output) -> serde_json::Value {
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn every_shipped_profile_runs_headless_time_scaled() {
    for p in library::shipped().unwrap() {
        // Each profile in about two seconds: its timeline sped up, service times untouched; a
        // trace at its own speed for its first two seconds.
        let speed = p.run.duration.map_or(1.0, |d| (d.as_secs_f64() / 2.0).max(1.0));
        let speed = speed.to_string();
        let mut args = vec!["run", &p.name, "--headless", "--threads", "2", "--speed", &speed, "--json", "-"];
        if p.arrivals.is_some() {
            args.extend(["--duration", "2s"]);
        }
        let v = json(&pooltune(&args));
        assert_eq!(v["config"]["arrival"] == "trace", p.arrivals.is_some(), "{}", p.name);
        let jobs = &v["jobs"];
        let n = |k: &str| jobs[k].as_u64().unwrap();
        assert!(n("offered") > 0, "{}", p.name);
        assert_eq!(
            n("offered"),
            n("completed") + n("failed") + n("rejected") + n("dropped") + n("abandoned"),
            "{}",
            p.name
        );
        // The last phase's knobs are in force at the end: the JSON's value, read back through
        // the knob parser, is the knob itself.
        if let Some(last) = p.phases.last() {
            for k in &last.knobs {
                let got = match &v["final_settings"][k.name()] {
                    serde_json::Value::String(s) => s.clone(),
                    serde_json::Value::Null => "off".into(),
                    other => other.to_string(),
                };
                assert_eq!(Knob::parse(k.name(), &got), Ok(*k), "{}: {} is {got}", p.name, k.name());
            }
        }
    }
}

#[test]
fn a_recording_replays_to_the_same_changes() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.toml"), dir.path().join("b.toml"));
    let o = pooltune(&[
        "run",
        "scale-out",
        "--headless",
        "--threads",
        "2",
        "--speed",
        "15",
        "--record",
        a.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let o = pooltune(&["run", a.to_str().unwrap(), "--headless", "--record", b.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let first = parse("a", &std::fs::read_to_string(&a).unwrap()).unwrap();
    let second = parse("b", &std::fs::read_to_string(&b).unwrap()).unwrap();
    assert_eq!(first.workload, second.workload);
    assert_eq!(first.phases.len(), 2, "{first:?}");
    assert_eq!(first.phases.len(), second.phases.len());
    let tick = first.run.tick.unwrap();
    for (x, y) in first.phases.iter().zip(&second.phases) {
        assert_eq!(x.knobs, y.knobs);
        let gap = if x.at > y.at { x.at.checked_sub(y.at).unwrap() } else { y.at.checked_sub(x.at).unwrap() };
        assert!(gap <= tick, "replayed at {:?}, recorded at {:?}: more than one tick ({tick:?}) apart", y.at, x.at);
    }
}

/// What a newcomer does: record a run left at its defaults (`threads = 0`, resolved when the
/// engine starts) and a profile with a ramp, then validate and replay each recording. The
/// replay's recording makes the same changes, and the ramp is one phase, not one per tick.
#[test]
fn recordings_of_default_runs_validate_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let path = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let ok = |o: Output| {
        assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    };
    // The default workload, nothing pinned.
    ok(pooltune(&["run", "--headless", "--duration", "1s", "--record", &path("default.toml")]));
    // knee ramps the rate from 400/s to 1,000/s over 40 s (4 s at --speed 10).
    ok(pooltune(&["run", "knee", "--headless", "--speed", "10", "--record", &path("knee.toml")]));
    for name in ["default", "knee"] {
        let (a, b) = (path(&format!("{name}.toml")), path(&format!("{name}-again.toml")));
        ok(pooltune(&["validate", &a]));
        ok(pooltune(&["run", &a, "--headless", "--record", &b]));
        let text = std::fs::read_to_string(&a).unwrap();
        let first = parse("a", &text).unwrap();
        let second = parse("b", &std::fs::read_to_string(&b).unwrap()).unwrap();
        assert_eq!(first.workload, second.workload, "{name}");
        assert!(first.workload.contains(&Knob::Threads(0)), "{name}: threads as the user left it: {text}");
        let knobs = |p: &pooltune::profile::Profile| -> Vec<_> { p.phases.iter().map(|ph| ph.knobs.clone()).collect() };
        assert_eq!(knobs(&first), knobs(&second), "{name}: {text}");
        let tick = first.run.tick.unwrap();
        for (x, y) in first.phases.iter().zip(&second.phases) {
            assert!(x.at.abs_diff(y.at) <= tick, "{name}: replayed at {:?}, recorded at {:?}", y.at, x.at);
            assert_eq!(x.ramp.is_some(), y.ramp.is_some(), "{name}");
        }
        let want = usize::from(name == "knee");
        assert_eq!(first.phases.len(), want, "{name}: {text}");
    }
    let knee = parse("knee", &std::fs::read_to_string(path("knee.toml")).unwrap()).unwrap();
    let ramp = &knee.phases[0];
    assert_eq!(ramp.knobs, [Knob::parse("rate", "1000").unwrap()]);
    let (at, len) = (ramp.at.as_secs_f64(), ramp.ramp.unwrap().as_secs_f64());
    let tick = knee.run.tick.unwrap().as_secs_f64();
    assert!((at - 1.0).abs() <= tick && (len - 4.0).abs() <= tick, "a ramp from 1 s over 4 s: {ramp:?}");
}
