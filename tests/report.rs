//! The HTML report as a person would get it: written by a real run, remade later from the saved
//! JSON and CSV, parsed to find every chart, rendered by a real Chromium to a PNG that is not
//! blank, small enough to attach for a long run, and refused whole on bad input.

mod common;

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::servers::need;
use pooltune::report::CSV_HEADER;

fn pooltune(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pooltune")).args(args).stdin(Stdio::null()).output().unwrap()
}

fn ok(o: &Output) {
    assert!(o.status.success(), "status {:?}: {}", o.status, String::from_utf8_lossy(&o.stderr));
}

/// The charts a run's report holds, by their figure ids: a trace replay's has no account of the
/// gap to theory (its model is a simulation of the trace, with no configured theory to split
/// from), a run on the synthetic arrivals has.
const TRACE_CHARTS: [&str; 5] = ["throughput", "queue", "latency", "percentiles", "split"];
const RUN_CHARTS: [&str; 6] = ["throughput", "queue", "latency", "percentiles", "split", "account"];

/// A short run that leaves its JSON, its CSV and its report in `dir`.
fn run_with_report(dir: &Path) -> (String, String, String) {
    let (json, csv, html) = (dir.join("run.json"), dir.join("run.csv"), dir.join("run.html"));
    let o = pooltune(&[
        "run",
        "--headless",
        "--duration",
        "2s",
        "--rate",
        "400",
        "--workers",
        "4",
        "--service",
        "2ms",
        "--interval",
        "100ms",
        "--json",
        json.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
        "--report",
        html.to_str().unwrap(),
    ]);
    ok(&o);
    (json.to_str().unwrap().into(), csv.to_str().unwrap().into(), html.to_str().unwrap().into())
}

/// Every chart the page should have, found by parsing it: a figure with one SVG that has a
/// title, axis text and drawn lines; and nothing that would make the browser fetch anything.
fn check_page(html: &str, charts: &[&str]) {
    let dom = tl::parse(html, tl::ParserOptions::default()).expect("the report parses as HTML");
    let parser = dom.parser();
    for id in charts {
        let fig = dom.get_element_by_id(*id).unwrap_or_else(|| panic!("no chart '{id}'")).get(parser).unwrap();
        let inner = fig.inner_html(parser);
        let sub = tl::parse(&inner, tl::ParserOptions::default()).unwrap();
        let count = |sel: &str| sub.query_selector(sel).map_or(0, Iterator::count);
        assert_eq!(count("svg"), 1, "chart '{id}' has one svg");
        assert!(count("text") >= 4, "chart '{id}' has a title, axis labels and a legend");
        assert!(count("polyline") + count("path") + count("rect") >= 2, "chart '{id}' draws something");
        assert!(count("figcaption") == 1, "chart '{id}' says what it shows");
    }
    let all = |sel: &str| dom.query_selector(sel).map_or(0, Iterator::count);
    assert_eq!(all("figure"), charts.len(), "no chart besides {charts:?}");
    assert_eq!(all("script"), 0, "no script: the charts show without JavaScript");
    for tag in ["img", "link", "iframe"] {
        assert_eq!(all(tag), 0, "a <{tag}> would load something");
    }
    assert!(!html.contains("src=") && !html.contains("url("), "nothing is fetched");
}

