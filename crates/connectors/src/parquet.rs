//! [`ParquetSource`]: Parquet files (local paths or globs) read into [`Row`]s, with row
//! groups as the unit of splitting.
//!
//! Every row group of every matching file is its own source partition, so several
//! workers read one large file in parallel (a file's row groups go to workers round
//! robin). A checkpoint records, per partition, the row group and the number of its rows
//! read ([`ParquetPosition`]); a restored job skips those rows and goes on. Arrow types
//! map to [`Value`]s as follows:
//!
//! | Arrow (as the Parquet reader gives it) | [`DataType`] |
//! |---|---|
//! | `Boolean` | `Bool` |
//! | `Int8` .. `Int64`, `UInt8` .. `UInt64` (a `UInt64` above `i64::MAX` is an error) | `Int` |
//! | `Float16`, `Float32`, `Float64` | `Float` |
//! | `Utf8`, `LargeUtf8`, `Utf8View` | `Text` |
//! | `Binary`, `LargeBinary`, `BinaryView`, `FixedSizeBinary` | `Bytes` |
//! | `Timestamp` (any unit, any time zone), `Date32`, `Date64` | `Timestamp` (milliseconds, UTC; finer units truncated toward minus infinity) |
//! | `Dictionary` of any of these | the type of its values |
//!
//! Other column types (decimals, lists, structs, maps, ...) make the source fail at open,
//! naming the column and its type. Compression: uncompressed and Snappy (the `parquet`
//! crate is built with only the `snap` codec to keep the build small); a file using
//! another codec fails with the reader's error.
//!
//! ```
//! # use std::sync::Arc;
//! use millstream_connectors::parquet::ParquetSource;
//! use millstream_runtime::{Pipeline, Runner};
//! # let dir = std::env::temp_dir().join(format!("millstream-doc-parquet-{}", std::process::id()));
//! # std::fs::create_dir_all(&dir).unwrap();
//! # let path = dir.join("a.parquet");
//! # {
//! #     use arrow_array::{Int64Array, RecordBatch};
//! #     let batch = RecordBatch::try_from_iter([("n", Arc::new(Int64Array::from(vec![1, 2, 3])) as _)]).unwrap();
//! #     let mut w = parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), batch.schema(), None).unwrap();
//! #     w.write(&batch).unwrap();
//! #     w.close().unwrap();
//! # }
//! let p = Pipeline::new();
//! let rows = p.read("Rows", ParquetSource::new(format!("{}/*.parquet", dir.display())));
//! let n = rows.map(|r| r.int("n").unwrap()).collect();
//! Runner::new().workers(2).run(&p).unwrap();
//! assert_eq!(n.values().iter().sum::<i64>(), 6);
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

use crate::error::ConnectorError;
use crate::files::expand;
use crate::row::{DataType, Field, Row, Schema, Value};
use ::parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{
    Date32Type, Date64Type, Float16Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type,
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
    UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType as ArrowType, TimeUnit};
use millstream_model::Timestamp;
use millstream_runtime::{ReadStatus, Source, SourceError, SourceReader, WatermarkStrategy};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Assigns a row its event timestamp.
type TimestampFn = dyn Fn(&Row) -> Timestamp + Send + Sync;

/// One partition: a row group of a file, with its number of rows.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RowGroupPart {
    path: PathBuf,
    row_group: usize,
    rows: u64,
}

/// Reads Parquet files into [`Row`]s, one partition per row group (see the
/// [module docs](self)).
#[derive(Clone)]
pub struct ParquetSource {
    pattern: String,
    batch_size: usize,
    watermarks: WatermarkStrategy,
    timestamp: Option<Arc<TimestampFn>>,
    /// The partitions as last listed, so that opening each does not read every footer
    /// again.
    parts: Arc<Mutex<Option<Arc<Vec<RowGroupPart>>>>>,
}

impl std::fmt::Debug for ParquetSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParquetSource")
            .field("pattern", &self.pattern)
            .field("batch_size", &self.batch_size)
            .finish_non_exhaustive()
    }
}

