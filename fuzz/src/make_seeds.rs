//! Writes the seed corpus, `corpus/<target>/seed-*`, from files the real code writes (log
//! segments and indexes, checkpoint manifests and blobs, a Parquet file written with
//! arrow) and small hand-made CSV, JSON-lines and `produce` inputs. Run from `fuzz/`:
//! `cargo +nightly fuzz build -O && target/<host>/release/make_seeds` (run.sh does it when
//! the corpus is missing).

use std::path::Path;
use std::sync::Arc;

use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray};
use millstream_checkpoint::{format, BlobName, CheckpointKind, CheckpointStore};
use millstream_connectors::files::FilePosition;
use millstream_connectors::parquet::ParquetPosition;
use millstream_fuzz::{frame, log_topic_config, segment_name, LogInput};
use millstream_log::{Log, Record, TopicConfig};

fn main() {
    let root = Path::new("corpus");
    let write = |target: &str, name: &str, bytes: &[u8]| {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir).expect("corpus dir");
        std::fs::write(dir.join(format!("seed-{name}")), bytes).expect("write seed");
    };

    // Log: one segment with an index, and two segments.
    for (name, config) in
        [("one-segment", log_topic_config()), ("two-segments", log_topic_config().with_segment_bytes(1024))]
    {
        let (input, staged) = log_files(config);
        write("log_segment", name, &input.encode());
        if name == "one-segment" {
            write("log_segment", "staged-commit", &staged.encode());
        }
    }

    // Checkpoints: a manifest with several entries, and blobs.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = CheckpointStore::local(dir.path()).expect("store");
    let writer = store.begin(2, CheckpointKind::Checkpoint);
    let state = millstream_fuzz::sample_state();
    writer.write(BlobName::key_group("counts", 0), &state).expect("blob");
    writer.write(BlobName::worker("join/left side", 1), b"worker state").expect("blob");
    let position = FilePosition { offset: 120, line: 7, file_name: "input.csv".into() }.encode();
    writer.write(BlobName::source_partition("source", 0), &position).expect("blob");
    writer.commit(4, 2, [("job".to_string(), "seed".to_string())].into()).expect("commit");
    let manifest = std::fs::read(dir.path().join(millstream_checkpoint::manifest_path(2))).expect("manifest");
    write("checkpoint_manifest", "three-entries", &manifest);
    let m = store.manifest(2).expect("manifest");
    let blob =
        std::fs::read(dir.path().join(&m.entries[&BlobName::key_group("counts", 0)].path)).expect("blob");
    write("checkpoint_blob", "framed-state", &[[0u8].as_slice(), &blob].concat());
    write("checkpoint_blob", "framed-state-recorded", &[[1u8].as_slice(), &blob].concat());
    write("checkpoint_blob", "state-payload", &[[3u8].as_slice(), &state].concat());
    write("checkpoint_blob", "file-position", &[[3u8].as_slice(), &position].concat());
    let parquet_position =
        ParquetPosition { row_group: 1, row: 2, file_name: "input.parquet".into() }.encode();
    write("checkpoint_blob", "parquet-position", &[[3u8].as_slice(), &parquet_position].concat());
    write("checkpoint_manifest", "empty", &frame(format::MANIFEST_MAGIC, b"{}"));

    // CSV: flags byte (bit 0 header, bit 1 typed rows, bit 2 split, bit 3 position), file.
    let csv = b"a,b,c\n1,\"two, quoted\",3.5\n-4,\"line\nbreak\",\n,,1e3\r\n7,x,nan\n";
    write("csv_reader", "header", &[[1u8].as_slice(), csv].concat());
    write("csv_reader", "typed", &[[3u8].as_slice(), csv].concat());
    write("csv_reader", "split", &[[7u8].as_slice(), csv].concat());
    let csv_position = FilePosition { offset: 6, line: 1, file_name: "input.csv".into() }.encode();
    let padded = |p: &[u8]| {
        let mut p = p.to_vec();
        p.resize(24, 0);
        p
    };
    write("csv_reader", "resume", &[[9u8].as_slice(), &padded(&csv_position), csv].concat());

    // JSON lines: flags byte (bit 0 split, bit 1 position), file.
    let jsonl = b"{\"team\":\"red\",\"score\":1}\n\n{\"nested\":{\"a\":[1,2,{\"b\":null}]},\"s\":\"\\u00e9\"}\r\n[1,2]\n\"x\"";
    write("jsonl_reader", "values", &[[0u8].as_slice(), jsonl].concat());
    write("jsonl_reader", "split", &[[1u8].as_slice(), jsonl].concat());
    let jsonl_position = FilePosition { offset: 26, line: 1, file_name: "input.jsonl".into() }.encode();
    write("jsonl_reader", "resume", &[[2u8].as_slice(), &padded(&jsonl_position), jsonl].concat());

    // Parquet: flags byte (bit 0 position, bits 1.. batch size), file with two row groups.
    let parquet = parquet_file();
    write("parquet_reader", "two-row-groups", &[[4u8].as_slice(), &parquet].concat());
    let position = ParquetPosition { row_group: 0, row: 1, file_name: "input.parquet".into() }.encode();
    write("parquet_reader", "resume", &[[5u8].as_slice(), &padded(&position), &parquet].concat());

    // produce: separator length, separator, max line bytes - 1, input.
    write("produce_input", "no-separator", b"\x00\xffone\ntwo\r\n\nthree");
    write("produce_input", "separator", b"\x01:\xffuser-1:clicked\nuser-2:viewed:twice\r\n:\n");
    write("produce_input", "long-separator", b"\x03=>|\x10a=>|b\nlonger than sixteen bytes=>|x\n");
}

