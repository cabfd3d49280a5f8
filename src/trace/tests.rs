//! The trace reader on hand-made inputs: each format and kind of time, the unit decision, order,
//! window and service column, every error's message, and arbitrary bytes that must not panic.

use std::time::Duration;

use proptest::prelude::*;

use super::*;

const S: u64 = 1_000_000_000;
const MS: u64 = 1_000_000;

fn read(text: &str, spec: &TraceSpec) -> Result<Trace, TraceError> {
    super::load_bytes("t.csv", text.as_bytes(), spec)
}

fn ok(text: &str) -> Trace {
    read(text, &TraceSpec::new("t.csv")).unwrap()
}

fn err(text: &str, spec: &TraceSpec) -> String {
    read(text, spec).unwrap_err().to_string()
}

fn with(f: impl FnOnce(&mut TraceSpec)) -> TraceSpec {
    let mut spec = TraceSpec::new("t.csv");
    f(&mut spec);
    spec
}

#[test]
fn one_value_per_line_of_second_offsets() {
    let t = ok("0\n0.5\n1.25\n");
    assert_eq!(t.offsets, [0, S / 2, 1_250 * MS]);
    assert_eq!((t.service, t.moved, t.first_moved_line), (None, 0, None));
    assert!(
        t.describe.starts_with("one value per line, numbers in seconds (first value 0 is < 1e11"),
        "{}",
        t.describe
    );
    assert!(t.describe.contains("3 arrivals over 1.25s, mean 1.60/s"), "{}", t.describe);
}

#[test]
fn bom_crlf_blank_lines_and_no_final_newline() {
    let t = ok("\u{feff}\r\n1.5\r\n\r\n  \r\n2.5\r\n\n3");
    assert_eq!(t.offsets, [0, S, 3 * S / 2]);
    let csv = ok("\u{feff}time,size\r\n1,3\r\n\r\n2,4");
    assert_eq!(csv.offsets, [0, S]);
}

#[test]
fn bare_numbers_take_their_unit_from_the_first_magnitude_or_the_flag() {
    let cases = [
        ("1700000000\n1700000001.5\n", "seconds (first value 1700000000 is < 1e11", 3 * S / 2),
        ("1700000000000\n1700000001500\n", "milliseconds (first value 1700000000000 is ≥ 1e11", 3 * S / 2),
        ("1700000000000000\n1700000001500000\n", "microseconds (first value 1700000000000000 is ≥ 1e14", 3 * S / 2),
        (
            "1700000000000000000\n1700000001500000000\n",
            "nanoseconds (first value 1700000000000000000 is ≥ 1e17",
            3 * S / 2,
        ),
        ("12.5\n13.0\n", "seconds (first value 12.5 is < 1e11", S / 2),
    ];
    for (text, decided, gap) in cases {
        let t = ok(text);
        assert_eq!(t.offsets, [0, gap], "{text}");
        assert!(t.describe.contains(decided) && t.describe.contains("--arrivals-unit overrides"), "{}", t.describe);
    }
    let t = read("1700000000\n1700000500\n", &with(|s| s.unit = Some(TimeUnit::Millis))).unwrap();
    assert_eq!(t.offsets, [0, 500 * MS]);
    assert!(t.describe.contains("numbers in milliseconds (set by --arrivals-unit)"), "{}", t.describe);
}

#[test]
fn timestamps_with_and_without_zones() {
    let t = ok("2023-11-16 18:17:03.9799600\n2023-11-16 18:17:04.0799600\n2023-11-16 18:17:05\n");
    assert_eq!(t.offsets, [0, 100 * MS, 1_020_040 * 1_000]);
    assert!(t.describe.contains("one value per line, timestamps;"), "{}", t.describe);
    let zoned = ok("2023-11-16T18:17:03Z\n2023-11-16T19:17:04+01:00\n2023-11-16T18:17:05.123456789987z\n");
    assert_eq!(zoned.offsets, [0, S, 2 * S + 123_456_789]);
}

