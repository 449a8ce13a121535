//! [`PostgresUpsertSink`]: rows upserted into a PostgreSQL table exactly once per
//! checkpoint, by committing them in the same transaction as a per-epoch marker.
//!
//! Each worker keeps the rows of the open epoch in memory, de-duplicated by key (the last
//! row for a key wins), so its memory is bounded by the number of distinct keys one worker
//! writes in one checkpoint interval. Then, per epoch:
//!
//! - **pre-commit** (the epoch ends): the rows are written, in one transaction, into the
//!   staging table `millstream_staging` under `(sink_id, worker, epoch)`; the handle
//!   stored in the checkpoint is that triple (and the row count);
//! - **commit** (the checkpoint is complete): in one transaction, the marker
//!   `(sink_id, worker, epoch)` is inserted into `millstream_sink_commits` — if it is
//!   already there the epoch was committed before and nothing else happens — then the
//!   staged rows are upserted into the target (`INSERT ... ON CONFLICT (key) DO UPDATE`)
//!   and deleted from staging;
//! - **recover** (after a restore): staging rows of this sink for the workers this worker
//!   takes over (`worker % workers == this worker`) that the restored checkpoint does not
//!   list are deleted, and so are their markers of epochs after the restored one, since
//!   the replay produces those epochs again.
//!
//! See `docs/connectors.md` for what exactly-once means for an upsert sink.

mod conn;
mod sql;

pub use sql::SqlValue;

use conn::{Conn, Fail};
use millstream_model::WindowedValue;
use millstream_runtime::{TransactionalSink, TransactionalWriter};
use serde::{Deserialize, Serialize};
use sql::{Column, MARKERS, STAGING};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::types::ToSql;
use tokio_postgres::Statement;

type RowFn<T> = Arc<dyn Fn(&WindowedValue<T>) -> Vec<SqlValue> + Send + Sync>;

/// Rows upserted into a PostgreSQL table, exactly once per completed checkpoint.
///
/// ```no_run
/// use millstream_connectors::postgres::{PostgresUpsertSink, SqlValue};
/// use millstream_model::WindowedValue;
/// use millstream_runtime::Pipeline;
/// let p = Pipeline::new();
/// let counts = p.create(vec![("a".to_string(), 1u64), ("b".to_string(), 2)]);
/// counts.write_exactly_once(
///     "Counts",
///     PostgresUpsertSink::new("host=127.0.0.1 user=postgres dbname=test", "word_counts", "word-counts", |v: &WindowedValue<(String, u64)>| {
///         let (word, count) = &v.value;
///         vec![SqlValue::from(word.as_str()), SqlValue::I64(*count as i64)]
///     })
///     .columns(&["word", "count"])
///     .key_columns(&["word"])
///     .create_table_if_missing("CREATE TABLE word_counts (word text PRIMARY KEY, count bigint NOT NULL)"),
/// );
/// ```
pub struct PostgresUpsertSink<T> {
    config: Arc<Config>,
    row: RowFn<T>,
}

#[derive(Clone)]
struct Config {
    url: String,
    table: String,
    sink_id: String,
    columns: Vec<String>,
    key: Vec<String>,
    create_ddl: Option<String>,
    application_name: Option<String>,
    connect_timeout: Duration,
    operation_timeout: Duration,
}

impl<T> PostgresUpsertSink<T> {
    /// Upserts into `table` (`name` or `schema.name`, taken literally: no case folding)
    /// over the connection `url` (`postgresql://user@host:port/db` or
    /// `host=... user=... dbname=...`; plain TCP, no TLS). `sink_id` names this sink's
    /// markers and staging rows: it must be unique among the sinks writing to the same
    /// database and stay the same across restarts of a job. `row` maps an element to the
    /// values of [`columns`](Self::columns), in that order.
    pub fn new(
        url: &str,
        table: &str,
        sink_id: &str,
        row: impl Fn(&WindowedValue<T>) -> Vec<SqlValue> + Send + Sync + 'static,
    ) -> Self {
        PostgresUpsertSink {
            config: Arc::new(Config {
                url: url.to_owned(),
                table: table.to_owned(),
                sink_id: sink_id.to_owned(),
                columns: Vec::new(),
                key: Vec::new(),
                create_ddl: None,
                application_name: None,
                connect_timeout: Duration::from_secs(10),
                operation_timeout: Duration::from_secs(120),
            }),
            row: Arc::new(row),
        }
    }

    fn config(&mut self) -> &mut Config {
        Arc::make_mut(&mut self.config)
    }