#[test]
fn a_runs_report_has_every_chart_and_can_be_remade_from_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let (json, csv, html) = run_with_report(dir.path());
    let page = std::fs::read_to_string(&html).unwrap();
    check_page(&page, &RUN_CHARTS);
    // The page names what ran and compares with the model.
    for text in ["--rate 400", "Model comparison", "M/M/c", "Response time by percentile"] {
        assert!(page.contains(text), "the report lacks '{text}'");
    }
    // The settings this Poisson run reads are listed; the rest are folded away beneath.
    let (used, unused) = page.split_once("<details><summary>Not used by this run").expect("folded settings");
    let unused = unused.split("</details>").next().unwrap();
    for k in ["clients", "think", "burst on", "burst off", "prefetch", "ack wait", "workers min", "contention"] {
        let cell = format!("<td>{k}</td>");
        assert!(unused.contains(&cell) && !used.contains(&cell), "{k} is not used by a Poisson run without a broker");
    }
    for k in ["workers", "rate", "service", "policy", "queue"] {
        assert!(used.contains(&format!("<td>{k}</td>")), "{k} is used");
    }
    // The same page from the saved files: the JSON and CSV carry everything it needs.
    let again = dir.path().join("again.html");
    ok(&pooltune(&["report", &json, &csv, "-o", again.to_str().unwrap()]));
    assert_eq!(std::fs::read_to_string(&again).unwrap(), page, "pooltune report remakes the run's own report");
    // Without the series: no time-series charts, and a note saying why.
    let bare = dir.path().join("bare.html");
    ok(&pooltune(&["report", &json, "-o", bare.to_str().unwrap()]));
    let bare = std::fs::read_to_string(&bare).unwrap();
    check_page(&bare, &["percentiles", "split", "account"]);
    assert!(bare.contains("No series was given"));
    // JSON from before the distribution was measured: the plot is left out, and the page says so.
    let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("latency_distribution_ms");
    let (old_json, old_page) = (dir.path().join("old.json"), dir.path().join("old.html"));
    std::fs::write(&old_json, v.to_string()).unwrap();
    ok(&pooltune(&["report", old_json.to_str().unwrap(), &csv, "-o", old_page.to_str().unwrap()]));
    let old = std::fs::read_to_string(&old_page).unwrap();
    check_page(&old, &["throughput", "queue", "latency", "split", "account"]);
    assert!(old.contains("this JSON has no <code>latency_distribution_ms</code>"), "the page says why");
}

/// The part of `page` inside the figure `id`.
fn figure<'p>(page: &'p str, id: &str) -> &'p str {
    let start =
        page.find(&format!("<figure class=\"chart\" id=\"{id}\">")).unwrap_or_else(|| panic!("no chart '{id}'"));
    let len = page[start..].find("</figure>").expect("the figure ends");
    &page[start..start + len]
}

/// A legend entry of a chart (plotters writes each label as its own text element).
fn legend(figure: &str, label: &str) -> bool {
    figure.contains(&format!(">\n{label}\n</text>"))
}

/// A replayed trace's report shows the trace's simulation where a run's shows its model, named
/// as a simulation of the trace, and the fitted Poisson model beside it: dashed p50 and p99 on
/// the response-time chart, and both distributions on the percentile plot. The JSON carries
/// them: the simulation's distribution is its own (its p99 point is the simulation's p99, the
/// trace giving each job its time), the fitted one the formulas' (its p99 point their p99).
#[test]
fn a_trace_replays_report_shows_its_simulation_beside_the_fitted_model() {
    let dir = tempfile::tempdir().unwrap();
    // 10 bursts of 50 jobs 1 ms apart every 300 ms (500, the model's 400 and more), each job
    // 8 ms: 4 workers queue for 100 ms in every burst.
    let mut trace = String::from("t_ms,service\n");
    for b in 0..10 {
        for k in 0..50 {
            let _ = writeln!(trace, "{},8ms", b * 300 + k);
        }
    }
    let file = dir.path().join("bursts.csv");
    std::fs::write(&file, trace).unwrap();
    let (json, html) = (dir.path().join("t.json"), dir.path().join("t.html"));
    let o = pooltune(&[
        "run",
        "--headless",
        "--arrivals",
        file.to_str().unwrap(),
        "--arrivals-unit",
        "ms",
        "--service-column",
        "service",
        "--workers",
        "4",
        "--queue",
        "1000",
        "--json",
        json.to_str().unwrap(),
        "--report",
        html.to_str().unwrap(),
    ]);
    ok(&o);
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let m = &v["model"];
    assert_eq!(m["predicted"]["method"], "trace simulation (exact, FIFO)", "{m}");
    let at = |dist: &serde_json::Value, p: f64| {
        let points = dist.as_array().unwrap_or_else(|| panic!("no distribution: {m}"));
        points.iter().find(|q| q["percentile"] == p).unwrap_or_else(|| panic!("no p{p}: {dist}"))["latency_ms"]
            .as_f64()
            .unwrap()
    };
    let sim_p99 = m["predicted"]["latency_ms_p99"].as_f64().unwrap();
    let own = at(&m["latency_distribution_ms"], 99.0);
    assert!((own - sim_p99).abs() <= 1e-12 * sim_p99, "the simulation's own distribution: {own} against {sim_p99}");
    let fit_p99 = m["fitted"]["latency_ms_p99"].as_f64().unwrap();
    assert!((at(&m["fitted_latency_distribution_ms"], 99.0) - fit_p99).abs() < 1e-6 * fit_p99, "{m}");
    assert!(fit_p99 < 0.5 * sim_p99, "the bursts queue far beyond what Poisson arrivals would: {fit_p99} vs {sim_p99}");
    let page = std::fs::read_to_string(&html).unwrap();
    check_page(&page, &TRACE_CHARTS);
    let latency = figure(&page, "latency");
    for label in ["trace simulation p50", "trace simulation p99", "fitted Poisson p50", "fitted Poisson p99"] {
        assert!(legend(latency, label), "the response-time chart lacks '{label}'");
    }
    assert!(!legend(latency, "model p99"), "not called the model's");
    assert!(latency.contains("the simulation of the trace"), "the caption says what the dashed lines are");
    let percentiles = figure(&page, "percentiles");
    for label in ["measured", "trace simulation", "fitted Poisson"] {
        assert!(legend(percentiles, label), "the percentile plot lacks '{label}'");
    }
    assert!(page.contains("Model: a trace simulation (exact, FIFO) of the replayed trace"), "the model section");
    // A run that replays nothing keeps the model's names.
    let (_, _, plain) = run_with_report(dir.path());
    let plain = std::fs::read_to_string(plain).unwrap();
    assert!(legend(figure(&plain, "percentiles"), "model") && !plain.contains("trace simulation"));
}