impl ParquetSource {
    /// Reads the file `pattern` names, or every file matching it if it is a glob.
    pub fn new(pattern: impl Into<String>) -> Self {
        ParquetSource {
            pattern: pattern.into(),
            batch_size: 1024,
            watermarks: WatermarkStrategy::from_source(),
            timestamp: None,
            parts: Arc::new(Mutex::new(None)),
        }
    }

    /// Gives each row the timestamp `f` computes from it (default: `Timestamp::MIN`).
    pub fn with_timestamp_fn(mut self, f: impl Fn(&Row) -> Timestamp + Send + Sync + 'static) -> Self {
        self.timestamp = Some(Arc::new(f));
        self
    }

    /// Sets how watermarks follow the timestamps read (default: the start of time until
    /// the row group is read to its end).
    pub fn watermark_strategy(mut self, strategy: WatermarkStrategy) -> Self {
        self.watermarks = strategy;
        self
    }

    /// Sets how many rows the Parquet reader decodes at once (default 1024).
    pub fn batch_size(mut self, rows: usize) -> Self {
        self.batch_size = rows.max(1);
        self
    }

    /// Lists every row group of every matching file, in file order.
    fn list(&self) -> Result<Arc<Vec<RowGroupPart>>, ConnectorError> {
        let mut parts = Vec::new();
        for path in expand(&self.pattern)? {
            let file = File::open(&path).map_err(|e| ConnectorError::io(&path, "cannot open", e))?;
            let row_groups = guarded(&path, || {
                let builder =
                    ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| parquet_error(&path, e))?;
                let meta = builder.metadata();
                Ok((0..meta.num_row_groups())
                    .map(|g| meta.row_group(g).num_rows().max(0) as u64)
                    .collect::<Vec<_>>())
            })?;
            for (row_group, rows) in row_groups.into_iter().enumerate() {
                parts.push(RowGroupPart { path: path.clone(), row_group, rows });
            }
        }
        let parts = Arc::new(parts);
        *self.parts.lock().unwrap_or_else(|e| e.into_inner()) = Some(parts.clone());
        Ok(parts)
    }

    /// Partition `partition` of `partitions`, checking that the files still have as many
    /// row groups in all as when the partitions were counted.
    fn part(&self, partition: usize, partitions: usize) -> Result<RowGroupPart, ConnectorError> {
        let cached = self.parts.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let parts = match cached {
            Some(parts) if parts.len() == partitions => parts,
            _ => self.list()?,
        };
        if parts.len() != partitions || partition >= parts.len() {
            return Err(ConnectorError::FilesChanged { pattern: self.pattern.clone() });
        }
        Ok(parts[partition].clone())
    }

    fn open_reader(
        &self,
        partition: usize,
        partitions: usize,
        position: Option<&[u8]>,
    ) -> Result<ParquetReader, ConnectorError> {
        let part = self.part(partition, partitions)?;
        let resume_error = |message: String| {
            ConnectorError::io(
                &part.path,
                "cannot resume",
                std::io::Error::new(std::io::ErrorKind::InvalidData, message),
            )
        };
        let mut row = 0;
        if let Some(bytes) = position {
            let p = ParquetPosition::decode(bytes).map_err(resume_error)?;
            if p.file_name != file_name(&part.path) || p.row_group != part.row_group as u64 {
                return Err(resume_error(format!(
                    "the checkpoint's position is for row group {} of file {:?}, not row group {} of this one \
                     (did the files change?)",
                    p.row_group, p.file_name, part.row_group
                )));
            }
            if p.row > part.rows {
                return Err(resume_error(format!(
                    "the checkpoint's position (row {}) is past the end of the row group ({} rows)",
                    p.row, part.rows
                )));
            }
            row = p.row;
        }
        Ok(ParquetReader {
            part,
            row,
            batch_size: self.batch_size,
            timestamp: self.timestamp.clone(),
            batches: None,
            schema: None,
            finished: false,
        })
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn parquet_error(path: &Path, e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::io(
        path,
        "cannot read Parquet",
        std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
    )
}

/// Runs calls into the parquet crate, turning a panic into an error naming the file. The
/// parquet crate still panics on some malformed files (fuzzing found "column start and
/// length should not be negative", from a damaged column chunk offset in the footer); a
/// hostile file must fail the job with an error, not take down a worker thread. Whatever
/// the closure touched is dropped or marked finished by the callers after an error.
fn guarded<T>(path: &Path, f: impl FnOnce() -> Result<T, ConnectorError>) -> Result<T, ConnectorError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".to_owned());
            Err(parquet_error(
                path,
                format!("malformed Parquet file: the Parquet reader failed with {message:?}"),
            ))
        }
    }
}

