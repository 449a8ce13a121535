//! GroupByKey and Combine.perKey: the operator that groups by key and window, runs the
//! reducer (windows, triggers, panes) per key, and holds the output watermark.

use crate::align::{stamp_of, EpochAligner};
use crate::element::Element;
use crate::error::RuntimeError;
use crate::flow::send_counted;
use crate::graph::{BuildFn, NodeId, NodeKind, PortRef, Translation, WStream};
use crate::key::{worker_for_key, Key};
use crate::keyed_snapshot::KeyedCheckpointing;
use crate::optimizer::lifting::{self, Partial};
use crate::pcollection::PCollection;
use crate::state::KeyedStateStore;
use crate::time::{frontier_time, input_progress, FrontierTime};
use millstream_model::{
    Admission, CombineFn, FiredPane, KeyState, TimeContext, Timestamp, ToList, WindowReducer, WindowedValue,
    WindowingStrategy,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::builder_rc::OperatorBuilder;
use timely::dataflow::operators::generic::OutputBuilder;
use timely::dataflow::operators::Capability;

/// A grouping's output `(key, result)` and the input dropped as too late.
pub type WithDropped<K, O, V> = (PCollection<(K, O)>, PCollection<(K, V)>);

/// The state of one key in the grouping operator, with the timer and hold values last
/// indexed for it (so they can be removed from the indexes when they change).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
#[serde(bound(serialize = "A: serde::Serialize", deserialize = "A: serde::de::DeserializeOwned"))]
struct Slot<A> {
    state: KeyState<A>,
    event_timer: Option<Timestamp>,
    processing_timer: Option<Timestamp>,
    hold: Option<Timestamp>,
    /// Touched since the indexes were last refreshed (not part of the state).
    #[serde(skip)]
    dirty: bool,
}

impl<A> Slot<A> {
    fn new() -> Self {
        Slot {
            state: KeyState::default(),
            event_timer: None,
            processing_timer: None,
            hold: None,
            dirty: false,
        }
    }
}

/// All keys of one worker's share of a grouping: their reducer state in the keyed state
/// store (by key group), indexed by next timer and by hold.
struct Groups<K, V, C: CombineFn<V>> {
    reducer: WindowReducer<V, C>,
    store: KeyedStateStore<K, Slot<C::Accumulator>>,
    event_timers: BTreeSet<(Timestamp, K)>,
    processing_timers: BTreeSet<(Timestamp, K)>,
    holds: BTreeMap<Timestamp, usize>,
    /// Keys touched in this activation, refreshed once each at the end of a phase.
    dirty: Vec<K>,
}

impl<K: Key, V, C: CombineFn<V>> Groups<K, V, C> {
    fn new(reducer: WindowReducer<V, C>, key_groups: u32) -> Self {
        Groups {
            reducer,
            store: KeyedStateStore::new(key_groups),
            event_timers: BTreeSet::new(),
            processing_timers: BTreeSet::new(),
            holds: BTreeMap::new(),
            dirty: Vec::new(),
        }
    }

    /// Marks a key for re-indexing (once per activation, not once per element).
    fn touch(&mut self, key: &K) {
        if let Some(slot) = self.store.get_mut(key) {
            if !slot.dirty {
                slot.dirty = true;
                self.dirty.push(key.clone());
            }
        }
    }

    /// Re-indexes every key (after a restore: the timer and hold indexes are not saved).
    fn reindex_all(&mut self) {
        let keys: Vec<K> = self.store.iter().map(|(k, _)| k.clone()).collect();
        for key in keys {
            if let Some(slot) = self.store.get_mut(&key) {
                slot.event_timer = None;
                slot.processing_timer = None;
                slot.hold = None;
            }
            self.touch(&key);
        }
        self.refresh_dirty();
        // Restored groups are as committed: not changed.
        self.store.take_changed_groups();
    }

    /// Re-indexes every touched key.
    fn refresh_dirty(&mut self) {
        let dirty = std::mem::take(&mut self.dirty);
        for key in &dirty {
            self.refresh(key);
        }
        self.dirty = dirty;
        self.dirty.clear();
    }

    /// Re-indexes a key's timers and hold after the reducer touched it; drops its state
    /// when it holds nothing.
    fn refresh(&mut self, key: &K) {
        let Some(slot) = self.store.get_mut(key) else { return };
        slot.dirty = false;
        let et = self.reducer.next_event_time_timer(&slot.state);
        let pt = self.reducer.next_processing_time_timer(&slot.state);
        let hold = self.reducer.watermark_hold(&slot.state);
        reindex(&mut self.event_timers, &mut slot.event_timer, et, key);
        reindex(&mut self.processing_timers, &mut slot.processing_timer, pt, key);
        if hold != slot.hold {
            if let Some(old) = slot.hold {
                if let Some(c) = self.holds.get_mut(&old) {
                    *c -= 1;
                    if *c == 0 {
                        self.holds.remove(&old);
                    }
                }
            }
            if let Some(new) = hold {
                *self.holds.entry(new).or_insert(0) += 1;
            }
            slot.hold = hold;
        }
        if et.is_none() && pt.is_none() && hold.is_none() && self.reducer.is_empty(&slot.state) {
            self.store.remove(key);
        }
    }

    fn min_hold(&self) -> Option<Timestamp> {
        self.holds.keys().next().copied()
    }

    /// The reducer's view of time. Beam's output watermark: the input watermark held back
    /// by watermark holds and by pending event-time timers (an end-of-window timer not yet
    /// fired keeps that window's panes from being late), never behind `held`, what was
    /// already promised downstream.
    fn time_context(&self, input_watermark: Timestamp, held: Timestamp, now: Timestamp) -> TimeContext {
        let pending = [self.min_hold(), self.event_timers.iter().next().map(|(t, _)| *t)]
            .into_iter()
            .flatten()
            .fold(input_watermark, Timestamp::min);
        TimeContext { input_watermark, output_watermark: held.max(pending), processing_time: now }
    }

    /// Keys with a timer due at these times, in key order.
    fn due(&self, input_watermark: Timestamp, now: Timestamp) -> Vec<K> {
        if input_watermark >= Timestamp::MAX {
            // Input complete: every key gets its final firing and clean-up.
            let mut all: Vec<K> = self.store.iter().map(|(k, _)| k.clone()).collect();
            all.sort_unstable();
            return all;
        }
        let mut due: Vec<K> = Vec::new();
        for (t, k) in &self.event_timers {
            if *t < input_watermark {
                due.push(k.clone());
            } else {
                break;
            }
        }
        for (t, k) in &self.processing_timers {
            if *t <= now {
                due.push(k.clone());
            } else {
                break;
            }
        }
        due.sort_unstable();
        due.dedup();
        due
    }
}

/// How a grouping's inputs relate to the original elements: what they count as in the
/// dropped-data counter, and what of a too-late input goes to the dropped output.
pub(crate) struct InputShape<X, V> {
    /// How many original elements an input stands for (1, or a lifted partial's count).
    pub(crate) inputs: fn(&X) -> u64,
    /// The original element of a too-late input, if it still has one (a lifted partial
    /// does not; `combine_per_key_with_dropped` is never lifted).
    pub(crate) dropped: fn(X) -> Option<V>,
}

impl<V> InputShape<V, V> {
    /// Inputs that are the original elements.
    pub(crate) fn plain() -> Self {
        InputShape { inputs: |_| 1, dropped: Some }
    }
}

/// Groups by key and window, reducing with `combine_fn`; returns the grouped output and
/// the dropped (too late) input. `liftable` lets the optimizer lift the combiner ahead of
/// the shuffle (when the windowing strategy allows it).
pub(crate) fn group_and_combine<K, V, C>(
    input: &PCollection<(K, V)>,
    name: &str,
    kind: NodeKind,
    combine_fn: C,
    liftable: bool,
) -> WithDropped<K, C::Output, V>
where
    K: Key,
    V: Element,
    C: CombineFn<V>,
    C::Output: Element,
{
    let in_port = input.port;
    let strategy = input.strategy.clone();
    let combine_fn = Arc::new(combine_fn);
    let reducer_strategy = (*strategy).clone();
    let plain_fn = combine_fn.clone();
    let build = Arc::new(move |t: &mut Translation<'_>, node: NodeId| -> Result<(), RuntimeError> {
        let stream = t.stream::<(K, V)>(in_port)?;
        build_grouping(t, node, stream, reducer_strategy.clone(), plain_fn.clone(), InputShape::plain())
    });
    let lifted: Option<Arc<BuildFn>> = match (liftable, lifting::why_not_liftable(&strategy)) {
        (true, None) => {
            let strategy = (*strategy).clone();
            Some(Arc::new(move |t: &mut Translation<'_>, node: NodeId| -> Result<(), RuntimeError> {
                let stream = t.stream::<(K, V)>(in_port)?;
                let partials = lifting::partial_combine(t, node, stream, &strategy, combine_fn.clone())?;
                let lifted = Arc::new(lifting::Lifted::<V, C>::new(combine_fn.clone()));
                let shape = InputShape { inputs: |p: &Partial<C::Accumulator>| p.inputs, dropped: |_| None };
                build_grouping::<K, Partial<C::Accumulator>, V, _>(
                    t,
                    node,
                    partials,
                    strategy.clone(),
                    lifted,
                    shape,
                )
            }))
        }
        _ => None,
    };
    let node = input.pipeline.add_node(name, kind, vec![in_port], build);
    if let Some(lifted) = lifted {
        input.pipeline.set_lifted(node, lifted);
    }
    let grouped_strategy = Arc::new(strategy.for_grouped_output());
    (
        PCollection::from_port(input.pipeline.clone(), PortRef { node, port: 0 }, grouped_strategy),
        PCollection::from_port(input.pipeline.clone(), PortRef { node, port: 1 }, strategy),
    )
}

