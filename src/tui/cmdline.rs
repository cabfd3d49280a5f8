//! The `:` command line: `:workers 16` (`:workers NODE 16` for one worker node of a broker
//! run), `:rate 2500`, `:service 3ms`, `:queue 500`,
//! `:policy reject`, `:kind offload` (any live knob of the knob table, by its key or alias), and
//! `:pause`, `:resume`, `:reset`, `:window 2m`, `:slo 20ms`, `:sweep rate 200..2000 10`,
//! `:sweep off`, `:help`, `:quit`. Knob values go
//! through the same parser as flags and profiles; a knob fixed for a run is refused with where
//! to set it.

use std::time::Duration;

use super::state::WINDOWS;
use crate::duration;
use crate::engine::Command;
use crate::model::advisor::Target;
use crate::settings::{KNOB_NAMES, KNOBS, Knob, KnobSpec};

#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    Engine(Command),
    /// `:sweep KNOB FROM..TO [STEPS] [PER-STEP]`: a capacity sweep, run live.
    Sweep {
        knob: String,
        range: String,
        steps: usize,
        per_step: Duration,
    },
    /// `:sweep off`: stop a sweep and close its view.
    SweepOff,
    Window(usize),
    Slo(Option<Target>),
    Help,
    Quit,
    Empty,
}

/// Words the command line takes besides the knob names.
pub const WORDS: &[&str] = &["pause", "resume", "reset", "window", "slo", "sweep", "help", "quit", "q"];

/// A live sweep's steps and per-step time when the `:sweep` line leaves them out (each step
/// settles 2 s first, as `pooltune sweep`'s default, or as long as it measures if that is less).
pub const SWEEP_STEPS: usize = 10;
pub const SWEEP_PER_STEP: Duration = Duration::from_secs(10);

/// Parses one command line (without the leading `:`).
///
/// # Errors
/// What was wrong and what is accepted.
pub fn parse(text: &str) -> Result<Line, String> {
    let mut parts = text.split_whitespace();
    let Some(word) = parts.next() else { return Ok(Line::Empty) };
    let rest: Vec<&str> = parts.collect();
    let one = || -> Result<&str, String> {
        match rest.as_slice() {
            [v] => Ok(*v),
            [] => Err(format!("{word} needs a value, e.g. :{word} {}", example(word))),
            _ => Err(format!("{word} takes one value, got '{}'", rest.join(" "))),
        }
    };
    let none = |line: Line| if rest.is_empty() { Ok(line) } else { Err(format!("{word} takes no value")) };
    match word {
        "pause" => none(Line::Engine(Command::Pause)),
        "resume" => none(Line::Engine(Command::Resume)),
        "reset" => none(Line::Engine(Command::ResetStats)),
        "help" => none(Line::Help),
        "quit" | "q" => none(Line::Quit),
        "sweep" => sweep(&rest),
        "window" => {
            let d = duration::parse(one()?)?;
            WINDOWS
                .iter()
                .position(|w| *w == d)
                .map(Line::Window)
                .ok_or_else(|| format!("window {} is not offered; expected 30s, 2m or 10m", duration::format(d)))
        }
        "slo" => match one()? {
            "off" | "none" => Ok(Line::Slo(None)),
            v => {
                let d = duration::parse(v)?;
                if d.is_zero() {
                    return Err("slo 0s is not accepted; expected a p99 target such as 20ms, or 'off'".into());
                }
                Ok(Line::Slo(Some(Target::P99(d.as_secs_f64()))))
            }
        },
        name => {
            if KnobSpec::find(name).is_none() {
                let mut all: Vec<&str> = KNOB_NAMES.to_vec();
                all.extend(KNOBS.iter().filter_map(|s| s.alias));
                all.extend_from_slice(WORDS);
                let hint =
                    crate::suggest::closest(name, &all).map(|b| format!("; did you mean '{b}'?")).unwrap_or_default();
                return Err(format!("unknown command '{name}'{hint} (? lists them)"));
            }
            // `:workers NODE N`: one worker node's count on a broker run.
            if let (Some(spec), [node, n]) = (KnobSpec::find(name).filter(|s| s.key == "workers"), rest.as_slice()) {
                let knob = Knob::parse(spec.key, n).map_err(|e| e.to_string())?;
                let workers = knob.value::<usize>().unwrap_or_default();
                return Ok(Line::Engine(Command::SetNodeWorkers { node: (*node).to_string(), workers }));
            }
            let knob = Knob::parse(name, one()?).and_then(Knob::live).map_err(|e| e.to_string())?;
            Ok(Line::Engine(Command::Set(knob)))
        }
    }
}

