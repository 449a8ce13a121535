//! Sinks: [`TextSink`] and [`JsonLinesSink`] write one file per worker, one element per
//! line; [`StdoutSink`] prints.
//!
//! File names: with `w` workers, worker `i` writes `<prefix>-0000i-of-0000w<suffix>`;
//! with one worker, the single file `<prefix><suffix>`. Files are created (with their
//! directory) when the job starts, truncated if they exist, and flushed when the input
//! is complete.
//!
//! The file sinks write values; retractions (accumulating-and-retracting panes) are
//! written like any other value unless the format says otherwise
//! ([`TextSink::windowed`] sees the whole [`WindowedValue`]).
//!
//! ```
//! use millstream_connectors::sink::TextSink;
//! use millstream_runtime::{Pipeline, Runner};
//!
//! let prefix = std::env::temp_dir().join(format!("millstream-doc-sink-{}", std::process::id()));
//! let p = Pipeline::new();
//! p.create(vec![1i64, 2, 3]).write_to("Write", TextSink::new(&prefix, |n: &i64| n.to_string()));
//! Runner::new().workers(1).run(&p).unwrap();
//! let file = prefix.with_extension("txt");
//! let mut lines: Vec<String> = std::fs::read_to_string(&file).unwrap().lines().map(String::from).collect();
//! lines.sort();
//! assert_eq!(lines, vec!["1", "2", "3"]);
//! # std::fs::remove_file(&file).unwrap();
//! ```

use crate::error::ConnectorError;
use millstream_model::WindowedValue;
use millstream_runtime::{Sink, SinkWriter};
use serde::Serialize;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The file worker `worker` of `workers` writes for `prefix` and `suffix`.
pub fn shard_path(prefix: &Path, suffix: &str, worker: usize, workers: usize) -> PathBuf {
    let mut name = prefix.as_os_str().to_owned();
    if workers > 1 {
        name.push(format!("-{worker:05}-of-{workers:05}"));
    }
    name.push(suffix);
    PathBuf::from(name)
}

/// Creates (or truncates) `path`, with its parent directory.
fn create_file(path: &Path) -> Result<BufWriter<File>, ConnectorError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| ConnectorError::io(dir, "cannot create directory", e))?;
    }
    let file = File::create(path).map_err(|e| ConnectorError::io(path, "cannot create", e))?;
    Ok(BufWriter::with_capacity(1 << 16, file))
}

/// Appends one element's line (without the newline) to a buffer.
type EncodeFn<T> = dyn Fn(&WindowedValue<T>, &mut Vec<u8>) -> Result<(), String> + Send + Sync;

/// Writes one line per element to one file.
struct LineFileWriter<T> {
    path: PathBuf,
    out: BufWriter<File>,
    encode: Arc<EncodeFn<T>>,
    line: Vec<u8>,
}

impl<T: 'static> LineFileWriter<T> {
    fn write_batch(&mut self, batch: &[WindowedValue<T>]) -> Result<(), ConnectorError> {
        for wv in batch {
            self.line.clear();
            (self.encode)(wv, &mut self.line)
                .map_err(|message| ConnectorError::Encode { path: self.path.clone(), message })?;
            self.line.push(b'\n');
            self.out.write_all(&self.line).map_err(|e| ConnectorError::io(&self.path, "cannot write", e))?;
        }
        Ok(())
    }
}

impl<T: 'static> SinkWriter<T> for LineFileWriter<T> {
    fn write(&mut self, batch: &[WindowedValue<T>]) -> Result<(), String> {
        self.write_batch(batch).map_err(|e| e.to_string())
    }

    fn finish(&mut self) -> Result<(), String> {
        self.out.flush().map_err(|e| ConnectorError::io(&self.path, "cannot write", e).to_string())
    }
}

/// The file naming and encoding shared by the file sinks.
struct LineFiles<T> {
    prefix: PathBuf,
    suffix: String,
    encode: Arc<EncodeFn<T>>,
}

impl<T: 'static> LineFiles<T> {
    fn open(&self, worker: usize, workers: usize) -> Result<Box<dyn SinkWriter<T>>, String> {
        let path = shard_path(&self.prefix, &self.suffix, worker, workers);
        let out = create_file(&path).map_err(|e| e.to_string())?;
        Ok(Box::new(LineFileWriter { path, out, encode: self.encode.clone(), line: Vec::new() }))
    }
}

/// Writes each element as a line of text, formatted by a function, to one file per
/// worker (see the [module docs](self) for the file names; the suffix is `.txt`).
pub struct TextSink<T> {
    files: LineFiles<T>,
}

impl<T: 'static> TextSink<T> {
    /// Writes `format(element)` per line to files named after `prefix`. The formatted
    /// text should not contain newlines if the files are to be read back line by line.
    pub fn new(prefix: impl AsRef<Path>, format: impl Fn(&T) -> String + Send + Sync + 'static) -> Self {
        Self::windowed(prefix, move |wv: &WindowedValue<T>| format(&wv.value))
    }

    /// Like [`new`](Self::new), formatting the whole windowed value: its timestamp,
    /// window, pane and whether it is a retraction can go into the line too.
    pub fn windowed(
        prefix: impl AsRef<Path>,
        format: impl Fn(&WindowedValue<T>) -> String + Send + Sync + 'static,
    ) -> Self {
        let encode: Arc<EncodeFn<T>> = Arc::new(move |wv: &WindowedValue<T>, out: &mut Vec<u8>| {
            out.extend_from_slice(format(wv).as_bytes());
            Ok(())
        });
        TextSink { files: LineFiles { prefix: prefix.as_ref().to_owned(), suffix: ".txt".into(), encode } }
    }

    /// Sets the file name suffix (default `.txt`).
    pub fn with_suffix(mut self, suffix: impl Into<String>) -> Self {
        self.files.suffix = suffix.into();
        self
    }
}

