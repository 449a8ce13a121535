//! Execution of Millstream pipelines on timely dataflow.