/// Builds the grouping operator of `node` over `stream`: exchange by key, the reducer per
/// key, outputs `(key, result)` on port 0 and dropped input on port 1.
fn build_grouping<'s, K, X, V, C>(
    t: &mut Translation<'s>,
    node: NodeId,
    stream: WStream<'s, (K, X)>,
    reducer_strategy: WindowingStrategy,
    combine_fn: Arc<C>,
    shape: InputShape<X, V>,
) -> Result<(), RuntimeError>
where
    K: Key,
    X: Clone + Send + serde::Serialize + serde::de::DeserializeOwned + 'static,
    V: Element,
    C: CombineFn<X>,
    C::Output: Element,
{
    let job = t.job.clone();
    let step = t.name(node).to_owned();
    let operator_id = t.operator_id(node).to_owned();
    let (workers, key_groups) = (job.workers, job.key_groups);
    let worker = t.scope.index();
    let exchange = Exchange::new(move |wv: &WindowedValue<(K, X)>| {
        worker_for_key(&wv.value.0, key_groups, workers) as u64
    });
    let mut builder = OperatorBuilder::new(step.clone(), t.scope);
    let address = builder.operator_info().address;
    let activator = t.scope.activator_for(address);
    let mut input = builder.new_input(stream, exchange);
    let (main_out, main_stream) = builder.new_output::<Vec<WindowedValue<(K, C::Output)>>>();
    let (late_out, late_stream) = builder.new_output::<Vec<WindowedValue<(K, V)>>>();
    let mut main_out = OutputBuilder::<_, timely::container::CapacityContainerBuilder<_>>::from(main_out);
    let mut late_out = OutputBuilder::<_, timely::container::CapacityContainerBuilder<_>>::from(late_out);
    let reducer = WindowReducer::new(reducer_strategy, combine_fn);
    let dropped_counter = job.counter(&format!("{step}/dropped_late"));
    let flow_in = t.flow_in();
    let main_flow = t.flow_out(PortRef { node, port: 0 });
    let late_flow = t.flow_out(PortRef { node, port: 1 });
    builder.build(move |mut caps| {
        let mut late_cap: Option<Capability<FrontierTime>> = caps.pop();
        let mut main_cap: Option<Capability<FrontierTime>> = caps.pop();
        let mut groups: Groups<K, X, C> = Groups::new(reducer, key_groups);
        let mut fired: Vec<FiredPane<C::Output>> = Vec::new();
        let mut out_buf: Vec<WindowedValue<(K, C::Output)>> = Vec::new();
        let mut late_buf: Vec<WindowedValue<(K, V)>> = Vec::new();
        let clock = job.clock.clone();
        let mut aligner: EpochAligner<(K, X)> = EpochAligner::default();
        let mut last_seen_epoch: u64 = 0;
        let mut checkpointing = job
            .checkpoints
            .as_ref()
            .map(|c| KeyedCheckpointing::new(c.clone(), &operator_id, worker, workers, key_groups));
        if let Some(ck) = &checkpointing {
            match ck.restore(&mut groups.store) {
                Ok(_) => groups.reindex_all(),
                Err(message) => {
                    job.fail(RuntimeError::Translation(format!("{step}: cannot restore state: {message}")))
                }
            }
        }
        move |frontiers| {
            let (frontier_watermark, input_epoch) = input_progress(&frontiers[0]);
            let now = clock.now();
            // Arrivals wait by epoch: an epoch's records are processed only once every
            // earlier epoch is complete here, so each snapshot cuts between epochs.
            input.for_each(|cap, data| {
                flow_in.received(data.len());
                aligner.push(stamp_of(cap.stamp().iter()), data)
            });
            let input_watermark = aligner.input_watermark(frontier_watermark);
            let Some(cap) = main_cap.as_ref() else {
                aligner.clear();
                return;
            };
            if job.is_halted() {
                // Stop without flushing: a restart resumes from the last checkpoint.
                aligner.clear();
                main_cap = None;
                late_cap = None;
                return;
            }
            let held = Timestamp(cap.time().inner);
            let time = groups.time_context(input_watermark, held, now);
            let current = input_epoch.unwrap_or(u64::MAX);
            while let Some((epoch, batches)) = aligner.pop_ready(current) {
                last_seen_epoch = last_seen_epoch.max(epoch);
                if let Some(ck) = checkpointing.as_mut() {
                    if let Err(message) = ck.snapshot_through(epoch.saturating_sub(1), &mut groups.store) {
                        job.fail(RuntimeError::Translation(format!("{step}: checkpoint failed: {message}")));
                    }
                }
                for mut data in batches {
                    for wv in data.drain(..) {
                        let WindowedValue { value: (key, value), timestamp, window, .. } = wv;
                        // One probe of the keyed state per record: the slot is found (or
                        // made) once, and marked for re-indexing through the same borrow.
                        let slot = groups.store.get_or_insert_with_ref(&key, Slot::new);
                        if !slot.dirty {
                            slot.dirty = true;
                            groups.dirty.push(key.clone());
                        }
                        match groups.reducer.process_element(
                            &mut slot.state,
                            value,
                            timestamp,
                            window,
                            &time,
                            &mut fired,
                        ) {
                            Admission::Accepted => {}
                            Admission::TooLate(input) => {
                                dropped_counter.fetch_add((shape.inputs)(&input), Ordering::Relaxed);
                                if let Some(value) = (shape.dropped)(input) {
                                    late_buf.push(WindowedValue {
                                        value: (key.clone(), value),
                                        timestamp,
                                        window,
                                        pane: Default::default(),
                                        retraction: false,
                                    });
                                }
                            }
                        }
                        emit(&key, &mut fired, &mut out_buf);
                    }
                }
                // What these records caused belongs to their epoch.
                let at = frontier_time(epoch.max(cap.time().outer), held);
                send_counted(&mut main_out, &main_flow, cap, &at, &mut out_buf);
                if let Some(late) = late_cap.as_ref() {
                    send_counted(&mut late_out, &late_flow, late, &at, &mut late_buf);
                }
            }
            if let (Some(ck), Some(done)) = (checkpointing.as_mut(), input_epoch) {
                if let Err(message) = ck.snapshot_through(done.saturating_sub(1), &mut groups.store) {
                    job.fail(RuntimeError::Translation(format!("{step}: checkpoint failed: {message}")));
                }
            }
            groups.refresh_dirty();
            let input_watermark = aligner.input_watermark(frontier_watermark);
            let time = groups.time_context(input_watermark, held, now);
            for key in groups.due(input_watermark, now) {
                let Some(slot) = groups.store.get_mut(&key) else { continue };
                groups.reducer.advance_time(&mut slot.state, &time, &mut fired);
                emit(&key, &mut fired, &mut out_buf);
                groups.touch(&key);
            }
            groups.refresh_dirty();
            // Timer firings go out in the input's current epoch; once the input is
            // complete, in the newest epoch processed, never before output already sent.
            let at = frontier_time(input_epoch.unwrap_or(last_seen_epoch).max(cap.time().outer), held);
            send_counted(&mut main_out, &main_flow, cap, &at, &mut out_buf);
            // Hold the output at min(input watermark, holds), in the input's epoch;
            // release everything once the input is done and no key holds state.
            if let Some(e) = input_epoch {
                last_seen_epoch = last_seen_epoch.max(e);
            }
            match input_epoch {
                None => {
                    // The input is complete: the last epoch's snapshot (of what is left).
                    if let Some(ck) = checkpointing.as_mut() {
                        if let Err(message) = ck.snapshot_at_end(last_seen_epoch, &mut groups.store) {
                            job.fail(RuntimeError::Translation(format!("{step}: checkpoint failed: {message}")));
                        }
                    }
                    if !groups.store.is_empty() {
                        tracing::warn!(step = %step, keys = groups.store.len(), "state left after input completed");
                    }
                    main_cap = None;
                    late_cap = None;
                }
                Some(epoch) => {
                    let hold = groups.min_hold().map_or(input_watermark, |h| h.min(input_watermark));
                    let inner = hold.max(time.output_watermark);
                    let next = frontier_time(epoch.max(cap.time().outer), inner);
                    if let Some(c) = main_cap.as_mut() {
                        c.downgrade(&next);
                    }
                    if let Some(c) = late_cap.as_mut() {
                        c.downgrade(&next);
                    }
                    if clock.is_real() {
                        if let Some(&(t, _)) = groups.processing_timers.iter().next() {
                            activator.activate_after((t - now).to_std());
                        }
                    }
                }
            }
        }
    });
    t.insert(PortRef { node, port: 0 }, main_stream);
    t.insert(PortRef { node, port: 1 }, late_stream);
    Ok(())
}

