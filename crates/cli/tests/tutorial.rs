//! The tutorial (`docs/tutorial.md`) as a user follows it: its files are taken from the
//! document (the fenced blocks after `<!-- tutorial-file: NAME -->`) into a fresh crate in
//! a temporary directory outside the workspace, which depends on `millstream` by path; the
//! crate is built, the tutorial's `millstream` commands create and fill the topics, the
//! job runs, is killed (as Ctrl-C ends it: see `interrupt`) once it has published results,
//! more scores are produced, the job runs again and resumes from its checkpoint, and the
//! output topic must then hold exactly the results the tutorial shows (the block after
//! `<!-- tutorial-output: totals -->`): nothing lost, nothing twice.
//!
//! The crate is built with cargo's dev profile into this workspace's target directory,
//! with the workspace's `Cargo.lock` and profile settings, so that it reuses the
//! dependencies `cargo test` already built and compiles little more than the millstream
//! crates (without the heavy connector features) and the job itself.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const TUTORIAL: &str = include_str!("../../../docs/tutorial.md");
/// How long any one wait may take before the test calls the job hung.
const PATIENCE: Duration = Duration::from_secs(300);

/// The body of the fenced block that follows `marker` in the tutorial.
fn block_after(marker: &str) -> &'static str {
    let at = TUTORIAL.find(marker).unwrap_or_else(|| panic!("the tutorial has no {marker}"));
    let rest = &TUTORIAL[at + marker.len()..];
    let fence = rest.find("```").unwrap_or_else(|| panic!("no code block after {marker}"));
    let body = &rest[fence..];
    let start = body.find('\n').map(|i| i + 1).unwrap_or_else(|| panic!("unterminated block after {marker}"));
    let end = body[start..].find("```").unwrap_or_else(|| panic!("unterminated block after {marker}"));
    &body[start..start + end]
}

fn tutorial_file(name: &str) -> &'static str {
    block_after(&format!("<!-- tutorial-file: {name} -->"))
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root")
}

/// The target directory this test was built into (`<target>/<profile>/deps/<test>`).
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.ancestors().nth(3).expect("test executable under <target>/<profile>/deps").to_path_buf()
}

/// Writes the tutorial's crate into `dir`: its files, with the dependency on millstream
/// pointing at this workspace, plus the workspace's lock file and dev profile (for
/// sharing built dependencies; the tutorial's own crate needs neither).
fn write_crate(dir: &Path) {
    let manifest = tutorial_file("Cargo.toml");
    let tutorial_dependency = r#"millstream = { path = "../millstream/crates/millstream" }"#;
    assert!(manifest.contains(tutorial_dependency), "the tutorial's Cargo.toml changed: {manifest}");
    let here = workspace_root().join("crates/millstream");
    let manifest = manifest.replace(tutorial_dependency, &format!("millstream = {{ path = {:?} }}", here));
    let workspace_manifest =
        std::fs::read_to_string(workspace_root().join("Cargo.toml")).expect("workspace Cargo.toml");
    let profiles = &workspace_manifest[workspace_manifest.find("[profile.").expect("workspace profiles")..];
    std::fs::create_dir_all(dir.join("src")).expect("create the crate");
    std::fs::write(dir.join("Cargo.toml"), format!("{manifest}\n# Added by the test:\n{profiles}"))
        .expect("write");
    std::fs::copy(workspace_root().join("Cargo.lock"), dir.join("Cargo.lock")).expect("copy Cargo.lock");
    for name in ["src/main.rs", "scores-1.txt", "scores-2.txt"] {
        std::fs::write(dir.join(name), tutorial_file(name)).expect("write a tutorial file");
    }
}