    /// The columns the rows fill, in order (required).
    pub fn columns(mut self, columns: &[&str]) -> Self {
        self.config().columns = columns.iter().map(|c| c.to_string()).collect();
        self
    }

    /// The key columns (required, a subset of the columns): the target table needs a
    /// primary key or unique constraint on exactly these.
    pub fn key_columns(mut self, key: &[&str]) -> Self {
        self.config().key = key.iter().map(|c| c.to_string()).collect();
        self
    }

    /// SQL that creates the table, run when the table does not exist (by default a
    /// missing table is an error). Runs inside the sink's setup transaction.
    pub fn create_table_if_missing(mut self, ddl: &str) -> Self {
        self.config().create_ddl = Some(ddl.to_owned());
        self
    }

    /// The connections' `application_name` (default `millstream-sink-<sink_id>`; one set
    /// in the connection string is used otherwise).
    pub fn application_name(mut self, name: &str) -> Self {
        self.config().application_name = Some(name.to_owned());
        self
    }

    /// How long connecting may take (default 10 s; one set in the connection string is
    /// used otherwise).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.config().connect_timeout = timeout;
        self
    }

    /// How long one operation (a pre-commit, a commit, a recovery) may wait for the
    /// server before the job fails (default 120 s).
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.config().operation_timeout = timeout;
        self
    }

    /// The sink id.
    pub fn sink_id(&self) -> &str {
        &self.config.sink_id
    }

    /// The `application_name` the sink's connections use (as set, from the connection
    /// string, or the default).
    pub fn effective_application_name(&self) -> String {
        self.config.application_name(self.config.url.parse::<tokio_postgres::Config>().ok().as_ref())
    }
}

impl Config {
    fn application_name(&self, parsed: Option<&tokio_postgres::Config>) -> String {
        if let Some(name) = &self.application_name {
            return name.clone();
        }
        if let Some(name) = parsed.and_then(|p| p.get_application_name()) {
            return name.to_owned();
        }
        let mut name = format!("millstream-sink-{}", self.sink_id);
        // PostgreSQL keeps 63 bytes of it.
        while name.len() > 63 {
            name.pop();
        }
        name
    }

    /// Checks the configuration before connecting; the quoted table, columns and key.
    fn validate(&self) -> Result<(String, Vec<String>, Vec<usize>), String> {
        if self.sink_id.is_empty() || self.sink_id.chars().any(char::is_control) {
            return Err(format!("bad sink id {:?}: empty or with control characters", self.sink_id));
        }
        let table = sql::quote_table(&self.table)?;
        if self.columns.is_empty() {
            return Err("no columns given (PostgresUpsertSink::columns)".to_owned());
        }
        let mut quoted = Vec::new();
        for (i, c) in self.columns.iter().enumerate() {
            quoted.push(sql::quote_ident(c).map_err(|e| format!("column: {e}"))?);
            if self.columns[..i].contains(c) {
                return Err(format!("column {c:?} is listed twice"));
            }
        }
        if self.key.is_empty() {
            return Err("no key columns given (PostgresUpsertSink::key_columns)".to_owned());
        }
        let mut key = Vec::new();
        for k in &self.key {
            let i =
                self.columns.iter().position(|c| c == k).ok_or_else(|| {
                    format!("key column {k:?} is not one of the columns {:?}", self.columns)
                })?;
            if key.contains(&i) {
                return Err(format!("key column {k:?} is listed twice"));
            }
            key.push(i);
        }
        Ok((table, quoted, key))
    }
}

/// A pre-committed epoch of one worker, as stored in the checkpoint.
#[derive(Serialize, Deserialize, Clone, Debug)]
struct Handle {
    sink_id: String,
    /// The worker that wrote it (committed later by whichever worker takes it over).
    worker: u32,
    epoch: u64,
    rows: u64,
    /// Whether the rows are in the staging table (always, with checkpointing).
    staged: bool,
}

/// Rows per upsert statement: at most 1000, and at most PostgreSQL's 65535 parameters.
fn rows_per_statement(columns: usize) -> usize {
    (65_535 / columns.max(1)).clamp(1, 1000)
}

/// Rows per staging-table row.
const STAGE_CHUNK: usize = 5000;

/// Statements a writer prepares once.
struct Prepared {
    /// The upsert of a full chunk of rows.
    upsert: Statement,
    insert_marker: Statement,
    stage: Statement,
    unstage: Statement,
    staged: Statement,
}

