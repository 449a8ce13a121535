//! Failure tests: an exactly-once job (`src/bin/millstream-exactly-once-job.rs`, the binary
//! `millstream-exactly-once-job`) is killed with SIGKILL at random moments and restarted
//! from the same checkpoint directory, again and again; its published output must equal,
//! record for record, the output of a run without failures. Also: kills in the middle of
//! a checkpoint write, a corrupted newest checkpoint, restarts with more and with fewer
//! workers, and stops with a savepoint resumed on more and on fewer workers.
//!
//! The job reads 200,000 score records from four JSON-lines files (one with a byte-order
//! mark, one with CRLF line ends, one with blank lines), windows them into one-second
//! fixed windows, sums and counts per user and window, then per window over all users,
//! and publishes one line per result through the exactly-once file sink. Its source is
//! throttled so that a run takes seconds and a kill can land anywhere: while reading,
//! while checkpointing, while publishing, at the very end.
//!
//! `MILLSTREAM_KILLS` sets how many kills the main test makes (default 20); more kills
//! take more rounds of the job, each checked on its own. `MILLSTREAM_KILL_SEED` fixes the
//! random delays (the seed in use is printed; timing still varies from run to run).
//!
//! ```text
//! MILLSTREAM_KILLS=200 cargo test -p millstream --test kill_recovery -- --nocapture
//! ```

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const JOB: &str = env!("CARGO_BIN_EXE_millstream-exactly-once-job");

const FILES: usize = 4;
const RECORDS: usize = 200_000;
const USERS: u64 = 100;
/// Milliseconds of event time between consecutive records of a file, and the most a
/// record's timestamp is pushed later (less than the job's one-second out-of-orderness
/// bound, so no record is late and the output does not depend on timing).
const STEP_MS: i64 = 4;
const JITTER_MS: u64 = 400;

/// Checkpoint interval of the killed runs.
const INTERVAL_MS: u64 = 100;
/// Source throttling of the killed runs: a pause before each read of `BATCH` lines.
const THROTTLE_US: u64 = 4_000;
const BATCH: usize = 64;
/// A run that takes longer than this is considered hung.
const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// SplitMix64: small, seeded, good enough for test data and delays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A directory under the system temp dir, removed when the test passes (kept, and named
/// in the failure message, when it does not).
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!("millstream-kill-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).expect("create scratch dir");
        Scratch { path }
    }

    fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// The input files and the output the job must publish for them, shared by every test.
struct Input {
    dir: PathBuf,
    /// Every line the job must publish, sorted.
    expected: Vec<String>,
}

/// Writes the input (deterministic) and computes the expected output from it directly;
/// checks that a run of the job without checkpoints or failures publishes exactly that.
fn input() -> &'static Input {
    static INPUT: OnceLock<Input> = OnceLock::new();
    INPUT.get_or_init(|| {
        // Shared by the tests of this process and never dropped (a static), so it lives in
        // cargo's per-target scratch dir rather than the system temp dir: it goes with
        // `target/` instead of piling up in /tmp run after run.
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("kill-input-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create input dir");
        let mut rng = Rng(0x5EED_0F1A_7E00);
        // (window start, user) -> (sum, count); user "*" for the totals.
        let mut results: BTreeMap<(i64, String), (i64, u64)> = BTreeMap::new();
        for f in 0..FILES {
            let mut text = String::new();
            if f == 0 {
                text.push('\u{FEFF}');
            }
            let newline = if f == 1 { "\r\n" } else { "\n" };
            for k in 0..RECORDS / FILES {
                let user = format!("u{:03}", rng.below(USERS));
                let score = rng.below(151) as i64 - 50;
                let ts = k as i64 * STEP_MS + rng.below(JITTER_MS + 1) as i64;
                write!(text, r#"{{"user":"{user}","score":{score},"ts_ms":{ts}}}{newline}"#).unwrap();
                if f == 2 && k % 997 == 0 {
                    text.push_str(newline);
                }
                let window = ts - ts.rem_euclid(1000);
                for key in [user, "*".to_owned()] {
                    let r = results.entry((window, key)).or_default();
                    r.0 += score;
                    r.1 += 1;
                }
            }
            fs::write(dir.join(format!("scores-{f}.jsonl")), text).expect("write input file");
        }
        let mut expected: Vec<String> = results
            .into_iter()
            .map(|((window, key), (sum, count))| {
                let kind = if key == "*" { "total" } else { "user" };
                format!(
                    "{kind} {window} {key} sum={sum} count={count} pane=ON_TIME #0 (on-time #0) first last"
                )
            })
            .collect();
        expected.sort();

        // The reference: a run without checkpoints and without failures.
        let out = dir.with_extension("reference");
        let _ = fs::remove_dir_all(&out);
        let started = Instant::now();
        let log = run_to_end(Job::new(&dir, &out).workers(2), &dir.with_extension("reference.log"));
        eprintln!("reference run: {} ms ({})", started.elapsed().as_millis(), last_line(&log));
        let reference = published(&out);
        assert_outputs_equal(&reference, &expected, "the reference run");
        let _ = fs::remove_dir_all(&out);
        Input { dir, expected }
    })
}

