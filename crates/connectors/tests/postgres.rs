//! The PostgreSQL upsert sink against a real PostgreSQL: `MILLSTREAM_POSTGRES_URL`, by
//! default `host=127.0.0.1 port=5432 user=postgres dbname=test` (which `.ci/run` starts).
//! When the server is unreachable the tests are skipped, except under `CI=true`, where
//! they fail.
//!
//! Every test works on its own tables and sink ids (suffixed with the process id and the
//! test's name) and removes them at the end.

use millstream_checkpoint::CheckpointStore;
use millstream_connectors::postgres::{PostgresUpsertSink, SqlValue};
use millstream_model::combiners::Sum;
use millstream_model::{Duration, GlobalWindows, OnTimeBehavior, Timestamp, Trigger, WindowedValue};
use millstream_runtime::{
    CheckpointConfig, Pipeline, ReadStatus, Runner, Source, SourceError, SourceReader, TransactionalSink,
    WatermarkStrategy, Window,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tokio_postgres::{NoTls, SimpleQueryMessage};

fn url() -> String {
    std::env::var("MILLSTREAM_POSTGRES_URL")
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=test".to_owned())
}

/// The test's own connection, to set up and inspect tables.
struct Db {
    rt: tokio::runtime::Runtime,
    client: tokio_postgres::Client,
}

impl Db {
    /// Connects, or says why the test is skipped (`None`); under `CI=true`, fails.
    fn connect_or_skip() -> Option<Db> {
        let url = url();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let connected = rt.block_on(async {
            let connect = tokio_postgres::connect(&url, NoTls);
            match tokio::time::timeout(std::time::Duration::from_secs(5), connect).await {
                Ok(Ok(c)) => Ok(c),
                Ok(Err(e)) => Err(format!("{e}: {:?}", std::error::Error::source(&e))),
                Err(_) => Err("no answer within 5 s".to_owned()),
            }
        });
        match connected {
            Ok((client, connection)) => {
                rt.spawn(connection);
                Some(Db { rt, client })
            }
            Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
                panic!("PostgreSQL not reachable at {url} (CI=true, so this fails): {e}")
            }
            Err(e) => {
                eprintln!("skipping: PostgreSQL not reachable at {url}: {e}");
                None
            }
        }
    }

    fn exec(&self, sql: &str) {
        self.rt.block_on(self.client.batch_execute(sql)).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    }

    /// Rows as text (`NULL` as "NULL").
    fn rows(&self, sql: &str) -> Vec<Vec<String>> {
        let messages =
            self.rt.block_on(self.client.simple_query(sql)).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
        messages
            .into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).unwrap_or("NULL").to_owned()).collect())
                }
                _ => None,
            })
            .collect()
    }

    fn count(&self, sql: &str) -> i64 {
        self.rows(sql)[0][0].parse().unwrap()
    }
}

/// A test's tables and sink ids, removed when dropped.
struct Scope {
    db: Db,
    name: String,
}

impl Scope {
    fn new(test: &str) -> Option<Scope> {
        let db = Db::connect_or_skip()?;
        let name = format!("ms_pg_{}_{test}", std::process::id());
        let scope = Scope { db, name };
        scope.clean();
        Some(scope)
    }

    /// The test's table `ms_pg_<pid>_<test>_<suffix>`.
    fn table(&self, suffix: &str) -> String {
        format!("{}_{suffix}", self.name)
    }

    /// A sink id of this test.
    fn sink_id(&self, suffix: &str) -> String {
        format!("{}_{suffix}", self.name)
    }

    fn markers(&self, sink_id: &str) -> Vec<(i64, i64)> {
        // In a fresh database the sink creates its tables when its job starts.
        if self.db.count("SELECT count(*) FROM pg_tables WHERE tablename = 'millstream_sink_commits'") == 0 {
            return Vec::new();
        }
        self.db
            .rows(&format!(
                "SELECT worker, epoch FROM millstream_sink_commits WHERE sink_id = '{sink_id}' ORDER BY epoch, worker"
            ))
            .into_iter()
            .map(|r| (r[0].parse().unwrap(), r[1].parse().unwrap()))
            .collect()
    }