struct Writer<T> {
    config: Arc<Config>,
    row: RowFn<T>,
    worker: usize,
    workers: usize,
    conn: Conn,
    table: String,
    columns: Vec<Column>,
    key: Vec<usize>,
    per_statement: usize,
    prepared: Prepared,
    /// The open epoch's rows, one per key, and where each key's row is.
    rows: Vec<Vec<SqlValue>>,
    by_key: HashMap<Vec<u8>, usize>,
    /// The open epoch, as far as this writer knows (for error messages).
    epoch: u64,
    /// Pre-committed rows not yet committed, by (worker, epoch): spares reading them back.
    precommitted: BTreeMap<(u32, u64), Vec<Vec<SqlValue>>>,
    /// Whether the job checkpoints (`recover` is called first then): rows are staged and
    /// commits are checked against markers.
    checkpointing: bool,
}

impl<T: 'static> TransactionalSink<T> for PostgresUpsertSink<T> {
    fn open(&self, worker: usize, workers: usize) -> Result<Box<dyn TransactionalWriter<T>>, String> {
        let config = &self.config;
        let context = |e: String| {
            format!("PostgreSQL sink `{}` (table {}, worker {worker}): {e}", config.sink_id, config.table)
        };
        let (table, _, key) = config.validate().map_err(context)?;
        u32::try_from(worker).map_err(|_| context(format!("worker {worker} out of range")))?;
        let conn = Conn::connect(config).map_err(context)?;
        let client = &conn.client;
        let missing = format!(
            "table {} does not exist (create it, or give PostgresUpsertSink::create_table_if_missing)",
            config.table
        );
        conn.transaction(async {
            // Workers set up concurrently: creating tables must not race.
            client.execute("SELECT pg_advisory_xact_lock($1)", &[&sql::SETUP_LOCK]).await?;
            client.batch_execute(sql::CREATE_CONTROL_TABLES).await?;
            let exists = "SELECT to_regclass($1) IS NOT NULL";
            if !client.query_one(exists, &[&table]).await?.try_get::<_, bool>(0)? {
                let Some(ddl) = &config.create_ddl else { return Err(Fail::Sink(missing.clone())) };
                client.batch_execute(ddl).await?;
                if !client.query_one(exists, &[&table]).await?.try_get::<_, bool>(0)? {
                    return Err(Fail::Sink(format!(
                        "{missing}; the create_table_if_missing DDL did not create it"
                    )));
                }
            }
            Ok(())
        })
        .map_err(|e| context(format!("setting up: {e}")))?;

        // The server tells the columns' types (and checks that the columns exist) when it
        // prepares the upsert, and checks the key's unique constraint when it plans it.
        let untyped: Vec<Column> = config
            .columns
            .iter()
            .map(|c| Column::new(c, &tokio_postgres::types::Type::TEXT))
            .collect::<Result<_, _>>()
            .map_err(context)?;
        let probe = sql::upsert_sql(&table, &untyped, &key, 1);
        let nulls = vec!["NULL"; untyped.len()].join(", ");
        let probe = conn
            .run(async {
                let statement = client.prepare(&probe).await?;
                client.batch_execute(&format!("PREPARE millstream_probe AS {probe}")).await?;
                let planned =
                    client.batch_execute(&format!("EXPLAIN EXECUTE millstream_probe({nulls})")).await;
                client.batch_execute("DEALLOCATE millstream_probe").await?;
                planned?;
                Ok(statement)
            })
            .map_err(|e| context(format!("preparing the upsert: {e}")))?;
        let columns: Vec<Column> = config
            .columns
            .iter()
            .zip(probe.params())
            .map(|(c, ty)| Column::new(c, ty))
            .collect::<Result<_, _>>()
            .map_err(context)?;
        let per_statement = rows_per_statement(columns.len());
        let upsert = sql::upsert_sql(&table, &columns, &key, per_statement);
        let marker = format!(
            "INSERT INTO {MARKERS} (sink_id, worker, epoch, target, rows) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT DO NOTHING"
        );
        let stage =
            format!("INSERT INTO {STAGING} (sink_id, worker, epoch, seq, rows, payload) VALUES ($1, $2, $3, $4, $5, $6)");
        let unstage = format!("DELETE FROM {STAGING} WHERE sink_id = $1 AND worker = $2 AND epoch = $3");
        let staged = format!(
            "SELECT rows, payload FROM {STAGING} WHERE sink_id = $1 AND worker = $2 AND epoch = $3 ORDER BY seq"
        );
        let prepared = conn
            .run(async {
                Ok(Prepared {
                    upsert: client.prepare(&upsert).await?,
                    insert_marker: client.prepare(&marker).await?,
                    stage: client.prepare(&stage).await?,
                    unstage: client.prepare(&unstage).await?,
                    staged: client.prepare(&staged).await?,
                })
            })
            .map_err(|e| context(format!("preparing statements: {e}")))?;
        Ok(Box::new(Writer {
            config: config.clone(),
            row: self.row.clone(),
            worker,
            workers,
            conn,
            table,
            columns,
            key,
            per_statement,
            prepared,
            rows: Vec::new(),
            by_key: HashMap::new(),
            epoch: 1,
            precommitted: BTreeMap::new(),
            checkpointing: false,
        }))
    }
}

