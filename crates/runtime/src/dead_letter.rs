//! Dead letters: records that could not be read or processed, kept with their error
//! instead of failing the job, when the user chose so for a source or a transform.
//!
//! A source whose reader routes bad records aside (for example a file source with
//! `BadRecordPolicy::DeadLetter`) hands them to the runtime, which emits them on the
//! source's dead-letter output ([`Pipeline::read_with_dead_letters`]); a transform's
//! failures go to [`PCollection::try_map_with_dead_letters`]'s second output. Either is an
//! ordinary PCollection: write it to a file, a topic, anywhere. Each dead letter is counted
//! in `<step>/dead_letters`. A source that routes a record aside while the pipeline does
//! not read its dead-letter output fails the job instead: nothing is dropped silently.
//!
//! [`Pipeline::read_with_dead_letters`]: crate::Pipeline::read_with_dead_letters
//! [`PCollection::try_map_with_dead_letters`]: crate::PCollection::try_map_with_dead_letters

use serde::{Deserialize, Serialize};

/// A record that could not be read or processed, with where it was and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The step that gave up on it (a source or a transform).
    pub step: String,
    /// Where it was: a file and line, a partition and offset, or the element's position.
    pub location: String,
    /// Why it was rejected.
    pub error: String,
    /// The record as text (invalid UTF-8 replaced by U+FFFD; see `payload_bytes`).
    pub payload: String,
    /// The raw bytes, only when they are not valid UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload_bytes: Option<Vec<u8>>,
}

impl DeadLetter {
    /// A dead letter for raw bytes: kept as text when they are UTF-8, else as bytes too.
    /// `step` may be left empty for the runtime to fill in.
    pub fn from_bytes(location: impl Into<String>, error: impl Into<String>, bytes: &[u8]) -> Self {
        let (payload, payload_bytes) = match std::str::from_utf8(bytes) {
            Ok(text) => (text.to_owned(), None),
            Err(_) => (String::from_utf8_lossy(bytes).into_owned(), Some(bytes.to_vec())),
        };
        DeadLetter {
            step: String::new(),
            location: location.into(),
            error: error.into(),
            payload,
            payload_bytes,
        }
    }

