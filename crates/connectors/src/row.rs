//! [`Row`]: a dynamic record type — an ordered list of named, typed [`Value`]s described
//! by a [`Schema`] — for data whose shape is known only at run time (a CSV file read
//! without a Rust type, a Parquet file, SQL later).
//!
//! The schema is shared by every row of a file through an [`Arc`]; a row checks its
//! values against it when built with [`Row::new`]. Values are read by name or by index,
//! untyped ([`Row::get`], [`Row::value`]) or typed ([`Row::int`], [`Row::text`], ...), and
//! a typed read that does not fit says which field, what was asked and what was there.
//!
//! ```
//! use millstream_connectors::row::{DataType, Field, Row, Schema, Value};
//! use std::sync::Arc;
//!
//! let schema = Arc::new(Schema::new(vec![
//!     Field::new("city", DataType::Text, false),
//!     Field::new("people", DataType::Int, true),
//! ]));
//! let row = Row::new(schema, vec![Value::Text("Oslo".into()), Value::Null]).unwrap();
//! assert_eq!(row.text("city").unwrap(), "Oslo");
//! assert_eq!(row.opt_int("people").unwrap(), None);
//! let e = row.int("city").unwrap_err();
//! assert_eq!(e.to_string(), "field \"city\" is Text(\"Oslo\"), not an Int");
//! ```
//!
//! Rows are pipeline elements (`Clone + Send + Sync + Serialize + DeserializeOwned`). A
//! serialized row carries its schema, so it decodes on its own; that costs a few bytes
//! per field name whenever rows cross workers.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;

/// The type of a field's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DataType {
    /// `true` or `false` ([`Value::Bool`]).
    Bool,
    /// A 64-bit signed integer ([`Value::Int`]).
    Int,
    /// A 64-bit float ([`Value::Float`]).
    Float,
    /// UTF-8 text ([`Value::Text`]).
    Text,
    /// Raw bytes ([`Value::Bytes`]).
    Bytes,
    /// Milliseconds since the Unix epoch, UTC ([`Value::Timestamp`]).
    Timestamp,
}

impl fmt::Display for DataType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// One named, typed column of a [`Schema`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Field {
    /// The field's name.
    pub name: String,
    /// The type of its values.
    pub data_type: DataType,
    /// Whether it may be [`Value::Null`].
    pub nullable: bool,
}

impl Field {
    /// A field.
    pub fn new(name: impl Into<String>, data_type: DataType, nullable: bool) -> Self {
        Field { name: name.into(), data_type, nullable }
    }
}

/// The fields of a row, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Schema {
    /// The fields, in order.
    pub fields: Vec<Field>,
}

impl Schema {
    /// A schema of these fields.
    pub fn new(fields: Vec<Field>) -> Self {
        Schema { fields }
    }

    /// The index of the field named `name` (the first, if several share it).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }

    /// The field named `name`.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The number of fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    fn names(&self) -> String {
        self.fields.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", ")
    }
}

/// One value of a row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// No value.
    Null,
    /// A boolean.
    Bool(bool),
    /// A 64-bit signed integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// UTF-8 text.
    Text(String),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// Milliseconds since the Unix epoch, UTC.
    Timestamp(i64),
}

impl Value {
    /// The value's type, or `None` for [`Value::Null`].
    pub fn data_type(&self) -> Option<DataType> {
        Some(match self {
            Value::Null => return None,
            Value::Bool(_) => DataType::Bool,
            Value::Int(_) => DataType::Int,
            Value::Float(_) => DataType::Float,
            Value::Text(_) => DataType::Text,
            Value::Bytes(_) => DataType::Bytes,
            Value::Timestamp(_) => DataType::Timestamp,
        })
    }

    /// Whether it is [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
}

/// Text as itself, bytes as hex, timestamps as milliseconds, null as `NULL`.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("NULL"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Text(s) => f.write_str(s),
            Value::Bytes(b) => b.iter().try_for_each(|byte| write!(f, "{byte:02x}")),
            Value::Timestamp(ms) => write!(f, "{ms}ms"),
        }
    }
}

/// Why a row could not be built or a value read.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RowError {
    /// No field has this name.
    #[error("no field {name:?} (fields: {fields})")]
    NoSuchField {
        /// The name asked for.
        name: String,
        /// The schema's field names, comma-separated.
        fields: String,
    },
    /// The index is past the last field.
    #[error("no field at index {index} (the row has {len} fields)")]
    NoSuchIndex {
        /// The index asked for.
        index: usize,
        /// The number of fields.
        len: usize,
    },
    /// The value is not of the type asked for (or, building a row, of its field's type).
    #[error("field {field:?} is {found:?}, not {article} {expected}", article = article(*.expected))]
    WrongType {
        /// The field's name.
        field: String,
        /// The type asked for.
        expected: DataType,
        /// The value found.
        found: Value,
    },
    /// The value is null where a value was required.
    #[error("field {field:?} is null")]
    Null {
        /// The field's name.
        field: String,
    },
    /// A row was built with a different number of values than its schema has fields.
    #[error("{values} values for a schema of {fields} fields")]
    WrongLength {
        /// The number of values given.
        values: usize,
        /// The number of fields.
        fields: usize,
    },
}

