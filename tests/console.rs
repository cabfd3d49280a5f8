//! With the `console` feature: a gRPC client (console-api) connects to the console endpoint of a
//! real run and sees the worker tasks by the names the dashboard uses.

use std::fmt::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use console_api::instrument::InstrumentRequest;
use console_api::instrument::instrument_client::InstrumentClient;

struct Kill(std::process::Child);

impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn the_console_lists_tasks_named_like_the_dashboard() {
    // A free port on loopback, given to the run.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let addr = format!("127.0.0.1:{port}");
    let _run = Kill(
        Command::new(env!("CARGO_BIN_EXE_pooltune"))
            .args(["run", "--headless", "--duration", "60s", "--workers", "3", "--threads", "2", "--console", &addr])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    // Liveness bound: the server comes up within seconds.
    let start = Instant::now();
    let mut client = loop {
        match InstrumentClient::connect(format!("http://{addr}")).await {
            Ok(c) => break c,
            Err(e) => {
                assert!(start.elapsed() < Duration::from_secs(30), "no console at {addr}: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    let mut updates = client.watch_updates(InstrumentRequest {}).await.unwrap().into_inner();
    let mut seen = String::new();
    while !(seen.contains("worker-0") && seen.contains("worker-1") && seen.contains("producer")) {
        assert!(start.elapsed() < Duration::from_secs(30), "tasks never named; saw: {seen}");
        match tokio::time::timeout(Duration::from_secs(5), updates.message()).await {
            Ok(Ok(Some(update))) => {
                let _ = write!(seen, "{update:?}");
            }
            Ok(Ok(None)) => panic!("the console closed the stream"),
            Ok(Err(e)) => panic!("console stream error: {e}"),
            Err(_) => {}
        }
    }
}