/// One invocation of the job.
#[derive(Clone)]
struct Job {
    input: PathBuf,
    output: PathBuf,
    checkpoints: Option<PathBuf>,
    workers: usize,
    throttle_us: u64,
    from_savepoint: Option<PathBuf>,
}

impl Job {
    fn new(input: &Path, output: &Path) -> Self {
        Job {
            input: input.to_owned(),
            output: output.to_owned(),
            checkpoints: None,
            workers: 2,
            throttle_us: 0,
            from_savepoint: None,
        }
    }

    /// Checkpointing into `dir`, throttled: the configuration of the killed runs.
    fn checkpointed(input: &Path, output: &Path, dir: &Path) -> Self {
        Job { checkpoints: Some(dir.to_owned()), throttle_us: THROTTLE_US, ..Job::new(input, output) }
    }

    fn workers(mut self, n: usize) -> Self {
        self.workers = n;
        self
    }

    /// Starts the job, its stdout and stderr going to `log`.
    fn spawn(&self, log: &Path) -> Child {
        let out = fs::File::create(log).expect("create log file");
        let err = out.try_clone().expect("clone log file");
        let mut cmd = Command::new(JOB);
        cmd.arg("--input")
            .arg(&self.input)
            .arg("--output")
            .arg(&self.output)
            .args(["--workers", &self.workers.to_string()])
            .args(["--interval-ms", &INTERVAL_MS.to_string()])
            .args(["--throttle-us", &self.throttle_us.to_string()])
            .args(["--batch", &BATCH.to_string()]);
        if let Some(dir) = &self.checkpoints {
            cmd.arg("--checkpoints").arg(dir);
        }
        if let Some(dir) = &self.from_savepoint {
            cmd.arg("--from-savepoint").arg(dir);
        }
        cmd.stdin(Stdio::null()).stdout(out).stderr(err).spawn().expect("start the job")
    }
}

fn read_log(log: &Path) -> String {
    fs::read_to_string(log).unwrap_or_default()
}

fn last_line(log: &str) -> &str {
    log.lines().last().unwrap_or("")
}