fn article(t: DataType) -> &'static str {
    match t {
        DataType::Int => "an",
        _ => "a",
    }
}

/// An ordered list of named, typed values (see the [module docs](self)).
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    schema: Arc<Schema>,
    values: Vec<Value>,
}

impl Row {
    /// A row of `values` in `schema`'s order, checked: one value per field, each null
    /// (when the field is nullable) or of the field's type.
    pub fn new(schema: Arc<Schema>, values: Vec<Value>) -> Result<Self, RowError> {
        if values.len() != schema.len() {
            return Err(RowError::WrongLength { values: values.len(), fields: schema.len() });
        }
        for (field, value) in schema.fields.iter().zip(&values) {
            match value.data_type() {
                None if field.nullable => {}
                None => return Err(RowError::Null { field: field.name.clone() }),
                Some(t) if t == field.data_type => {}
                Some(_) => {
                    return Err(RowError::WrongType {
                        field: field.name.clone(),
                        expected: field.data_type,
                        found: value.clone(),
                    })
                }
            }
        }
        Ok(Row { schema, values })
    }

    /// A row whose values the caller has already checked against the schema.
    pub(crate) fn new_unchecked(schema: Arc<Schema>, values: Vec<Value>) -> Self {
        debug_assert_eq!(schema.len(), values.len());
        Row { schema, values }
    }

    /// The row's schema.
    pub fn schema(&self) -> &Arc<Schema> {
        &self.schema
    }

    /// The values, in the schema's order.
    pub fn values(&self) -> &[Value] {
        &self.values
    }

    /// The values, in the schema's order.
    pub fn into_values(self) -> Vec<Value> {
        self.values
    }

    /// The number of values.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether the row has no values.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The value of the field named `name`.
    pub fn get(&self, name: &str) -> Result<&Value, RowError> {
        self.schema
            .index_of(name)
            .map(|i| &self.values[i])
            .ok_or_else(|| RowError::NoSuchField { name: name.to_owned(), fields: self.schema.names() })
    }

    /// The value at `index`.
    pub fn value(&self, index: usize) -> Result<&Value, RowError> {
        self.values.get(index).ok_or(RowError::NoSuchIndex { index, len: self.values.len() })
    }

    /// `(name, value)` pairs, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.schema.fields.iter().map(|f| f.name.as_str()).zip(&self.values)
    }

    fn typed<'a, T>(
        &'a self,
        name: &str,
        expected: DataType,
        pick: impl Fn(&'a Value) -> Option<T>,
    ) -> Result<Option<T>, RowError> {
        let value = self.get(name)?;
        if value.is_null() {
            return Ok(None);
        }
        pick(value).map(Some).ok_or_else(|| RowError::WrongType {
            field: name.to_owned(),
            expected,
            found: value.clone(),
        })
    }

    fn required<T>(&self, name: &str, v: Result<Option<T>, RowError>) -> Result<T, RowError> {
        v?.ok_or_else(|| RowError::Null { field: name.to_owned() })
    }

    /// The boolean in `name`, or `None` if it is null.
    pub fn opt_bool(&self, name: &str) -> Result<Option<bool>, RowError> {
        self.typed(name, DataType::Bool, |v| if let Value::Bool(b) = v { Some(*b) } else { None })
    }
    /// The integer in `name`, or `None` if it is null.
    pub fn opt_int(&self, name: &str) -> Result<Option<i64>, RowError> {
        self.typed(name, DataType::Int, |v| if let Value::Int(i) = v { Some(*i) } else { None })
    }
    /// The float in `name`, or `None` if it is null.
    pub fn opt_float(&self, name: &str) -> Result<Option<f64>, RowError> {
        self.typed(name, DataType::Float, |v| if let Value::Float(x) = v { Some(*x) } else { None })
    }
    /// The text in `name`, or `None` if it is null.
    pub fn opt_text(&self, name: &str) -> Result<Option<&str>, RowError> {
        self.typed(name, DataType::Text, |v| if let Value::Text(s) = v { Some(s.as_str()) } else { None })
    }
    /// The bytes in `name`, or `None` if they are null.
    pub fn opt_bytes(&self, name: &str) -> Result<Option<&[u8]>, RowError> {
        self.typed(name, DataType::Bytes, |v| if let Value::Bytes(b) = v { Some(b.as_slice()) } else { None })
    }
    /// The timestamp in `name` (milliseconds since the epoch), or `None` if it is null.
    pub fn opt_timestamp(&self, name: &str) -> Result<Option<i64>, RowError> {
        self.typed(name, DataType::Timestamp, |v| if let Value::Timestamp(t) = v { Some(*t) } else { None })
    }

    /// The boolean in `name`; null is an error.
    pub fn bool(&self, name: &str) -> Result<bool, RowError> {
        self.required(name, self.opt_bool(name))
    }
    /// The integer in `name`; null is an error.
    pub fn int(&self, name: &str) -> Result<i64, RowError> {
        self.required(name, self.opt_int(name))
    }
    /// The float in `name`; null is an error.
    pub fn float(&self, name: &str) -> Result<f64, RowError> {
        self.required(name, self.opt_float(name))
    }
    /// The text in `name`; null is an error.
    pub fn text(&self, name: &str) -> Result<&str, RowError> {
        self.required(name, self.opt_text(name))
    }
    /// The bytes in `name`; null is an error.
    pub fn bytes(&self, name: &str) -> Result<&[u8], RowError> {
        self.required(name, self.opt_bytes(name))
    }
    /// The timestamp in `name` (milliseconds since the epoch); null is an error.
    pub fn timestamp(&self, name: &str) -> Result<i64, RowError> {
        self.required(name, self.opt_timestamp(name))
    }
}