fn show(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// Runs `millstream <args>` in the crate's directory (the log's default location is
/// `./millstream-data/log` there), as the tutorial does; checks that the tutorial shows
/// the command; returns its standard output.
fn millstream(dir: &Path, args: &str) -> String {
    assert!(
        TUTORIAL.contains(&format!("millstream {args}\n")),
        "the tutorial does not say `millstream {args}`"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_millstream"))
        .args(args.split_whitespace())
        .current_dir(dir)
        .env_remove("MILLSTREAM_LOG_DIR")
        .output()
        .expect("the millstream binary runs");
    assert!(out.status.success(), "millstream {args} failed: {}", show(&out));
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// The records of topic `totals`, as `millstream consume totals` prints them.
fn totals(dir: &Path) -> Vec<String> {
    millstream(dir, "consume totals").lines().map(str::to_owned).collect()
}

/// Starts the job; its standard error goes to `job-<run>.stderr` in the crate's directory
/// (a file, not a pipe nobody reads while it runs).
fn start_job(binary: &Path, dir: &Path, run: u32) -> Child {
    let stderr = std::fs::File::create(dir.join(format!("job-{run}.stderr"))).expect("create stderr file");
    Command::new(binary)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .expect("the tutorial's job starts")
}

/// Waits until `totals` holds at least `count` records, while the job keeps running.
fn wait_for_totals(dir: &Path, job: &mut Child, run: u32, count: usize) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if totals(dir).len() >= count {
            return;
        }
        if let Some(status) = job.try_wait().expect("job status") {
            let stderr = std::fs::read_to_string(dir.join(format!("job-{run}.stderr"))).unwrap_or_default();
            panic!("the job exited ({status}) before publishing {count} results: {stderr}");
        }
        assert!(Instant::now() < deadline, "the job published fewer than {count} results in {PATIENCE:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Ctrl-C, in effect: the job sets no signal handler, so SIGINT from a terminal ends it at
/// once, as SIGKILL does. The test sends SIGKILL, since a child of a non-interactive shell
/// may have SIGINT ignored (then it would not stop at all).
fn interrupt(mut job: Child) {
    job.kill().expect("kill the job");
    let status = job.wait().expect("the job ends");
    assert!(!status.success(), "a killed job does not report success: {status}");
}

#[test]
fn the_tutorial_job_resumes_after_ctrl_c_and_publishes_every_result_once() {
    let tmp = tempfile::Builder::new().prefix("millstream-tutorial-").tempdir().expect("temp dir");
    let dir = tmp.path().join("scores");
    write_crate(&dir);

    let target = target_dir();
    let started = Instant::now();
    let build = Command::new(env!("CARGO"))
        .args(["build", "--quiet"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .expect("cargo runs");
    assert!(build.status.success(), "the tutorial's crate does not build: {}", show(&build));
    eprintln!("tutorial crate built in {:.1} s", started.elapsed().as_secs_f64());
    let binary = target.join("debug").join("scores");

    millstream(&dir, "topic create scores --partitions 2");
    millstream(&dir, "topic create totals --partitions 2");
    millstream(&dir, "produce scores --file scores-1.txt --key-separator ,");

    // Until the first results are published (a checkpoint completed), then Ctrl-C.
    let mut job = start_job(&binary, &dir, 1);
    wait_for_totals(&dir, &mut job, 1, 1);
    interrupt(job);
    let before_restart = totals(&dir);

    millstream(&dir, "produce scores --file scores-2.txt --key-separator ,");
    let expected_lines = block_after("<!-- tutorial-output: totals -->");
    let mut expected: Vec<String> = expected_lines.lines().map(str::to_owned).collect();
    let mut job = start_job(&binary, &dir, 2);
    wait_for_totals(&dir, &mut job, 2, expected.len());
    interrupt(job);

    let mut got = totals(&dir);
    assert!(!before_restart.is_empty());
    for line in &before_restart {
        assert_eq!(
            got.iter().filter(|l| *l == line).count(),
            1,
            "{line:?}, published before the restart, must be in the output once: {got:?}"
        );
    }
    got.sort();
    expected.sort();
    assert_eq!(got, expected, "the output topic must hold exactly the tutorial's results, each once");
    // The tutorial's other commands (not run here: they wait for Ctrl-C).
    for shown in ["cargo run --release\n", "millstream consume totals --follow\n"] {
        assert!(TUTORIAL.contains(shown), "the tutorial does not say {shown:?}");
    }
}
