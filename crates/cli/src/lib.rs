//! The library part of the `millstream` command: the pieces of its input handling that are
//! worth testing (and fuzzing, see `fuzz/`) apart from the binary.

#![warn(missing_docs)]

pub mod produce_input;
