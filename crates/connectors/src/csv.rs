//! [`CsvSource`]: CSV files (local paths or globs), each record decoded with serde into a
//! user type through the header row, or into a [`Row`] (typed by a [`Schema`], or every
//! column as text when no schema is given).
//!
//! One partition per file, in sorted order, as for the line-oriented sources
//! ([`crate::text`]), or, with [`CsvSource::split_bytes`], one per byte range of a large
//! file. Replayable: a checkpoint records, per file, the byte offset of the
//! next unread record and the number of the last line read
//! ([`FilePosition`]); a restored job rereads the header row
//! and goes on from there. Records must all have as many fields as the header (or, without
//! one, as the first record). A record that does not decode fails the job naming
//! `file:line` by default, or goes to the dead-letter output with its raw text
//! ([`BadRecordPolicy::DeadLetter`]).
//!
//! ```
//! use millstream_connectors::csv::CsvSource;
//! use millstream_runtime::{Pipeline, Runner};
//!
//! #[derive(Clone, serde::Serialize, serde::Deserialize)]
//! struct Sale { city: String, amount: i64 }
//!
//! let path = std::env::temp_dir().join(format!("millstream-doc-csv-{}.csv", std::process::id()));
//! std::fs::write(&path, "amount,city\n3,Oslo\n4,Lima\n").unwrap();
//! let p = Pipeline::new();
//! let sales = p.read("Sales", CsvSource::<Sale>::new(path.display().to_string()));
//! let total = sales.map(|s: Sale| s.amount).collect();
//! Runner::new().run(&p).unwrap();
//! assert_eq!(total.values().iter().sum::<i64>(), 7);
//! # std::fs::remove_file(&path).unwrap();
//! ```

use crate::error::ConnectorError;
use crate::files::{BadRecordPolicy, FilePosition};
use crate::ranges::{
    check_resume, file_ranges, partition_range, range_begin, resume_error, skip_blank_lines, ByteRange,
};
use crate::row::{DataType, Field, Row, Schema, Value};
use crate::watch::FileOpener;
use ::csv::ByteRecord;
use millstream_model::Timestamp;
use millstream_runtime::{DeadLetter, ReadStatus, Source, SourceError, SourceReader, WatermarkStrategy};
use serde::de::DeserializeOwned;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Assigns a record its event timestamp.
type TimestampFn<T> = dyn Fn(&T) -> Timestamp + Send + Sync;

/// Decodes one record of a file.
type RecordDecoder<T> = Box<dyn Fn(&ByteRecord) -> Result<T, String> + Send + Sync>;

/// Builds a file's record decoder from its header row (`None` without one) and the number
/// of fields of its records.
type DecoderFactory<T> = dyn Fn(Option<&ByteRecord>, usize) -> Result<RecordDecoder<T>, String> + Send + Sync;

/// Reads CSV files into `T` (see the [module docs](self)).
pub struct CsvSource<T> {
    pattern: String,
    delimiter: u8,
    has_headers: bool,
    split_bytes: Option<u64>,
    policy: BadRecordPolicy,
    watermarks: WatermarkStrategy,
    timestamp: Option<Arc<TimestampFn<T>>>,
    decoder: Arc<DecoderFactory<T>>,
}

impl<T> Clone for CsvSource<T> {
    fn clone(&self) -> Self {
        CsvSource {
            pattern: self.pattern.clone(),
            delimiter: self.delimiter,
            has_headers: self.has_headers,
            split_bytes: self.split_bytes,
            policy: self.policy,
            watermarks: self.watermarks,
            timestamp: self.timestamp.clone(),
            decoder: self.decoder.clone(),
        }
    }
}