impl<T: 'static> Sink<T> for TextSink<T> {
    fn open(&self, worker: usize, workers: usize) -> Result<Box<dyn SinkWriter<T>>, String> {
        self.files.open(worker, workers)
    }
}

/// Writes each element as one line of JSON, to one file per worker (see the
/// [module docs](self) for the file names; the suffix is `.jsonl`).
pub struct JsonLinesSink<T> {
    files: LineFiles<T>,
}

impl<T: Serialize + 'static> JsonLinesSink<T> {
    /// Writes elements as JSON lines to files named after `prefix`.
    pub fn new(prefix: impl AsRef<Path>) -> Self {
        let encode: Arc<EncodeFn<T>> = Arc::new(|wv: &WindowedValue<T>, out: &mut Vec<u8>| {
            serde_json::to_writer(&mut *out, &wv.value).map_err(|e| e.to_string())
        });
        JsonLinesSink {
            files: LineFiles { prefix: prefix.as_ref().to_owned(), suffix: ".jsonl".into(), encode },
        }
    }

    /// Sets the file name suffix (default `.jsonl`).
    pub fn with_suffix(mut self, suffix: impl Into<String>) -> Self {
        self.files.suffix = suffix.into();
        self
    }
}

impl<T: Serialize + 'static> Sink<T> for JsonLinesSink<T> {
    fn open(&self, worker: usize, workers: usize) -> Result<Box<dyn SinkWriter<T>>, String> {
        self.files.open(worker, workers)
    }
}

/// Formats a windowed value as one line of output.
type FormatFn<T> = dyn Fn(&WindowedValue<T>) -> String + Send + Sync;

/// Prints each element, with its window and pane if the format wants them, one line
/// each. Each batch is written under one lock of stdout, so lines of different workers
/// never interleave.
pub struct StdoutSink<T> {
    format: Arc<FormatFn<T>>,
}

impl<T: 'static> StdoutSink<T> {
    /// Prints `format(windowed value)` per element.
    pub fn new(format: impl Fn(&WindowedValue<T>) -> String + Send + Sync + 'static) -> Self {
        StdoutSink { format: Arc::new(format) }
    }
}

struct StdoutWriter<T> {
    format: Arc<FormatFn<T>>,
    text: String,
}

impl<T: 'static> SinkWriter<T> for StdoutWriter<T> {
    fn write(&mut self, batch: &[WindowedValue<T>]) -> Result<(), String> {
        self.text.clear();
        for wv in batch {
            self.text.push_str(&(self.format)(wv));
            self.text.push('\n');
        }
        let mut out = std::io::stdout().lock();
        out.write_all(self.text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(|e| format!("cannot write to stdout: {e}"))
    }

    fn finish(&mut self) -> Result<(), String> {
        std::io::stdout().lock().flush().map_err(|e| format!("cannot write to stdout: {e}"))
    }
}

impl<T: 'static> Sink<T> for StdoutSink<T> {
    fn open(&self, _worker: usize, _workers: usize) -> Result<Box<dyn SinkWriter<T>>, String> {
        Ok(Box::new(StdoutWriter { format: self.format.clone(), text: String::new() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;
    use millstream_model::Timestamp;

    #[test]
    fn shard_names() {
        let p = Path::new("out/words");
        assert_eq!(shard_path(p, ".txt", 0, 1), PathBuf::from("out/words.txt"));
        assert_eq!(shard_path(p, ".txt", 1, 2), PathBuf::from("out/words-00001-of-00002.txt"));
    }

    #[test]
    fn json_sink_writes_lines_and_creates_the_directory() {
        let dir = TempDir::new("sink-json");
        let prefix = dir.path().join("nested/out");
        let sink = JsonLinesSink::<(String, i64)>::new(&prefix);
        let mut w = sink.open(0, 2).unwrap();
        let batch = vec![
            WindowedValue::in_global_window(("a\nb".to_string(), 1), Timestamp::MIN),
            WindowedValue::in_global_window(("c".to_string(), 2), Timestamp::MIN),
        ];
        w.write(&batch).unwrap();
        w.finish().unwrap();
        let text = std::fs::read_to_string(dir.path().join("nested/out-00000-of-00002.jsonl")).unwrap();
        assert_eq!(text, "[\"a\\nb\",1]\n[\"c\",2]\n");
    }

    #[test]
    fn windowed_text_sink_sees_window_and_pane() {
        let dir = TempDir::new("sink-windowed");
        let sink = TextSink::windowed(dir.path().join("w"), |wv: &WindowedValue<i64>| {
            format!("{} {} {}", wv.value, wv.timestamp, wv.pane)
        });
        let mut w = sink.open(0, 1).unwrap();
        w.write(&[WindowedValue::in_global_window(5, Timestamp::hms(1, 2, 3))]).unwrap();
        w.finish().unwrap();
        let text = std::fs::read_to_string(dir.path().join("w.txt")).unwrap();
        assert_eq!(text, "5 01:02:03 UNKNOWN #0 (on-time #0) first last\n");
    }

    #[test]
    fn unwritable_prefix_is_an_error_naming_the_path() {
        let dir = TempDir::new("sink-bad");
        let blocker = dir.write("file", b"");
        let e = TextSink::new(blocker.join("out"), |s: &String| s.clone()).open(0, 1).err();
        let e = e.unwrap_or_default();
        assert!(e.contains("file"), "{e}");
    }
}