#[test]
fn csv_picks_the_named_then_time_named_then_first_time_column() {
    let by_name = ok("id,timestamp,size\n1,2023-11-16 18:17:03,10\n2,2023-11-16 18:17:04,20\n");
    assert_eq!(by_name.offsets, [0, S]);
    assert!(by_name.describe.starts_with("CSV, column 'timestamp' (its name), timestamps"), "{}", by_name.describe);
    let stamp = ok("id,when,size\n1,2023-11-16 18:17:03,10\n2,2023-11-16 18:17:05,20\n");
    assert_eq!(stamp.offsets, [0, 2 * S]);
    assert!(stamp.describe.contains("column 'when' (the first holding a timestamp)"), "{}", stamp.describe);
    let number = ok("name,at\nx,12.5\ny,13\n");
    assert_eq!(number.offsets, [0, S / 2]);
    assert!(number.describe.contains("column 'at' (the first holding a number)"), "{}", number.describe);
    let named = read("a,b\n5,1\n1,2\n", &with(|s| s.column = Some("B".into()))).unwrap();
    assert_eq!((named.offsets, named.moved), (vec![0, S], 0));
    let numbered = read("x,y\n5,1\n1,2\n", &with(|s| s.column = Some("2".into()))).unwrap();
    assert!(numbered.describe.starts_with("CSV, column 'y' (named by --arrivals-column)"), "{}", numbered.describe);
    let svc = with(|s| {
        s.column = Some("2".into());
        s.service_column = Some("1".into());
        s.service = ServiceSpec::Duration { unit: Some(TimeUnit::Millis) };
    });
    let headless = read("5,1\n7,2\n", &svc).unwrap();
    assert!(headless.describe.starts_with("CSV without a header, column 2 (named by --arrivals-column)"));
    assert_eq!((headless.offsets, headless.service), (vec![0, S], Some(vec![5 * MS, 7 * MS])));
    let headless = ok("1.5,300\n2.5,400\n");
    assert_eq!(headless.offsets, [0, S]);
    assert!(headless.describe.starts_with("CSV without a header, column 1 (the first holding a number)"));
}

#[test]
fn quoted_csv_fields_and_tsv() {
    let t = read(
        "\"name\",\"when\"\n\"a, b\",\"12.5\"\n\"say \"\"hi\"\"\", \"13\" \n",
        &with(|s| s.column = Some("when".into())),
    )
    .unwrap();
    assert_eq!(t.offsets, [0, S / 2]);
    let tsv = ok("ts\tsize\n1.0\t3\n\t\n2.0\t4\n");
    assert_eq!(tsv.offsets, [0, S]);
    assert!(tsv.describe.starts_with("TSV, column 'ts' (its name)"), "{}", tsv.describe);
}

#[test]
fn json_lines_by_usual_or_given_name_with_exact_decimals() {
    let t = ok("{\"t\": 1, \"time\": 1700000000.123456789}\n{\"time\": 1700000000.223456789, \"t\": 0}\n");
    assert_eq!(t.offsets, [0, 100 * MS]);
    assert!(t.describe.starts_with("JSON lines, field 'time' (the first of the usual names)"), "{}", t.describe);
    let named = read(
        "{\"at\": \"2023-11-16T18:17:03Z\"}\n{\"x\": {\"at\": 1}, \"at\": \"2023-11-16T18:17:04Z\"}\n",
        &with(|s| s.column = Some("at".into())),
    )
    .unwrap();
    assert_eq!(named.offsets, [0, S]);
}

#[test]
fn backwards_traces_are_sorted_and_counted_equal_times_stay() {
    let t = ok("1\n3\n2\n4\n0\n");
    assert_eq!(t.offsets, [0, S, 2 * S, 3 * S, 4 * S]);
    assert_eq!((t.moved, t.first_moved_line), (2, Some(3)));
    let equal = ok("1\n1\n2\n");
    assert_eq!((equal.offsets, equal.moved), (vec![0, 0, S], 0));
}

#[test]
fn service_times_move_with_their_arrivals_stably() {
    let spec = with(|s| s.service_column = Some("s".into()));
    let t = read("t,s\n2,20ms\n1,10ms\n3,30ms\n1,11ms\n", &spec).unwrap();
    assert_eq!(t.offsets, [0, 0, S, 2 * S]);
    assert_eq!(t.service, Some(vec![10 * MS, 11 * MS, 20 * MS, 30 * MS]));
    assert_eq!((t.moved, t.first_moved_line), (2, Some(3)));
}