impl<T> std::fmt::Debug for CsvSource<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvSource")
            .field("pattern", &self.pattern)
            .field("delimiter", &(self.delimiter as char))
            .field("has_headers", &self.has_headers)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl<T> CsvSource<T> {
    fn with_decoder(pattern: String, decoder: Arc<DecoderFactory<T>>) -> Self {
        CsvSource {
            pattern,
            delimiter: b',',
            has_headers: true,
            split_bytes: None,
            policy: BadRecordPolicy::Fail,
            watermarks: WatermarkStrategy::from_source(),
            timestamp: None,
            decoder,
        }
    }

    /// Sets the field delimiter (default `,`).
    pub fn delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// Sets whether the first record of each file is a header row naming the fields
    /// (default: yes). Without one, serde decodes fields by position, and
    /// [`rows`](CsvSource::rows) names them `column_1`, `column_2`, ...
    pub fn has_headers(mut self, has_headers: bool) -> Self {
        self.has_headers = has_headers;
        self
    }

    /// Splits files larger than `bytes` into ranges of about `bytes` bytes, each its own
    /// partition, so that several workers read one large file in parallel (default: one
    /// partition per file). Range `k` starts at the first record that starts after the
    /// first newline at or after byte `k * bytes` (minus one), and reads through the record
    /// that crosses its end. **Only for files whose quoted fields hold no newlines**: a
    /// range boundary inside such a field would start a range mid-record. Keep the same
    /// setting across a restore from a checkpoint. Opening range `k` counts the lines
    /// before it (a sequential read of that part of the file), so that errors still name
    /// the true line.
    pub fn split_bytes(mut self, bytes: u64) -> Self {
        self.split_bytes = Some(bytes.max(1));
        self
    }

    /// Gives each record the timestamp `f` computes from it (default: `Timestamp::MIN`).
    pub fn with_timestamp_fn(mut self, f: impl Fn(&T) -> Timestamp + Send + Sync + 'static) -> Self {
        self.timestamp = Some(Arc::new(f));
        self
    }

    /// Sets how watermarks follow the timestamps read (default: the start of time until
    /// the file is read to its end).
    pub fn watermark_strategy(mut self, strategy: WatermarkStrategy) -> Self {
        self.watermarks = strategy;
        self
    }

    /// Sets what happens to records that do not decode or have the wrong number of
    /// fields (default: fail the job).
    pub fn on_bad_record(mut self, policy: BadRecordPolicy) -> Self {
        self.policy = policy;
        self
    }
}

impl<T: DeserializeOwned + Send + 'static> CsvSource<T> {
    /// Reads the file `pattern` names, or every file matching it if it is a glob,
    /// decoding each record into `T` with serde: by header name, or by position when
    /// the files have no header row.
    pub fn new(pattern: impl Into<String>) -> Self {
        let factory = |headers: Option<&ByteRecord>, _fields: usize| -> Result<RecordDecoder<T>, String> {
            let headers = headers.cloned();
            Ok(Box::new(move |record: &ByteRecord| {
                record.deserialize::<T>(headers.as_ref()).map_err(|e| deserialize_message(&e))
            }))
        };
        CsvSource::with_decoder(pattern.into(), Arc::new(factory))
    }
}

/// The error of a serde decode, without the record position (the reader adds the file
/// and line).
fn deserialize_message(e: &::csv::Error) -> String {
    match e.kind() {
        ::csv::ErrorKind::Deserialize { err, .. } => match err.field() {
            Some(field) => format!("field {}: {}", field + 1, err.kind()),
            None => err.kind().to_string(),
        },
        _ => e.to_string(),
    }
}

impl CsvSource<Row> {
    /// Reads CSV files into [`Row`]s of text: one non-nullable [`DataType::Text`] field per
    /// column, named by the header row (or `column_1`, `column_2`, ... without one).
    pub fn rows(pattern: impl Into<String>) -> Self {
        let factory = |headers: Option<&ByteRecord>, fields: usize| -> Result<RecordDecoder<Row>, String> {
            let names: Vec<String> = match headers {
                Some(h) => h.iter().map(|n| String::from_utf8_lossy(n).into_owned()).collect(),
                None => (1..=fields).map(|i| format!("column_{i}")).collect(),
            };
            let schema = Arc::new(Schema::new(
                names.into_iter().map(|n| Field::new(n, DataType::Text, false)).collect(),
            ));
            let columns: Vec<usize> = (0..schema.len()).collect();
            Ok(row_decoder(schema, columns))
        };
        CsvSource::with_decoder(pattern.into(), Arc::new(factory))
    }

