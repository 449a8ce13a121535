//! SQL for the PostgreSQL sink: [`SqlValue`] and its encodings (PostgreSQL's binary
//! format, text, and the staging format), quoted identifiers, and the statements the sink
//! runs.

use bytes::{BufMut, BytesMut};
use serde::{Deserialize, Serialize};
use std::error::Error;
use tokio_postgres::types::{IsNull, ToSql, Type};

/// One column value of a row written by [`PostgresUpsertSink`](super::PostgresUpsertSink).
///
/// Values are checked against the target column's type before anything is sent:
///
/// | value | column types |
/// |---|---|
/// | `Null` | any |
/// | `Bool` | `boolean` |
/// | `I64` | `smallint`, `integer`, `bigint` (range-checked), `real`, `double precision` |
/// | `F64` | `real`, `double precision` |
/// | `Text` | `text`, `varchar`, `char`, `name` |
/// | `Bytes` | `bytea` |
/// | `Timestamp` | `timestamp`, `timestamptz` (milliseconds since the Unix epoch, UTC) |
///
/// Columns of any other type (`numeric`, `date`, `uuid`, `json`, `jsonb`, enums,
/// domains, arrays...) take any value in its text form and convert it on the server
/// (`$1::text::numeric`), so `Text("12.50")` or `I64(12)` fit a `numeric` column and
/// `Text("{\"a\": 1}")` a `jsonb` one; the server rejects text it cannot convert.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum SqlValue {
    /// SQL `NULL`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A 64-bit integer.
    I64(i64),
    /// A double-precision float.
    F64(f64),
    /// A string.
    Text(String),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// A point in time: milliseconds since 1970-01-01T00:00:00Z.
    Timestamp(i64),
}

impl SqlValue {
    /// The value's kind, as error messages name it.
    pub fn kind(&self) -> &'static str {
        match self {
            SqlValue::Null => "Null",
            SqlValue::Bool(_) => "Bool",
            SqlValue::I64(_) => "I64",
            SqlValue::F64(_) => "F64",
            SqlValue::Text(_) => "Text",
            SqlValue::Bytes(_) => "Bytes",
            SqlValue::Timestamp(_) => "Timestamp",
        }
    }

    /// The value in PostgreSQL's text input format (`None` for `Null`).
    pub fn to_text(&self) -> Option<String> {
        Some(match self {
            SqlValue::Null => return None,
            SqlValue::Bool(b) => b.to_string(),
            SqlValue::I64(i) => i.to_string(),
            SqlValue::F64(f) if f.is_nan() => "NaN".to_owned(),
            SqlValue::F64(f) if f.is_infinite() => if *f > 0.0 { "Infinity" } else { "-Infinity" }.to_owned(),
            SqlValue::F64(f) => f.to_string(),
            SqlValue::Text(s) => s.clone(),
            SqlValue::Bytes(b) => {
                let mut s = String::with_capacity(2 + 2 * b.len());
                s.push_str("\\x");
                for byte in b {
                    s.push_str(&format!("{byte:02x}"));
                }
                s
            }
            SqlValue::Timestamp(ms) => timestamp_text(*ms),
        })
    }
}

impl From<bool> for SqlValue {
    fn from(v: bool) -> Self {
        SqlValue::Bool(v)
    }
}
impl From<i64> for SqlValue {
    fn from(v: i64) -> Self {
        SqlValue::I64(v)
    }
}
impl From<i32> for SqlValue {
    fn from(v: i32) -> Self {
        SqlValue::I64(v.into())
    }
}
impl From<u32> for SqlValue {
    fn from(v: u32) -> Self {
        SqlValue::I64(v.into())
    }
}
impl From<f64> for SqlValue {
    fn from(v: f64) -> Self {
        SqlValue::F64(v)
    }
}
impl From<String> for SqlValue {
    fn from(v: String) -> Self {
        SqlValue::Text(v)
    }
}
impl From<&str> for SqlValue {
    fn from(v: &str) -> Self {
        SqlValue::Text(v.to_owned())
    }
}
impl From<Vec<u8>> for SqlValue {
    fn from(v: Vec<u8>) -> Self {
        SqlValue::Bytes(v)
    }
}
impl From<millstream_model::Timestamp> for SqlValue {
    fn from(v: millstream_model::Timestamp) -> Self {
        SqlValue::Timestamp(v.millis())
    }
}
impl<V: Into<SqlValue>> From<Option<V>> for SqlValue {
    fn from(v: Option<V>) -> Self {
        v.map_or(SqlValue::Null, Into::into)
    }
}