#[test]
fn service_column_in_each_form() {
    let units = read("t,s\n0,12ms\n1,1.5s\n2,250us\n", &with(|s| s.service_column = Some("s".into()))).unwrap();
    assert_eq!(units.service, Some(vec![12 * MS, 1_500 * MS, 250_000]));
    let bare = with(|s| {
        s.service_column = Some("s".into());
        s.service = ServiceSpec::Duration { unit: Some(TimeUnit::Millis) };
    });
    assert_eq!(read("t,s\n0,12\n1,2us\n", &bare).unwrap().service, Some(vec![12 * MS, 2_000]));
    let size = with(|s| {
        s.service_column = Some("bytes".into());
        s.service = ServiceSpec::Size { base: Duration::from_millis(1), per_unit: Duration::from_micros(1) };
    });
    assert_eq!(read("t,bytes\n0,0\n1,1500\n", &size).unwrap().service, Some(vec![MS, 2_500_000]));
    let json = read("{\"ts\": 0, \"s\": \"3ms\"}\n{\"ts\": 1, \"s\": 4}\n", &bare).unwrap();
    assert_eq!(json.service, Some(vec![3 * MS, 4 * MS]));
}

#[test]
fn a_window_slices_and_rebases() {
    let text = "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n";
    let t = read(text, &with(|s| s.window = Some((Duration::from_secs(2), Duration::from_secs(5))))).unwrap();
    assert_eq!(t.offsets, [0, S, 2 * S]);
    assert!(t.describe.contains("(window 2s..5s of 9s)"), "{}", t.describe);
    let open = read(text, &with(|s| s.window = Some(parse_window("7s..").unwrap()))).unwrap();
    assert_eq!(open.offsets, [0, S, 2 * S]);
    let e = err(text, &with(|s| s.window = Some((Duration::from_secs(20), Duration::from_secs(30)))));
    assert_eq!(e, "t.csv: the window 20s..30s holds no arrivals; the trace spans 9s from its first arrival");
}

#[test]
fn statistics_of_regular_and_bursty_traces() {
    let regular = ok("0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n");
    assert_eq!((regular.len(), regular.span()), (11, Duration::from_secs(10)));
    assert!((regular.mean_rate() - 1.0).abs() < 1e-12);
    assert!(regular.interarrival_cv().abs() < 1e-12);
    assert!(regular.dispersion(Duration::from_secs(2)).abs() < 1e-12);
    // Bursts of 4 every 4 s: counts per 2 s window alternate 4, 0 → mean 2, variance 4.
    let bursty = ok("0\n0\n0\n0\n4\n4\n4\n4\n8\n8\n8\n8\n12\n");
    assert!((bursty.dispersion(Duration::from_secs(2)) - 2.0).abs() < 1e-12);
    assert!(bursty.interarrival_cv() > 1.0);
    assert!(ok("5\n").dispersion(Duration::from_secs(1)).is_nan());
    assert!(!ok("5\n").is_empty());
    assert!(ok("1\n1\n").mean_rate().is_infinite());
    assert!(ok("1\n1\n").describe.ends_with("2 arrivals over 0s, all at the same time"), "{}", ok("1\n1\n").describe);
    assert!(ok("1\n").describe.ends_with("1 arrivals over 0s, mean 0.0000/s"), "{}", ok("1\n").describe);
}

#[test]
fn windows_and_units_parse_with_messages() {
    assert_eq!(parse_window("10m..20m"), Ok((Duration::from_secs(600), Duration::from_secs(1200))));
    assert_eq!(parse_window("..5m"), Ok((Duration::ZERO, Duration::from_secs(300))));
    assert_eq!(parse_window("1h.."), Ok((Duration::from_secs(3600), Duration::MAX)));
    assert!(parse_window("10m").unwrap_err().contains("expected FROM..TO"));
    assert!(parse_window("5m..1m").unwrap_err().contains("FROM must be before TO"));
    assert!(parse_window("x..1m").unwrap_err().contains("'x' is not a duration"));
    assert_eq!(parse_unit("ms"), Ok(TimeUnit::Millis));
    assert_eq!(parse_unit("µs"), Ok(TimeUnit::Micros));
    assert_eq!(parse_unit("h").unwrap_err(), "'h' is not a time unit; expected s, ms, us or ns");
}