/// Waits for a job to exit, at most `RUN_TIMEOUT`; `None` if it is still running.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<std::process::ExitStatus> {
    loop {
        if let Some(status) = child.try_wait().expect("wait for the job") {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Runs a job to its end; it must succeed. Returns its log.
fn run_to_end(job: Job, log: &Path) -> String {
    let mut child = job.spawn(log);
    let status = wait_until(&mut child, Instant::now() + RUN_TIMEOUT);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let text = read_log(log);
    match status {
        Some(s) if s.success() => text,
        Some(s) => panic!("the job failed ({s}); its log {}:\n{text}", log.display()),
        None => panic!("the job did not finish in {RUN_TIMEOUT:?}; its log {}:\n{text}", log.display()),
    }
}

/// SIGKILLs a running job (`Child::kill` is SIGKILL on Unix) and reaps it.
fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Every published line of an output directory (not the in-progress files), sorted.
fn published(dir: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else { return lines };
    for entry in entries {
        let path = entry.expect("list output").path();
        if path.is_file() {
            let text = fs::read_to_string(&path).expect("read output file");
            lines.extend(text.lines().map(str::to_owned));
        }
    }
    lines.sort();
    lines
}

/// Files left in the sink's in-progress directory.
fn in_progress(dir: &Path) -> Vec<String> {
    fs::read_dir(dir.join(".in-progress"))
        .map(|entries| {
            entries.filter_map(|e| Some(e.ok()?.file_name().to_string_lossy().into_owned())).collect()
        })
        .unwrap_or_default()
}

/// Compares two sorted multisets of lines, describing the difference if any.
fn assert_outputs_equal(got: &[String], expected: &[String], what: &str) {
    if got == expected {
        return;
    }
    let mut missing = Vec::new();
    let mut extra = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < got.len() || j < expected.len() {
        match (got.get(i), expected.get(j)) {
            (Some(g), Some(e)) if g == e => {
                i += 1;
                j += 1;
            }
            (Some(g), Some(e)) if g < e => {
                extra.push(g.clone());
                i += 1;
            }
            (Some(_), Some(e)) => {
                missing.push(e.clone());
                j += 1;
            }
            (Some(g), None) => {
                extra.push(g.clone());
                i += 1;
            }
            (None, Some(e)) => {
                missing.push(e.clone());
                j += 1;
            }
            (None, None) => break,
        }
    }
    panic!(
        "{what}: published {} lines, expected {}: {} missing (first: {:?}), {} extra or duplicated (first: {:?})",
        got.len(),
        expected.len(),
        missing.len(),
        missing.iter().take(5).collect::<Vec<_>>(),
        extra.len(),
        extra.iter().take(5).collect::<Vec<_>>()
    );
}

/// Checks a finished round: exactly the expected lines published, nothing left pending.
fn assert_exact(output: &Path, logs: &str, what: &str) {
    let got = published(output);
    let dropped: Vec<&str> =
        logs.lines().filter(|l| l.contains("dropped as late: ") && !l.ends_with(": 0")).collect();
    if got != input().expected {
        eprintln!("{what}: attempts that dropped late data: {dropped:?}");
    }
    assert_outputs_equal(&got, &input().expected, what);
    let left = in_progress(output);
    assert!(left.is_empty(), "{what}: in-progress files left after the job finished: {left:?}");
}

/// Checkpoint ids in a checkpoint directory, with whether each has a manifest.
fn checkpoints(dir: &Path) -> Vec<(u64, bool)> {
    let mut ids: Vec<(u64, bool)> = fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| {
                    let e = e.ok()?;
                    let id = e.file_name().to_str()?.strip_prefix("chk-")?.parse().ok()?;
                    Some((id, e.path().join("_MANIFEST").exists()))
                })
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

fn seed() -> u64 {
    let seed = std::env::var("MILLSTREAM_KILL_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    });
    eprintln!("MILLSTREAM_KILL_SEED={seed}");
    seed
}

/// A random delay before a kill: mostly long enough for progress (some checkpoints),
/// sometimes very short (a kill during start-up and restore).
fn kill_delay(rng: &mut Rng) -> Duration {
    if rng.below(6) == 0 {
        Duration::from_millis(rng.below(40))
    } else {
        Duration::from_millis(60 + rng.below(600))
    }
}

/// What a sequence of killed attempts did.
#[derive(Default)]
struct Attempts {
    kills: usize,
    /// Attempts that resumed from a checkpoint.
    restored: usize,
    /// Every attempt's log, concatenated.
    logs: String,
}

/// Runs `job` (with `workers(attempt)` workers), killing each attempt after a random delay
/// while `kills` are wanted, until an attempt finishes by itself. Returns what happened.
fn kill_until_done(
    job: &Job,
    logs: &Path,
    rng: &mut Rng,
    wanted: usize,
    workers: impl Fn(usize) -> usize,
) -> Attempts {
    let mut a = Attempts::default();
    let started = Instant::now();
    for attempt in 0.. {
        assert!(started.elapsed() < RUN_TIMEOUT * 2, "no end after {attempt} attempts:\n{}", a.logs);
        let log = logs.join(format!("attempt-{attempt:04}.log"));
        let mut child = job.clone().workers(workers(attempt)).spawn(&log);
        let kill_at = (a.kills < wanted).then(|| Instant::now() + kill_delay(rng));
        let status = match kill_at {
            Some(at) => wait_until(&mut child, at),
            None => wait_until(&mut child, Instant::now() + RUN_TIMEOUT),
        };
        let text = read_log(&log);
        if text.contains("restoring from checkpoint") {
            a.restored += 1;
        }
        writeln!(a.logs, "--- attempt {attempt} ({} workers)\n{text}", workers(attempt)).unwrap();
        match status {
            None if kill_at.is_some() => {
                kill(&mut child);
                a.kills += 1;
            }
            None => {
                kill(&mut child);
                panic!("attempt {attempt} did not finish in {RUN_TIMEOUT:?}:\n{}", a.logs);
            }
            Some(s) if s.success() => return a,
            Some(s) => panic!("attempt {attempt} failed ({s}):\n{}", a.logs),
        }
    }
    unreachable!()
}

#[test]
fn the_job_without_failures_publishes_what_the_input_implies() {
    // `input()` runs the job once without checkpoints and compares its output with the
    // sums and counts computed here from the generated records.
    let counted: u64 = input()
        .expected
        .iter()
        .filter(|l| l.starts_with("total "))
        .filter_map(|l| l.split(" count=").nth(1)?.split(' ').next()?.parse::<u64>().ok())
        .sum();
    assert_eq!(counted, RECORDS as u64, "the totals count every record once");
}

#[test]
fn killed_again_and_again_the_job_publishes_exactly_the_output_of_a_run_without_failures() {
    let wanted: usize = std::env::var("MILLSTREAM_KILLS").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    let expected = &input().expected;
    let mut rng = Rng(seed());
    let started = Instant::now();
    let (mut kills, mut rounds) = (0, 0);
    // Each round is a fresh job (new output and checkpoints), killed until it finishes.
    while kills < wanted {
        let scratch = Scratch::new(&format!("main-{rounds}"));
        let (out, chk, logs) = (scratch.join("out"), scratch.join("chk"), scratch.join("logs"));
        fs::create_dir_all(&logs).unwrap();
        let job = Job::checkpointed(&input().dir, &out, &chk);
        let a = kill_until_done(&job, &logs, &mut rng, wanted - kills, |_| 2);
        let what = format!("round {rounds} ({} kills, logs in {})", a.kills, logs.display());
        assert_exact(&out, &a.logs, &what);
        if a.kills > 2 {
            assert!(a.restored > 0, "{what}: no attempt resumed from a checkpoint");
        }
        // Started again after the end, the job publishes nothing more.
        run_to_end(job.clone(), &logs.join("after-the-end.log"));
        assert_outputs_equal(&published(&out), expected, &format!("{what}, started again after the end"));
        eprintln!(
            "round {rounds}: {} kills, {} attempts resumed from a checkpoint, {} s so far",
            a.kills,
            a.restored,
            started.elapsed().as_secs()
        );
        kills += a.kills;
        rounds += 1;
    }
    eprintln!("{kills} kills in {rounds} rounds, {} s", started.elapsed().as_secs());
}

/// The ids of the checkpoints an attempt's log says it completed, in order.
fn completed_ids(log: &str) -> Vec<u64> {
    log.lines()
        .filter(|l| l.contains("checkpoint complete"))
        .filter_map(|l| l.split("checkpoint=").nth(1)?.split_whitespace().next()?.parse().ok())
        .collect()
}

/// The first epoch in an attempt's `restoring from checkpoint` line.
fn first_epoch(log: &str) -> Option<u64> {
    let line = log.lines().find(|l| l.contains("restoring from checkpoint"))?;
    line.split("first_epoch=").nth(1)?.split_whitespace().next()?.parse().ok()
}

#[test]
fn a_kill_in_the_middle_of_a_checkpoint_write_loses_nothing_and_never_reuses_its_id() {
    const CAUGHT: usize = 4;
    let scratch = Scratch::new("mid-write");
    let (out, chk, logs) = (scratch.join("out"), scratch.join("chk"), scratch.join("logs"));
    fs::create_dir_all(&logs).unwrap();
    let job = Job::checkpointed(&input().dir, &out, &chk);
    let mut caught: Vec<u64> = Vec::new();
    // The checkpoint ids each attempt completed, attempt by attempt.
    let mut completed: Vec<Vec<u64>> = Vec::new();
    let mut all_logs = String::new();
    let mut attempt = 0;
    // After a kill mid-write, the next attempt is killed right after it restored: the one
    // after it must not report the partial checkpoint again.
    let mut kill_after_restore = false;
    while caught.len() < CAUGHT {
        assert!(attempt < 60, "caught only {} checkpoint writes in progress:\n{all_logs}", caught.len());
        let log = logs.join(format!("attempt-{attempt:04}.log"));
        let caught_before = caught.len();
        let before = checkpoints(&chk);
        let highest_before = before.last().map(|(id, _)| *id);
        let mut child = job.spawn(&log);
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut finished = false;
        loop {
            if child.try_wait().expect("wait for the job").is_some() {
                finished = true;
                break;
            }
            if kill_after_restore {
                if read_log(&log).contains("restoring from checkpoint") {
                    kill(&mut child);
                    break;
                }
            } else if let Some((id, false)) = checkpoints(&chk).last().copied() {
                // Kill as soon as a checkpoint directory newer than any before this attempt
                // has files but no manifest.
                let dir = chk.join(format!("chk-{id:020}"));
                let has_blobs = fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(false);
                if has_blobs && highest_before.is_none_or(|h| id > h) {
                    kill(&mut child);
                    // Caught only if the manifest really was not written before the kill.
                    if !dir.join("_MANIFEST").exists() {
                        caught.push(id);
                    }
                    break;
                }
            }
            assert!(Instant::now() < deadline, "attempt {attempt}: no checkpoint started in 20 s");
            std::thread::sleep(Duration::from_micros(500));
        }
        let text = read_log(&log);
        writeln!(all_logs, "--- attempt {attempt}\n{text}").unwrap();
        assert!(!finished, "the job finished before {CAUGHT} kills during a checkpoint write:\n{all_logs}");
        // A restored run continues after every id in the store, partial ones included.
        if let (Some(first), Some(highest)) = (first_epoch(&text), highest_before) {
            assert!(
                first > highest,
                "attempt {attempt} starts at epoch {first}, not after {highest}:\n{text}"
            );
        }
        completed.push(completed_ids(&text));
        // Only when this attempt had restored: the next one then restores for sure.
        kill_after_restore = caught.len() > caught_before && text.contains("restoring from checkpoint");
        attempt += 1;
    }
    let log = run_to_end(job, &logs.join("final.log"));
    writeln!(all_logs, "--- final\n{log}").unwrap();
    completed.push(completed_ids(&log));
    let what = format!("kills during checkpoints {caught:?} (logs in {})", logs.display());
    // Ids only grow from attempt to attempt (within one, commits may log out of order), and
    // a partial checkpoint's id is never completed.
    let mut highest = 0;
    for ids in completed.iter().filter(|ids| !ids.is_empty()) {
        let low = ids.iter().min().copied().unwrap_or_default();
        assert!(low > highest, "{what}: checkpoint ids reused or going back: {completed:?}");
        highest = ids.iter().max().copied().unwrap_or_default();
    }
    let completed: Vec<u64> = completed.concat();
    assert!(caught.windows(2).all(|w| w[0] < w[1]), "{what}: a partial id was written again: {caught:?}");
    let reused: Vec<&u64> = caught.iter().filter(|id| completed.contains(id)).collect();
    assert!(
        reused.is_empty(),
        "{what}: partial checkpoints {reused:?} were later completed under the same id"
    );
    // Each partial checkpoint is reported by the attempt that skipped it, and only by it.
    for id in &caught {
        let reports = all_logs.matches(&format!("skipping checkpoint {id} (")).count();
        assert_eq!(reports, 1, "{what}: partial checkpoint {id} reported {reports} times:\n{all_logs}");
    }
    assert!(
        all_logs.contains(&format!("skipping checkpoint {} (", caught[caught.len() - 1]))
            && all_logs.contains("partial"),
        "{what}: the partial checkpoint was not reported:\n{all_logs}"
    );
    // Superseded partial checkpoints are gone once newer ones completed.
    let left: Vec<(u64, bool)> =
        checkpoints(&chk).into_iter().filter(|(id, _)| caught.contains(id)).collect();
    assert!(left.is_empty(), "{what}: partial checkpoints left behind: {left:?}");
    assert_exact(&out, &all_logs, &what);
}

/// The newest complete checkpoint, and a blob that its manifest references in its own
/// directory (so written by it, not reused from an older one).
fn newest_complete_blob(chk: &Path) -> (u64, PathBuf) {
    let (id, _) =
        *checkpoints(chk).iter().rev().find(|(_, complete)| *complete).expect("a complete checkpoint");
    let dir = format!("chk-{id:020}");
    // The manifest is framed JSON: a 16-byte header, the payload, a 4-byte checksum.
    let framed = fs::read(chk.join(&dir).join("_MANIFEST")).expect("read manifest");
    let manifest: serde_json::Value =
        serde_json::from_slice(&framed[16..framed.len() - 4]).expect("manifest payload is JSON");
    let mut own: Vec<String> = manifest["entries"]
        .as_array()
        .expect("manifest entries")
        .iter()
        .filter_map(|e| e["path"].as_str())
        .filter(|p| p.starts_with(&dir))
        .map(str::to_owned)
        .collect();
    own.sort();
    let blob = own.into_iter().next().expect("the newest checkpoint wrote a blob");
    (id, chk.join(blob))
}

/// A way to damage a file, and its description.
type Damage = (&'static str, fn(&Path));

/// The id in a `restoring from checkpoint checkpoint=<id>` log line.
fn restored_id(log: &str) -> Option<u64> {
    let line = log.lines().find(|l| l.contains("restoring from checkpoint"))?;
    line.split("checkpoint=").nth(1)?.split_whitespace().next()?.parse().ok()
}

#[test]
fn a_corrupt_newest_checkpoint_is_skipped_and_the_output_is_still_exact() {
    let scratch = Scratch::new("corrupt");
    let (out, chk, logs) = (scratch.join("out"), scratch.join("chk"), scratch.join("logs"));
    fs::create_dir_all(&logs).unwrap();
    let job = Job::checkpointed(&input().dir, &out, &chk);
    let mut all_logs = String::new();
    let damages: [Damage; 2] = [
        ("a flipped byte", |p| {
            let mut bytes = fs::read(p).unwrap();
            let i = bytes.len() / 2;
            bytes[i] ^= 0x20;
            fs::write(p, bytes).unwrap();
        }),
        ("a truncated blob", |p| {
            let len = fs::metadata(p).unwrap().len();
            fs::OpenOptions::new().write(true).open(p).unwrap().set_len(len / 2).unwrap();
        }),
    ];
    for (round, (damage, apply)) in damages.iter().enumerate() {
        let log = logs.join(format!("killed-{round}.log"));
        let mut child = job.spawn(&log);
        std::thread::sleep(Duration::from_millis(1_200));
        assert!(child.try_wait().unwrap().is_none(), "the job ended before it could be killed");
        kill(&mut child);
        writeln!(all_logs, "--- killed {round}\n{}", read_log(&log)).unwrap();
        let (id, blob) = newest_complete_blob(&chk);
        apply(&blob);
        // The restart falls back to the previous checkpoint and says why.
        let log = logs.join(format!("restarted-{round}.log"));
        let mut child = job.spawn(&log);
        std::thread::sleep(Duration::from_millis(600));
        let text = read_log(&log);
        assert!(
            text.contains(&format!("skipping checkpoint {id}")) && text.contains("corrupt"),
            "{damage} in {} was not reported:\n{text}",
            blob.display()
        );
        let restored = restored_id(&text);
        assert!(
            restored.is_some_and(|r| r < id),
            "after skipping checkpoint {id}, no older checkpoint was restored:\n{text}"
        );
        if round + 1 < damages.len() {
            kill(&mut child);
        } else {
            let status = wait_until(&mut child, Instant::now() + RUN_TIMEOUT);
            assert!(status.is_some_and(|s| s.success()), "the last run failed:\n{}", read_log(&log));
        }
        writeln!(all_logs, "--- restarted {round}\n{}", read_log(&log)).unwrap();
    }
    assert_exact(&out, &all_logs, "restarts from damaged checkpoints");
}

#[test]
fn restarts_with_more_and_with_fewer_workers_publish_exactly_once() {
    let scratch = Scratch::new("rescale");
    let (out, chk, logs) = (scratch.join("out"), scratch.join("chk"), scratch.join("logs"));
    fs::create_dir_all(&logs).unwrap();
    let job = Job::checkpointed(&input().dir, &out, &chk);
    let mut rng = Rng(seed() ^ 0x7E5C_A1E0);
    // 2 workers, then 3, 1, 4, 2, 3, 1, ...: every attempt with another parallelism.
    let sequence = [2, 3, 1, 4];
    let a = kill_until_done(&job, &logs, &mut rng, 8, |attempt| sequence[attempt % sequence.len()]);
    assert!(a.kills >= 4, "only {} kills before the job finished", a.kills);
    assert!(a.restored > 0, "no attempt resumed from a checkpoint:\n{}", a.logs);
    assert_exact(&out, &a.logs, &format!("rescaled restarts ({} kills)", a.kills));
}

#[test]
fn a_corrupt_newest_checkpoint_whose_output_was_published_then_fewer_workers() {
    // The newest checkpoint completed and its output was published before the kill; then
    // it is damaged, so the restart falls back to the one before and replays the input
    // from there, with one worker instead of two.
    let scratch = Scratch::new("corrupt-rescale");
    let (out, chk, logs) = (scratch.join("out"), scratch.join("chk"), scratch.join("logs"));
    fs::create_dir_all(&logs).unwrap();
    let job = Job::checkpointed(&input().dir, &out, &chk);
    let mut all_logs = String::new();
    let mut damaged = None;
    for attempt in 0..10 {
        let log = logs.join(format!("killed-{attempt}.log"));
        let mut child = job.spawn(&log);
        std::thread::sleep(Duration::from_millis(700));
        assert!(child.try_wait().unwrap().is_none(), "the job ended before it could be killed");
        kill(&mut child);
        writeln!(all_logs, "--- killed {attempt}\n{}", read_log(&log)).unwrap();
        let (id, blob) = newest_complete_blob(&chk);
        if out.join(format!("scores-{id:010}-00001.txt")).exists() {
            let mut bytes = fs::read(&blob).unwrap();
            let i = bytes.len() / 2;
            bytes[i] ^= 0x01;
            fs::write(&blob, bytes).unwrap();
            damaged = Some(id);
            break;
        }
    }
    let id = damaged.expect("a kill after the newest checkpoint's output was published");
    let log = run_to_end(job.clone().workers(1), &logs.join("final.log"));
    assert!(log.contains(&format!("skipping checkpoint {id}")), "the damage was not reported:\n{log}");
    writeln!(all_logs, "--- final (1 worker)\n{log}").unwrap();
    assert_exact(&out, &all_logs, &format!("restart with 1 worker after checkpoint {id} was damaged"));
}

/// Asks the job checkpointing into `chk` for a savepoint in `target` through a request
/// file (what `millstream savepoint` does) and waits for the answer.
fn request_savepoint(
    chk: &Path,
    target: &Path,
    stop: bool,
    id: &str,
) -> millstream::checkpoint::SavepointOutcome {
    use millstream::checkpoint::{CheckpointStore, SavepointRequest};
    let store = CheckpointStore::local(chk).expect("open the checkpoint store");
    let request = SavepointRequest { id: id.to_owned(), target: target.display().to_string(), stop };
    store.submit_savepoint_request(&request).expect("write the request");
    let deadline = Instant::now() + RUN_TIMEOUT;
    loop {
        if let Some(outcome) = store.savepoint_outcome(id).expect("read the outcome") {
            return outcome;
        }
        assert!(Instant::now() < deadline, "no answer to savepoint request {id}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn stops_with_savepoints_resumed_on_fewer_and_more_workers_publish_exactly_once() {
    use millstream::checkpoint::SavepointOutcome;
    let scratch = Scratch::new("savepoints");
    let (out, chk, logs) = (scratch.join("out"), scratch.join("chk"), scratch.join("logs"));
    fs::create_dir_all(&logs).unwrap();
    let mut all_logs = String::new();
    let mut from: Option<PathBuf> = None;
    // 2 workers, stop with savepoint; resume on 1, stop again; resume on 3, to the end.
    for (round, workers) in [2usize, 1, 3].into_iter().enumerate() {
        let job = Job {
            from_savepoint: from.clone(),
            ..Job::checkpointed(&input().dir, &out, &chk).workers(workers)
        };
        let log = logs.join(format!("round-{round}.log"));
        if round == 2 {
            writeln!(
                all_logs,
                "--- round {round} ({workers} workers, to the end)\n{}",
                run_to_end(job, &log)
            )
            .unwrap();
            break;
        }
        let mut child = job.spawn(&log);
        std::thread::sleep(Duration::from_millis(800));
        assert!(
            child.try_wait().unwrap().is_none(),
            "the job ended before the savepoint:\n{}",
            read_log(&log)
        );
        let target = scratch.join(&format!("savepoint-{round}"));
        let outcome = request_savepoint(&chk, &target, true, &format!("round-{round}"));
        let status = wait_until(&mut child, Instant::now() + RUN_TIMEOUT);
        writeln!(all_logs, "--- round {round} ({workers} workers, stopped)\n{}", read_log(&log)).unwrap();
        assert!(status.is_some_and(|s| s.success()), "the job did not stop cleanly:\n{all_logs}");
        match outcome {
            SavepointOutcome::Completed { stopped: true, .. } => {}
            other => panic!("round {round}: {other:?}\n{all_logs}"),
        }
        from = Some(target);
    }
    assert_exact(&out, &all_logs, "stops with savepoints, resumed on 1 then 3 workers");
}
