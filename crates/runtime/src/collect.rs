//! Collecting a PCollection's output in memory, and PAssert-style assertions on it.

use crate::element::Element;
use crate::error::RuntimeError;
use crate::graph::{Assertion, NodeId, NodeKind, Translation};
use crate::pcollection::PCollection;
use millstream_model::{PaneInfo, Timing, Window, WindowedValue};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use timely::dataflow::channels::pact::Pipeline as Local;
use timely::dataflow::operators::generic::Operator;

/// The output of a PCollection gathered from all workers, readable after the run.
#[derive(Clone)]
pub struct Collected<T> {
    items: Arc<Mutex<Vec<WindowedValue<T>>>>,
}

impl<T: Clone> Collected<T> {
    /// Every collected element with its timestamp, window and pane (order across workers
    /// is unspecified).
    pub fn windowed(&self) -> Vec<WindowedValue<T>> {
        self.items.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The collected values.
    pub fn values(&self) -> Vec<T> {
        self.windowed().into_iter().map(|wv| wv.value).collect()
    }
}

impl<T: Element> PCollection<T> {
    /// Gathers the collection's elements in memory, for tests and small results.
    pub fn collect(&self) -> Collected<T> {
        let items: Arc<Mutex<Vec<WindowedValue<T>>>> = Arc::default();
        let sink_items = items.clone();
        let input = self.port;
        let build = Arc::new(move |t: &mut Translation<'_>, node: NodeId| -> Result<(), RuntimeError> {
            let stream = t.stream::<T>(input)?;
            let items = sink_items.clone();
            let flow_in = t.flow_in();
            stream.sink(Local, t.name(node), move |(input, _frontier)| {
                input.for_each(|_cap, data| {
                    flow_in.received(data.len());
                    items.lock().unwrap_or_else(|e| e.into_inner()).append(data);
                });
            });
            Ok(())
        });
        self.pipeline.add_node("Collect", NodeKind::Sink, vec![input], build);
        Collected { items }
    }
}

/// Which elements an assertion looks at.
#[derive(Clone, Debug)]
enum Scope {
    All,
    Window(Window),
    OnTimePane(Window),
    FinalPane(Window),
    EarlyPanes(Window),
    LatePanes(Window),
}

impl Scope {
    fn admits(&self, window: &Window, pane: &PaneInfo) -> bool {
        match self {
            Scope::All => true,
            Scope::Window(w) => w == window,
            Scope::OnTimePane(w) => w == window && pane.timing == Timing::OnTime,
            Scope::FinalPane(w) => w == window && pane.is_last,
            Scope::EarlyPanes(w) => w == window && pane.timing == Timing::Early,
            Scope::LatePanes(w) => w == window && pane.timing == Timing::Late,
        }
    }
}

/// Assertions on the contents of a PCollection, checked when the pipeline has run
/// (Beam's `PAssert`). A failed assertion makes [`crate::Runner::run`] return
/// [`RuntimeError::Assertion`].
///
/// ```
/// use millstream_runtime::{PAssert, Pipeline, Runner};
/// let p = Pipeline::new();
/// let squares = p.create(vec![1i64, 2, 3]).map(|x| x * x);
/// PAssert::that(&squares).contains_in_any_order(vec![9, 1, 4]);
/// Runner::new().run(&p).unwrap();
/// ```
pub struct PAssert<T> {
    collection: PCollection<T>,
    scope: Scope,
}

impl<T: Element + PartialEq + Debug> PAssert<T> {
    /// Assertions about `collection`.
    pub fn that(collection: &PCollection<T>) -> Self {
        PAssert { collection: collection.clone(), scope: Scope::All }
    }

    /// Only the elements in `window` (every pane).
    pub fn in_window(mut self, window: Window) -> Self {
        self.scope = Scope::Window(window);
        self
    }

    /// Only the on-time pane of `window`.
    pub fn in_on_time_pane(mut self, window: Window) -> Self {
        self.scope = Scope::OnTimePane(window);
        self
    }

    /// Only the final pane of `window`.
    pub fn in_final_pane(mut self, window: Window) -> Self {
        self.scope = Scope::FinalPane(window);
        self
    }

    /// Only the early panes of `window`.
    pub fn in_early_panes(mut self, window: Window) -> Self {
        self.scope = Scope::EarlyPanes(window);
        self
    }

    /// Only the late panes of `window`.
    pub fn in_late_panes(mut self, window: Window) -> Self {
        self.scope = Scope::LatePanes(window);
        self
    }

    /// The elements in scope are exactly `expected`, in any order.
    pub fn contains_in_any_order(self, expected: Vec<T>) {
        self.register("contains_in_any_order", move |actual: Vec<T>| {
            let mut remaining = actual.clone();
            for e in &expected {
                match remaining.iter().position(|a| a == e) {
                    Some(i) => {
                        remaining.swap_remove(i);
                    }
                    None => {
                        return Err(format!(
                            "expected {e:?} missing; actual: {actual:?}; expected: {expected:?}"
                        ))
                    }
                }
            }
            if remaining.is_empty() {
                Ok(())
            } else {
                Err(format!("unexpected elements {remaining:?}; expected: {expected:?}"))
            }
        });
    }

    /// There are no elements in scope.
    pub fn empty(self) {
        self.contains_in_any_order(Vec::new());
    }

    /// A custom check over the elements in scope.
    pub fn satisfies(self, check: impl Fn(&[T]) -> Result<(), String> + Send + 'static) {
        self.register("satisfies", move |actual: Vec<T>| check(&actual));
    }

    fn register(self, what: &str, check: impl Fn(Vec<T>) -> Result<(), String> + Send + 'static) {
        let collected = self.collection.collect();
        let scope = self.scope.clone();
        let name = format!("PAssert {what} on {:?} ({scope:?})", self.collection);
        let check = move || {
            let actual: Vec<T> = collected
                .windowed()
                .into_iter()
                .filter(|wv| scope.admits(&wv.window, &wv.pane))
                .map(|wv| wv.value)
                .collect();
            check(actual)
        };
        self.collection.pipeline.lock().assertions.push(Assertion { name, check: Box::new(check) });
    }
}