/// Milliseconds between the Unix epoch and PostgreSQL's (2000-01-01T00:00:00Z).
const PG_EPOCH_MS: i64 = 946_684_800_000;

/// `ms` (since the Unix epoch) as PostgreSQL's binary timestamp: microseconds since 2000.
fn timestamp_micros(ms: i64) -> Option<i64> {
    ms.checked_sub(PG_EPOCH_MS)?.checked_mul(1000)
}

/// Year, month, day of a day count since 1970-01-01 (proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// `ms` (since the Unix epoch) in PostgreSQL's timestamp input format, UTC.
fn timestamp_text(ms: i64) -> String {
    let (days, in_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (year, month, day) = civil_from_days(days);
    let (h, m, s, milli) = (in_day / 3_600_000, in_day / 60_000 % 60, in_day / 1000 % 60, in_day % 1000);
    // Year 0 is 1 BC in PostgreSQL's (and the usual) numbering.
    let (year, era) = if year <= 0 { (1 - year, " BC") } else { (year, "") };
    format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02}.{milli:03}+00{era}")
}

/// How the sink sends a column's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ColumnType {
    Bool,
    Int2,
    Int4,
    Int8,
    Float4,
    Float8,
    Text,
    Bytea,
    Timestamp,
    TimestampTz,
    /// Any other type: sent as text and converted by the server.
    ViaText,
}

impl ColumnType {
    /// The type the sink sends values of a column of type `ty` as.
    pub(crate) fn of(ty: &Type) -> ColumnType {
        const NATIVE: [(Type, ColumnType); 13] = [
            (Type::BOOL, ColumnType::Bool),
            (Type::INT2, ColumnType::Int2),
            (Type::INT4, ColumnType::Int4),
            (Type::INT8, ColumnType::Int8),
            (Type::FLOAT4, ColumnType::Float4),
            (Type::FLOAT8, ColumnType::Float8),
            (Type::TEXT, ColumnType::Text),
            (Type::VARCHAR, ColumnType::Text),
            (Type::BPCHAR, ColumnType::Text),
            (Type::NAME, ColumnType::Text),
            (Type::BYTEA, ColumnType::Bytea),
            (Type::TIMESTAMP, ColumnType::Timestamp),
            (Type::TIMESTAMPTZ, ColumnType::TimestampTz),
        ];
        NATIVE.iter().find(|(t, _)| t == ty).map_or(ColumnType::ViaText, |(_, c)| *c)
    }

    /// Whether `value` can be written to a column of this type; why not, if not.
    pub(crate) fn check(self, value: &SqlValue) -> Result<(), String> {
        let ok = match (self, value) {
            (_, SqlValue::Null) | (ColumnType::ViaText, _) => true,
            (ColumnType::Bool, SqlValue::Bool(_)) => true,
            (ColumnType::Int2, SqlValue::I64(v)) => return int_range::<i16>(*v, "smallint"),
            (ColumnType::Int4, SqlValue::I64(v)) => return int_range::<i32>(*v, "integer"),
            (ColumnType::Int8, SqlValue::I64(_)) => true,
            (ColumnType::Float4 | ColumnType::Float8, SqlValue::F64(_) | SqlValue::I64(_)) => true,
            (ColumnType::Text, SqlValue::Text(_)) => true,
            (ColumnType::Bytea, SqlValue::Bytes(_)) => true,
            (ColumnType::Timestamp | ColumnType::TimestampTz, SqlValue::Timestamp(ms)) => {
                return timestamp_micros(*ms)
                    .map(|_| ())
                    .ok_or_else(|| format!("timestamp {ms} ms is out of PostgreSQL's range"));
            }
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!("SqlValue::{} cannot be written to it", value.kind()))
        }
    }
}

fn int_range<I: TryFrom<i64>>(v: i64, name: &str) -> Result<(), String> {
    I::try_from(v).map(|_| ()).map_err(|_| format!("{v} is out of range for type {name}"))
}

type BoxError = Box<dyn Error + Sync + Send>;

