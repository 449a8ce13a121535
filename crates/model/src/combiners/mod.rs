//! Built-in CombineFns.