/// Moves a key's entry in a timer index from `*indexed` to `next`.
fn reindex<K: Ord + Clone>(
    index: &mut BTreeSet<(Timestamp, K)>,
    indexed: &mut Option<Timestamp>,
    next: Option<Timestamp>,
    key: &K,
) {
    if *indexed == next {
        return;
    }
    if let Some(old) = indexed.take() {
        index.remove(&(old, key.clone()));
    }
    if let Some(new) = next {
        index.insert((new, key.clone()));
    }
    *indexed = next;
}

fn emit<K: Clone, O>(key: &K, fired: &mut Vec<FiredPane<O>>, out: &mut Vec<WindowedValue<(K, O)>>) {
    for p in fired.drain(..) {
        out.push(WindowedValue {
            value: (key.clone(), p.value),
            timestamp: p.timestamp,
            window: p.window,
            pane: p.pane,
            retraction: p.retraction,
        });
    }
}

impl<K: Key, V: Element> PCollection<(K, V)> {
    /// Groups values by key and window; each trigger firing emits `(key, values)` with
    /// its pane (Beam's `GroupByKey`).
    pub fn group_by_key(&self) -> PCollection<(K, Vec<V>)> {
        group_and_combine(self, "GroupByKey", NodeKind::GroupByKey, ToList, false).0
    }

    /// [`group_by_key`](Self::group_by_key), also returning the elements dropped because
    /// they arrived later than the allowed lateness.
    pub fn group_by_key_with_dropped(&self) -> WithDropped<K, Vec<V>, V> {
        group_and_combine(self, "GroupByKey", NodeKind::GroupByKey, ToList, false)
    }

    /// Combines the values of each key and window with `combine_fn` (Beam's
    /// `Combine.perKey`).
    pub fn combine_per_key<C>(&self, combine_fn: C) -> PCollection<(K, C::Output)>
    where
        C: CombineFn<V>,
        C::Output: Element,
    {
        group_and_combine(self, "CombinePerKey", NodeKind::Combine, combine_fn, true).0
    }

    /// [`combine_per_key`](Self::combine_per_key), also returning the dropped late data.
    pub fn combine_per_key_with_dropped<C>(&self, combine_fn: C) -> WithDropped<K, C::Output, V>
    where
        C: CombineFn<V>,
        C::Output: Element,
    {
        group_and_combine(self, "CombinePerKey", NodeKind::Combine, combine_fn, false)
    }
}
