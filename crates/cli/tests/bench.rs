//! `millstream bench nexmark` and `millstream nexmark generate` end to end: the engine's
//! answer equals the hand-written baseline's, from the generator and from a generated file.
//! (No timing is asserted: timing belongs to the benchmark's output, not to tests.)

use std::process::Command;

fn millstream(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_millstream")).args(args).output().expect("the millstream binary runs")
}

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("millstream-cli-bench-{}-{name}", std::process::id()))
}

/// The runs of a `--json` report.
fn runs(path: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).expect("the report was written");
    serde_json::from_str::<Vec<serde_json::Value>>(&text).expect("the report is a JSON array")
}

fn field<'a>(run: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    run.get(name).unwrap_or_else(|| panic!("no {name} in {run}"))
}

#[test]
fn every_query_agrees_with_its_baseline_and_the_report_has_every_measure() {
    let json = temp("all.json");
    let out = millstream(&[
        "bench",
        "nexmark",
        "--query",
        "all",
        "--events",
        "30000",
        "--workers",
        "2",
        "--engine",
        "both",
        "--out-of-order-group",
        "50",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let runs = runs(&json);
    assert_eq!(runs.len(), 18, "9 queries x 2 engines");
    for pair in runs.chunks(2) {
        let (engine, baseline) = (&pair[0], &pair[1]);
        assert_eq!(field(engine, "engine"), "millstream");
        assert_eq!(field(baseline, "engine"), "baseline");
        assert_eq!(field(engine, "query"), field(baseline, "query"));
        assert_eq!(field(engine, "events"), 30000);
        assert_eq!(field(engine, "rows"), field(baseline, "rows"), "{engine} vs {baseline}");
        assert_eq!(field(engine, "checksum_hex"), field(baseline, "checksum_hex"), "{engine} vs {baseline}");
        assert!(field(engine, "events_per_second").as_f64().unwrap() > 0.0);
        assert!(field(engine, "peak_rss_bytes").as_u64().unwrap() > 0);
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("q11") && stdout.contains("baseline"), "the table: {stdout}");
    let _ = std::fs::remove_file(json);
}

#[test]
fn a_generated_file_gives_the_generators_answer_and_latency_runs_report_percentiles() {
    let file = temp("events.json");
    let out = millstream(&["nexmark", "generate", "--events", "20000", "--out", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines = std::fs::read_to_string(&file).unwrap().lines().count();
    assert_eq!(lines, 20000);

    let (from_file, from_generator, live) = (temp("file.json"), temp("gen.json"), temp("live.json"));
    for (extra, json) in [
        (vec!["--input", file.to_str().unwrap()], &from_file),
        (vec!["--events", "20000"], &from_generator),
        (vec!["--events", "20000", "--rate", "100000"], &live),
    ] {
        let mut args =
            vec!["bench", "nexmark", "--query", "q5", "--workers", "2", "--json", json.to_str().unwrap()];
        args.extend(extra);
        let out = millstream(&args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let (f, g, l) = (&runs(&from_file)[0], &runs(&from_generator)[0], &runs(&live)[0]);
    assert_eq!(field(f, "events"), 20000, "events counted from the file's source");
    assert_eq!(field(f, "checksum_hex"), field(g, "checksum_hex"));
    assert_eq!(field(l, "checksum_hex"), field(g, "checksum_hex"), "a paced run has the same answer");
    let latency = field(l, "latency");
    assert!(field(latency, "samples").as_u64().unwrap() > 0, "{latency}");
    assert!(field(latency, "p99_us").as_u64().unwrap() >= field(latency, "p50_us").as_u64().unwrap());

    let bad = millstream(&["bench", "nexmark", "--query", "q6"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown Nexmark query"), "{bad:?}");
    for p in [file, from_file, from_generator, live] {
        let _ = std::fs::remove_file(p);
    }
}