impl Source<Row> for ParquetSource {
    fn partitions(&self, _workers: usize) -> Result<usize, SourceError> {
        self.list().map(|parts| parts.len()).map_err(|e| e.into_source_error(&self.pattern))
    }

    fn open(&self, partition: usize, partitions: usize) -> Result<Box<dyn SourceReader<Row>>, SourceError> {
        let reader =
            self.open_reader(partition, partitions, None).map_err(|e| e.into_source_error(&self.pattern))?;
        Ok(Box::new(reader))
    }

    fn reopen(
        &self,
        partition: usize,
        partitions: usize,
        position: &[u8],
    ) -> Result<Box<dyn SourceReader<Row>>, SourceError> {
        let reader = self
            .open_reader(partition, partitions, Some(position))
            .map_err(|e| e.into_source_error(&self.pattern))?;
        Ok(Box::new(reader))
    }

    fn watermarks(&self) -> WatermarkStrategy {
        self.watermarks
    }
}

/// Where a Parquet partition's reader stands: the row group and how many of its rows have
/// been read. Encoded as 17 bytes, little endian: a version byte (1), the row group
/// (`u64`), the row (`u64`); then the file's name in UTF-8, so that a position is never
/// applied to another file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParquetPosition {
    /// The row group, from 0.
    pub row_group: u64,
    /// How many rows of the row group have been read.
    pub row: u64,
    /// The file's name (its last path component).
    pub file_name: String,
}

impl ParquetPosition {
    /// The position's bytes, as stored in a checkpoint.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(17 + self.file_name.len());
        out.push(1);
        out.extend_from_slice(&self.row_group.to_le_bytes());
        out.extend_from_slice(&self.row.to_le_bytes());
        out.extend_from_slice(self.file_name.as_bytes());
        out
    }

    /// Decodes [`encode`](Self::encode)'s bytes; the error says what is wrong with them.
    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        let (Some(&version), Some(row_group), Some(row), Some(name)) = (
            bytes.first(),
            bytes.get(1..9).and_then(|b| <[u8; 8]>::try_from(b).ok()),
            bytes.get(9..17).and_then(|b| <[u8; 8]>::try_from(b).ok()),
            bytes.get(17..),
        ) else {
            return Err(format!("Parquet position of {} bytes is too short", bytes.len()));
        };
        if version != 1 {
            return Err(format!("Parquet position of version {version}, this reader understands 1"));
        }
        let file_name = String::from_utf8(name.to_vec())
            .map_err(|_| "Parquet position names a file in bad UTF-8".to_owned())?;
        Ok(ParquetPosition {
            row_group: u64::from_le_bytes(row_group),
            row: u64::from_le_bytes(row),
            file_name,
        })
    }
}

/// Reads one row group. The Parquet reader is opened at the first read, so that a job
/// with many row groups does not hold every file open from the start.
struct ParquetReader {
    part: RowGroupPart,
    /// Rows of the row group read so far.
    row: u64,
    batch_size: usize,
    timestamp: Option<Arc<TimestampFn>>,
    batches: Option<ParquetRecordBatchReader>,
    schema: Option<Arc<Schema>>,
    finished: bool,
}