    fn staged(&self, sink_id: &str) -> Vec<(i64, i64)> {
        self.db
            .rows(&format!(
                "SELECT DISTINCT worker, epoch FROM millstream_staging WHERE sink_id = '{sink_id}' ORDER BY worker, epoch"
            ))
            .into_iter()
            .map(|r| (r[0].parse().unwrap(), r[1].parse().unwrap()))
            .collect()
    }

    /// Drops the test's tables and its sinks' markers and staging rows (errors ignored:
    /// this also runs while a failed test unwinds).
    fn clean(&self) {
        let tables = self.db.rt.block_on(self.db.client.simple_query(&format!(
            "SELECT tablename FROM pg_tables WHERE tablename LIKE '{}%' AND schemaname = current_schema()",
            self.name
        )));
        for m in tables.unwrap_or_default() {
            if let SimpleQueryMessage::Row(r) = m {
                let sql = format!("DROP TABLE IF EXISTS \"{}\"", r.get(0).unwrap_or_default());
                let _ = self.db.rt.block_on(self.db.client.batch_execute(&sql));
            }
        }
        for table in ["millstream_staging", "millstream_sink_commits"] {
            let sql = format!("DELETE FROM {table} WHERE sink_id LIKE '{}%'", self.name);
            let _ = self.db.rt.block_on(self.db.client.batch_execute(&sql));
        }
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        self.clean();
    }
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("millstream-pg-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// The numbers `0..n` over 4 partitions, read a few at a time with a pause (so that
/// checkpoints happen in between); optionally failing at `fail_at`.
#[derive(Clone)]
struct Numbers {
    n: u64,
    fail_at: Option<u64>,
    pause: std::time::Duration,
}

impl Numbers {
    fn new(n: u64, fail_at: Option<u64>) -> Self {
        Numbers { n, fail_at, pause: std::time::Duration::from_micros(300) }
    }
}

struct NumbersReader {
    next: u64,
    step: u64,
    source: Numbers,
}

impl Source<u64> for Numbers {
    fn partitions(&self, _workers: usize) -> Result<usize, SourceError> {
        Ok(4)
    }
    fn open(&self, partition: usize, partitions: usize) -> Result<Box<dyn SourceReader<u64>>, SourceError> {
        Ok(Box::new(NumbersReader { next: partition as u64, step: partitions as u64, source: self.clone() }))
    }
    fn reopen(
        &self,
        _partition: usize,
        partitions: usize,
        position: &[u8],
    ) -> Result<Box<dyn SourceReader<u64>>, SourceError> {
        let next =
            u64::from_le_bytes(position.try_into().map_err(|_| SourceError::new("position", "bad length"))?);
        Ok(Box::new(NumbersReader { next, step: partitions as u64, source: self.clone() }))
    }
    fn watermarks(&self) -> WatermarkStrategy {
        WatermarkStrategy::from_source()
    }
}

impl SourceReader<u64> for NumbersReader {
    fn read(&mut self, out: &mut Vec<(u64, Timestamp)>, _max: usize) -> Result<ReadStatus, SourceError> {
        std::thread::sleep(self.source.pause);
        for _ in 0..20 {
            if self.next >= self.source.n {
                return Ok(ReadStatus::Finished);
            }
            if Some(self.next) == self.source.fail_at {
                return Err(SourceError::new(format!("element {}", self.next), "injected failure"));
            }
            out.push((self.next, Timestamp::MIN));
            self.next += self.step;
        }
        Ok(ReadStatus::Data)
    }
    fn watermark(&self) -> Option<Timestamp> {
        Some(Timestamp::MIN)
    }
    fn checkpoint_position(&self) -> Option<Vec<u8>> {
        Some(self.next.to_le_bytes().to_vec())
    }
}

const KEYS: u64 = 13;

/// `(key, count, pane index)` rows, keyed by `key`.
fn counts_sink(table: &str, sink_id: &str) -> PostgresUpsertSink<(u64, u64)> {
    PostgresUpsertSink::new(&url(), table, sink_id, |v: &WindowedValue<(u64, u64)>| {
        vec![
            SqlValue::I64(v.value.0 as i64),
            SqlValue::I64(v.value.1 as i64),
            SqlValue::I64(v.pane.index as i64),
        ]
    })
    .columns(&["k", "n", "pane"])
    .key_columns(&["k"])
    .create_table_if_missing(&format!(
        "CREATE TABLE \"{table}\" (k bigint PRIMARY KEY, n bigint NOT NULL, pane bigint NOT NULL)"
    ))
}

/// Running counts per key (a trigger that fires every 10 elements of a key, accumulating,
/// and the on-time pane when the input completes), upserted into PostgreSQL exactly once,
/// with checkpoints every 50 ms.
///
/// The tests give keys counts that are not multiples of 10, so a key's final count comes
/// from the on-time pane the end-of-window timer fires once the input is complete: that
/// pane must reach the sink in an epoch no earlier than the count-fired panes sent before
/// it, or an upsert sink, which applies epochs in order, would end with a stale count.
fn run_counts(
    source: Numbers,
    sink: PostgresUpsertSink<(u64, u64)>,
    checkpoints: &Path,
    workers: usize,
) -> Result<(), String> {
    let p = Pipeline::new();
    p.read("Numbers", source)
        .map(|x| (x % KEYS, 1u64))
        .window_into(
            Window::into(GlobalWindows)
                .triggering(Trigger::repeatedly(Trigger::after_count(10)))
                .with_on_time_behavior(OnTimeBehavior::FireAlways)
                .accumulating_fired_panes(),
        )
        .combine_per_key(Sum)
        .write_exactly_once("Counts", sink);
    let store = CheckpointStore::local(checkpoints).map_err(|e| e.to_string())?;
    Runner::new()
        .workers(workers)
        .checkpointing(CheckpointConfig::new(store).interval(Duration::from_millis(50)))
        .run(&p)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn expected_counts(n: u64) -> BTreeMap<i64, i64> {
    (0..KEYS).map(|k| (k as i64, (0..n).filter(|x| x % KEYS == k).count() as i64)).collect()
}

fn table_counts(db: &Db, table: &str) -> BTreeMap<i64, i64> {
    db.rows(&format!("SELECT k, n FROM \"{table}\""))
        .into_iter()
        .map(|r| (r[0].parse().unwrap(), r[1].parse().unwrap()))
        .collect()
}

#[test]
fn keyed_running_counts_end_as_the_exact_table() {
    let Some(scope) = Scope::new("counts") else { return };
    for workers in [1, 2] {
        let table = scope.table(&format!("w{workers}"));
        let sink_id = scope.sink_id(&format!("w{workers}"));
        let chk = temp_dir(&format!("counts-{workers}"));
        // Keys 0..7 get 601 elements, the others 600.
        let n = KEYS * 600 + 7;
        // Slow enough for several checkpoints.
        let source = Numbers { pause: std::time::Duration::from_millis(1), ..Numbers::new(n, None) };
        run_counts(source, counts_sink(&table, &sink_id), &chk, workers).unwrap();

        assert_eq!(table_counts(&scope.db, &table), expected_counts(n), "{workers} workers");
        // Keys were updated many times: every key's last pane has a high index, and many
        // epochs committed rows.
        let min_pane = scope.db.count(&format!("SELECT min(pane) FROM \"{table}\""));
        assert!(min_pane >= 10, "last pane index {min_pane}");
        let markers = scope.markers(&sink_id);
        assert!(markers.len() >= 3, "{} epochs committed rows", markers.len());
        let updates = scope
            .db
            .count(&format!("SELECT sum(rows) FROM millstream_sink_commits WHERE sink_id = '{sink_id}'"));
        assert!(updates >= KEYS as i64 * 3, "{updates} rows upserted");
        assert!(scope.staged(&sink_id).is_empty(), "nothing left in staging");
        let _ = std::fs::remove_dir_all(&chk);
    }
}

#[test]
fn a_failed_job_restarted_from_its_checkpoint_gives_the_same_table() {
    let Some(scope) = Scope::new("restart") else { return };
    for (workers, restarted) in [(1, 1), (2, 2), (2, 3), (3, 1)] {
        let table = scope.table(&format!("w{workers}_{restarted}"));
        let sink_id = scope.sink_id(&format!("w{workers}_{restarted}"));
        let chk = temp_dir(&format!("restart-{workers}-{restarted}"));
        // Keys 0..5 get 1504 elements, the others 1503.
        let n = KEYS * 1503 + 5;
        // Slow enough that checkpoints complete before the failure (about 150 ms in).
        let failing = Numbers { pause: std::time::Duration::from_millis(1), ..Numbers::new(n, Some(12_001)) };
        let err = run_counts(failing, counts_sink(&table, &sink_id), &chk, workers).unwrap_err();
        assert!(err.contains("injected failure"), "{err}");

        // Only epochs of complete checkpoints were published.
        let store = CheckpointStore::local(&chk).unwrap();
        let checkpoint = store.latest_complete().unwrap().expect("a checkpoint before the failure").id;
        let before = scope.markers(&sink_id);
        assert!(!before.is_empty(), "something was committed before the failure");
        assert!(
            before.iter().all(|(_, e)| *e as u64 <= checkpoint),
            "{before:?} after checkpoint {checkpoint}"
        );
        let partial = table_counts(&scope.db, &table);
        let expected = expected_counts(n);
        assert!(partial.iter().all(|(k, c)| *c < expected[k]), "{partial:?}");

        run_counts(Numbers::new(n, None), counts_sink(&table, &sink_id), &chk, restarted).unwrap();
        assert_eq!(table_counts(&scope.db, &table), expected, "{workers} then {restarted} workers");
        // Each (worker, epoch) is committed once (the marker is the table's primary key),
        // the first run's markers are kept and nothing is left in staging.
        let after = scope.markers(&sink_id);
        assert!(before.iter().all(|m| after.contains(m)), "{before:?} {after:?}");
        assert!(after.len() > before.len());
        assert!(scope.staged(&sink_id).is_empty(), "{:?}", scope.staged(&sink_id));
        let _ = std::fs::remove_dir_all(&chk);
    }
}

/// `(key, value)` rows in a table `(k text PRIMARY KEY, v bigint)`.
fn kv_sink(table: &str, sink_id: &str) -> PostgresUpsertSink<(String, i64)> {
    PostgresUpsertSink::new(&url(), table, sink_id, |v: &WindowedValue<(String, i64)>| {
        vec![SqlValue::from(v.value.0.as_str()), SqlValue::I64(v.value.1)]
    })
    .columns(&["k", "v"])
    .key_columns(&["k"])
    .create_table_if_missing(&format!("CREATE TABLE \"{table}\" (k text PRIMARY KEY, v bigint)"))
}

fn kv(pairs: &[(&str, i64)]) -> Vec<WindowedValue<(String, i64)>> {
    pairs.iter().map(|(k, v)| WindowedValue::in_global_window((k.to_string(), *v), Timestamp::MIN)).collect()
}

fn table_kv(db: &Db, table: &str) -> Vec<(String, String)> {
    db.rows(&format!("SELECT k, v FROM \"{table}\" ORDER BY k"))
        .into_iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect()
}

fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
    p.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[test]
fn committing_the_same_handles_twice_changes_nothing() {
    let Some(scope) = Scope::new("idem") else { return };
    let table = scope.table("t");
    let sink_id = scope.sink_id("s");
    let sink = kv_sink(&table, &sink_id);
    let mut w = sink.open(0, 1).unwrap();
    w.recover(&[], 0).unwrap();
    // Within an epoch the last row of a key wins; across epochs the later epoch.
    w.write(&kv(&[("a", 1), ("b", 2), ("a", 3)])).unwrap();
    let h1 = w.pre_commit(1).unwrap();
    w.write(&kv(&[("b", 5), ("c", 6)])).unwrap();
    let h2 = w.pre_commit(2).unwrap();
    let h3 = w.pre_commit(3).unwrap(); // an empty epoch
    assert!(table_kv(&scope.db, &table).is_empty(), "nothing is published before the commit");
    assert_eq!(scope.staged(&sink_id), vec![(0, 1), (0, 2)]);

    w.commit(&[h2.clone(), h1.clone(), h3.clone()]).unwrap();
    let committed = pairs(&[("a", "3"), ("b", "5"), ("c", "6")]);
    assert_eq!(table_kv(&scope.db, &table), committed);
    assert_eq!(scope.markers(&sink_id), vec![(0, 1), (0, 2)]);
    assert!(scope.staged(&sink_id).is_empty());

    // Someone else changes a row: committing again must not re-apply the epochs.
    scope.db.exec(&format!("UPDATE \"{table}\" SET v = 100 WHERE k = 'a'"));
    let changed = pairs(&[("a", "100"), ("b", "5"), ("c", "6")]);
    w.commit(&[h1.clone(), h2.clone(), h3.clone()]).unwrap();
    assert_eq!(table_kv(&scope.db, &table), changed);

    // Nor after a restart (a new writer, which reads rows from staging, not memory).
    drop(w);
    let mut w = sink.open(0, 1).unwrap();
    w.recover(&[h1.clone(), h2.clone()], 3).unwrap();
    w.commit(&[h1, h2, h3]).unwrap();
    assert_eq!(table_kv(&scope.db, &table), changed);
    assert_eq!(scope.markers(&sink_id), vec![(0, 1), (0, 2)]);
}

#[test]
fn recover_deletes_the_staging_rows_the_checkpoint_does_not_list() {
    let Some(scope) = Scope::new("recover") else { return };
    let table = scope.table("t");
    let sink_id = scope.sink_id("s");
    let sink = kv_sink(&table, &sink_id);
    // A failed attempt on 3 workers: each pre-committed epochs 1 and 2; worker 0 also
    // committed epoch 1 and (as if a newer checkpoint completed) epoch 2.
    let mut handles = Vec::new();
    for worker in 0..3 {
        let mut w = sink.open(worker, 3).unwrap();
        w.recover(&[], 0).unwrap();
        w.write(&kv(&[(&format!("w{worker}-e1"), 1)])).unwrap();
        let h1 = w.pre_commit(1).unwrap();
        w.write(&kv(&[(&format!("w{worker}-e2"), 2)])).unwrap();
        let h2 = w.pre_commit(2).unwrap();
        if worker == 0 {
            w.commit(&[h1.clone(), h2]).unwrap();
        }
        handles.push(h1);
    }
    assert_eq!(scope.staged(&sink_id), vec![(1, 1), (1, 2), (2, 1), (2, 2)]);
    assert_eq!(scope.markers(&sink_id), vec![(0, 1), (0, 2)]);

    // Restart from checkpoint 1 on 2 workers: worker 0 takes over old workers 0 and 2,
    // worker 1 old worker 1.
    let mut new0 = sink.open(0, 2).unwrap();
    let pending0 = vec![handles[0].clone(), handles[2].clone()];
    new0.recover(&pending0, 1).unwrap();
    // Old worker 2's epoch 2 is gone, old worker 1's rows are worker 1's to recover; the
    // marker of epoch 2 (after the restored checkpoint) is withdrawn, epoch 1's kept.
    assert_eq!(scope.staged(&sink_id), vec![(1, 1), (1, 2), (2, 1)]);
    assert_eq!(scope.markers(&sink_id), vec![(0, 1)]);
    let mut new1 = sink.open(1, 2).unwrap();
    new1.recover(&handles[1..2], 1).unwrap();
    assert_eq!(scope.staged(&sink_id), vec![(1, 1), (2, 1)]);

    new0.commit(&pending0).unwrap();
    new1.commit(&handles[1..2]).unwrap();
    assert!(scope.staged(&sink_id).is_empty());
    assert_eq!(scope.markers(&sink_id), vec![(0, 1), (1, 1), (2, 1)]);
    // Epoch 2 of worker 0 had been published (it cannot be withdrawn from an upsert
    // table); the replay overwrites such keys.
    assert_eq!(
        table_kv(&scope.db, &table),
        pairs(&[("w0-e1", "1"), ("w0-e2", "2"), ("w1-e1", "1"), ("w2-e1", "1")])
    );

    // The replayed epoch 2 is committed again (its old marker was withdrawn).
    new0.write(&kv(&[("w0-e2", 22)])).unwrap();
    let h = new0.pre_commit(2).unwrap();
    new0.commit(&[h]).unwrap();
    assert_eq!(table_kv(&scope.db, &table)[1], ("w0-e2".to_string(), "22".to_string()));
}

#[test]
fn a_server_that_goes_away_fails_the_job_and_a_restart_gives_the_exact_table() {
    let Some(scope) = Scope::new("kill") else { return };
    let table = scope.table("t");
    let sink_id = scope.sink_id("s");
    let app = format!("ms-test-{}-kill", std::process::id());
    let chk = temp_dir("kill");
    // Keys 0..11 get 2301 elements, the last one 2300.
    let n = KEYS * 2300 + 12;
    // About 3 s of input.
    let slow = Numbers { pause: std::time::Duration::from_millis(1), ..Numbers::new(n, None) };
    let job = {
        let (sink, slow, chk) =
            (counts_sink(&table, &sink_id).application_name(&app), slow.clone(), chk.clone());
        std::thread::spawn(move || run_counts(slow, sink, &chk, 2))
    };
    let started = Instant::now();
    while scope.markers(&sink_id).len() < 2 {
        assert!(started.elapsed().as_secs() < 60, "no commit within a minute");
        assert!(!job.is_finished(), "the job ended before the server went away");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let killed = scope.db.count(&format!(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = '{app}'"
    ));
    assert_eq!(killed, 2, "one connection per worker");
    let err = job.join().unwrap().unwrap_err();
    assert!(err.contains(&format!("PostgreSQL sink `{sink_id}`")), "{err}");
    assert!(err.contains(&format!("table {table}")), "{err}");
    assert!(err.contains("epoch "), "{err}");
    assert!(
        err.contains("terminating connection due to administrator command") || err.contains("connection"),
        "{err}"
    );
    eprintln!("the job failed with: {err}");

    run_counts(slow, counts_sink(&table, &sink_id).application_name(&app), &chk, 2).unwrap();
    assert_eq!(table_counts(&scope.db, &table), expected_counts(n));
    assert!(scope.staged(&sink_id).is_empty());
    let _ = std::fs::remove_dir_all(&chk);
}

fn open_err<T: 'static>(sink: PostgresUpsertSink<T>) -> String {
    match sink.open(0, 1) {
        Ok(_) => panic!("opened"),
        Err(e) => e,
    }
}

#[test]
fn bad_configurations_give_clear_errors() {
    // Checked before connecting.
    let row = |_: &WindowedValue<i64>| vec![SqlValue::Null];
    let sink = || PostgresUpsertSink::new(&url(), "t", "id", row);
    let e = open_err(sink().key_columns(&["k"]));
    assert!(e.contains("no columns given") && e.contains("PostgreSQL sink `id` (table t"), "{e}");
    let e = open_err(sink().columns(&["k"]));
    assert!(e.contains("no key columns"), "{e}");
    let e = open_err(sink().columns(&["k", "v"]).key_columns(&["x"]));
    assert!(e.contains("key column \"x\" is not one of the columns"), "{e}");
    let e = open_err(sink().columns(&["k", "k"]).key_columns(&["k"]));
    assert!(e.contains("listed twice"), "{e}");
    let e = open_err(sink().columns(&["k\0"]).key_columns(&["k\0"]));
    assert!(e.contains("control character"), "{e}");
    let e = open_err(PostgresUpsertSink::new(&url(), "a.b.c", "id", row).columns(&["k"]).key_columns(&["k"]));
    assert!(e.contains("schema.table"), "{e}");
    let e = open_err(
        PostgresUpsertSink::new("host=127.0.0.1 port=notaport", "t", "id", row)
            .columns(&["k"])
            .key_columns(&["k"]),
    );
    assert!(e.contains("bad connection string"), "{e}");

    // Nothing listening.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let refused = format!("host=127.0.0.1 port={port} user=postgres dbname=test connect_timeout=2");
    let e = open_err(PostgresUpsertSink::new(&refused, "t", "id", row).columns(&["k"]).key_columns(&["k"]));
    assert!(
        e.contains(&format!("connecting to 127.0.0.1:{port}")) && e.contains("error connecting to server"),
        "{e}"
    );
    // A server that accepts the connection and never answers: the connect timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let silent_url = format!("host=127.0.0.1 port={port} user=postgres dbname=test");
    let started = Instant::now();
    let e = open_err(
        PostgresUpsertSink::new(&silent_url, "t", "id", row)
            .columns(&["k"])
            .key_columns(&["k"])
            .connect_timeout(std::time::Duration::from_millis(300)),
    );
    assert!(e.contains("no answer from the server within 300ms"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    drop(silent);

    let Some(scope) = Scope::new("config") else { return };
    let sink_id = scope.sink_id("s");
    // A missing table without DDL to create it.
    let missing = scope.table("missing");
    let sink = PostgresUpsertSink::new(&url(), &missing, &sink_id, row).columns(&["k"]).key_columns(&["k"]);
    let e = open_err(sink);
    assert!(e.contains(&format!("table {missing} does not exist")), "{e}");
    // The same through a pipeline: the job fails naming the sink.
    let p = Pipeline::new();
    p.create(vec![1i64, 2]).write_exactly_once(
        "Upsert",
        PostgresUpsertSink::new(&url(), &missing, &sink_id, |v: &WindowedValue<i64>| {
            vec![SqlValue::I64(v.value)]
        })
        .columns(&["k"])
        .key_columns(&["k"]),
    );
    let e = Runner::new().run(&p).unwrap_err().to_string();
    assert!(e.contains("sink Upsert failed") && e.contains("does not exist"), "{e}");

    // A key without a unique constraint, a column that does not exist.
    let plain = scope.table("plain");
    scope.db.exec(&format!("CREATE TABLE \"{plain}\" (k bigint, v text)"));
    let e =
        open_err(PostgresUpsertSink::new(&url(), &plain, &sink_id, row).columns(&["k"]).key_columns(&["k"]));
    assert!(e.contains("no unique or exclusion constraint matching the ON CONFLICT"), "{e}");
    let e = open_err(
        PostgresUpsertSink::new(&url(), &plain, &sink_id, row).columns(&["k", "nope"]).key_columns(&["k"]),
    );
    assert!(e.contains("column \"nope\" of relation") && e.contains("does not exist"), "{e}");

    // A value of the wrong type for its column, a row of the wrong length.
    let kv_table = scope.table("kv");
    let bad = PostgresUpsertSink::new(&url(), &kv_table, &sink_id, |v: &WindowedValue<(String, i64)>| {
        vec![SqlValue::from(v.value.0.as_str()), SqlValue::from(v.value.0.as_str())]
    })
    .columns(&["k", "v"])
    .key_columns(&["k"])
    .create_table_if_missing(&format!("CREATE TABLE \"{kv_table}\" (k text PRIMARY KEY, v bigint)"));
    let mut w = bad.open(0, 1).unwrap();
    w.recover(&[], 0).unwrap();
    let e = w.write(&kv(&[("a", 1)])).unwrap_err();
    assert!(e.contains("column \"v\" (int8): SqlValue::Text cannot be written to it"), "{e}");
    assert!(e.contains("epoch 1"), "{e}");
    let short = PostgresUpsertSink::new(&url(), &kv_table, &sink_id, |_: &WindowedValue<(String, i64)>| {
        vec![SqlValue::Null]
    })
    .columns(&["k", "v"])
    .key_columns(&["k"]);
    let mut w = short.open(0, 1).unwrap();
    let e = w.write(&kv(&[("a", 1)])).unwrap_err();
    assert!(e.contains("gave 1 values for the 2 columns"), "{e}");
    // A NULL key: PostgreSQL's error, with the epoch.
    let nulls = PostgresUpsertSink::new(&url(), &kv_table, &sink_id, |_: &WindowedValue<(String, i64)>| {
        vec![SqlValue::Null, SqlValue::I64(1)]
    })
    .columns(&["k", "v"])
    .key_columns(&["k"]);
    let mut w = nulls.open(0, 1).unwrap();
    w.recover(&[], 0).unwrap();
    w.write(&kv(&[("a", 1)])).unwrap();
    let h = w.pre_commit(1).unwrap();
    let e = w.commit(&[h]).unwrap_err();
    assert!(
        e.contains("epoch 1") && e.contains("committing") && e.contains("null value in column \"k\""),
        "{e}"
    );
}

#[test]
fn values_of_every_kind_reach_their_columns() {
    let Some(scope) = Scope::new("types") else { return };
    let table = scope.table("t");
    let sink_id = scope.sink_id("s");
    type Row = Vec<SqlValue>;
    let columns = [
        "id",
        "b",
        "i2",
        "i4",
        "f4",
        "f8",
        "t",
        "vc",
        "by",
        "ts",
        "tstz",
        "num",
        "js",
        "d",
        "u",
        "arr",
        "Odd \"Name\"",
    ];
    let ddl = format!(
        "CREATE TABLE \"{table}\" (id bigint PRIMARY KEY, b boolean, i2 smallint, i4 integer, f4 real, \
         f8 double precision, t text, vc varchar(10), by bytea, ts timestamp, tstz timestamptz, num numeric(10, 2), \
         js jsonb, d date, u uuid, arr integer[], \"Odd \"\"Name\"\"\" text)"
    );
    let sink = PostgresUpsertSink::new(&url(), &table, &sink_id, |v: &WindowedValue<Row>| v.value.clone())
        .columns(&columns)
        .key_columns(&["id"])
        .create_table_if_missing(&ddl);
    let mut w = sink.open(0, 1).unwrap();
    w.recover(&[], 0).unwrap();
    let full: Row = vec![
        SqlValue::I64(1),
        SqlValue::Bool(true),
        SqlValue::I64(-32768),
        SqlValue::I64(2_000_000_000),
        SqlValue::F64(1.5),
        SqlValue::I64(3),
        SqlValue::from("it's \"quoted\""),
        SqlValue::from("short"),
        SqlValue::Bytes(vec![0, 1, 255]),
        SqlValue::Timestamp(1_709_210_096_789),
        SqlValue::Timestamp(-1),
        SqlValue::from("12.345"),
        SqlValue::from("{\"a\": [1, 2]}"),
        SqlValue::Timestamp(86_400_000 * 365),
        SqlValue::from("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
        SqlValue::from("{1,2,3}"),
        SqlValue::from("7"),
    ];
    let nulls: Row =
        std::iter::once(SqlValue::I64(2)).chain(std::iter::repeat_n(SqlValue::Null, 16)).collect();
    let rows: Vec<WindowedValue<Row>> =
        [full, nulls].into_iter().map(|r| WindowedValue::in_global_window(r, Timestamp::MIN)).collect();
    w.write(&rows).unwrap();
    let h = w.pre_commit(1).unwrap();
    // A new writer commits from staging (the stored encoding), not from memory.
    drop(w);
    let mut w = sink.open(0, 1).unwrap();
    w.recover(std::slice::from_ref(&h), 1).unwrap();
    w.commit(&[h]).unwrap();
    scope.db.exec("SET TIME ZONE 'UTC'");
    let got = scope.db.rows(&format!("SELECT * FROM \"{table}\" ORDER BY id"));
    let expected = vec![
        "1",
        "t",
        "-32768",
        "2000000000",
        "1.5",
        "3",
        "it's \"quoted\"",
        "short",
        "\\x0001ff",
        "2024-02-29 12:34:56.789",
        "1969-12-31 23:59:59.999+00",
        "12.35",
        "{\"a\": [1, 2]}",
        "1971-01-01",
        "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
        "{1,2,3}",
        "7",
    ];
    assert_eq!(got[0], expected);
    assert_eq!(got[1][0], "2");
    assert!(got[1][1..].iter().all(|v| v == "NULL"), "{:?}", got[1]);
}