#[test]
fn errors_name_the_file_line_found_and_accepted() {
    let none = TraceSpec::new("t.csv");
    let missing = load(&TraceSpec::new("/nonexistent/trace.csv")).unwrap_err().to_string();
    assert!(missing.starts_with("/nonexistent/trace.csv: cannot read the trace: "), "{missing}");
    let empty = "no arrivals: the file is empty or blank; expected one time per line, CSV or TSV with a header line, or JSON lines";
    assert_eq!(err("", &none), format!("t.csv: {empty}"));
    assert_eq!(err("\u{feff}\r\n \n", &none), format!("t.csv: {empty}"));
    assert!(err("time\n\n", &none).contains("t.csv: no arrivals: the header has no data lines below it"));
    assert_eq!(
        err("a,b\n1,2\n", &with(|s| s.column = Some("ts".into()))),
        "t.csv:1: the header has no arrivals column 'ts'; its columns are: 'a', 'b'"
    );
    assert_eq!(
        err("\nt,b\n1,2\n", &with(|s| s.service_column = Some("svc".into()))),
        "t.csv:2: the header has no service column 'svc'; its columns are: 't', 'b'"
    );
    let headless = err("1,2\n", &with(|s| s.column = Some("ts".into())));
    assert!(
        headless.starts_with("t.csv:1: the arrivals column 'ts' cannot be found: the file has no header"),
        "{headless}"
    );
    let forms = format!("; expected {TIME_FORMS}");
    assert_eq!(err("1.5\nfoo\n", &none), format!("t.csv:2: 'foo' is not a time{forms}"));
    assert_eq!(
        err("1.5\n\n2023-11-16 18:17:03\n", &none),
        format!("t.csv:3: '2023-11-16 18:17:03' is a timestamp, but the first value (line 1) was a number{forms}")
    );
    assert_eq!(
        err("2023-11-16 18:17:03\n5\n", &none),
        format!("t.csv:2: '5' is a number, but the first value (line 1) was a timestamp{forms}")
    );
    assert_eq!(
        err("2023-02-30 00:00:00\n", &none),
        format!("t.csv:1: '2023-02-30 00:00:00' is out of range (years 1678 to 2261){forms}")
    );
    assert_eq!(err("1\n99999999999\n", &none), format!("t.csv:2: '99999999999' is too large for seconds{forms}"));
    assert_eq!(err("a,t\nx,1\ny,\n", &none), format!("t.csv:3: '' is empty{forms}"));
    // A data line longer than the header: its extra fields have no name and are not chosen.
    assert!(err("\ta\n\ta\t0\n", &none).starts_with("t.csv:2: no column holds a time in '\\ta\\t0'"));
    let no_time = err("name,city\nbob,paris\n", &none);
    assert!(no_time.starts_with("t.csv:2: no column holds a time in 'bob,paris'; expected a timestamp"), "{no_time}");
    assert_eq!(
        err("a,ts\n1,2\n3\n", &none),
        "t.csv:3: the line has 1 field; the arrivals column 'ts' is field 2; expected every line to have it"
    );
}