/// The files of a partition after appends (and, for the second input, a staged commit).
fn log_files(config: TopicConfig) -> (LogInput, LogInput) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = Log::open(dir.path()).expect("log");
    log.create_topic("t", config).expect("topic");
    let mut w = log.writer("t", 0).expect("writer");
    for b in 0..12i64 {
        let records: Vec<Record> = (0..3)
            .map(|i| {
                let mut r =
                    Record::new(format!("value {b}-{i}")).with_timestamp(1_700_000_000_000 + b * 10 - i);
                if i != 1 {
                    r = r.with_key(format!("key-{i}"));
                }
                if i == 2 {
                    r = r.with_header("h", vec![0u8, 255]);
                }
                r
            })
            .collect();
        w.append_batch(&records).expect("append");
    }
    let plain = read_partition(&dir.path().join("t").join("0"));
    let mut staged = w.begin_staged("epoch-1").expect("staged");
    staged.stage([Record::new("staged").with_key("s").with_timestamp(5)]);
    w.persist(&staged).expect("persist");
    w.commit("epoch-1").expect("commit");
    drop(w);
    (plain, read_partition(&dir.path().join("t").join("0")))
}

fn read_partition(dir: &Path) -> LogInput {
    let mut segments: Vec<u64> = std::fs::read_dir(dir)
        .expect("list")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".log")?.parse().ok()
        })
        .collect();
    segments.sort_unstable();
    let read = |base: u64, ext: &str| std::fs::read(dir.join(segment_name(base, ext))).unwrap_or_default();
    LogInput {
        flags: 0,
        index: read(segments[0], "index"),
        first: read(segments[0], "log"),
        second: segments.get(1).map(|&b| (b, read(b, "log"))),
    }
}

fn parquet_file() -> Vec<u8> {
    let ids: ArrayRef = Arc::new(Int64Array::from(vec![Some(1), None, Some(3), Some(4)]));
    let names: ArrayRef = Arc::new(StringArray::from(vec![Some("a"), Some("b\u{e9}"), None, Some("")]));
    let scores: ArrayRef = Arc::new(Float64Array::from(vec![0.5, f64::NAN, -1.0, 1e300]));
    let times: ArrayRef = Arc::new(TimestampMillisecondArray::from(vec![0, 1_700_000_000_000, -5, 7]));
    let batch =
        RecordBatch::try_from_iter([("id", ids), ("name", names), ("score", scores), ("time", times)])
            .expect("batch");
    let props = parquet::file::properties::WriterProperties::builder().set_max_row_group_size(2).build();
    let mut out = Vec::new();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(&mut out, batch.schema(), Some(props)).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
    out
}
