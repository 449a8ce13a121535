//! Nexmark events in files: JSON lines (one [`Event`] per line, exactly its serde shape,
//! Flink's Nexmark row) and CSV (one flat row per event), written from a generator and
//! read back.
//!
//! The CSV header is [`CSV_HEADER`]: `event_type` (0 person, 1 auction, 2 bid), then the
//! person's, the auction's and the bid's fields, each prefixed by `person_`, `auction_`
//! or `bid_` and named as in JSON; the cells of the two absent rows are empty.
//!
//! ```
//! use millstream_nexmark::files::{read_events, write_events, Format};
//! use millstream_nexmark::{Generator, GeneratorConfig};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let config = GeneratorConfig::new().num_events(200);
//! for (format, name) in [(Format::JsonLines, "events.jsonl"), (Format::Csv, "events.csv")] {
//!     let path = dir.path().join(name);
//!     let summary = write_events(&config, &path, format).unwrap();
//!     assert_eq!((summary.events, summary.persons, summary.auctions, summary.bids), (200, 4, 12, 184));
//!     let expected: Vec<_> = Generator::new(config.clone()).unwrap().collect();
//!     assert_eq!(read_events(&path, format).unwrap(), expected);
//! }
//! ```

use crate::config::{ConfigError, GeneratorConfig};
use crate::generator::Generator;
use crate::model::{Auction, Bid, Event, EventKind, Person};
use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// The CSV columns, in order.
pub const CSV_HEADER: [&str; 26] = [
    "event_type",
    "person_id",
    "person_name",
    "person_emailAddress",
    "person_creditCard",
    "person_city",
    "person_state",
    "person_dateTime",
    "person_extra",
    "auction_id",
    "auction_itemName",
    "auction_description",
    "auction_initialBid",
    "auction_reserve",
    "auction_dateTime",
    "auction_expires",
    "auction_seller",
    "auction_category",
    "auction_extra",
    "bid_auction",
    "bid_bidder",
    "bid_price",
    "bid_channel",
    "bid_url",
    "bid_dateTime",
    "bid_extra",
];
/// Where the person's columns start in [`CSV_HEADER`].
const PERSON_AT: usize = 1;
/// Where the auction's columns start.
const AUCTION_AT: usize = 9;
/// Where the bid's columns start.
const BID_AT: usize = 19;

/// A file format for events.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// One JSON object per line: the serde shape of [`Event`].
    JsonLines,
    /// CSV with the header [`CSV_HEADER`].
    Csv,
}

impl Format {
    /// The format a file name's extension implies: `.csv` is CSV, `.json`, `.jsonl` and
    /// `.ndjson` are JSON lines.
    pub fn from_path(path: &Path) -> Option<Format> {
        match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "json" | "jsonl" | "ndjson" => Some(Format::JsonLines),
            _ => None,
        }
    }
}

impl FromStr for Format {
    type Err = FileError;

    /// `json`, `jsonl`, `json-lines` or `ndjson`; `csv`.
    fn from_str(s: &str) -> Result<Self, FileError> {
        match s.to_ascii_lowercase().as_str() {
            "json" | "jsonl" | "json-lines" | "jsonlines" | "ndjson" => Ok(Format::JsonLines),
            "csv" => Ok(Format::Csv),
            other => Err(FileError::UnknownFormat(other.to_owned())),
        }
    }
}

/// An error writing or reading event files.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The generator's configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A line is not an event in JSON.
    #[error("line {line}: {message}")]
    Json {
        /// The line (from 1).
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// A CSV record is not an event.
    #[error("line {line}: {message}")]
    Csv {
        /// The line (from 1; the header is line 1).
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// An unknown format name.
    #[error("unknown event file format {0:?} (expected json or csv)")]
    UnknownFormat(String),
}

/// What [`write_events`] wrote.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteSummary {
    /// Events written.
    pub events: u64,
    /// Persons among them.
    pub persons: u64,
    /// Auctions among them.
    pub auctions: u64,
    /// Bids among them.
    pub bids: u64,
    /// Bytes written (with the header, for CSV).
    pub bytes: u64,
}

impl WriteSummary {
    fn count(&mut self, e: &Event) {
        self.events += 1;
        match e.kind() {
            EventKind::Person => self.persons += 1,
            EventKind::Auction => self.auctions += 1,
            EventKind::Bid => self.bids += 1,
        }
    }
}