impl<T> Writer<T> {
    fn context(&self, epoch: Option<u64>, e: String) -> String {
        let epoch = epoch.map(|e| format!(", epoch {e}")).unwrap_or_default();
        format!(
            "PostgreSQL sink `{}` (table {}, worker {}{epoch}): {e}",
            self.config.sink_id, self.config.table, self.worker
        )
    }

    fn decode_handle(&self, bytes: &[u8]) -> Result<Handle, String> {
        let h: Handle = bincode::deserialize(bytes)
            .map_err(|e| self.context(None, format!("bad transaction handle: {e}")))?;
        if h.sink_id != self.config.sink_id {
            return Err(self.context(
                Some(h.epoch),
                format!(
                    "the checkpoint's transaction belongs to sink `{}` (was the sink id changed?)",
                    h.sink_id
                ),
            ));
        }
        Ok(h)
    }

    /// Commits one pre-committed epoch; `false` if it had been committed before.
    fn commit_one(&mut self, h: &Handle) -> Result<bool, String> {
        let cached = self.precommitted.remove(&(h.worker, h.epoch));
        if h.rows == 0 {
            return Ok(true);
        }
        if cached.is_none() && !h.staged {
            return Err(
                self.context(Some(h.epoch), "rows were neither staged nor kept (not checkpointing?)".into())
            );
        }
        let (client, p) = (&self.conn.client, &self.prepared);
        let (sink_id, worker, epoch, rows) =
            (&self.config.sink_id, h.worker as i32, h.epoch as i64, h.rows as i64);
        let (table, columns, key, per) = (&self.table, &self.columns, &self.key, self.per_statement);
        let check = self.checkpointing;
        let expected = h.rows;
        let target = &self.config.table;
        let applied = self.conn.transaction(async move {
            if check
                && client.execute(&p.insert_marker, &[sink_id, &worker, &epoch, target, &rows]).await? == 0
            {
                return Ok(false);
            }
            let rows = match cached {
                Some(rows) => rows,
                None => {
                    let mut rows = Vec::new();
                    for r in client.query(&p.staged, &[sink_id, &worker, &epoch]).await? {
                        rows.extend(sql::decode_rows(r.try_get::<_, &[u8]>(1)?).map_err(Fail::Sink)?);
                    }
                    rows
                }
            };
            if rows.len() as u64 != expected {
                return Err(Fail::Sink(format!(
                    "the staging table holds {} of the epoch's {expected} rows (were they deleted?)",
                    rows.len()
                )));
            }
            for chunk in rows.chunks(per) {
                let params: Vec<&(dyn ToSql + Sync)> = chunk.iter().flatten().map(|v| v as _).collect();
                if chunk.len() == per {
                    client.execute(&p.upsert, &params).await?;
                } else {
                    client
                        .execute(sql::upsert_sql(table, columns, key, chunk.len()).as_str(), &params)
                        .await?;
                }
            }
            if check {
                client.execute(&p.unstage, &[sink_id, &worker, &epoch]).await?;
            }
            Ok(true)
        });
        applied.map_err(|e| self.context(Some(h.epoch), format!("committing: {e}")))
    }
}