    /// Reads CSV files into [`Row`]s of `schema`. With a header row, each field is taken
    /// from the column of its name (other columns are ignored; a missing one fails the
    /// job); without, from the column at its index. Values parse as: `Int` and `Float`
    /// with Rust's number syntax (surrounding spaces allowed), `Bool` as `true`/`false`
    /// or `1`/`0` (any case), `Timestamp` as integer milliseconds since the epoch, `Text`
    /// as UTF-8, `Bytes` as the raw field. An empty field is null in a nullable field
    /// and empty text in a non-nullable `Text` field; elsewhere it is a bad record.
    pub fn rows_with_schema(pattern: impl Into<String>, schema: Arc<Schema>) -> Self {
        let factory = move |headers: Option<&ByteRecord>,
                            fields: usize|
              -> Result<RecordDecoder<Row>, String> {
            let columns = match headers {
                // An empty file: no header row, no records.
                Some(h) if !h.is_empty() => {
                    let names: Vec<&[u8]> = h.iter().collect();
                    schema
                        .fields
                        .iter()
                        .map(|f| {
                            names.iter().position(|n| *n == f.name.as_bytes()).ok_or_else(|| {
                                let found: Vec<String> =
                                    names.iter().map(|n| String::from_utf8_lossy(n).into_owned()).collect();
                                format!("no column {:?} in the header row ({})", f.name, found.join(", "))
                            })
                        })
                        .collect::<Result<Vec<usize>, String>>()?
                }
                _ => {
                    if fields != 0 && fields < schema.len() {
                        return Err(format!(
                            "records have {fields} fields, fewer than the schema's {}",
                            schema.len()
                        ));
                    }
                    (0..schema.len()).collect()
                }
            };
            Ok(row_decoder(schema.clone(), columns))
        };
        CsvSource::with_decoder(pattern.into(), Arc::new(factory))
    }
}

/// Decodes records into rows of `schema`, field `i` from column `columns[i]`.
fn row_decoder(schema: Arc<Schema>, columns: Vec<usize>) -> RecordDecoder<Row> {
    Box::new(move |record: &ByteRecord| {
        let mut values = Vec::with_capacity(columns.len());
        for (field, &column) in schema.fields.iter().zip(&columns) {
            let raw = record.get(column).unwrap_or_default();
            let value = parse_value(field, raw).map_err(|e| format!("field {:?}: {e}", field.name))?;
            values.push(value);
        }
        Ok(Row::new_unchecked(schema.clone(), values))
    })
}

/// One CSV field as a value of `field`'s type (see [`CsvSource::rows_with_schema`]).
fn parse_value(field: &Field, raw: &[u8]) -> Result<Value, String> {
    if raw.is_empty() {
        return match (field.nullable, field.data_type) {
            (true, _) => Ok(Value::Null),
            (false, DataType::Text) => Ok(Value::Text(String::new())),
            (false, DataType::Bytes) => Ok(Value::Bytes(Vec::new())),
            (false, t) => Err(format!("empty, but not nullable (a {t})")),
        };
    }
    if field.data_type == DataType::Bytes {
        return Ok(Value::Bytes(raw.to_vec()));
    }
    let text = std::str::from_utf8(raw)
        .map_err(|e| format!("invalid UTF-8 after {} valid bytes", e.valid_up_to()))?;
    let bad = |e: &dyn std::fmt::Display| format!("cannot parse {text:?} as {}: {e}", field.data_type);
    Ok(match field.data_type {
        DataType::Text => Value::Text(text.to_owned()),
        DataType::Int => Value::Int(text.trim().parse().map_err(|e| bad(&e))?),
        DataType::Float => Value::Float(text.trim().parse().map_err(|e| bad(&e))?),
        DataType::Timestamp => Value::Timestamp(text.trim().parse().map_err(|e| bad(&e))?),
        DataType::Bool => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" => Value::Bool(true),
            "false" | "0" => Value::Bool(false),
            _ => return Err(bad(&"expected true, false, 1 or 0")),
        },
        DataType::Bytes => unreachable!("handled above"),
    })
}