#[test]
fn service_and_json_errors_name_the_line_and_the_accepted_forms() {
    let svc = with(|s| s.service_column = Some("s".into()));
    assert_eq!(
        err("t,s\n1,5ms\n2,12\n", &svc),
        "t.csv:3: service value '12' is a bare number with no unit given for it; expected a duration \
         with a unit (12ms, 1.5s, 250us); for bare numbers give --service-unit s, ms, us or ns (service_unit in a \
         profile's [arrivals])"
    );
    assert!(err("t,s\n1,-5ms\n", &svc).starts_with("t.csv:2: service value '-5ms' is negative; expected a duration"));
    assert!(err("t,s\n1,soon\n", &svc).starts_with("t.csv:2: service value 'soon' is not a duration; expected"));
    let size = with(|s| {
        s.service_column = Some("s".into());
        s.service = ServiceSpec::Size { base: Duration::ZERO, per_unit: Duration::from_micros(1) };
    });
    assert_eq!(
        err("t,s\n1,big\n", &size),
        "t.csv:2: service value 'big' is not a number; expected a non-negative number (a size: time = 0s + 1us × size)"
    );
    assert!(err("t,s\n1,-1\n", &size).starts_with("t.csv:2: service value '-1' is negative; expected a non-negative"));
    let none = TraceSpec::new("t.csv");
    let json = err("{\"ts\": 1}\n{\"ts\": 2,\n", &none);
    assert!(
        json.starts_with("t.csv:2: not a JSON object (")
            && json.ends_with("); expected one JSON object per line, like {\"ts\": 12.5}"),
        "{json}"
    );
    assert!(err("{\"ts\": 1}\n[1]\n", &none).starts_with("t.csv:2: not a JSON object (found '[1]')"));
    assert_eq!(
        err("{\"ts\": 1}\n{\"x\": 2}\n", &none),
        "t.csv:2: no field 'ts' (the arrivals field); expected it on every line; the line has: 'x'"
    );
    assert_eq!(
        err("{\"x\": 1, \"y\": 2}\n", &none),
        "t.csv:1: no time field; expected one of timestamp, time, ts, t, arrival, arrival_time, or name the field \
         with --arrivals-column; the line has: 'x', 'y'"
    );
    assert_eq!(err("{\"ts\": null}\n", &none), format!("t.csv:1: 'null' is not a time; expected {TIME_FORMS}"));
    // Escapes in a key or value cannot break the one-line message.
    assert!(err("{\"ts\": \"a\\nb\"}\n", &none).starts_with("t.csv:1: 'a\\nb' is not a time"));
}

/// Lines that look like traces: numbers, timestamps, JSON, quotes, delimiters and noise.
fn trace_text() -> impl Strategy<Value = Vec<u8>> {
    let line = prop_oneof![
        "[-+]?[0-9]{0,20}(\\.[0-9]{0,12})?",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,12})?(Z|[+-][0-9]{2}:?[0-9]{0,2})?",
        "\\{\"(ts|t|s|x)\": ?(-?[0-9.]{1,12}|\"[^\"]{0,12}\"|null|\\{\\}|\\[)[,}]?",
        "[a-z\",\t 0-9.]{0,20}",
        "\\PC{0,20}",
    ];
    prop::collection::vec(line, 0..12).prop_map(|lines| lines.join("\n").into_bytes())
}

fn any_spec() -> impl Strategy<Value = TraceSpec> {
    (
        prop::option::of("(ts|t|s|x)"),
        prop::option::of(prop_oneof![Just(TimeUnit::Seconds), Just(TimeUnit::Nanos)]),
        prop::option::of("(s|ts|x)"),
        any::<bool>(),
        prop::option::of((0u64..5, 0u64..10)),
    )
        .prop_map(|(column, unit, service_column, size, window)| TraceSpec {
            path: "p".into(),
            column,
            unit,
            service_column,
            service: if size {
                ServiceSpec::Size { base: Duration::MAX, per_unit: Duration::from_secs(u64::MAX) }
            } else {
                ServiceSpec::Duration { unit: Some(TimeUnit::Millis) }
            },
            window: window.map(|(a, b)| (Duration::from_secs(a), Duration::from_secs(a + b + 1))),
        })
}

fn check(bytes: &[u8], spec: &TraceSpec) -> Result<(), TestCaseError> {
    match super::load_bytes("p", bytes, spec) {
        Ok(t) => {
            prop_assert_eq!(t.offsets.first(), Some(&0));
            prop_assert!(t.offsets.is_sorted());
            prop_assert_eq!(t.service.as_ref().map(Vec::len), spec.service_column.as_ref().map(|_| t.len()));
            prop_assert!(!t.describe.contains('\n'));
        }
        Err(e) => prop_assert!(!e.to_string().contains('\n'), "{}", e),
    }
    Ok(())
}

proptest! {
    // 3000 cases each by default; `ABUSE_CASES=1000000 cargo test --release --lib trace` runs longer.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("ABUSE_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(3000),
        // A failure's shrunk case is saved beside this file (tests.regressions), not in a folder
        // at the crate's top; the one found so far is a unit test above.
        failure_persistence: Some(Box::new(proptest::test_runner::FileFailurePersistence::WithSource("regressions"))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300), spec in any_spec()) {
        check(&bytes, &spec)?;
    }

    #[test]
    fn trace_like_text_never_panics(bytes in trace_text(), spec in any_spec()) {
        check(&bytes, &spec)?;
    }
}
