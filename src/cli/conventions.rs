//! The command line's conventions: shell completions (`pooltune completions SHELL`, by
//! `clap_complete`) and the man page (`pooltune man`, by `clap_mangen`), both made from the same
//! clap definition as `--help`, so they never fall behind it.

use std::io::Write;
use std::process::ExitCode;

use clap::CommandFactory;

use super::Outcome;
use super::args::Cli;

/// Prints `shell`'s completion script on stdout.
pub fn completions(shell: clap_complete::Shell) -> Outcome {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "pooltune", &mut out);
    write_out(&out)
}

/// Prints the man page on stdout: pooltune's own page, then a section per subcommand with its
/// description and its options.
pub fn man() -> Outcome {
    write_out(&man_page()?)
}

fn man_page() -> std::io::Result<Vec<u8>> {
    let cmd = Cli::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut out)?;
    for sub in cmd.get_subcommands() {
        let name = format!("pooltune {}", sub.get_name());
        writeln!(out, ".SH \"{}\"", name.to_uppercase())?;
        if let Some(about) = sub.get_long_about().or_else(|| sub.get_about()) {
            writeln!(out, "{}", roff_escape(&about.to_string()))?;
        }
        let page = clap_mangen::Man::new(sub.clone().name(name));
        let mut synopsis = Vec::new();
        page.render_synopsis_section(&mut synopsis)?;
        // Each subcommand's synopsis and options, under its own heading rather than a page's.
        out.extend(demote(&synopsis));
        let mut options = Vec::new();
        page.render_options_section(&mut options)?;
        out.extend(demote(&options));
    }
    Ok(out)
}

/// A section rendered as a page's (`.SH NAME`) turned into a subsection (`.SS NAME`).
fn demote(section: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(section).replace(".SH ", ".SS ").into_bytes()
}

fn roff_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .lines()
        .map(|l| if l.starts_with(['.', '\'']) { format!("\\&{l}") } else { l.to_string() })
        .collect::<Vec<_>>()
        .join("\n")
}

fn write_out(bytes: &[u8]) -> Outcome {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        // A closed pipe (`pooltune man | head`) is the reader's choice, not a failure.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(ExitCode::SUCCESS),
        Err(e) => Err(super::Failure::Failed(e.into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::args::ColorWhen;

    /// no-color.org: `NO_COLOR` set and not empty turns colour off unless asked for; so does a
    /// dumb terminal.
    #[test]
    fn no_color_and_color_when() {
        use std::ffi::OsStr;
        let (set, empty, dumb) = (Some(OsStr::new("1")), Some(OsStr::new("")), Some(OsStr::new("dumb")));
        assert!(ColorWhen::Auto.colour(None, None) && ColorWhen::Auto.colour(empty, None));
        assert!(!ColorWhen::Auto.colour(set, None) && !ColorWhen::Auto.colour(None, dumb));
        assert!(ColorWhen::Always.colour(set, dumb) && !ColorWhen::Never.colour(None, None));
    }

    #[test]
    fn the_man_page_has_every_subcommand_and_its_flags() {
        let page = String::from_utf8(man_page().unwrap()).unwrap();
        for sub in Cli::command().get_subcommands() {
            let heading = format!(".SH \"POOLTUNE {}\"", sub.get_name().to_uppercase());
            assert!(page.contains(&heading), "no {heading}");
            for arg in sub.get_arguments().filter_map(clap::Arg::get_long) {
                assert!(
                    page.contains(&format!("\\-\\-{}", arg.replace('-', "\\-"))),
                    "pooltune {}: no --{arg}",
                    sub.get_name()
                );
            }
        }
    }
}
