//! The sink's connection: a `tokio-postgres` client on a single-threaded runtime of its
//! own (timely's worker threads have none), with time limits and errors that carry what
//! the server said.

use super::Config;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_postgres::{Client, NoTls};

/// An operation's failure: PostgreSQL's or the sink's own.
pub(super) enum Fail {
    Pg(tokio_postgres::Error),
    Sink(String),
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Self {
        Fail::Pg(e)
    }
}

/// A PostgreSQL error with what the server said (its `Display` omits it).
pub(super) fn pg_error(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{}: {} (SQLSTATE {})", db.severity(), db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            s.push_str(&format!("; detail: {detail}"));
        }
        if let Some(hint) = db.hint() {
            s.push_str(&format!("; hint: {hint}"));
        }
        return s;
    }
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    s
}

/// Runs `fut` on `rt` with a time limit (on a helper thread when called from inside
/// another async runtime, where blocking is not allowed).
fn block_on<F, R>(rt: &tokio::runtime::Runtime, limit: Duration, fut: F) -> Result<R, String>
where
    F: Future<Output = Result<R, Fail>> + Send,
    R: Send,
{
    let run = move || rt.block_on(async move { tokio::time::timeout(limit, fut).await });
    let out = if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| match s.spawn(run).join() {
            Ok(out) => out,
            Err(panic) => std::panic::resume_unwind(panic),
        })
    } else {
        run()
    };
    match out {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(Fail::Pg(e))) => Err(pg_error(&e)),
        Ok(Err(Fail::Sink(e))) => Err(e),
        Err(_) => Err(format!("no answer from the server within {limit:?}")),
    }
}

/// A connection with its own single-threaded async runtime.
pub(super) struct Conn {
    rt: tokio::runtime::Runtime,
    pub(super) client: Client,
    /// Why the connection ended, once it has.
    ended: Arc<Mutex<Option<String>>>,
    timeout: Duration,
}

impl Conn {
    pub(super) fn connect(config: &Config) -> Result<Conn, String> {
        let mut pg: tokio_postgres::Config =
            config.url.parse().map_err(|e| format!("bad connection string: {}", pg_error(&e)))?;
        pg.application_name(config.application_name(Some(&pg)));
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(config.connect_timeout);
        }
        let limit = pg.get_connect_timeout().copied().unwrap_or(config.connect_timeout);
        let limit = limit * pg.get_hosts().len().max(1) as u32;
        let target = describe(&pg);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("starting the connection's runtime: {e}"))?;
        let (client, connection) = block_on(&rt, limit, async { Ok(pg.connect(NoTls).await?) })
            .map_err(|e| format!("connecting to {target}: {e}"))?;
        let ended = Arc::new(Mutex::new(None));
        let slot = ended.clone();
        rt.spawn(async move {
            let why = match connection.await {
                Ok(()) => "the server closed the connection".to_owned(),
                Err(e) => pg_error(&e),
            };
            *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
        });
        Ok(Conn { rt, client, ended, timeout: config.operation_timeout })
    }

    fn ended(&self) -> Option<String> {
        self.ended.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Runs `fut`; errors say why the connection ended, if it did.
    pub(super) fn run<R: Send>(
        &self,
        fut: impl Future<Output = Result<R, Fail>> + Send,
    ) -> Result<R, String> {
        if let Some(why) = self.ended() {
            return Err(format!("the connection was lost earlier: {why}"));
        }
        block_on(&self.rt, self.timeout, fut).map_err(|e| match self.ended() {
            Some(why) if !e.contains(&why) => format!("{e} (connection lost: {why})"),
            _ => e,
        })
    }

    /// Runs `body` in a transaction: committed if it succeeds, rolled back if not.
    pub(super) fn transaction<R: Send>(
        &self,
        body: impl Future<Output = Result<R, Fail>> + Send,
    ) -> Result<R, String> {
        let client = &self.client;
        self.run(async move {
            client.batch_execute("BEGIN").await?;
            match body.await {
                Ok(r) => {
                    client.batch_execute("COMMIT").await?;
                    Ok(r)
                }
                Err(e) => {
                    let _ = client.batch_execute("ROLLBACK").await;
                    Err(e)
                }
            }
        })
    }
}

/// Where a configuration connects, without its password.
fn describe(pg: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = pg
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                #[allow(unreachable_patterns)]
                other => format!("{other:?}"),
            };
            let port = pg.get_ports().get(i).or(pg.get_ports().first()).copied().unwrap_or(5432);
            format!("{host}:{port}")
        })
        .collect();
    let hosts = if hosts.is_empty() { "localhost:5432".to_owned() } else { hosts.join(",") };
    format!("{hosts} (database {:?})", pg.get_dbname().or(pg.get_user()).unwrap_or("?"))
}
