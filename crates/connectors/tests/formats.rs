//! File formats: CSV into serde types and into rows, bad CSV records under both policies,
//! Parquet row groups as partitions read by several workers, and jobs over both formats
//! that fail part-way and resume from their checkpoint with exact results.

use millstream_connectors::{BadRecordPolicy, CsvSource, DataType, Field, ParquetSource, Row, Schema, Value};
use millstream_model::{Timestamp, WindowedValue};
use millstream_runtime::{DeadLetter, Pipeline, ReadStatus, Runner, Source};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

mod common;
use common::check_resume;

fn temp_dir(name: &str) -> PathBuf {
    common::temp_dir("formats", name)
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Trip {
    id: u64,
    city: String,
    km: f64,
    at: i64,
}

#[test]
fn csv_into_a_serde_struct_from_a_glob_on_two_workers() {
    let dir = temp_dir("serde");
    // Columns in another order than the struct's fields; quoted fields with commas.
    std::fs::write(dir.join("a.csv"), "city,id,at,km\n\"Oslo, NO\",1,100,2.5\nLima,2,200,3\n").unwrap();
    std::fs::write(dir.join("b.csv"), "city,id,at,km\r\nKyiv,3,300,-1e1\r\n").unwrap();
    std::fs::write(dir.join("skip.txt"), "not csv").unwrap();
    let p = Pipeline::new();
    let source = CsvSource::<Trip>::new(format!("{}/*.csv", dir.display()))
        .with_timestamp_fn(|t: &Trip| Timestamp::from_millis(t.at));
    let out = p.read("Trips", source).collect();
    Runner::new().workers(2).run(&p).expect("run");
    let mut got: Vec<(Trip, Timestamp)> =
        out.windowed().into_iter().map(|wv| (wv.value, wv.timestamp)).collect();
    got.sort_by_key(|(t, _)| t.id);
    let trip = |id, city: &str, km, at| (Trip { id, city: city.into(), km, at }, Timestamp::from_millis(at));
    assert_eq!(
        got,
        vec![trip(1, "Oslo, NO", 2.5, 100), trip(2, "Lima", 3.0, 200), trip(3, "Kyiv", -10.0, 300)]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn csv_into_rows_inferred_as_text_or_typed_by_a_schema() {
    let dir = temp_dir("rows");
    let path = dir.join("t.tsv");
    std::fs::write(&path, "id\tname\tok\tscore\tat\n1\tann\ttrue\t0.5\t1000\n2\t\t0\t\t2000\n").unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int, false),
        Field::new("name", DataType::Text, true),
        Field::new("ok", DataType::Bool, false),
        Field::new("score", DataType::Float, true),
        Field::new("at", DataType::Timestamp, false),
    ]));
    let p = Pipeline::new();
    let text = p.read("Text", CsvSource::rows(path.display().to_string()).delimiter(b'\t')).collect();
    let typed = p
        .read(
            "Typed",
            CsvSource::rows_with_schema(path.display().to_string(), schema.clone())
                .delimiter(b'\t')
                .with_timestamp_fn(|r: &Row| Timestamp::from_millis(r.timestamp("at").unwrap())),
        )
        .collect();
    Runner::new().workers(2).run(&p).expect("run");

    let mut text: Vec<Row> = text.values();
    text.sort_by(|a, b| a.text("id").unwrap().cmp(b.text("id").unwrap()));
    assert!(text[0].schema().fields.iter().all(|f| f.data_type == DataType::Text && !f.nullable));
    assert_eq!(text[0].text("score").unwrap(), "0.5");
    assert_eq!(text[1].text("name").unwrap(), "");

    let mut typed: Vec<WindowedValue<Row>> = typed.windowed();
    typed.sort_by_key(|wv| wv.timestamp);
    assert_eq!(typed[0].timestamp, Timestamp::from_millis(1000));
    assert_eq!(typed[0].value.schema().as_ref(), schema.as_ref());
    assert_eq!(
        typed[0].value.values(),
        &[
            Value::Int(1),
            Value::Text("ann".into()),
            Value::Bool(true),
            Value::Float(0.5),
            Value::Timestamp(1000)
        ]
    );
    assert_eq!(
        typed[1].value.values(),
        &[Value::Int(2), Value::Null, Value::Bool(false), Value::Null, Value::Timestamp(2000)]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Two good records, a record with a missing field, one with a number that does not
/// parse, one with an extra field, and a last good one.
fn write_bad_csv(dir: &Path) -> PathBuf {
    let path = dir.join("trips.csv");
    let text = "id,city,km,at\n\
                1,Oslo,2.5,100\n\
                2,Lima,3,200\n\
                3,Kyiv,4\n\
                4,Rome,\"four\",400\n\
                5,Pune,5,500,extra\n\
                6,Bonn,6,600\n";
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_bad_csv_record_fails_the_job_naming_file_and_line() {
    let dir = temp_dir("bad-fail");
    let path = write_bad_csv(&dir);
    let p = Pipeline::new();
    let _ = p.read("Trips", CsvSource::<Trip>::new(path.display().to_string())).collect();
    let err = Runner::new().workers(1).run(&p).unwrap_err().to_string();
    assert!(
        err.contains("Trips") && err.contains("trips.csv:4") && err.contains("3 fields, expected 4"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_csv_records_go_to_dead_letters_with_file_line_and_raw_record() {
    let dir = temp_dir("bad-dead");
    let path = write_bad_csv(&dir);
    for rows in [false, true] {
        let p = Pipeline::new();
        let pattern = path.display().to_string();
        let (good, dead) = if rows {
            let schema = Arc::new(Schema::new(vec![
                Field::new("id", DataType::Int, false),
                Field::new("km", DataType::Float, false),
            ]));
            let source =
                CsvSource::rows_with_schema(pattern, schema).on_bad_record(BadRecordPolicy::DeadLetter);
            let (good, dead) = p.read_with_dead_letters("Trips", source);
            (good.map(|r: Row| r.int("id").unwrap() as u64), dead)
        } else {
            let source = CsvSource::<Trip>::new(pattern).on_bad_record(BadRecordPolicy::DeadLetter);
            let (good, dead) = p.read_with_dead_letters("Trips", source);
            (good.map(|t: Trip| t.id), dead)
        };
        let (good, dead) = (good.collect(), dead.collect());
        let result = Runner::new().workers(2).run(&p).expect("the job goes on past bad records");
        let mut ids = good.values();
        ids.sort();
        assert_eq!(ids, vec![1, 2, 6], "rows: {rows}");
        let mut letters: Vec<DeadLetter> = dead.values();
        letters.sort_by(|a, b| a.location.cmp(&b.location));
        let locations: Vec<String> = letters.iter().map(|d| d.location.clone()).collect();
        let at = |line: u32| format!("{}:{line}", path.display());
        assert_eq!(locations, vec![at(4), at(5), at(6)], "rows: {rows}");
        let payloads: Vec<&str> = letters.iter().map(|d| d.payload.as_str()).collect();
        assert_eq!(payloads, vec!["3,Kyiv,4", "4,Rome,\"four\",400", "5,Pune,5,500,extra"]);
        assert!(letters[0].error.contains("3 fields, expected 4"), "{}", letters[0].error);
        assert!(
            letters[1].error.contains("four") || letters[1].error.contains("float"),
            "{}",
            letters[1].error
        );
        assert!(letters[2].error.contains("5 fields, expected 4"), "{}", letters[2].error);
        assert!(letters.iter().all(|d| d.step == "Trips"));
        assert_eq!(result.counter("Trips/dead_letters"), 3);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_csv_job_fails_part_way_and_resumes_from_its_checkpoint_exactly() {
    let dir = temp_dir("csv-resume");
    // More records than one read of a file takes (1024), so that epochs end part-way.
    let n = 24_000u64;
    for f in 0..3 {
        let mut text = String::from("id,city,km,at\n");
        for id in (f..n).step_by(3) {
            text.push_str(&format!("{id},\"c{id}\",1.5,{id}\n"));
        }
        std::fs::write(dir.join(format!("{f}.csv")), text).unwrap();
    }
    let pattern = format!("{}/*.csv", dir.display());
    check_resume(
        &dir,
        n,
        // Part-way: after an eighth of the records, at the first one after output is published.
        3_000,
        |p| p.read("Trips", CsvSource::<Trip>::new(pattern.clone())).map(|t: Trip| t.id),
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn large_csv_files_split_into_byte_ranges_resume_exactly_too() {
    let dir = temp_dir("csv-ranges");
    let n = 24_000u64;
    let mut text = String::from("id,city,km,at\n");
    for id in 0..n {
        // Blank lines here and there: csv skips them, ranges must too.
        let blank = if id % 97 == 0 { "\r\n" } else { "" };
        text.push_str(&format!("{blank}{id},\"c {id}\",1.5,{id}\r\n"));
    }
    std::fs::write(dir.join("big.csv"), &text).unwrap();
    let pattern = dir.join("big.csv").display().to_string();
    // Ranges of more records than one read takes (1024), so that epochs end part-way.
    let source = CsvSource::<Trip>::new(pattern.clone()).split_bytes(100_000);
    assert_eq!(source.partitions(2).unwrap(), text.len().div_ceil(100_000));
    check_resume(&dir, n, 3_000, |p| {
        p.read("Trips", CsvSource::<Trip>::new(pattern.clone()).split_bytes(100_000)).map(|t: Trip| t.id)
    });
    let _ = std::fs::remove_dir_all(&dir);
}

mod parquet_files {
    use super::*;
    use arrow_array::{Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
    use parquet::arrow::ArrowWriter;
    use parquet::basic::Compression;
    use parquet::file::properties::WriterProperties;

    /// Writes ids `ids` to `path`, Snappy-compressed, `group` rows per row group.
    fn write(path: &Path, ids: std::ops::Range<i64>, group: usize) {
        let ids: Vec<i64> = ids.collect();
        let names: Vec<Option<String>> =
            ids.iter().map(|i| (i % 10 != 0).then(|| format!("name {i}"))).collect();
        let batch = RecordBatch::try_from_iter([
            ("id", Arc::new(Int64Array::from(ids.clone())) as Arc<dyn arrow_array::Array>),
            ("name", Arc::new(StringArray::from(names)) as _),
            ("at", Arc::new(TimestampMillisecondArray::from(ids.clone())) as _),
        ])
        .unwrap();
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_size(group)
            .build();
        let mut w =
            ArrowWriter::try_new(std::fs::File::create(path).unwrap(), batch.schema(), Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }

    #[test]
    fn row_groups_are_partitions_read_by_two_workers_every_row_once() {
        let dir = temp_dir("parquet-rows");
        write(&dir.join("a.parquet"), 0..2500, 1000); // 3 row groups
        write(&dir.join("b.parquet"), 2500..2600, 1000); // 1 row group
        let source = ParquetSource::new(format!("{}/*.parquet", dir.display()))
            .with_timestamp_fn(|r: &Row| Timestamp::from_millis(r.timestamp("at").unwrap()));
        assert_eq!(source.partitions(2).unwrap(), 4);
        let p = Pipeline::new();
        let rows = p.read("Rows", source);
        let all = rows.collect();
        Runner::new().workers(2).run(&p).expect("run");
        let mut got: Vec<WindowedValue<Row>> = all.windowed();
        got.sort_by_key(|wv| wv.value.int("id").unwrap());
        assert_eq!(got.len(), 2600);
        for (i, wv) in got.iter().enumerate() {
            let i = i as i64;
            assert_eq!(wv.value.int("id").unwrap(), i, "every row exactly once");
            assert_eq!(wv.timestamp, Timestamp::from_millis(i));
            let name = wv.value.opt_text("name").unwrap();
            assert_eq!(name.map(str::to_owned), (i % 10 != 0).then(|| format!("name {i}")));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_reader_resumes_inside_a_row_group() {
        let dir = temp_dir("parquet-reopen");
        write(&dir.join("a.parquet"), 0..1000, 400); // row groups of 400, 400, 200
        let source = ParquetSource::new(dir.join("a.parquet").display().to_string()).batch_size(64);
        let n = source.partitions(1).unwrap();
        assert_eq!(n, 3);
        let mut ids = Vec::new();
        for part in 0..n {
            let mut r = source.open(part, n).unwrap();
            let mut out = Vec::new();
            r.read(&mut out, 1024).unwrap();
            r.read(&mut out, 1024).unwrap();
            assert_eq!(out.len(), 128);
            let mut resumed = source.reopen(part, n, &r.checkpoint_position().unwrap()).unwrap();
            while resumed.read(&mut out, 1024).unwrap() != ReadStatus::Finished {}
            ids.extend(out.into_iter().map(|(r, _)| r.int("id").unwrap()));
            // A position is for its own row group only.
            let other = source.reopen((part + 1) % n, n, &r.checkpoint_position().unwrap());
            assert!(other.err().expect("refused").message.contains("row group"));
        }
        assert_eq!(ids, (0..1000).collect::<Vec<_>>());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_parquet_job_fails_part_way_and_resumes_from_its_checkpoint_exactly() {
        let dir = temp_dir("parquet-resume");
        write(&dir.join("a.parquet"), 0..2400, 800);
        write(&dir.join("b.parquet"), 2400..3000, 800);
        let pattern = format!("{}/*.parquet", dir.display());
        check_resume(&dir, 3000, 600, |p| {
            p.read("Rows", ParquetSource::new(pattern.clone()).batch_size(50))
                .map(|r: Row| r.int("id").unwrap() as u64)
        });
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn unsupported_columns_are_named() {
        let dir = temp_dir("parquet-unsupported");
        let path = dir.join("l.parquet");
        let list =
            arrow_array::ListArray::from_iter_primitive::<arrow_array::types::Int32Type, _, _>(vec![Some(
                vec![Some(1)],
            )]);
        let batch =
            RecordBatch::try_from_iter([("xs", Arc::new(list) as Arc<dyn arrow_array::Array>)]).unwrap();
        let mut w =
            ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), batch.schema(), None).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        let p = Pipeline::new();
        let _ = p.read("Lists", ParquetSource::new(path.display().to_string())).collect();
        let err = Runner::new().run(&p).unwrap_err().to_string();
        assert!(err.contains("\"xs\"") && err.contains("l.parquet"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
