//! A secured NATS broker: a user and password, a token, and TLS from a CA made by the test.
//! Right credentials run; wrong ones, an untrusted certificate and a TLS mismatch are refused
//! before the run with one line (exit status 2); and a secret given in the URL shows in nothing
//! the run prints or writes.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::servers::Nats;
use common::tls::test_ca;

const PASSWORD: &str = "s3cret-Pw-91";
const TOKEN: &str = "t0ken-Qz-47";

fn pooltune(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pooltune")).args(args).stdin(Stdio::null()).output().unwrap()
}

fn run_args(url: &str) -> Vec<String> {
    ["run", "--headless", "--duration", "1s", "--rate", "200", "--run-name", "sec", "--broker", url]
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn refused(args: &[String], want: &str, secret: &str) {
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = pooltune(&a);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{a:?}: {err}");
    assert_eq!(err.lines().count(), 1, "{a:?}: one line, got {err}");
    assert!(err.contains(want), "{a:?}: {err:?} lacks {want:?}");
    assert!(!err.contains(secret), "{a:?}: the secret shows in {err:?}");
}

/// Every file under `dir` and both streams of `out`: none holds `secret`.
fn nowhere(secret: &str, out: &Output, dir: &Path) {
    for (what, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(!String::from_utf8_lossy(text).contains(secret), "{what} holds the secret");
    }
    let mut files = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        let text = std::fs::read(&p).unwrap();
        assert!(!String::from_utf8_lossy(&text).contains(secret), "{} holds the secret", p.display());
        files += 1;
    }
    assert!(files >= 5, "the run wrote {files} files");
}

/// A run with the password in its URL, writing everything it can: JSON, CSV, the HTML report, a
/// log and a recording. The run works, and the password is nowhere.
#[test]
fn a_password_in_the_url_works_and_is_written_nowhere() {
    let Some(nats) = Nats::start_secured(&["--user", "pt", "--pass", PASSWORD]) else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = |n: &str| dir.path().join(n).to_string_lossy().to_string();
    let url = format!("nats://pt:{PASSWORD}@127.0.0.1:{}", nats.port);
    let mut args = run_args(&url);
    for (flag, name) in [
        ("--json", "run.json"),
        ("--csv", "run.csv"),
        ("--report", "run.html"),
        ("--log", "run.log"),
        ("--record", "rec.toml"),
    ] {
        args.extend([flag.to_string(), file(name)]);
    }
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = pooltune(&a);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(file("run.json")).unwrap()).unwrap();
    assert!(v["jobs"]["completed"].as_u64().unwrap() > 50, "{}", v["jobs"]);
    assert_eq!(v["broker"]["url"], format!("nats://pt:***@127.0.0.1:{}", nats.port));
    nowhere(PASSWORD, &out, dir.path());

    let wrong = format!("nats://pt:not-{PASSWORD}@127.0.0.1:{}", nats.port);
    refused(&run_args(&wrong), "refused the credentials", PASSWORD);
    let none = format!("nats://127.0.0.1:{}", nats.port);
    refused(&run_args(&none), "refused the credentials", PASSWORD);
    // A worker node is refused the same way (after its line saying what it waits for).
    let out = pooltune(&["worker", "--broker", &wrong, "--run-name", "sec"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.lines().last().unwrap_or_default().contains("refused the credentials"), "{err}");
    assert!(!err.contains(PASSWORD), "{err}");
}

/// A token (`nats://TOKEN@HOST:PORT`): accepted, and shown as `***`.
#[test]
fn a_token_in_the_url_works_and_is_shown_masked() {
    let Some(nats) = Nats::start_secured(&["--auth", TOKEN]) else { return };
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json").to_string_lossy().to_string();
    let mut args = run_args(&format!("nats://{TOKEN}@127.0.0.1:{}", nats.port));
    args.extend(["--json".to_string(), json.clone()]);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = pooltune(&a);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let text = std::fs::read_to_string(&json).unwrap();
    assert!(!text.contains(TOKEN) && text.contains("nats://***@127.0.0.1"), "{text}");
    refused(&run_args(&format!("nats://wrong@127.0.0.1:{}", nats.port)), "refused the credentials", TOKEN);
}

/// TLS from a CA made here: trusted with `--broker-ca`, refused without it, and refused when
/// the CA given is another.
#[test]
fn tls_with_a_private_ca_is_trusted_only_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let ca = test_ca(dir.path());
    let (cert, key) = (ca.cert.to_string_lossy().to_string(), ca.key.to_string_lossy().to_string());
    let Some(nats) = Nats::start_secured(&["--tls", "--tlscert", &cert, "--tlskey", &key]) else { return };
    let url = format!("tls://127.0.0.1:{}", nats.port);
    let mut args = run_args(&url);
    args.extend(["--broker-ca".to_string(), ca.ca.to_string_lossy().to_string()]);
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = pooltune(&a);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));

    refused(&run_args(&url), "cannot reach", "\0");
    let other = tempfile::tempdir().unwrap();
    let stranger = test_ca(other.path());
    let mut args = run_args(&url);
    args.extend(["--broker-ca".to_string(), stranger.ca.to_string_lossy().to_string()]);
    refused(&args, "cannot reach", "\0");
    // A plain client against a server that requires TLS, and a CA file that is not one.
    let mut args = run_args(&format!("nats://127.0.0.1:{}", nats.port));
    args.extend(["--broker-ca".to_string(), dir.path().join("missing.pem").to_string_lossy().to_string()]);
    refused(&args, "missing.pem", "\0");
}