/// A writer that counts the bytes through it.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Writes every event of `config` (all of `num_events`; an unbounded configuration is an
/// error) to `path` in `format`, replacing the file.
pub fn write_events(
    config: &GeneratorConfig,
    path: impl AsRef<Path>,
    format: Format,
) -> Result<WriteSummary, FileError> {
    let path = path.as_ref();
    let io = |source| FileError::Io { path: path.to_owned(), source };
    if config.num_events.is_none() {
        return Err(io(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the configuration is unbounded (num_events is None): set a number of events to write",
        )));
    }
    let mut generator = Generator::new(config.clone())?;
    let file = File::create(path).map_err(io)?;
    let mut out = EventWriter::new(BufWriter::with_capacity(1 << 20, file), format).map_err(io)?;
    let mut batch = Vec::with_capacity(4096);
    loop {
        batch.clear();
        if generator.fill(&mut batch, 4096) == 0 {
            break;
        }
        for e in &batch {
            out.write(e).map_err(io)?;
        }
    }
    out.finish().map_err(io)
}

/// Writes events one by one to a [`Write`] in a [`Format`].
pub struct EventWriter<W: Write> {
    out: Counting<W>,
    format: Format,
    summary: WriteSummary,
    /// Reused CSV line.
    line: String,
}

impl<W: Write> EventWriter<W> {
    /// A writer to `out`; for CSV it writes the header now.
    pub fn new(out: W, format: Format) -> std::io::Result<Self> {
        let mut w = EventWriter {
            out: Counting { inner: out, bytes: 0 },
            format,
            summary: WriteSummary::default(),
            line: String::new(),
        };
        if format == Format::Csv {
            w.out.write_all(CSV_HEADER.join(",").as_bytes())?;
            w.out.write_all(b"\n")?;
        }
        Ok(w)
    }

    /// Writes one event.
    pub fn write(&mut self, e: &Event) -> std::io::Result<()> {
        match self.format {
            Format::JsonLines => {
                serde_json::to_writer(&mut self.out, e).map_err(std::io::Error::other)?;
                self.out.write_all(b"\n")?;
            }
            Format::Csv => {
                self.line.clear();
                csv_line(&mut self.line, e);
                self.out.write_all(self.line.as_bytes())?;
            }
        }
        self.summary.count(e);
        Ok(())
    }

    /// Flushes and returns what was written.
    pub fn finish(mut self) -> std::io::Result<WriteSummary> {
        self.out.flush()?;
        Ok(WriteSummary { bytes: self.out.bytes, ..self.summary })
    }
}

/// Appends a CSV cell: quoted (RFC 4180) when it holds a comma, a quote or a line break,
/// or has leading or trailing spaces.
fn push_cell(line: &mut String, s: &str) {
    let needs_quotes =
        s.bytes().any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r')) || s.starts_with(' ') || s.ends_with(' ');
    if needs_quotes {
        line.push('"');
        for c in s.chars() {
            if c == '"' {
                line.push('"');
            }
            line.push(c);
        }
        line.push('"');
    } else {
        line.push_str(s);
    }
}

fn push_int(line: &mut String, v: i64) {
    // Writing to a String cannot fail.
    let _ = write!(line, "{v}");
}

/// Appends `n` empty cells (each after a comma).
fn push_empty(line: &mut String, n: usize) {
    for _ in 0..n {
        line.push(',');
    }
}

/// One event as a CSV line (with its line break).
fn csv_line(line: &mut String, e: &Event) {
    match e {
        Event::Person(p) => {
            line.push('0');
            line.push(',');
            push_int(line, p.id);
            for s in [&p.name, &p.email_address, &p.credit_card, &p.city, &p.state] {
                line.push(',');
                push_cell(line, s);
            }
            line.push(',');
            push_int(line, p.date_time);
            line.push(',');
            push_cell(line, &p.extra);
            push_empty(line, CSV_HEADER.len() - AUCTION_AT);
        }
        Event::Auction(a) => {
            line.push('1');
            push_empty(line, AUCTION_AT - PERSON_AT);
            line.push(',');
            push_int(line, a.id);
            for s in [&a.item_name, &a.description] {
                line.push(',');
                push_cell(line, s);
            }
            for v in [a.initial_bid, a.reserve, a.date_time, a.expires, a.seller, a.category] {
                line.push(',');
                push_int(line, v);
            }
            line.push(',');
            push_cell(line, &a.extra);
            push_empty(line, CSV_HEADER.len() - BID_AT);
        }
        Event::Bid(b) => {
            line.push('2');
            push_empty(line, BID_AT - PERSON_AT);
            for v in [b.auction, b.bidder, b.price] {
                line.push(',');
                push_int(line, v);
            }
            for s in [&b.channel, &b.url] {
                line.push(',');
                push_cell(line, s);
            }
            line.push(',');
            push_int(line, b.date_time);
            line.push(',');
            push_cell(line, &b.extra);
        }
    }
    line.push('\n');
}