impl ToSql for SqlValue {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let column = ColumnType::of(ty);
        if column == ColumnType::Text {
            // Text parameters also carry the values of columns converted on the server.
            return match self.to_text() {
                None => Ok(IsNull::Yes),
                Some(text) => {
                    out.put_slice(text.as_bytes());
                    Ok(IsNull::No)
                }
            };
        }
        column.check(self).map_err(|e| format!("parameter of type {ty}: {e}"))?;
        match (self, column) {
            (SqlValue::Null, _) => return Ok(IsNull::Yes),
            (SqlValue::Bool(b), _) => out.put_u8(u8::from(*b)),
            (SqlValue::I64(v), ColumnType::Int2) => out.put_i16(i16::try_from(*v)?),
            (SqlValue::I64(v), ColumnType::Int4) => out.put_i32(i32::try_from(*v)?),
            (SqlValue::I64(v), ColumnType::Float4) => out.put_f32(*v as f32),
            (SqlValue::I64(v), ColumnType::Float8) => out.put_f64(*v as f64),
            (SqlValue::I64(v), _) => out.put_i64(*v),
            (SqlValue::F64(v), ColumnType::Float4) => out.put_f32(*v as f32),
            (SqlValue::F64(v), _) => out.put_f64(*v),
            (SqlValue::Bytes(b), _) => out.put_slice(b),
            (SqlValue::Timestamp(ms), _) => {
                out.put_i64(timestamp_micros(*ms).ok_or("timestamp out of range")?)
            }
            (SqlValue::Text(_), _) => {
                return Err(format!("SqlValue::Text for a parameter of type {ty}").into())
            }
        }
        Ok(IsNull::No)
    }

    fn accepts(_ty: &Type) -> bool {
        // Every type: mismatches are reported by `to_sql` with the value's kind.
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

/// `name` quoted as a PostgreSQL identifier (taken literally: case kept, `"` doubled).
/// Empty names, control characters (NUL included) and names longer than PostgreSQL's 63
/// bytes (which it would silently truncate) are refused.
pub(crate) fn quote_ident(name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("an empty identifier".to_owned());
    }
    if name.chars().any(char::is_control) {
        return Err(format!("identifier {name:?} contains a control character"));
    }
    if name.len() > 63 {
        return Err(format!("identifier {name:?} is longer than 63 bytes"));
    }
    Ok(format!("\"{}\"", name.replace('"', "\"\"")))
}

/// A table name, `table` or `schema.table` (each part taken literally), quoted.
pub(crate) fn quote_table(name: &str) -> Result<String, String> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() > 2 {
        return Err(format!("table name {name:?}: expected `table` or `schema.table`"));
    }
    let quoted: Result<Vec<String>, String> = parts.iter().map(|p| quote_ident(p)).collect();
    Ok(quoted.map_err(|e| format!("table name {name:?}: {e}"))?.join("."))
}

/// A column of the target table as the sink writes it.
#[derive(Clone, Debug)]
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) quoted: String,
    /// The column's type as PostgreSQL names it.
    pub(crate) type_name: String,
    pub(crate) ty: ColumnType,
    /// For [`ColumnType::ViaText`]: the quoted type to convert the text to.
    pub(crate) cast: Option<String>,
}

impl Column {
    /// A column of `ty` (as the server inferred it for the column's parameter).
    pub(crate) fn new(name: &str, ty: &Type) -> Result<Column, String> {
        let column_type = ColumnType::of(ty);
        let cast = if column_type == ColumnType::ViaText {
            Some(format!("{}.{}", quote_ident(ty.schema())?, quote_ident(ty.name())?))
        } else {
            None
        };
        Ok(Column {
            name: name.to_owned(),
            quoted: quote_ident(name)?,
            type_name: ty.to_string(),
            ty: column_type,
            cast,
        })
    }
}

/// `INSERT INTO <table> (<columns>) VALUES (...), ... ON CONFLICT (<key>) DO UPDATE SET
/// <column> = EXCLUDED.<column>, ...` for `rows` rows; `DO NOTHING` when every column is
/// in the key. `key` are indexes into `columns`.
pub(crate) fn upsert_sql(table: &str, columns: &[Column], key: &[usize], rows: usize) -> String {
    let names: Vec<&str> = columns.iter().map(|c| c.quoted.as_str()).collect();
    let mut sql = format!("INSERT INTO {table} ({}) VALUES ", names.join(", "));
    let mut n = 0;
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for (i, c) in columns.iter().enumerate() {
            n += 1;
            if i > 0 {
                sql.push_str(", ");
            }
            match &c.cast {
                Some(ty) => sql.push_str(&format!("${n}::text::{ty}")),
                None => sql.push_str(&format!("${n}")),
            }
        }
        sql.push(')');
    }
    let key_names: Vec<&str> = key.iter().map(|k| names[*k]).collect();
    sql.push_str(&format!(" ON CONFLICT ({}) DO ", key_names.join(", ")));
    let updates: Vec<String> = (0..columns.len())
        .filter(|i| !key.contains(i))
        .map(|i| format!("{c} = EXCLUDED.{c}", c = names[i]))
        .collect();
    if updates.is_empty() {
        sql.push_str("NOTHING");
    } else {
        sql.push_str(&format!("UPDATE SET {}", updates.join(", ")));
    }
    sql
}