impl ParquetReader {
    fn start(&mut self) -> Result<(), ConnectorError> {
        let path = &self.part.path;
        let file = File::open(path).map_err(|e| ConnectorError::io(path, "cannot open", e))?;
        let (schema, batches) = guarded(path, || {
            let builder =
                ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| parquet_error(path, e))?;
            let schema = row_schema(builder.schema()).map_err(|m| parquet_error(path, m))?;
            let batches = builder
                .with_row_groups(vec![self.part.row_group])
                .with_batch_size(self.batch_size)
                .with_offset(self.row as usize)
                .build()
                .map_err(|e| parquet_error(path, e))?;
            Ok((schema, batches))
        })?;
        self.schema = Some(Arc::new(schema));
        self.batches = Some(batches);
        Ok(())
    }

    fn read_rows(
        &mut self,
        out: &mut Vec<(Row, Timestamp)>,
        max: usize,
    ) -> Result<ReadStatus, ConnectorError> {
        if self.finished {
            return Ok(ReadStatus::Finished);
        }
        if self.batches.is_none() {
            self.start()?;
        }
        let (Some(batches), Some(schema)) = (self.batches.as_mut(), self.schema.as_ref()) else {
            unreachable!("started above")
        };
        // A batch is read whole (`batch_size` rows at most), whatever `max` says: the
        // position counts rows handed out, so it stays exact.
        let _ = max;
        let path = &self.part.path;
        let next = guarded(path, || match batches.next() {
            None => Ok(None),
            Some(Err(e)) => Err(parquet_error(path, e)),
            Some(Ok(batch)) => batch_rows(&batch, schema).map(Some).map_err(|m| parquet_error(path, m)),
        });
        match next {
            Err(e) => {
                // The reader may be in any state after a failure (or a caught panic).
                self.batches = None;
                self.finished = true;
                Err(e)
            }
            Ok(None) => {
                self.finished = true;
                Ok(ReadStatus::Finished)
            }
            Ok(Some(rows)) => {
                self.row += rows.len() as u64;
                for row in rows {
                    let ts = self.timestamp.as_ref().map_or(Timestamp::MIN, |f| f(&row));
                    out.push((row, ts));
                }
                Ok(ReadStatus::Data)
            }
        }
    }
}

impl SourceReader<Row> for ParquetReader {
    fn read(&mut self, out: &mut Vec<(Row, Timestamp)>, max: usize) -> Result<ReadStatus, SourceError> {
        self.read_rows(out, max).map_err(|e| {
            self.finished = true;
            e.into_source_error(&self.position())
        })
    }

    fn position(&self) -> String {
        format!("{} row group {} row {}", self.part.path.display(), self.part.row_group, self.row)
    }

    /// The row group and the number of its rows read ([`ParquetPosition`]).
    fn checkpoint_position(&self) -> Option<Vec<u8>> {
        Some(
            ParquetPosition {
                row_group: self.part.row_group as u64,
                row: self.row,
                file_name: file_name(&self.part.path),
            }
            .encode(),
        )
    }
}

/// The row type of an Arrow schema (see the table in the [module docs](self)).
fn row_schema(schema: &arrow_schema::Schema) -> Result<Schema, String> {
    let fields = schema
        .fields()
        .iter()
        .map(|f| {
            let data_type = value_type(f.data_type()).ok_or_else(|| {
                format!("column {:?} has type {}, which rows cannot hold", f.name(), f.data_type())
            })?;
            Ok(Field::new(f.name().clone(), data_type, f.is_nullable()))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Schema::new(fields))
}

/// The value type of an Arrow type, if rows can hold it.
fn value_type(t: &ArrowType) -> Option<DataType> {
    Some(match t {
        ArrowType::Boolean => DataType::Bool,
        ArrowType::Int8
        | ArrowType::Int16
        | ArrowType::Int32
        | ArrowType::Int64
        | ArrowType::UInt8
        | ArrowType::UInt16
        | ArrowType::UInt32
        | ArrowType::UInt64 => DataType::Int,
        ArrowType::Float16 | ArrowType::Float32 | ArrowType::Float64 => DataType::Float,
        ArrowType::Utf8 | ArrowType::LargeUtf8 | ArrowType::Utf8View => DataType::Text,
        ArrowType::Binary
        | ArrowType::LargeBinary
        | ArrowType::BinaryView
        | ArrowType::FixedSizeBinary(_) => DataType::Bytes,
        ArrowType::Timestamp(_, _) | ArrowType::Date32 | ArrowType::Date64 => DataType::Timestamp,
        ArrowType::Dictionary(_, values) => return value_type(values),
        _ => return None,
    })
}

/// Milliseconds from a count of `unit`s, rounding toward minus infinity.
fn to_millis(value: i64, unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => value.saturating_mul(1000),
        TimeUnit::Millisecond => value,
        TimeUnit::Microsecond => value.div_euclid(1000),
        TimeUnit::Nanosecond => value.div_euclid(1_000_000),
    }
}