/// Reads every event of a file in `format`.
pub fn read_events(path: impl AsRef<Path>, format: Format) -> Result<Vec<Event>, FileError> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|source| FileError::Io { path: path.to_owned(), source })?;
    let reader = BufReader::with_capacity(1 << 20, file);
    let events = match format {
        Format::JsonLines => read_json_lines(reader).collect::<Result<Vec<_>, _>>(),
        Format::Csv => read_csv(reader).collect::<Result<Vec<_>, _>>(),
    };
    events.map_err(|e| match e {
        FileError::Io { source, .. } => FileError::Io { path: path.to_owned(), source },
        other => other,
    })
}

/// The events of JSON lines, one per line (blank lines are skipped); an error names its
/// line.
pub fn read_json_lines<R: BufRead>(reader: R) -> impl Iterator<Item = Result<Event, FileError>> {
    reader.lines().enumerate().filter_map(|(i, line)| {
        let line_no = i as u64 + 1;
        match line {
            Err(source) => Some(Err(FileError::Io { path: PathBuf::new(), source })),
            Ok(text) if text.trim().is_empty() => None,
            Ok(text) => Some(
                serde_json::from_str::<Event>(&text)
                    .map_err(|e| FileError::Json { line: line_no, message: e.to_string() }),
            ),
        }
    })
}

/// The events of a CSV file with the header [`CSV_HEADER`]; an error names its line.
pub fn read_csv<R: Read>(reader: R) -> impl Iterator<Item = Result<Event, FileError>> {
    let mut csv = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(reader);
    let mut header_checked = false;
    let mut record = csv::StringRecord::new();
    std::iter::from_fn(move || loop {
        match csv.read_record(&mut record) {
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                // A broken record ends the file.
                return Some(Err(FileError::Csv { line, message: e.to_string() }));
            }
            Ok(false) => return None,
            Ok(true) => {}
        }
        let line = record.position().map_or(0, |p| p.line());
        if !header_checked {
            header_checked = true;
            if record.iter().ne(CSV_HEADER.iter().copied()) {
                return Some(Err(FileError::Csv {
                    line,
                    message: format!(
                        "the header must be {} (got {})",
                        CSV_HEADER.join(","),
                        record.iter().collect::<Vec<_>>().join(",")
                    ),
                }));
            }
            continue;
        }
        if record.len() == 1 && record.get(0).is_some_and(|c| c.trim().is_empty()) {
            continue;
        }
        return Some(csv_event(&record).map_err(|message| FileError::Csv { line, message }));
    })
}

