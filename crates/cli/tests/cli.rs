//! The `millstream` binary end to end.

use std::process::Command;

fn millstream(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_millstream")).args(args).output().expect("the millstream binary runs")
}

#[test]
fn demo_runs_briefly_and_stops_by_itself() {
    let out = millstream(&["run", "demo", "--duration", "3", "--rate", "200", "--workers", "2"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    let on_time: Vec<&str> = stdout.lines().filter(|l| l.contains(" ON_TIME #")).collect();
    assert!(!on_time.is_empty(), "no ON_TIME pane in:\n{stdout}");
    assert!(
        on_time.iter().all(|l| l.starts_with('[') && l.contains(" team=") && l.contains(" total=")),
        "{stdout}"
    );
    let summary = stdout
        .lines()
        .find(|l| l.starts_with("summary:"))
        .unwrap_or_else(|| panic!("no summary in:\n{stdout}"));
    let events: u64 = summary
        .strip_prefix("summary: ")
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no event count in {summary}"));
    assert_eq!(events, 600, "3 s at 200/s: {summary}");
    assert!(summary.contains("ON_TIME") && summary.contains("late events dropped:"), "{summary}");
}

#[test]
fn bad_options_are_rejected_with_a_message() {
    for (arg, name) in [
        ("--rate=0", "rate"),
        ("--rate=nan", "rate"),
        ("--workers=0", "workers"),
        ("--duration=-1", "duration"),
    ] {
        let out = millstream(&["run", "demo", arg]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{arg} accepted");
        assert!(stderr.contains(name), "{arg}: {stderr}");
    }
    let out = millstream(&["run", "nonsense"]);
    assert!(!out.status.success());
}