impl<T: Send + 'static> CsvSource<T> {
    fn open_reader(
        &self,
        partition: usize,
        partitions: usize,
        position: Option<&[u8]>,
    ) -> Result<CsvReader<T>, ConnectorError> {
        let range = partition_range(&self.pattern, self.split_bytes, partition, partitions)?;
        self.open_range(range, position)
    }

    /// Opens the records of `range`, at `position` if given.
    fn open_range(&self, range: ByteRange, position: Option<&[u8]>) -> Result<CsvReader<T>, ConnectorError> {
        let (path, start, end) = (range.path.clone(), range.start, range.end);
        let position = position.map(FilePosition::decode).transpose().map_err(|m| resume_error(&path, m))?;
        let file = File::open(&path).map_err(|e| ConnectorError::io(&path, "cannot open", e))?;
        let len = file.metadata().map_err(|e| ConnectorError::io(&path, "cannot open", e))?.len();
        let mut reader = ::csv::ReaderBuilder::new()
            .delimiter(self.delimiter)
            .has_headers(self.has_headers)
            .flexible(true)
            .from_reader(file);
        let read_error = |e: ::csv::Error| csv_error(&path, e);
        // The header row, or (without one) the first record, which fixes the number of
        // fields every record must have.
        let first = reader.byte_headers().map_err(read_error)?.clone();
        let fields = (!first.is_empty()).then_some(first.len());
        let headers = self.has_headers.then_some(&first);
        let decode = (self.decoder)(headers, first.len())
            .map_err(|message| ConnectorError::Config(format!("{}: {message}", path.display())))?;
        match &position {
            Some(p) => {
                check_resume(&range, p, len)?;
                let mut at = ::csv::Position::new();
                at.set_byte(p.offset).set_line(p.line + 1);
                reader.seek(at).map_err(read_error)?;
            }
            None if start > 0 => {
                let after_headers = reader.position().byte();
                let (begin, lines) = range_begin(&path, start, after_headers, true)
                    .map_err(|e| ConnectorError::io(&path, "cannot read", e))?;
                let mut at = ::csv::Position::new();
                at.set_byte(begin).set_line(lines + 1);
                reader.seek(at).map_err(read_error)?;
            }
            None if !self.has_headers => reader.seek(::csv::Position::new()).map_err(read_error)?,
            None => {}
        }
        Ok(CsvReader {
            path,
            reader,
            decode,
            fields,
            end,
            timestamp: self.timestamp.clone(),
            policy: self.policy,
            record: ByteRecord::new(),
            finished: false,
            dead: Vec::new(),
        })
    }
}

fn csv_error(path: &Path, e: ::csv::Error) -> ConnectorError {
    let line = e.position().map_or(0, |p| p.line());
    match e.into_kind() {
        ::csv::ErrorKind::Io(io) => ConnectorError::io(path, "cannot read", io),
        other => ConnectorError::Decode { path: path.to_owned(), line, message: format!("{other:?}") },
    }
}

impl<T: Send + 'static> Source<T> for CsvSource<T> {
    fn partitions(&self, _workers: usize) -> Result<usize, SourceError> {
        file_ranges(&self.pattern, self.split_bytes)
            .map(|ranges| ranges.len())
            .map_err(|e| e.into_source_error(&self.pattern))
    }

    fn open(&self, partition: usize, partitions: usize) -> Result<Box<dyn SourceReader<T>>, SourceError> {
        let reader =
            self.open_reader(partition, partitions, None).map_err(|e| e.into_source_error(&self.pattern))?;
        Ok(Box::new(reader))
    }

    fn reopen(
        &self,
        partition: usize,
        partitions: usize,
        position: &[u8],
    ) -> Result<Box<dyn SourceReader<T>>, SourceError> {
        let reader = self
            .open_reader(partition, partitions, Some(position))
            .map_err(|e| e.into_source_error(&self.pattern))?;
        Ok(Box::new(reader))
    }

    fn watermarks(&self) -> WatermarkStrategy {
        self.watermarks
    }
}

/// Reads one CSV file.
struct CsvReader<T> {
    path: PathBuf,
    reader: ::csv::Reader<File>,
    decode: RecordDecoder<T>,
    /// How many fields every record must have (`None` for an empty file).
    fields: Option<usize>,
    /// Records starting at or after this byte belong to the next range.
    end: u64,
    timestamp: Option<Arc<TimestampFn<T>>>,
    policy: BadRecordPolicy,
    record: ByteRecord,
    finished: bool,
    dead: Vec<DeadLetter>,
}

impl<T> CsvReader<T> {
    /// The first byte at or after `start` that is not part of a blank line (`\r`, `\n`).
    fn true_start(&self, start: u64) -> u64 {
        let Ok(file) = File::open(&self.path) else { return start };
        let mut file = BufReader::new(file);
        if file.seek(SeekFrom::Start(start)).is_err() {
            return start;
        }
        skip_blank_lines(&mut file).map_or(start, |n| start + n)
    }

    /// The raw bytes of the file from `start` to the reader's position, without the
    /// record terminator: the record as written, quotes and all.
    fn raw_record(&self, start: u64) -> Vec<u8> {
        let end = self.reader.position().byte();
        let mut bytes = Vec::new();
        let read = File::open(&self.path).and_then(|mut f| {
            f.seek(SeekFrom::Start(start))?;
            f.take(end.saturating_sub(start)).read_to_end(&mut bytes)
        });
        if read.is_err() {
            bytes.clear();
        }
        while matches!(bytes.last(), Some(b'\n' | b'\r')) {
            bytes.pop();
        }
        bytes
    }