/// A CSV record as an event.
fn csv_event(r: &csv::StringRecord) -> Result<Event, String> {
    if r.len() != CSV_HEADER.len() {
        return Err(format!("{} cells, expected {}", r.len(), CSV_HEADER.len()));
    }
    let text = |i: usize| r.get(i).unwrap_or_default().to_owned();
    let int = |i: usize| -> Result<i64, String> {
        let cell = r.get(i).unwrap_or_default();
        cell.trim()
            .parse::<i64>()
            .map_err(|e| format!("column {}: {cell:?} is not an integer: {e}", CSV_HEADER[i]))
    };
    match r.get(0).unwrap_or_default().trim() {
        "0" => Ok(Event::Person(Person {
            id: int(PERSON_AT)?,
            name: text(PERSON_AT + 1),
            email_address: text(PERSON_AT + 2),
            credit_card: text(PERSON_AT + 3),
            city: text(PERSON_AT + 4),
            state: text(PERSON_AT + 5),
            date_time: int(PERSON_AT + 6)?,
            extra: text(PERSON_AT + 7),
        })),
        "1" => Ok(Event::Auction(Auction {
            id: int(AUCTION_AT)?,
            item_name: text(AUCTION_AT + 1),
            description: text(AUCTION_AT + 2),
            initial_bid: int(AUCTION_AT + 3)?,
            reserve: int(AUCTION_AT + 4)?,
            date_time: int(AUCTION_AT + 5)?,
            expires: int(AUCTION_AT + 6)?,
            seller: int(AUCTION_AT + 7)?,
            category: int(AUCTION_AT + 8)?,
            extra: text(AUCTION_AT + 9),
        })),
        "2" => Ok(Event::Bid(Bid {
            auction: int(BID_AT)?,
            bidder: int(BID_AT + 1)?,
            price: int(BID_AT + 2)?,
            channel: text(BID_AT + 3),
            url: text(BID_AT + 4),
            date_time: int(BID_AT + 5)?,
            extra: text(BID_AT + 6),
        })),
        other => Err(format!("event_type {other:?}: expected 0 (person), 1 (auction) or 2 (bid)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Event> {
        Generator::new(GeneratorConfig::new().num_events(300)).unwrap().collect()
    }

    fn write_all(events: &[Event], format: Format) -> (Vec<u8>, WriteSummary) {
        let mut buf = Vec::new();
        let mut w = EventWriter::new(&mut buf, format).unwrap();
        for e in events {
            w.write(e).unwrap();
        }
        let summary = w.finish().unwrap();
        (buf, summary)
    }

    #[test]
    fn json_lines_are_the_serde_shape() {
        let events = sample();
        let (buf, summary) = write_all(&events, Format::JsonLines);
        assert_eq!(summary.bytes, buf.len() as u64);
        let text = String::from_utf8(buf).unwrap();
        for (line, e) in text.lines().zip(&events) {
            assert_eq!(line, serde_json::to_string(e).unwrap());
        }
        let back: Vec<Event> = read_json_lines(text.as_bytes()).collect::<Result<_, _>>().unwrap();
        assert_eq!(back, events);
    }

    #[test]
    fn csv_round_trips_with_awkward_strings() {
        let mut events = sample();
        events.push(Event::Bid(Bid {
            auction: 1,
            bidder: 2,
            price: 3,
            channel: "a,b \"c\"".into(),
            url: " lead".into(),
            date_time: -4,
            extra: "line\nbreak".into(),
        }));
        let (buf, summary) = write_all(&events, Format::Csv);
        assert_eq!(summary.events, events.len() as u64);
        let text = String::from_utf8(buf).unwrap();
        assert!(text.starts_with("event_type,person_id,person_name,"));
        let back: Vec<Event> = read_csv(text.as_bytes()).collect::<Result<_, _>>().unwrap();
        assert_eq!(back, events);
        // Every record has the same number of cells as the header.
        let first_bid = text.lines().find(|l| l.starts_with("2,")).unwrap();
        assert!(first_bid.starts_with(&format!("2{}", ",".repeat(BID_AT - PERSON_AT + 1))));
    }

    #[test]
    fn errors_name_the_line() {
        let events = sample();
        let (buf, _) = write_all(&events[..3], Format::JsonLines);
        let mut text = String::from_utf8(buf).unwrap();
        text.push_str("{\"event_type\":2}\n");
        let errors: Vec<FileError> = read_json_lines(text.as_bytes()).filter_map(Result::err).collect();
        assert_eq!(errors.len(), 1);
        assert!(matches!(errors[0], FileError::Json { line: 4, .. }), "{:?}", errors[0]);

        let (buf, _) = write_all(&events[..3], Format::Csv);
        let mut text = String::from_utf8(buf).unwrap();
        text.push_str(&format!("2{}x,1,1,c,u,1,e\n", ",".repeat(BID_AT - PERSON_AT + 1)));
        let errors: Vec<FileError> = read_csv(text.as_bytes()).filter_map(Result::err).collect();
        assert_eq!(errors.len(), 1);
        let message = errors[0].to_string();
        assert!(message.starts_with("line 5:") && message.contains("bid_auction"), "{message}");

        let bad_header = "event_type,x\n";
        let first = read_csv(bad_header.as_bytes()).next().unwrap().unwrap_err().to_string();
        assert!(first.starts_with("line 1:"), "{first}");
        let bad_type = format!("{}\n9{}\n", CSV_HEADER.join(","), ",".repeat(CSV_HEADER.len() - 1));
        let err = read_csv(bad_type.as_bytes()).next().unwrap().unwrap_err().to_string();
        assert!(err.starts_with("line 2:") && err.contains("event_type"), "{err}");
    }

    #[test]
    fn formats_by_name_and_extension() {
        assert_eq!("CSV".parse::<Format>().unwrap(), Format::Csv);
        assert_eq!("json".parse::<Format>().unwrap(), Format::JsonLines);
        assert!("xml".parse::<Format>().is_err());
        assert_eq!(Format::from_path(Path::new("a/b.jsonl")), Some(Format::JsonLines));
        assert_eq!(Format::from_path(Path::new("b.csv")), Some(Format::Csv));
        assert_eq!(Format::from_path(Path::new("b")), None);
    }

    #[test]
    fn unbounded_configurations_are_not_written() {
        let dir = tempfile::tempdir().unwrap();
        let err = write_events(&GeneratorConfig::new().unbounded(), dir.path().join("x.csv"), Format::Csv);
        assert!(err.is_err());
    }
}
