//! The one key table: it drives key handling, the help overlay and the status-line hints, so
//! the three cannot drift apart.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::action::Action;

/// One binding: the key, what it does, and how help describes it.
#[derive(Debug, Clone, Copy)]
pub struct Binding {
    pub code: KeyCode,
    /// Ctrl must be held (letters are matched without regard to Shift; the case is the key).
    pub ctrl: bool,
    pub action: Action,
    /// The key as help shows it.
    pub label: &'static str,
    pub help: &'static str,
    /// Shown in the status line's hints (grouped with the binding before it when `label` pairs).
    pub hint: Option<&'static str>,
}

const fn key(c: char, action: Action, label: &'static str, help: &'static str, hint: Option<&'static str>) -> Binding {
    Binding { code: KeyCode::Char(c), ctrl: false, action, label, help, hint }
}

pub const KEYS: &[Binding] = &[
    key('q', Action::Quit, "q", "quit; jobs in flight finish", Some("q quit")),
    Binding {
        code: KeyCode::Char('c'),
        ctrl: true,
        action: Action::Quit,
        label: "Ctrl-C",
        help: "quit, as q",
        hint: None,
    },
    key('?', Action::Help, "?", "show or hide this help", Some("? help")),
    key(':', Action::CommandLine, ":", "command line (below)", Some(": command")),
    key('w', Action::WorkersUp, "w", "one more worker", Some("w/W workers")),
    key('W', Action::WorkersDown, "W", "one worker fewer", None),
    key('r', Action::RateUp, "r", "arrival rate × 1.25", Some("r/R rate")),
    key('R', Action::RateDown, "R", "arrival rate ÷ 1.25", None),
    key('s', Action::ServiceUp, "s", "mean service time × 1.25", Some("s/S service")),
    key('S', Action::ServiceDown, "S", "mean service time ÷ 1.25", None),
    key('b', Action::QueueUp, "b", "queue bound × 2", Some("b/B bound")),
    key('B', Action::QueueDown, "B", "queue bound ÷ 2", None),
    key('p', Action::CyclePolicy, "p", "next overflow policy", Some("p policy")),
    key('a', Action::CycleArrival, "a", "next arrival process", None),
    key('d', Action::CycleDist, "d", "next service distribution", None),
    key('k', Action::CycleKind, "k", "next service kind", Some("k kind")),
    key(' ', Action::Pause, "space", "pause or resume arrivals", Some("space pause")),
    key('x', Action::Reset, "x", "reset statistics", None),
    key('z', Action::ZoomIn, "z", "shorter chart window", None),
    key('Z', Action::ZoomOut, "Z", "longer chart window", Some("z/Z window")),
];

/// The action bound to a key press (releases and repeats of other kinds are ignored).
#[must_use]
pub fn action_for(ev: &KeyEvent) -> Option<Action> {
    if ev.kind != KeyEventKind::Press {
        return None;
    }
    let ctrl = ev.modifiers.contains(KeyModifiers::CONTROL);
    KEYS.iter().find(|b| b.code == ev.code && b.ctrl == ctrl).map(|b| b.action)
}

/// The status line's key hints, from the same table.
#[must_use]
pub fn hints() -> Vec<&'static str> {
    KEYS.iter().filter_map(|b| b.hint).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every action, by an exhaustive match: a new action does not compile here until it has
    /// a number, and the test then fails until it has a key.
    fn number(a: Action) -> usize {
        use Action::*;
        match a {
            Quit => 0,
            Help => 1,
            CommandLine => 2,
            WorkersUp => 3,
            WorkersDown => 4,
            RateUp => 5,
            RateDown => 6,
            ServiceUp => 7,
            ServiceDown => 8,
            QueueUp => 9,
            QueueDown => 10,
            CyclePolicy => 11,
            CycleArrival => 12,
            CycleDist => 13,
            CycleKind => 14,
            Pause => 15,
            Reset => 16,
            ZoomIn => 17,
            ZoomOut => 18,
        }
    }
    const ACTIONS: usize = 19;

    #[test]
    fn every_action_has_one_plain_key_and_keys_are_unique() {
        for (i, a) in KEYS.iter().enumerate() {
            for b in &KEYS[i + 1..] {
                assert!(!(a.code == b.code && a.ctrl == b.ctrl), "{} is bound twice", a.label);
            }
        }
        let mut plain = [0usize; ACTIONS];
        for b in KEYS.iter().filter(|b| !b.ctrl) {
            plain[number(b.action)] += 1;
        }
        for (n, count) in plain.iter().enumerate() {
            assert_eq!(*count, 1, "action number {n} has {count} plain keys; every action needs exactly one");
        }
    }

    #[test]
    fn presses_map_and_releases_do_not() {
        let press = KeyEvent::new(KeyCode::Char('w'), KeyModifiers::NONE);
        assert_eq!(action_for(&press), Some(Action::WorkersUp));
        let shifted = KeyEvent::new(KeyCode::Char('W'), KeyModifiers::SHIFT);
        assert_eq!(action_for(&shifted), Some(Action::WorkersDown));
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(action_for(&ctrl_c), Some(Action::Quit));
        let mut release = press;
        release.kind = KeyEventKind::Release;
        assert_eq!(action_for(&release), None);
    }
}