    fn read_records(
        &mut self,
        out: &mut Vec<(T, Timestamp)>,
        max: usize,
    ) -> Result<ReadStatus, ConnectorError> {
        if self.finished {
            return Ok(ReadStatus::Finished);
        }
        for _ in 0..max.max(1) {
            let more =
                self.reader.read_byte_record(&mut self.record).map_err(|e| csv_error(&self.path, e))?;
            if !more {
                self.finished = true;
                return Ok(ReadStatus::Finished);
            }
            let (line, start) = self.record.position().map_or((0, 0), |p| (p.line(), p.byte()));
            // The record belongs to the next range if it truly starts at or after this
            // range's end: csv reports the start of the blank lines before a record, so
            // a record crossing the end is checked against the file's bytes.
            let crosses = self.reader.position().byte() > self.end;
            if start >= self.end || (crosses && self.true_start(start) >= self.end) {
                self.finished = true;
                return Ok(ReadStatus::Finished);
            }
            let decoded = match self.fields {
                Some(n) if self.record.len() != n => {
                    Err(format!("the record has {} fields, expected {n}", self.record.len()))
                }
                _ => (self.decode)(&self.record),
            };
            match decoded {
                Ok(record) => {
                    let ts = self.timestamp.as_ref().map_or(Timestamp::MIN, |f| f(&record));
                    out.push((record, ts));
                }
                Err(message) => match self.policy {
                    BadRecordPolicy::Fail => {
                        return Err(ConnectorError::Decode { path: self.path.clone(), line, message })
                    }
                    _ => {
                        let location = format!("{}:{line}", self.path.display());
                        self.dead.push(DeadLetter::from_bytes(location, message, &self.raw_record(start)));
                    }
                },
            }
        }
        Ok(ReadStatus::Data)
    }

    fn file_position(&self) -> FilePosition {
        let p = self.reader.position();
        FilePosition {
            offset: p.byte(),
            line: p.line().saturating_sub(1),
            file_name: self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
        }
    }
}

impl<T: Send + 'static> SourceReader<T> for CsvReader<T> {
    fn read(&mut self, out: &mut Vec<(T, Timestamp)>, max: usize) -> Result<ReadStatus, SourceError> {
        self.read_records(out, max).map_err(|e| {
            self.finished = true;
            e.into_source_error(&self.position())
        })
    }

    fn position(&self) -> String {
        format!("{}:{}", self.path.display(), self.reader.position().line().saturating_sub(1))
    }

    /// The byte offset of the next unread record, with the last line read
    /// ([`FilePosition`]): every record read has been handed to the runtime or routed
    /// aside, so resuming there neither repeats nor loses one.
    fn checkpoint_position(&self) -> Option<Vec<u8>> {
        Some(self.file_position().encode())
    }

    fn take_dead_letters(&mut self, out: &mut Vec<DeadLetter>) {
        out.append(&mut self.dead);
    }
}