    /// A dead letter for a record given as text.
    pub fn from_text(location: impl Into<String>, error: impl Into<String>, text: impl Into<String>) -> Self {
        DeadLetter {
            step: String::new(),
            location: location.into(),
            error: error.into(),
            payload: text.into(),
            payload_bytes: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_keeps_the_raw_bytes() {
        let d = DeadLetter::from_bytes("f:3", "bad", b"ab\xffcd");
        assert_eq!(d.payload, "ab\u{FFFD}cd");
        assert_eq!(d.payload_bytes.as_deref(), Some(&b"ab\xffcd"[..]));
        let ok = DeadLetter::from_bytes("f:4", "bad", b"abcd");
        assert_eq!((ok.payload.as_str(), ok.payload_bytes.as_deref()), ("abcd", None));
        let json = serde_json::to_string(&ok).unwrap();
        assert!(!json.contains("payload_bytes"), "{json}");
    }
}

mod transform {
    use super::DeadLetter;
    use crate::dofn::{guarded, DoFn, ProcessContext, TupleTag, UserError};
    use crate::element::Element;
    use crate::error::RuntimeError;
    use crate::graph::{NodeId, NodeKind, PortRef, Translation};
    use crate::pcollection::PCollection;
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use timely::dataflow::channels::pact::Pipeline as Local;
    use timely::dataflow::operators::generic::Operator;

    /// Applies `f`, sending failures (errors and panics) to the dead-letter tag.
    #[derive(Clone)]
    struct TryMap<F> {
        f: F,
        dead: TupleTag<DeadLetter>,
    }

    impl<T, O, F> DoFn<T> for TryMap<F>
    where
        T: Element,
        O: Element,
        F: Fn(&T) -> Result<O, UserError> + Send + Sync + Clone + 'static,
    {
        type Output = O;
        fn process(&mut self, value: T, ctx: &mut ProcessContext<'_, O>) -> Result<(), UserError> {
            let f = &self.f;
            match guarded(|| f(&value)) {
                Ok(out) => ctx.output(out),
                Err(e) => {
                    let payload = serde_json::to_string(&value)
                        .unwrap_or_else(|err| format!("(element not representable as JSON: {err})"));
                    let location = format!("element at {} in window {:?}", ctx.timestamp(), ctx.window());
                    ctx.output_to(&self.dead, DeadLetter::from_text(location, e.0, payload))?;
                }
            }
            Ok(())
        }
    }

    impl<T: Element> PCollection<T> {
        /// Like [`try_map`](Self::try_map), but an element on which `f` fails (an error or
        /// a panic) goes, with the error, to the second output as a [`DeadLetter`] (its
        /// payload is the element as JSON) instead of failing the job. Dead letters are
        /// counted in `<name>/dead_letters`.
        ///
        /// ```
        /// use millstream_runtime::{Pipeline, Runner, UserError};
        /// let p = Pipeline::new();
        /// let (numbers, failed) = p
        ///     .create(vec!["1".to_string(), "x".to_string()])
        ///     .try_map_with_dead_letters("Parse", |s: &String| {
        ///         s.parse::<i64>().map_err(|e| UserError::new(format!("not a number: {e}")))
        ///     });
        /// let (numbers, failed) = (numbers.collect(), failed.collect());
        /// let result = Runner::new().run(&p).unwrap();
        /// assert_eq!(numbers.values(), vec![1]);
        /// let letters = failed.values();
        /// assert_eq!((letters[0].payload.as_str(), letters[0].step.as_str()), ("\"x\"", "Parse"));
        /// assert!(letters[0].error.contains("not a number"));
        /// assert_eq!(result.counter("Parse/dead_letters"), 1);
        /// ```
        pub fn try_map_with_dead_letters<O: Element>(
            &self,
            name: &str,
            f: impl Fn(&T) -> Result<O, UserError> + Send + Sync + Clone + 'static,
        ) -> (PCollection<O>, PCollection<DeadLetter>) {
            let dead = TupleTag::<DeadLetter>::new("dead letters");
            let dofn = TryMap { f, dead: dead.clone() };
            let (out, tagged) = self.par_do_with_outputs(name, dofn, &[(&dead).into()]);
            let step = self.pipeline.node_name(out.port.node);
            (out, tagged.get(&dead).signed_and_counted(&step))
        }
    }

    impl PCollection<DeadLetter> {
        /// Names `step` in dead letters that name no step, and counts them in
        /// `<step>/dead_letters`.
        fn signed_and_counted(&self, step: &str) -> PCollection<DeadLetter> {
            let input = self.port;
            let step = step.to_owned();
            let counter = format!("{step}/dead_letters");
            let build = Arc::new(move |t: &mut Translation<'_>, node: NodeId| -> Result<(), RuntimeError> {
                let stream = t.stream::<DeadLetter>(input)?;
                let count = t.job.counter(&counter);
                let (flow_in, flow_out) = (t.flow_in(), t.flow_out(PortRef { node, port: 0 }));
                let step = step.clone();
                let out = stream.unary(Local, "DeadLetters", move |_cap, _info| {
                    move |input, output| {
                        input.for_each(|cap, data| {
                            count.fetch_add(data.len() as u64, Ordering::Relaxed);
                            for wv in data.iter_mut().filter(|wv| wv.value.step.is_empty()) {
                                wv.value.step.clone_from(&step);
                            }
                            flow_in.received(data.len());
                            flow_out.sent(data.len());
                            output.session(&cap).give_container(data);
                        });
                    }
                });
                t.insert(PortRef { node, port: 0 }, out);
                Ok(())
            });
            let node = self.pipeline.add_node("DeadLetters", NodeKind::ParDo, vec![input], build);
            PCollection::from_port(self.pipeline.clone(), PortRef { node, port: 0 }, self.strategy.clone())
        }
    }
}