/// The marker table: one row per committed (sink, worker, epoch).
pub(crate) const MARKERS: &str = "millstream_sink_commits";
/// The staging table: pre-committed rows, in chunks, until their epoch commits.
pub(crate) const STAGING: &str = "millstream_staging";

/// Creates the sink's own tables (in the connection's default schema) if missing.
pub(crate) const CREATE_CONTROL_TABLES: &str = "\
CREATE TABLE IF NOT EXISTS millstream_sink_commits (
    sink_id text NOT NULL,
    worker integer NOT NULL,
    epoch bigint NOT NULL,
    target text NOT NULL,
    rows bigint NOT NULL,
    committed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sink_id, worker, epoch)
);
CREATE TABLE IF NOT EXISTS millstream_staging (
    sink_id text NOT NULL,
    worker integer NOT NULL,
    epoch bigint NOT NULL,
    seq integer NOT NULL,
    rows integer NOT NULL,
    payload bytea NOT NULL,
    PRIMARY KEY (sink_id, worker, epoch, seq)
);";

/// Serializes the setup of concurrent writers (creating tables is not safe to race).
pub(crate) const SETUP_LOCK: i64 = 0x6d69_6c6c_7374_7265; // "millstre"

/// The staging format's version byte.
const STAGING_FORMAT: u8 = 1;

/// Rows in the staging format: a version byte, then bincode.
pub(crate) fn encode_rows(rows: &[Vec<SqlValue>]) -> Result<Vec<u8>, String> {
    let mut bytes = vec![STAGING_FORMAT];
    bincode::serialize_into(&mut bytes, rows).map_err(|e| format!("encoding staged rows: {e}"))?;
    Ok(bytes)
}

/// Rows back from the staging format.
pub(crate) fn decode_rows(bytes: &[u8]) -> Result<Vec<Vec<SqlValue>>, String> {
    match bytes.split_first() {
        Some((&STAGING_FORMAT, rest)) => {
            bincode::deserialize(rest).map_err(|e| format!("decoding staged rows: {e}"))
        }
        Some((v, _)) => Err(format!("staged rows in unknown format {v}")),
        None => Err("empty staged rows".to_owned()),
    }
}

