//! The sample reader: each layout, the column and unit rules, a run's JSON, and every refusal
//! as one line naming the file, the line and what is accepted.

use super::*;
use crate::trace::TimeUnit;

fn spec(column: Option<&str>, unit: Option<TimeUnit>) -> SampleSpec {
    SampleSpec { path: "s.txt".into(), column: column.map(String::from), unit }
}

fn values(text: &str, s: &SampleSpec) -> Vec<u64> {
    match sample_bytes("s.txt", text.as_bytes(), s) {
        Ok(SampleData::Values(v)) => v,
        other => panic!("{text:?}: {other:?}"),
    }
}

fn err(text: &str, s: &SampleSpec) -> String {
    sample_bytes("s.txt", text.as_bytes(), s).expect_err(text).to_string()
}

const MS: u64 = 1_000_000;

#[test]
fn one_duration_per_line_with_units_or_a_given_unit() {
    let none = spec(None, None);
    assert_eq!(values("\u{feff}12ms\r\n\n30ms\n1.5s\n250us", &none), [12 * MS, 30 * MS, 1500 * MS, 250_000]);
    assert_eq!(values("12\n30.5\n", &spec(None, Some(TimeUnit::Millis))), [12 * MS, 30_500_000]);
}

#[test]
fn a_column_is_named_found_by_its_name_or_by_its_values() {
    let ms = Some(TimeUnit::Millis);
    // By name: "service_ms" says durations; the timestamp and the id are passed over.
    let csv = "when,id,service_ms\n2024-01-01 00:00:00,7,12\n2024-01-01 00:00:01,8,30\n";
    assert_eq!(values(csv, &spec(None, ms)), [12 * MS, 30 * MS]);
    // Named by the user, by header name or by number.
    assert_eq!(values(csv, &spec(Some("ID"), ms)), [7 * MS, 8 * MS]);
    assert_eq!(values(csv, &spec(Some("2"), ms)), [7 * MS, 8 * MS]);
    // No duration name: the first number that is not a timestamp.
    assert_eq!(values("when\tsize\n2024-01-01T00:00:00Z\t5ms\n", &spec(None, None)), [5 * MS]);
    // JSON lines: the field named like a duration, or the only one.
    let jl = "{\"id\": 1, \"latency\": \"12ms\"}\n{\"latency\": \"3ms\", \"id\": 2}\n";
    assert_eq!(values(jl, &spec(None, None)), [12 * MS, 3 * MS]);
    assert_eq!(values("{\"x\": 4}\n{\"x\": 5}\n", &spec(None, ms)), [4 * MS, 5 * MS]);
    assert_eq!(values("{\"x\": 4, \"y\": 9}\n", &spec(Some("y"), ms)), [9 * MS], "one line of JSON lines");
}

#[test]
fn bad_values_name_the_file_the_line_and_what_is_accepted() {
    let none = spec(None, None);
    assert_eq!(
        err("12ms\n30\n", &none),
        "s.txt:2: service value '30' is a bare number with no unit given for it; expected a duration with a unit \
         (12ms, 1.5s, 250us); for bare numbers give --service-sample-unit s, ms, us or ns (unit in a profile's \
         [service_sample])"
    );
    assert!(err("12ms\n-3ms\n", &none).starts_with("s.txt:2: service value '-3ms' is negative; expected"));
    assert!(err("service\n1ms\nfast\n", &none).starts_with("s.txt:3: service value 'fast' is not a duration"));
    assert!(err("a,b\n1ms,2ms\n3ms\n", &spec(Some("b"), None)).starts_with("s.txt:3: the line has 1 field"));
    assert!(err("a,b\n1ms,2ms\n", &spec(Some("c"), None)).contains("the header has no service sample column 'c'"));
    let e = err("{\"a\": \"x\", \"b\": 1}\n", &none);
    assert!(e.starts_with("s.txt:1: no service-time field") && e.contains("'a', 'b'"), "{e}");
    let e = err("{\"d\": \"1ms\"}\n{\"e\": 2}\n", &spec(Some("d"), None));
    assert!(e.starts_with("s.txt:2: no field 'd'"), "{e}");
    assert!(err("name,label\nx,y\n", &none).starts_with("s.txt:2: no column holds a duration in 'x,y'"));
}

#[test]
fn an_empty_sample_is_refused() {
    let none = spec(None, None);
    let want = "s.txt: no service times: the file is empty or blank; expected one duration per line";
    assert!(err("", &none).starts_with(want), "{}", err("", &none));
    assert!(err("\n \r\n", &none).starts_with(want));
    assert!(err("service_ms\n", &none).starts_with("s.txt: no service times: the header has no data lines"));
}

/// A run's JSON as `pooltune run --json` writes it (only the keys the reader needs).
fn run_json(service: &str) -> String {
    format!("{{\n  \"ended_by\": \"duration\",\n  \"service_ms\": {service}\n}}\n")
}

#[test]
fn a_runs_json_gives_its_service_percentiles() {
    let s =
        "{\"count\": 400, \"mean\": 5.1, \"p50\": 3.5, \"p90\": 11.5, \"p99\": 23.0, \"p999\": 35.0, \"max\": 40.0}";
    let Ok(SampleData::Percentiles { points, mean, count }) =
        sample_bytes("r.json", run_json(s).as_bytes(), &spec(None, None))
    else {
        panic!("not read as a run's JSON")
    };
    assert_eq!(count, 400);
    assert!((mean - 5.1e6).abs() < 1.0);
    let us: Vec<f64> = points.iter().map(|p| p.0).collect();
    assert_eq!(us, [0.5, 0.9, 0.99, 0.999, 1.0]);
    assert!((points[2].1 - 23.0e6).abs() < 1.0 && (points[4].1 - 40.0e6).abs() < 1.0, "{points:?}");
}

#[test]
fn json_without_service_times_is_refused() {
    let e = |text: &str| sample_bytes("r.json", text.as_bytes(), &spec(None, None)).unwrap_err().to_string();
    assert!(e("{\n\"config\": {}\n}").starts_with("r.json: the JSON document has no service_ms object"));
    assert!(e("{\"knob\": \"workers\", \"steps\": []}").contains("a sweep's JSON"));
    let zero = "{\"count\": 0, \"mean\": 0, \"p50\": 0, \"p90\": 0, \"p99\": 0, \"p999\": 0, \"max\": 0}";
    assert!(e(&run_json(zero)).contains("the run measured no service times"));
    let bad = "{\"count\": 3, \"mean\": 1, \"p50\": -1, \"p90\": 0, \"p99\": 0, \"p999\": 0, \"max\": 0}";
    assert!(
        e(&run_json(bad)).contains("service_ms.p50 is -1; expected a number of milliseconds"),
        "{}",
        e(&run_json(bad))
    );
    assert!(e(&run_json("{\"count\": 3}")).contains("service_ms.p50 is missing"), "{}", e(&run_json("{\"count\": 3}")));
}

#[test]
fn a_missing_file_is_named() {
    let e = load_sample(&SampleSpec::new("/nonexistent/sample.txt")).unwrap_err().to_string();
    assert!(e.starts_with("/nonexistent/sample.txt: cannot read the service sample: "), "{e}");
}