#[test]
fn a_sweeps_report_draws_the_curve_with_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("sweep.html");
    let o = pooltune(&[
        "sweep",
        "rate",
        "200..600",
        "--steps",
        "3",
        "--per-step",
        "400ms",
        "--settle",
        "100ms",
        "--workers",
        "4",
        "--service",
        "2ms",
        "--slo-p99",
        "20ms",
        "--report",
        html.to_str().unwrap(),
    ]);
    ok(&o);
    let page = std::fs::read_to_string(&html).unwrap();
    check_page(&page, &["curve"]);
    assert!(page.contains("target p99 20 ms") && page.contains("Verdict"), "the target and the verdict");
}

/// A ten-minute run at the finest tick, 10 ms (60,000 rows, spikes and a ramp in it), makes a
/// report under 1 MiB: each line keeps at most 600 points.
#[test]
fn a_ten_minute_series_makes_a_report_under_a_mebibyte() {
    let dir = tempfile::tempdir().unwrap();
    let (json, _, _) = run_with_report(dir.path());
    let header: Vec<&str> = CSV_HEADER.split(',').collect();
    let mut csv = format!("{CSV_HEADER}\n");
    for k in 0..60_000u32 {
        let t = f64::from(k) * 0.01;
        let wobble = f64::from((k * 7919) % 101);
        let row: Vec<String> = header
            .iter()
            .map(|h| match *h {
                "t_s" => format!("{t:.3}"),
                // A ramp from 10 s to 11 s; every other setting holds.
                "rate" => (400 + k.clamp(1000, 1100) - 1000).to_string(),
                "workers" => "4".into(),
                "queue_bound" => "100".into(),
                "service_mean_ms" => "2.000".into(),
                "policy" => "block".into(),
                "arrival" => "poisson".into(),
                "service_kind" => "sleep".into(),
                "latency_max_ms" if k % 9973 == 0 => "250.0".into(),
                _ => format!("{:.3}", wobble / 10.0),
            })
            .collect();
        let _ = writeln!(csv, "{}", row.join(","));
    }
    let series = dir.path().join("long.csv");
    std::fs::write(&series, csv).unwrap();
    let out = dir.path().join("long.html");
    ok(&pooltune(&["report", &json, series.to_str().unwrap(), "-o", out.to_str().unwrap()]));
    let size = std::fs::metadata(&out).unwrap().len();
    assert!(size < 1 << 20, "a ten-minute report is {size} bytes");
    let page = std::fs::read_to_string(&out).unwrap();
    check_page(&page, &RUN_CHARTS);
    assert!(page.contains("ramp: rate 400 → 401 … rate 499 → 500"), "the ramp is listed");
}

