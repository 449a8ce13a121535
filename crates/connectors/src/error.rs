//! [`ConnectorError`]: what can go wrong in a connector, with where.

use millstream_runtime::SourceError;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// An error of a source or sink, naming the file (and line) or setting at fault.
#[derive(Debug, Error)]
pub enum ConnectorError {
    /// A file could not be opened, read, created or written.
    #[error("{path}: {action}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What was being done (`"cannot open"`, `"cannot write"`, ...).
        action: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A file or glob pattern matched no file.
    #[error("{pattern}: no file matches")]
    NoMatch {
        /// The path or pattern as given.
        pattern: String,
    },
    /// A glob pattern is malformed.
    #[error("{pattern}: invalid glob pattern: {message}")]
    InvalidPattern {
        /// The pattern as given.
        pattern: String,
        /// Why it is invalid.
        message: String,
    },
    /// The set of files matching a pattern changed while the job started.
    #[error("{pattern}: the matching files changed while the job started")]
    FilesChanged {
        /// The pattern as given.
        pattern: String,
    },
    /// A line is not valid UTF-8.
    #[error("{}:{line}: invalid UTF-8: {message}", path.display())]
    InvalidUtf8 {
        /// The file.
        path: PathBuf,
        /// The line number, from 1.
        line: u64,
        /// Details (the byte offset in the line).
        message: String,
    },
    /// A line could not be decoded into a record (bad JSON, for example).
    #[error("{}:{line}: cannot decode record: {message}", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// The line number, from 1.
        line: u64,
        /// The decoder's error.
        message: String,
    },
    /// A record could not be encoded for writing.
    #[error("{}: cannot encode record: {message}", path.display())]
    Encode {
        /// The file being written.
        path: PathBuf,
        /// The encoder's error.
        message: String,
    },
    /// A connector was configured wrongly.
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl ConnectorError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, action: &'static str, source: std::io::Error) -> Self {
        ConnectorError::Io { path: path.to_owned(), action, source }
    }

    /// Where the error happened: `path:line`, `path`, the pattern, or `default`.
    pub fn location(&self, default: &str) -> String {
        match self {
            ConnectorError::Io { path, .. } | ConnectorError::Encode { path, .. } => {
                path.display().to_string()
            }
            ConnectorError::NoMatch { pattern }
            | ConnectorError::InvalidPattern { pattern, .. }
            | ConnectorError::FilesChanged { pattern } => pattern.clone(),
            ConnectorError::InvalidUtf8 { path, line, .. } | ConnectorError::Decode { path, line, .. } => {
                format!("{}:{line}", path.display())
            }
            ConnectorError::Config(_) => default.to_owned(),
        }
    }

    /// What went wrong, without the location.
    pub fn detail(&self) -> String {
        match self {
            ConnectorError::Io { action, source, .. } => format!("{action}: {source}"),
            ConnectorError::NoMatch { .. } => "no file matches".to_owned(),
            ConnectorError::InvalidPattern { message, .. } => format!("invalid glob pattern: {message}"),
            ConnectorError::FilesChanged { .. } => {
                "the matching files changed while the job started".to_owned()
            }
            ConnectorError::InvalidUtf8 { message, .. } => format!("invalid UTF-8: {message}"),
            ConnectorError::Decode { message, .. } => format!("cannot decode record: {message}"),
            ConnectorError::Encode { message, .. } => format!("cannot encode record: {message}"),
            ConnectorError::Config(message) => format!("invalid configuration: {message}"),
        }
    }

    /// As the runtime's [`SourceError`] (location `path:line` where known).
    pub fn into_source_error(self, default_location: &str) -> SourceError {
        SourceError::new(self.location(default_location), self.detail())
    }
}