/// `name=value` pairs, comma-separated.
impl fmt::Display for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, value)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name}={value}")?;
        }
        Ok(())
    }
}

/// The serialized form: the schema, then the values.
#[derive(Serialize)]
struct RowRef<'a> {
    schema: &'a Schema,
    values: &'a [Value],
}

#[derive(Deserialize)]
struct RowOwned {
    schema: Schema,
    values: Vec<Value>,
}

impl Serialize for Row {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        RowRef { schema: &self.schema, values: &self.values }.serialize(serializer)
    }
}

/// Decoding checks the values against the schema, as [`Row::new`] does.
impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let RowOwned { schema, values } = RowOwned::deserialize(deserializer)?;
        Row::new(Arc::new(schema), values).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schema() -> Arc<Schema> {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int, false),
            Field::new("name", DataType::Text, true),
            Field::new("score", DataType::Float, true),
            Field::new("ok", DataType::Bool, false),
            Field::new("blob", DataType::Bytes, true),
            Field::new("at", DataType::Timestamp, true),
        ]))
    }

    fn row() -> Row {
        Row::new(
            schema(),
            vec![
                Value::Int(7),
                Value::Text("ann".into()),
                Value::Null,
                Value::Bool(true),
                Value::Bytes(vec![1, 255]),
                Value::Timestamp(1_000),
            ],
        )
        .unwrap()
    }

    #[test]
    fn typed_getters_by_name_and_index() {
        let r = row();
        assert_eq!(r.int("id"), Ok(7));
        assert_eq!(r.text("name"), Ok("ann"));
        assert_eq!(r.opt_float("score"), Ok(None));
        assert_eq!(r.bool("ok"), Ok(true));
        assert_eq!(r.bytes("blob"), Ok(&[1u8, 255][..]));
        assert_eq!(r.timestamp("at"), Ok(1_000));
        assert_eq!(r.value(1), Ok(&Value::Text("ann".into())));
        assert_eq!(r.to_string(), "id=7, name=ann, score=NULL, ok=true, blob=01ff, at=1000ms");
    }

    #[test]
    fn errors_name_the_field_and_what_was_there() {
        let r = row();
        assert_eq!(r.float("score").unwrap_err().to_string(), "field \"score\" is null");
        assert_eq!(r.int("name").unwrap_err().to_string(), "field \"name\" is Text(\"ann\"), not an Int");
        assert_eq!(
            r.get("nope").unwrap_err().to_string(),
            "no field \"nope\" (fields: id, name, score, ok, blob, at)"
        );
        assert_eq!(r.value(6).unwrap_err().to_string(), "no field at index 6 (the row has 6 fields)");
        let e = Row::new(schema(), vec![Value::Int(1)]).unwrap_err();
        assert_eq!(e, RowError::WrongLength { values: 1, fields: 6 });
        let mut values = row().into_values();
        values[3] = Value::Null;
        assert_eq!(Row::new(schema(), values.clone()).unwrap_err().to_string(), "field \"ok\" is null");
        values[3] = Value::Int(1);
        assert!(Row::new(schema(), values).unwrap_err().to_string().contains("not a Bool"));
    }

    #[test]
    fn serde_round_trips_with_bincode_and_json() {
        let r = row();
        let back: Row = bincode::deserialize(&bincode::serialize(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        let back: Row = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        // A decoded row is checked like a built one.
        let bad = serde_json::to_string(&r).unwrap().replace("{\"Int\":7}", "\"Null\"");
        assert!(serde_json::from_str::<Row>(&bad).unwrap_err().to_string().contains("\"id\" is null"));
    }
}