#[test]
fn bad_input_is_one_line_exit_2_and_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    std::fs::write(d("other.json"), "{\"hello\": 1}").unwrap();
    std::fs::write(d("broken.json"), "{\"duration_s\": ").unwrap();
    std::fs::write(d("bad.csv"), "t_s,offered_per_s\nsoon,1\n").unwrap();
    let (json, _, _) = run_with_report(dir.path());
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["report".into(), d("missing.json"), "-o".into(), d("x.html")], "cannot read the JSON file"),
        (vec!["report".into(), d("other.json"), "-o".into(), d("x.html")], "not a run summary"),
        (
            vec!["report".into(), d("broken.json"), "-o".into(), d("x.html")],
            "broken.json: the JSON file is not JSON (EOF while parsing a value at line 1 column 15)",
        ),
        (vec!["report".into(), json.clone(), d("bad.csv"), "-o".into(), d("x.html")], "no column"),
        (vec!["report".into(), json.clone(), "-o".into(), "/no/such/dir/x.html".into()], "cannot write the report"),
        (
            vec![
                "run".into(),
                "--headless".into(),
                "--duration".into(),
                "5s".into(),
                "--report".into(),
                "/no/such/dir/r.html".into(),
            ],
            "cannot write the report",
        ),
        (
            vec!["sweep".into(), "rate".into(), "100..200".into(), "--report".into(), "/no/such/dir/s.html".into()],
            "cannot write the report",
        ),
    ];
    for (args, want) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = pooltune(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: one line: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    assert!(!dir.path().join("x.html").exists(), "no half-written report");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.iter().all(|n| !n.to_string_lossy().contains(".tmp-")), "no temporary file left: {left:?}");
}

/// Watches the page load in the browser: every element that fails to load (capture-phase
/// `error` events), every resource fetched at all (a self-contained page fetches none), uncaught
/// errors, and the SVGs drawn; written onto the root element for `--dump-dom` to show. Only the
/// test's copy of the page carries it: the report itself has no script.
const PROBE: &str = r#"<script>
const failed = [];
addEventListener("error", e => failed.push(String((e.target && (e.target.src || e.target.href)) || e.message)), true);
addEventListener("load", () => {
  const fetched = performance.getEntriesByType("resource").map(r => r.name);
  const svgs = document.querySelectorAll("svg").length;
  document.documentElement.setAttribute("data-probe", JSON.stringify({failed, fetched, svgs}));
});
</script>"#;

/// Chromium loads the page without an error and draws it: nothing fails or is fetched, every
/// chart's SVG is in its DOM, the screenshot is not blank and the measured lines' blue is on it.
#[test]
fn chromium_renders_the_report() {
    let Some(chromium) = need("chromium", "install it with `apt-get install chromium`") else { return };
    let dir = tempfile::tempdir().unwrap();
    let (_, _, html) = run_with_report(dir.path());
    let browser = |page: &Path, extra: &[&str]| {
        let profile = tempfile::tempdir().unwrap();
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1000,4200",
        ]
        .iter()
        .map(ToString::to_string)
        .collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.extend(extra.iter().map(ToString::to_string));
        args.push(format!("file://{}", page.display()));
        let o = Command::new(&chromium).args(&args).stdin(Stdio::null()).output().unwrap();
        ok(&o);
        o
    };
    let probed = dir.path().join("probed.html");
    let page = std::fs::read_to_string(&html).unwrap();
    std::fs::write(&probed, page.replacen("<head>", &format!("<head>{PROBE}"), 1)).unwrap();
    let dom =
        String::from_utf8_lossy(&browser(&probed, &["--virtual-time-budget=5000", "--dump-dom"]).stdout).into_owned();
    let attr = dom.split("data-probe=\"").nth(1).and_then(|r| r.split('"').next()).expect("the probe ran");
    let probe: serde_json::Value = serde_json::from_str(&attr.replace("&quot;", "\"").replace("&amp;", "&")).unwrap();
    assert_eq!(probe["failed"], serde_json::json!([]), "nothing failed to load");
    assert_eq!(probe["fetched"], serde_json::json!([]), "nothing was fetched");
    assert_eq!(probe["svgs"], RUN_CHARTS.len(), "Chromium drew every chart");
    let png = dir.path().join("report.png");
    browser(Path::new(&html), &[&format!("--screenshot={}", png.display())]);
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(channels).collect();
    let inked = pixels.iter().filter(|p| p[..3].iter().any(|c| *c < 200)).count();
    let blue =
        pixels.iter().filter(|p| p[0] < 40 && (0x60..0x80).contains(&p[1]) && (0xA0..0xC0).contains(&p[2])).count();
    let share = inked as f64 / pixels.len() as f64;
    assert!(share > 0.02, "the screenshot is {:.2}% ink: blank", share * 100.0);
    assert!(blue > 200, "{blue} pixels of the measured lines' blue");
}