/// `:sweep off`, or `:sweep KNOB FROM..TO [STEPS] [PER-STEP]` (the plan itself is checked
/// where it is made, by the same rules as `pooltune sweep`).
fn sweep(rest: &[&str]) -> Result<Line, String> {
    const USAGE: &str =
        "expected :sweep KNOB FROM..TO [STEPS] [PER-STEP], e.g. :sweep rate 200..2000 10 5s, or :sweep off";
    match rest {
        ["off"] => Ok(Line::SweepOff),
        [knob, range, more @ ..] if more.len() <= 2 => {
            let steps = match more.first() {
                Some(n) => n.parse().map_err(|_| format!("sweep steps '{n}' is not a whole number; {USAGE}"))?,
                None => SWEEP_STEPS,
            };
            let per_step = match more.get(1) {
                Some(d) => duration::parse(d)?,
                None => SWEEP_PER_STEP,
            };
            Ok(Line::Sweep { knob: (*knob).to_string(), range: (*range).to_string(), steps, per_step })
        }
        _ => Err(USAGE.to_string()),
    }
}

/// A value to show for `word`: the knob table's example, or the command's own.
fn example(word: &str) -> &'static str {
    match word {
        "slo" => "20ms",
        "window" => "2m",
        w => KnobSpec::find(w).map_or("…", |s| s.example),
    }
}

/// The longest window, for sizing history.
#[must_use]
pub fn longest_window() -> Duration {
    WINDOWS[WINDOWS.len() - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{Policy, Rate, ServiceKind};

    #[test]
    fn knobs_and_words() {
        assert_eq!(parse("workers 16"), Ok(Line::Engine(Command::Set(Knob::Workers(16)))));
        let node = Line::Engine(Command::SetNodeWorkers { node: "node-b".into(), workers: 3 });
        assert_eq!(parse("workers node-b 3"), Ok(node));
        assert_eq!(parse("rate 2500"), Ok(Line::Engine(Command::Set(Knob::Rate(Rate::PerSec(2500.0))))));
        assert_eq!(parse("service 3ms"), Ok(Line::Engine(Command::Set(Knob::Service(Duration::from_millis(3))))));
        assert_eq!(parse("queue 500"), Ok(Line::Engine(Command::Set(Knob::Queue(500)))));
        assert_eq!(parse("policy reject"), Ok(Line::Engine(Command::Set(Knob::Policy(Policy::Reject)))));
        assert_eq!(parse("kind offload"), Ok(Line::Engine(Command::Set(Knob::ServiceKind(ServiceKind::Offload)))));
        assert_eq!(parse("  pause "), Ok(Line::Engine(Command::Pause)));
        assert_eq!(parse("window 2m"), Ok(Line::Window(1)));
        assert_eq!(parse(""), Ok(Line::Empty));
        let sweep = |steps, per_step| Line::Sweep { knob: "rate".into(), range: "200..2000".into(), steps, per_step };
        assert_eq!(parse("sweep rate 200..2000"), Ok(sweep(SWEEP_STEPS, SWEEP_PER_STEP)));
        assert_eq!(parse("sweep rate 200..2000 4 3s"), Ok(sweep(4, Duration::from_secs(3))));
        assert_eq!(parse("sweep off"), Ok(Line::SweepOff));
    }

    #[test]
    fn refusals_say_why() {
        for (line, want) in [
            ("workers", "workers needs a value, e.g. :workers 16"),
            ("workers 1 2 3", "takes one value"),
            ("workers node-b many", "not a whole number"),
            ("workers node-b 100001", "expected 0 to 100000"),
            ("workers -3", "not a whole number"),
            ("queue 0", "expected 1 to"),
            ("wrkers 3", "did you mean 'workers'"),
            ("window 5m", "expected 30s, 2m or 10m"),
            ("pause now", "takes no value"),
            ("rate fast", "not a rate"),
            ("threads 4", "threads is fixed for a run; set it with --threads"),
            ("sweep", "expected :sweep KNOB FROM..TO"),
            ("sweep rate 1..2 many", "not a whole number"),
            ("sweep rate 1..2 3 soon", "soon"),
        ] {
            let err = parse(line).unwrap_err();
            assert!(err.contains(want), "{line}: {err}");
        }
    }
}