/// The values of column `column`, one per row.
fn column_values(column: &dyn Array, name: &str) -> Result<Vec<Value>, String> {
    let n = column.len();
    let mut values = Vec::with_capacity(n);
    macro_rules! each {
        ($array:expr, |$v:ident| $to:expr) => {{
            let array = $array;
            for i in 0..n {
                values.push(if array.is_null(i) {
                    Value::Null
                } else {
                    let $v = array.value(i);
                    $to
                });
            }
        }};
    }
    match column.data_type() {
        ArrowType::Boolean => each!(column.as_boolean(), |v| Value::Bool(v)),
        ArrowType::Int8 => each!(column.as_primitive::<Int8Type>(), |v| Value::Int(v.into())),
        ArrowType::Int16 => each!(column.as_primitive::<Int16Type>(), |v| Value::Int(v.into())),
        ArrowType::Int32 => each!(column.as_primitive::<Int32Type>(), |v| Value::Int(v.into())),
        ArrowType::Int64 => each!(column.as_primitive::<Int64Type>(), |v| Value::Int(v)),
        ArrowType::UInt8 => each!(column.as_primitive::<UInt8Type>(), |v| Value::Int(v.into())),
        ArrowType::UInt16 => each!(column.as_primitive::<UInt16Type>(), |v| Value::Int(v.into())),
        ArrowType::UInt32 => each!(column.as_primitive::<UInt32Type>(), |v| Value::Int(v.into())),
        ArrowType::UInt64 => each!(column.as_primitive::<UInt64Type>(), |v| Value::Int(
            i64::try_from(v)
                .map_err(|_| format!("column {name:?}: {v} does not fit a 64-bit signed integer"))?
        )),
        ArrowType::Float16 => each!(column.as_primitive::<Float16Type>(), |v| Value::Float(v.to_f64())),
        ArrowType::Float32 => each!(column.as_primitive::<Float32Type>(), |v| Value::Float(v.into())),
        ArrowType::Float64 => each!(column.as_primitive::<Float64Type>(), |v| Value::Float(v)),
        ArrowType::Utf8 => each!(column.as_string::<i32>(), |v| Value::Text(v.to_owned())),
        ArrowType::LargeUtf8 => each!(column.as_string::<i64>(), |v| Value::Text(v.to_owned())),
        ArrowType::Utf8View => each!(column.as_string_view(), |v| Value::Text(v.to_owned())),
        ArrowType::Binary => each!(column.as_binary::<i32>(), |v| Value::Bytes(v.to_vec())),
        ArrowType::LargeBinary => each!(column.as_binary::<i64>(), |v| Value::Bytes(v.to_vec())),
        ArrowType::BinaryView => each!(column.as_binary_view(), |v| Value::Bytes(v.to_vec())),
        ArrowType::FixedSizeBinary(_) => each!(column.as_fixed_size_binary(), |v| Value::Bytes(v.to_vec())),
        ArrowType::Timestamp(unit, _) => {
            let unit = *unit;
            match unit {
                TimeUnit::Second => each!(
                    column.as_primitive::<TimestampSecondType>(),
                    |v| Value::Timestamp(to_millis(v, unit))
                ),
                TimeUnit::Millisecond => {
                    each!(column.as_primitive::<TimestampMillisecondType>(), |v| Value::Timestamp(v))
                }
                TimeUnit::Microsecond => each!(column.as_primitive::<TimestampMicrosecondType>(), |v| {
                    Value::Timestamp(to_millis(v, unit))
                }),
                TimeUnit::Nanosecond => each!(column.as_primitive::<TimestampNanosecondType>(), |v| {
                    Value::Timestamp(to_millis(v, unit))
                }),
            }
        }
        ArrowType::Date32 => {
            each!(column.as_primitive::<Date32Type>(), |v| Value::Timestamp(i64::from(v) * 86_400_000))
        }
        ArrowType::Date64 => each!(column.as_primitive::<Date64Type>(), |v| Value::Timestamp(v)),
        ArrowType::Dictionary(_, _) => {
            let dictionary = column.as_any_dictionary();
            let distinct = column_values(dictionary.values().as_ref(), name)?;
            for (i, key) in dictionary.normalized_keys().into_iter().enumerate() {
                values.push(if column.is_null(i) { Value::Null } else { distinct[key].clone() });
            }
        }
        other => return Err(format!("column {name:?} has type {other}, which rows cannot hold")),
    }
    Ok(values)
}