impl<T: Send + 'static> FileOpener<T> for CsvSource<T> {
    fn pattern(&self) -> &str {
        &self.pattern
    }

    fn open_file(
        &self,
        path: &Path,
        position: Option<&[u8]>,
    ) -> Result<Box<dyn SourceReader<T>>, ConnectorError> {
        Ok(Box::new(self.open_range(ByteRange::whole(path.to_owned()), position)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;

    fn read_rest<T>(r: &mut dyn SourceReader<T>, batch: usize) -> Vec<T> {
        let mut out = Vec::new();
        while r.read(&mut out, batch).unwrap() != ReadStatus::Finished {}
        out.into_iter().map(|(v, _)| v).collect()
    }

    #[test]
    fn rows_as_text_and_with_a_schema() {
        let dir = TempDir::new("csv-rows");
        let path = dir.write("a.csv", b"\xEF\xBB\xBFid;name;score\r\n1;\"a;b\";2.5\r\n2;;\r\n");
        let source = CsvSource::rows(path.display().to_string()).delimiter(b';');
        let rows = read_rest(source.open(0, 1).unwrap().as_mut(), 10);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].text("name").unwrap(), "a;b");
        assert_eq!(rows[1].text("score").unwrap(), "");
        let schema = Arc::new(Schema::new(vec![
            Field::new("score", DataType::Float, true),
            Field::new("id", DataType::Int, false),
        ]));
        let source = CsvSource::rows_with_schema(path.display().to_string(), schema).delimiter(b';');
        let rows = read_rest(source.open(0, 1).unwrap().as_mut(), 10);
        assert_eq!(rows[0].values(), &[Value::Float(2.5), Value::Int(1)]);
        assert_eq!(rows[1].values(), &[Value::Null, Value::Int(2)]);
    }

    #[test]
    fn an_empty_file_gives_no_rows_whatever_the_schema() {
        let dir = TempDir::new("csv-empty");
        let path = dir.write("e.csv", b"");
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int, false)]));
        let source = CsvSource::rows_with_schema(path.display().to_string(), schema);
        assert!(read_rest(source.open(0, 1).unwrap().as_mut(), 10).is_empty());
        let source = CsvSource::<(i64,)>::new(path.display().to_string());
        assert!(read_rest(source.open(0, 1).unwrap().as_mut(), 10).is_empty());
    }

    /// Every record of every range, for every split size from 1 byte to the whole file,
    /// and resumed after every record: exactly the records of a straight read, in order,
    /// with their true line numbers in errors.
    #[test]
    fn byte_ranges_partition_the_records_exactly() {
        let dir = TempDir::new("csv-ranges");
        let text = b"id,name\r\n1,a\r\n22,bb\r\n\r\n333,ccc\n4,\"d,d\"\n55,e";
        dir.write("a.csv", text);
        dir.write("b.csv", b"id,name\n");
        let pattern = format!("{}/*.csv", dir.path().display());
        let whole = CsvSource::<(i64, String)>::new(pattern.clone());
        let straight = read_rest(whole.open(0, 2).unwrap().as_mut(), 100);
        assert_eq!(straight.len(), 5);
        for size in 1..=text.len() as u64 + 1 {
            let source = CsvSource::<(i64, String)>::new(pattern.clone()).split_bytes(size);
            let n = source.partitions(1).unwrap();
            assert_eq!(n as u64, (text.len() as u64).div_ceil(size) + 8u64.div_ceil(size));
            let mut got = Vec::new();
            for p in 0..n {
                let range = read_rest(source.open(p, n).unwrap().as_mut(), 100);
                // Resumed after each of its records, the range reads the same.
                for split in 0..=range.len() {
                    let mut r = source.open(p, n).unwrap();
                    let mut head = Vec::new();
                    for _ in 0..split {
                        r.read(&mut head, 1).unwrap();
                    }
                    let mut head: Vec<_> = head.into_iter().map(|(v, _)| v).collect();
                    head.extend(read_rest(
                        source.reopen(p, n, &r.checkpoint_position().unwrap()).unwrap().as_mut(),
                        3,
                    ));
                    assert_eq!(head, range, "split size {size}, range {p}, resumed after {split}");
                }
                got.extend(range);
            }
            assert_eq!(got, straight, "split size {size}");
        }
        // A bad record in a later range is named by its true line.
        let path = dir.write("a.csv", b"id,name\n1,a\n2,b\nx,c\n");
        std::fs::remove_file(dir.path().join("b.csv")).unwrap();
        let source = CsvSource::<(i64, String)>::new(path.display().to_string()).split_bytes(14);
        let n = source.partitions(1).unwrap();
        let mut r = source.open(n - 1, n).unwrap();
        let e = r.read(&mut Vec::new(), 10).unwrap_err();
        assert_eq!(e.location, format!("{}:4", path.display()));
    }

    #[test]
    fn resumes_at_every_record_without_headers() {
        let dir = TempDir::new("csv-resume");
        let path = dir.write("a.csv", b"1,x\n2,\"multi\nline\"\n\n3,z");
        let source = CsvSource::<(i64, String)>::new(path.display().to_string()).has_headers(false);
        let straight = read_rest(source.open(0, 1).unwrap().as_mut(), 1);
        assert_eq!(straight.len(), 3);
        for split in 0..=3 {
            let mut r = source.open(0, 1).unwrap();
            let mut head = Vec::new();
            for _ in 0..split {
                r.read(&mut head, 1).unwrap();
            }
            let mut head: Vec<_> = head.into_iter().map(|(v, _)| v).collect();
            let mut resumed = source.reopen(0, 1, &r.checkpoint_position().unwrap()).unwrap();
            assert_eq!(resumed.position(), r.position());
            head.extend(read_rest(resumed.as_mut(), 2));
            assert_eq!(head, straight, "split after {split}");
        }
    }
}