impl<T: 'static> TransactionalWriter<T> for Writer<T> {
    fn write(&mut self, batch: &[WindowedValue<T>]) -> Result<(), String> {
        for v in batch {
            let row = (self.row)(v);
            if row.len() != self.columns.len() {
                return Err(self.context(
                    Some(self.epoch),
                    format!(
                        "the row function gave {} values for the {} columns",
                        row.len(),
                        self.columns.len()
                    ),
                ));
            }
            for (value, column) in row.iter().zip(&self.columns) {
                column.ty.check(value).map_err(|e| {
                    self.context(
                        Some(self.epoch),
                        format!("column {:?} ({}): {e} (value {value:?})", column.name, column.type_name),
                    )
                })?;
            }
            let key = sql::key_bytes(&row, &self.key).map_err(|e| self.context(Some(self.epoch), e))?;
            match self.by_key.get(&key) {
                Some(&i) => self.rows[i] = row,
                None => {
                    self.by_key.insert(key, self.rows.len());
                    self.rows.push(row);
                }
            }
        }
        Ok(())
    }

    fn pre_commit(&mut self, epoch: u64) -> Result<Vec<u8>, String> {
        let rows = std::mem::take(&mut self.rows);
        self.by_key.clear();
        self.epoch = epoch + 1;
        let handle = Handle {
            sink_id: self.config.sink_id.clone(),
            worker: self.worker as u32,
            epoch,
            rows: rows.len() as u64,
            staged: self.checkpointing && !rows.is_empty(),
        };
        if handle.staged {
            let chunks: Vec<(i32, Vec<u8>)> = rows
                .chunks(STAGE_CHUNK)
                .map(|c| sql::encode_rows(c).map(|bytes| (c.len() as i32, bytes)))
                .collect::<Result<_, _>>()
                .map_err(|e| self.context(Some(epoch), e))?;
            let (client, p) = (&self.conn.client, &self.prepared);
            let (sink_id, worker, e) = (&self.config.sink_id, handle.worker as i32, epoch as i64);
            self.conn
                .transaction(async move {
                    // Left over from a run without recovery (no checkpointing), if any.
                    client.execute(&p.unstage, &[sink_id, &worker, &e]).await?;
                    for (seq, (n, payload)) in chunks.iter().enumerate() {
                        let seq = seq as i32;
                        client.execute(&p.stage, &[sink_id, &worker, &e, &seq, n, payload]).await?;
                    }
                    Ok(())
                })
                .map_err(|e| self.context(Some(epoch), format!("staging the epoch's rows: {e}")))?;
        }
        if !rows.is_empty() {
            self.precommitted.insert((handle.worker, epoch), rows);
        }
        bincode::serialize(&handle).map_err(|e| self.context(Some(epoch), e.to_string()))
    }

    fn commit(&mut self, handles: &[Vec<u8>]) -> Result<(), String> {
        let mut parsed: Vec<Handle> =
            handles.iter().map(|b| self.decode_handle(b)).collect::<Result<_, _>>()?;
        // Epoch order: a later epoch's row for a key wins.
        parsed.sort_by_key(|h| (h.epoch, h.worker));
        for h in &parsed {
            let applied = self.commit_one(h)?;
            tracing::debug!(sink = %self.config.sink_id, worker = h.worker, epoch = h.epoch, rows = h.rows, applied, "commit");
        }
        Ok(())
    }

    fn recover(&mut self, pending: &[Vec<u8>], restored: u64) -> Result<(), String> {
        self.checkpointing = true;
        self.epoch = restored + 1;
        let handles: Vec<Handle> = pending.iter().map(|b| self.decode_handle(b)).collect::<Result<_, _>>()?;
        let keep_workers: Vec<i32> = handles.iter().map(|h| h.worker as i32).collect();
        let keep_epochs: Vec<i64> = handles.iter().map(|h| h.epoch as i64).collect();
        let client = &self.conn.client;
        let sink_id = &self.config.sink_id;
        let (workers, worker) = (self.workers as i32, self.worker as i32);
        let restored_epoch = i64::try_from(restored).unwrap_or(i64::MAX);
        let not_pending =
            "(worker, epoch) NOT IN (SELECT p.w, p.e FROM unnest($4::int4[], $5::int8[]) AS p(w, e))";
        let unstage =
            format!("DELETE FROM {STAGING} WHERE sink_id = $1 AND worker % $2 = $3 AND {not_pending}");
        let unmark = format!(
            "DELETE FROM {MARKERS} WHERE sink_id = $1 AND worker % $2 = $3 AND {not_pending} AND epoch > $6"
        );
        let (unstaged, unmarked) = self
            .conn
            .transaction(async {
                let unstaged = client
                    .execute(&unstage, &[sink_id, &workers, &worker, &keep_workers, &keep_epochs])
                    .await?;
                let unmarked = client
                    .execute(
                        &unmark,
                        &[sink_id, &workers, &worker, &keep_workers, &keep_epochs, &restored_epoch],
                    )
                    .await?;
                Ok((unstaged, unmarked))
            })
            .map_err(|e| self.context(None, format!("recovering after checkpoint {restored}: {e}")))?;
        tracing::info!(
            sink = %self.config.sink_id,
            worker = self.worker,
            restored,
            pending = handles.len(),
            unstaged,
            unmarked,
            "recovered"
        );
        Ok(())
    }
}