/// The rows of a record batch, in `schema` (from [`row_schema`] of the batch's schema).
fn batch_rows(batch: &RecordBatch, schema: &Arc<Schema>) -> Result<Vec<Row>, String> {
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (column, field) in batch.columns().iter().zip(&schema.fields) {
        columns.push(column_values(column.as_ref(), &field.name)?.into_iter());
    }
    let rows = (0..batch.num_rows())
        .map(|_| {
            let values = columns.iter_mut().map(|c| c.next().unwrap_or(Value::Null)).collect();
            Row::new_unchecked(schema.clone(), values)
        })
        .collect();
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TempDir;
    use ::parquet::arrow::ArrowWriter;
    use arrow_array::{
        BinaryArray, BooleanArray, Date32Array, Float32Array, Int32Array, StringArray,
        TimestampMicrosecondArray, UInt64Array,
    };

    /// A fuzzer-found file (fuzz target `parquet_reader`) whose damaged footer makes the
    /// parquet crate panic ("column start and length should not be negative") when the row
    /// group is read: the reader must fail with an error naming the file instead.
    #[test]
    fn a_file_on_which_the_parquet_crate_panics_is_an_error() {
        let dir = TempDir::new("parquet-fuzz");
        let path = dir.path().join("input.parquet");
        std::fs::write(&path, include_bytes!("testdata/fuzz-negative-column-start.parquet")).unwrap();
        let source = ParquetSource::new(path.display().to_string());
        let partitions = source.partitions(1).expect("the footer parses");
        let mut failures = Vec::new();
        for partition in 0..partitions {
            let mut reader = source.open(partition, partitions).expect("open");
            let mut out = Vec::new();
            loop {
                match reader.read(&mut out, 100) {
                    Ok(ReadStatus::Finished) => break,
                    Ok(_) => continue,
                    Err(e) => {
                        failures.push(e.to_string());
                        // A failed reader stays finished.
                        assert!(matches!(reader.read(&mut out, 100), Ok(ReadStatus::Finished)));
                        break;
                    }
                }
            }
        }
        assert!(
            failures.iter().any(|e| e.contains("malformed Parquet file") && e.contains("input.parquet")),
            "{failures:?}"
        );
    }

    /// A fuzzer-found file whose footer claims so many schema children that the parquet
    /// crate's `Vec::with_capacity` panics ("capacity overflow") while the footer is parsed:
    /// counting the partitions must fail with an error naming the file instead.
    #[test]
    fn a_footer_on_which_the_parquet_crate_panics_is_an_error() {
        let dir = TempDir::new("parquet-fuzz-footer");
        let path = dir.path().join("input.parquet");
        std::fs::write(&path, include_bytes!("testdata/fuzz-schema-capacity-overflow.parquet")).unwrap();
        let err = ParquetSource::new(path.display().to_string()).partitions(1).expect_err("a bad footer");
        let message = err.to_string();
        assert!(message.contains("malformed Parquet file") && message.contains("input.parquet"), "{message}");
    }

    #[test]
    fn arrow_types_map_to_values() {
        let batch = RecordBatch::try_from_iter([
            ("b", Arc::new(BooleanArray::from(vec![Some(true), None])) as Arc<dyn Array>),
            ("i", Arc::new(Int32Array::from(vec![-3, 4])) as _),
            ("u", Arc::new(UInt64Array::from(vec![5, 6])) as _),
            ("f", Arc::new(Float32Array::from(vec![1.5, 2.0])) as _),
            ("s", Arc::new(StringArray::from(vec![Some("x"), None])) as _),
            ("y", Arc::new(BinaryArray::from(vec![&b"\x00\xff"[..], b""])) as _),
            ("t", Arc::new(TimestampMicrosecondArray::from(vec![1_500, -1])) as _),
            ("d", Arc::new(Date32Array::from(vec![1, 0])) as _),
        ])
        .unwrap();
        let dir = TempDir::new("parquet-types");
        let path = dir.path().join("t.parquet");
        let mut w = ArrowWriter::try_new(File::create(&path).unwrap(), batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let source = ParquetSource::new(path.display().to_string());
        assert_eq!(source.partitions(1).unwrap(), 1);
        let mut r = source.open(0, 1).unwrap();
        let mut out = Vec::new();
        while r.read(&mut out, 10).unwrap() != ReadStatus::Finished {}
        let rows: Vec<Row> = out.into_iter().map(|(r, _)| r).collect();
        assert_eq!(
            rows[0].values(),
            &[
                Value::Bool(true),
                Value::Int(-3),
                Value::Int(5),
                Value::Float(1.5),
                Value::Text("x".into()),
                Value::Bytes(vec![0, 255]),
                Value::Timestamp(1),
                Value::Timestamp(86_400_000),
            ]
        );
        assert_eq!(rows[1].values()[0], Value::Null);
        assert_eq!(rows[1].values()[4], Value::Null);
        assert_eq!(rows[1].timestamp("t"), Ok(-1));
        let types: Vec<DataType> = rows[0].schema().fields.iter().map(|f| f.data_type).collect();
        use DataType::*;
        assert_eq!(types, vec![Bool, Int, Int, Float, Text, Bytes, Timestamp, Timestamp]);
    }

    #[test]
    fn dictionary_columns_read_as_their_values() {
        let dict: arrow_array::DictionaryArray<Int32Type> =
            vec![Some("a"), None, Some("b"), Some("a")].into_iter().collect();
        let batch = RecordBatch::try_from_iter([("d", Arc::new(dict) as Arc<dyn Array>)]).unwrap();
        let dir = TempDir::new("parquet-dict");
        let path = dir.path().join("d.parquet");
        let mut w = ArrowWriter::try_new(File::create(&path).unwrap(), batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let source = ParquetSource::new(path.display().to_string());
        let mut r = source.open(0, 1).unwrap();
        let mut out = Vec::new();
        while r.read(&mut out, 10).unwrap() != ReadStatus::Finished {}
        let values: Vec<Value> = out.iter().map(|(r, _)| r.values()[0].clone()).collect();
        let text = |s: &str| Value::Text(s.into());
        assert_eq!(values, vec![text("a"), Value::Null, text("b"), text("a")]);
        assert_eq!(out[0].0.schema().fields[0].data_type, DataType::Text);
    }

    #[test]
    fn positions_round_trip_and_bad_ones_are_refused() {
        let p = ParquetPosition { row_group: 3, row: 17, file_name: "a.parquet".into() };
        assert_eq!(ParquetPosition::decode(&p.encode()), Ok(p));
        assert!(ParquetPosition::decode(b"\x01short").unwrap_err().contains("too short"));
        assert!(ParquetPosition::decode(&[2; 17]).unwrap_err().contains("version 2"));
    }
}
