//! [`DoFn`]: the per-element function of a ParDo, and the context it sees.

use crate::element::Element;
use crate::side_input::{PCollectionView, SideInputValues};
use millstream_model::{PaneInfo, Timestamp, Window, WindowedValue};
use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};

/// An error from user code for one element. The job fails with it, naming the step (or,
/// with a dead-letter policy, routes the element aside).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserError(pub String);

impl UserError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        UserError(message.into())
    }
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<E: std::error::Error> From<E> for UserError {
    fn from(e: E) -> Self {
        UserError(e.to_string())
    }
}

/// A per-element function with access to the element's timestamp, window and pane, and
/// to side inputs; it may output any number of elements to its main output and to
/// tagged outputs (Beam's DoFn).
///
/// Each worker gets its own clone, so a DoFn may keep per-worker state in `&mut self`.
///
/// ```
/// use millstream_runtime::{DoFn, ProcessContext, UserError};
/// #[derive(Clone)]
/// struct SplitWords;
/// impl DoFn<String> for SplitWords {
///     type Output = String;
///     fn process(&mut self, line: String, ctx: &mut ProcessContext<'_, String>) -> Result<(), UserError> {
///         for word in line.split_whitespace() {
///             ctx.output(word.to_string());
///         }
///         Ok(())
///     }
/// }
/// ```
pub trait DoFn<I>: Clone + Send + Sync + 'static {
    /// The main output's element type.
    type Output: Element;

    /// Called once per worker before the first element.
    fn setup(&mut self) {}

    /// Processes one element.
    fn process(&mut self, element: I, ctx: &mut ProcessContext<'_, Self::Output>) -> Result<(), UserError>;
}

/// A typed name for an additional output of a ParDo.
pub struct TupleTag<T> {
    pub(crate) id: usize,
    pub(crate) name: String,
    _type: PhantomData<fn() -> T>,
}

static NEXT_TAG: AtomicUsize = AtomicUsize::new(1);

impl<T> TupleTag<T> {
    /// A new tag; `name` names the output in the plan.
    pub fn new(name: &str) -> Self {
        TupleTag { id: NEXT_TAG.fetch_add(1, Ordering::Relaxed), name: name.to_owned(), _type: PhantomData }
    }
}

impl<T> Clone for TupleTag<T> {
    fn clone(&self) -> Self {
        TupleTag { id: self.id, name: self.name.clone(), _type: PhantomData }
    }
}

impl<T> fmt::Debug for TupleTag<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TupleTag({})", self.name)
    }
}

/// Buffers for the tagged outputs of one ParDo, erased per tag.
pub(crate) struct TaggedBuffers {
    pub(crate) tags: Vec<usize>,
    pub(crate) buffers: Vec<Box<dyn Any>>,
}

impl TaggedBuffers {
    pub(crate) fn empty() -> Self {
        TaggedBuffers { tags: Vec::new(), buffers: Vec::new() }
    }
}

/// What a [`DoFn`] sees while processing one element.
pub struct ProcessContext<'a, O> {
    pub(crate) timestamp: Timestamp,
    pub(crate) window: Window,
    pub(crate) pane: PaneInfo,
    pub(crate) retraction: bool,
    pub(crate) main: &'a mut Vec<WindowedValue<O>>,
    pub(crate) tagged: &'a mut TaggedBuffers,
    pub(crate) side_inputs: Option<&'a SideInputValues>,
}

impl<'a, O> ProcessContext<'a, O> {
    /// The element's event timestamp.
    pub fn timestamp(&self) -> Timestamp {
        self.timestamp
    }

    /// The element's window.
    pub fn window(&self) -> &Window {
        &self.window
    }

    /// The pane that produced the element.
    pub fn pane(&self) -> &PaneInfo {
        &self.pane
    }

    /// Whether the element retracts an earlier one.
    pub fn is_retraction(&self) -> bool {
        self.retraction
    }

    /// Outputs a value with the element's timestamp, window and pane.
    #[inline]
    pub fn output(&mut self, value: O) {
        self.main.push(WindowedValue {
            value,
            timestamp: self.timestamp,
            window: self.window,
            pane: self.pane,
            retraction: self.retraction,
        });
    }

    /// Outputs a value with another timestamp (same window and pane).
    #[inline]
    pub fn output_with_timestamp(&mut self, value: O, timestamp: Timestamp) {
        self.main.push(WindowedValue {
            value,
            timestamp,
            window: self.window,
            pane: self.pane,
            retraction: self.retraction,
        });
    }

    /// Outputs a value to a tagged output declared with
    /// [`crate::PCollection::par_do_with_outputs`].
    ///
    /// Returns an error if the tag was not declared for this ParDo.
    pub fn output_to<U: Element>(&mut self, tag: &TupleTag<U>, value: U) -> Result<(), UserError> {
        let idx = self.tagged.tags.iter().position(|t| *t == tag.id).ok_or_else(|| {
            UserError::new(format!("output tag {} was not declared for this ParDo", tag.name))
        })?;
        let buffer = self.tagged.buffers[idx]
            .downcast_mut::<Vec<WindowedValue<U>>>()
            .ok_or_else(|| UserError::new(format!("output tag {} has another type", tag.name)))?;
        buffer.push(WindowedValue {
            value,
            timestamp: self.timestamp,
            window: self.window,
            pane: self.pane,
            retraction: self.retraction,
        });
        Ok(())
    }

    /// The value of a side input for this element's window.
    ///
    /// Returns an error if the view was not passed to this ParDo.
    pub fn side_input<V: Send + Sync + 'static>(&self, view: &PCollectionView<V>) -> Result<&V, UserError> {
        let values = self.side_inputs.ok_or_else(|| {
            UserError::new(format!("side input {} was not passed to this ParDo", view.name))
        })?;
        values.get(view, &self.window)
    }
}

/// Runs user code, turning a panic into a [`UserError`] so that one bad element fails
/// the job with a message instead of killing a worker thread (which would leave the
/// other workers waiting for it).
#[inline]
pub(crate) fn guarded<R>(f: impl FnOnce() -> Result<R, UserError>) -> Result<R, UserError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_string());
            Err(UserError(format!("panicked: {msg}")))
        }
    }
}