/// A key's identity for de-duplication within an epoch.
pub(crate) fn key_bytes(row: &[SqlValue], key: &[usize]) -> Result<Vec<u8>, String> {
    let values: Vec<&SqlValue> = key.iter().map(|k| &row[*k]).collect();
    bincode::serialize(&values).map_err(|e| format!("encoding key: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, ty: &Type) -> Column {
        Column::new(name, ty).unwrap()
    }

    #[test]
    fn identifiers_are_quoted_literally() {
        assert_eq!(quote_ident("counts").unwrap(), "\"counts\"");
        assert_eq!(quote_ident("Mixed Case").unwrap(), "\"Mixed Case\"");
        assert_eq!(quote_ident("a\"b").unwrap(), "\"a\"\"b\"");
        assert_eq!(quote_ident("x'); DROP TABLE t; --").unwrap(), "\"x'); DROP TABLE t; --\"");
        assert_eq!(quote_ident("é").unwrap(), "\"é\"");
        assert!(quote_ident("").unwrap_err().contains("empty"));
        assert!(quote_ident("a\0b").unwrap_err().contains("control"));
        assert!(quote_ident("a\nb").unwrap_err().contains("control"));
        assert!(quote_ident(&"x".repeat(64)).unwrap_err().contains("63 bytes"));
        assert!(quote_ident(&"x".repeat(63)).is_ok());
    }

    #[test]
    fn table_names_may_have_a_schema() {
        assert_eq!(quote_table("t").unwrap(), "\"t\"");
        assert_eq!(quote_table("s.t").unwrap(), "\"s\".\"t\"");
        assert!(quote_table("a.b.c").unwrap_err().contains("schema.table"));
        assert!(quote_table(".t").unwrap_err().contains("empty"));
        assert!(quote_table("s.").unwrap_err().contains("empty"));
    }

    #[test]
    fn upsert_statement_text() {
        let columns = vec![col("k", &Type::TEXT), col("n", &Type::INT8), col("w", &Type::TIMESTAMPTZ)];
        assert_eq!(
            upsert_sql("\"t\"", &columns, &[0], 2),
            "INSERT INTO \"t\" (\"k\", \"n\", \"w\") VALUES ($1, $2, $3), ($4, $5, $6) \
             ON CONFLICT (\"k\") DO UPDATE SET \"n\" = EXCLUDED.\"n\", \"w\" = EXCLUDED.\"w\""
        );
        assert_eq!(
            upsert_sql("\"s\".\"t\"", &columns, &[2, 0], 1),
            "INSERT INTO \"s\".\"t\" (\"k\", \"n\", \"w\") VALUES ($1, $2, $3) \
             ON CONFLICT (\"w\", \"k\") DO UPDATE SET \"n\" = EXCLUDED.\"n\""
        );
        // Every column in the key: nothing to update.
        assert_eq!(
            upsert_sql("\"t\"", &columns[..1], &[0], 1),
            "INSERT INTO \"t\" (\"k\") VALUES ($1) ON CONFLICT (\"k\") DO NOTHING"
        );
    }

    #[test]
    fn other_types_are_converted_from_text_on_the_server() {
        let columns = vec![col("a b", &Type::INT4), col("amount", &Type::NUMERIC), col("doc", &Type::JSONB)];
        assert_eq!(columns[1].cast.as_deref(), Some("\"pg_catalog\".\"numeric\""));
        assert_eq!(columns[1].ty, ColumnType::ViaText);
        assert_eq!(
            upsert_sql("\"t\"", &columns, &[0], 1),
            "INSERT INTO \"t\" (\"a b\", \"amount\", \"doc\") VALUES ($1, $2::text::\"pg_catalog\".\"numeric\", \
             $3::text::\"pg_catalog\".\"jsonb\") ON CONFLICT (\"a b\") DO UPDATE SET \
             \"amount\" = EXCLUDED.\"amount\", \"doc\" = EXCLUDED.\"doc\""
        );
    }

    #[test]
    fn values_are_checked_against_column_types() {
        assert!(ColumnType::Int8.check(&SqlValue::I64(i64::MAX)).is_ok());
        assert!(ColumnType::Int4
            .check(&SqlValue::I64(1 << 40))
            .unwrap_err()
            .contains("out of range for type integer"));
        assert!(ColumnType::Int2.check(&SqlValue::I64(-32768)).is_ok());
        assert!(ColumnType::Int8
            .check(&SqlValue::Text("1".into()))
            .unwrap_err()
            .contains("SqlValue::Text cannot"));
        assert!(ColumnType::Text.check(&SqlValue::I64(1)).unwrap_err().contains("SqlValue::I64 cannot"));
        assert!(ColumnType::Float8.check(&SqlValue::I64(1)).is_ok());
        assert!(ColumnType::Bool.check(&SqlValue::Null).is_ok());
        assert!(ColumnType::ViaText.check(&SqlValue::Bytes(vec![1])).is_ok());
        assert!(ColumnType::TimestampTz.check(&SqlValue::Timestamp(i64::MIN)).unwrap_err().contains("range"));
    }

    fn binary(v: &SqlValue, ty: &Type) -> Result<Option<Vec<u8>>, String> {
        let mut out = BytesMut::new();
        match v.to_sql_checked(ty, &mut out).map_err(|e| e.to_string())? {
            IsNull::Yes => Ok(None),
            IsNull::No => Ok(Some(out.to_vec())),
        }
    }

    #[test]
    fn binary_encodings() {
        assert_eq!(binary(&SqlValue::Null, &Type::INT8).unwrap(), None);
        assert_eq!(binary(&SqlValue::Bool(true), &Type::BOOL).unwrap(), Some(vec![1]));
        assert_eq!(binary(&SqlValue::I64(258), &Type::INT2).unwrap(), Some(vec![1, 2]));
        assert_eq!(binary(&SqlValue::I64(-1), &Type::INT4).unwrap(), Some(vec![255; 4]));
        assert_eq!(binary(&SqlValue::I64(1), &Type::INT8).unwrap(), Some(1i64.to_be_bytes().to_vec()));
        assert_eq!(binary(&SqlValue::F64(1.5), &Type::FLOAT4).unwrap(), Some(1.5f32.to_be_bytes().to_vec()));
        assert_eq!(binary(&SqlValue::I64(2), &Type::FLOAT8).unwrap(), Some(2f64.to_be_bytes().to_vec()));
        assert_eq!(binary(&SqlValue::Bytes(vec![0, 9]), &Type::BYTEA).unwrap(), Some(vec![0, 9]));
        assert_eq!(
            binary(&SqlValue::Text("hé".into()), &Type::VARCHAR).unwrap(),
            Some("hé".as_bytes().to_vec())
        );
        // 2000-01-01T00:00:01Z is one second (in microseconds) after PostgreSQL's epoch.
        assert_eq!(
            binary(&SqlValue::Timestamp(946_684_801_000), &Type::TIMESTAMPTZ).unwrap(),
            Some(1_000_000i64.to_be_bytes().to_vec())
        );
        // Text parameters carry any value's text form (columns converted on the server).
        assert_eq!(binary(&SqlValue::I64(42), &Type::TEXT).unwrap(), Some(b"42".to_vec()));
        assert!(binary(&SqlValue::I64(70_000), &Type::INT2).unwrap_err().contains("out of range"));
        assert!(binary(&SqlValue::Text("x".into()), &Type::INT8)
            .unwrap_err()
            .contains("SqlValue::Text cannot"));
    }

    #[test]
    fn text_forms() {
        assert_eq!(SqlValue::Null.to_text(), None);
        assert_eq!(SqlValue::Bool(false).to_text().unwrap(), "false");
        assert_eq!(SqlValue::F64(f64::NAN).to_text().unwrap(), "NaN");
        assert_eq!(SqlValue::F64(f64::NEG_INFINITY).to_text().unwrap(), "-Infinity");
        assert_eq!(SqlValue::F64(0.25).to_text().unwrap(), "0.25");
        assert_eq!(SqlValue::Bytes(vec![0xde, 0xad, 0x01]).to_text().unwrap(), "\\xdead01");
        assert_eq!(SqlValue::Timestamp(0).to_text().unwrap(), "1970-01-01 00:00:00.000+00");
        assert_eq!(SqlValue::Timestamp(1_709_210_096_789).to_text().unwrap(), "2024-02-29 12:34:56.789+00");
        assert_eq!(SqlValue::Timestamp(-1).to_text().unwrap(), "1969-12-31 23:59:59.999+00");
        // 0001-01-01 minus one day is 31 December 1 BC.
        assert_eq!(
            SqlValue::Timestamp(-62_135_596_800_000 - 86_400_000).to_text().unwrap(),
            "0001-12-31 00:00:00.000+00 BC"
        );
    }

    #[test]
    fn staged_rows_round_trip() {
        let rows = vec![
            vec![
                SqlValue::Null,
                SqlValue::Bool(true),
                SqlValue::I64(i64::MIN),
                SqlValue::F64(-0.5),
                SqlValue::Text("a\"b\n".into()),
                SqlValue::Bytes(vec![0, 255]),
                SqlValue::Timestamp(-5),
            ],
            vec![],
        ];
        let bytes = encode_rows(&rows).unwrap();
        assert_eq!(decode_rows(&bytes).unwrap(), rows);
        assert!(decode_rows(&[9, 1, 2]).unwrap_err().contains("unknown format 9"));
        assert!(decode_rows(&[]).is_err());
        assert!(decode_rows(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn conversions_into_values() {
        assert_eq!(SqlValue::from(3i32), SqlValue::I64(3));
        assert_eq!(SqlValue::from("x"), SqlValue::Text("x".into()));
        assert_eq!(SqlValue::from(None::<i64>), SqlValue::Null);
        assert_eq!(SqlValue::from(Some(2.5)), SqlValue::F64(2.5));
        assert_eq!(SqlValue::from(millstream_model::Timestamp::from_millis(7)), SqlValue::Timestamp(7));
    }

    #[test]
    fn keys_identify_rows_by_their_key_columns() {
        let a = vec![SqlValue::Text("k".into()), SqlValue::I64(1)];
        let b = vec![SqlValue::Text("k".into()), SqlValue::I64(2)];
        assert_eq!(key_bytes(&a, &[0]).unwrap(), key_bytes(&b, &[0]).unwrap());
        assert_ne!(key_bytes(&a, &[0, 1]).unwrap(), key_bytes(&b, &[0, 1]).unwrap());
    }
}
