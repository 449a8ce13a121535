//! Trigger state machines: Beam's `TriggerStateMachine` family and
//! `TriggerStateMachineRunner`, run over a flat per-window state vector.
//!
//! A [`Trigger`] is compiled once per reducer into a [`TriggerProgram`]: its nodes in
//! pre-order (the root is node 0), as Beam's `ExecutableTriggerStateMachine` numbers them.
//! Each window keeps one [`NodeState`] per node: the node's *finished bit* plus the data
//! its leaf kind needs (an element count, a processing-time deadline). The methods below
//! are Beam's `onElement`, `onMerge`, `shouldFire`, `onFire` and `clear`, node by node.
//!
//! Deliberate differences from Beam Java (both fix Beam bugs, see the report in
//! `mod.rs`): the implicit repetition of `AfterWatermark`'s early and late sub-triggers
//! resets their whole sub-tree (finished bits included, as `Repeatedly` does) instead of
//! only the sub-trigger's own bit; and processing-time deadlines are reached when
//! `processing_time >= deadline` (the reducer's documented timer convention).

use crate::time::{Duration, Timestamp};
use crate::trigger::Trigger;
use serde::{Deserialize, Serialize};

/// The state of one trigger node in one window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct NodeState {
    /// Beam's finished bit.
    pub(crate) finished: bool,
    /// `AfterCount`: elements in the current pane.
    pub(crate) count: u64,
    /// `AfterProcessingTime`: when the pending pane is due.
    pub(crate) deadline: Option<Timestamp>,
}

/// What a trigger sees of time and windowing.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ctx {
    /// The window's max timestamp.
    pub(crate) max_ts: Timestamp,
    /// The input watermark (Beam's `currentEventTime`).
    pub(crate) input_watermark: Timestamp,
    /// The current processing time.
    pub(crate) processing_time: Timestamp,
    /// Whether the WindowFn merges (Beam's `TriggerInfo.isMerging`).
    pub(crate) merging: bool,
}

impl Ctx {
    /// Beam's `endOfWindowReached`: the input watermark is strictly after the window's end.
    pub(crate) fn end_of_window_reached(&self) -> bool {
        self.input_watermark > self.max_ts
    }
}

/// The timers a trigger may set on its window.
pub(crate) struct Timers<'a> {
    /// The end-of-window (event-time) timer at the window's max timestamp.
    pub(crate) end_of_window: &'a mut bool,
    /// Processing-time timers, sorted and without duplicates.
    pub(crate) processing: &'a mut Vec<Timestamp>,
}

impl Timers<'_> {
    fn set_end_of_window(&mut self) {
        *self.end_of_window = true;
    }

    fn set_processing(&mut self, t: Timestamp) {
        if let Err(pos) = self.processing.binary_search(&t) {
            self.processing.insert(pos, t);
        }
    }
}

#[derive(Clone, Debug)]
enum Kind {
    /// Beam's `DefaultTriggerStateMachine`.
    Default,
    /// Beam's `AfterWatermark.FromEndOfWindow`.
    EndOfWindow,
    /// Beam's `AfterWatermarkEarlyAndLate`; `early` is a `Never` node when absent.
    EarlyLate {
        early: usize,
        late: Option<usize>,
    },
    /// Beam's `AfterProcessingTimeStateMachine` (delay, then alignment).
    ProcessingTime {
        delay: Duration,
        align: Option<(Duration, Duration)>,
    },
    /// Beam's `AfterPaneStateMachine.elementCountAtLeast`.
    Count(u64),
    Repeatedly(usize),
    AfterEach,
    AfterFirst,
    AfterAll,
    OrFinally {
        main: usize,
        until: usize,
    },
    Never,
}

#[derive(Clone, Debug)]
struct Node {
    kind: Kind,
    children: Vec<usize>,
    /// The first index after this node's sub-tree.
    end: usize,
}

/// A trigger compiled to its nodes in pre-order.
#[derive(Clone, Debug)]
pub(crate) struct TriggerProgram {
    nodes: Vec<Node>,
}

impl TriggerProgram {
    /// Compiles `trigger`. Empty `AfterEach`/`AfterFirst`/`AfterAll` lists compile to
    /// `Never` (Beam rejects them).
    pub(crate) fn compile(trigger: &Trigger) -> Self {
        let mut nodes = Vec::new();
        compile_node(trigger, &mut nodes);
        TriggerProgram { nodes }
    }

    /// The number of nodes (the length of every window's state vector).
    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the root has finished: the window is closed.
    pub(crate) fn is_finished(&self, st: &[NodeState]) -> bool {
        st[0].finished
    }

    fn first_unfinished(&self, i: usize, st: &[NodeState]) -> Option<usize> {
        self.nodes[i].children.iter().copied().find(|&c| !st[c].finished)
    }

    /// Beam's `onElement`.
    pub(crate) fn on_element(&self, i: usize, ctx: &Ctx, st: &mut [NodeState], timers: &mut Timers<'_>) {
        let node = &self.nodes[i];
        match node.kind {
            Kind::Default | Kind::EndOfWindow => {
                if !ctx.end_of_window_reached() {
                    timers.set_end_of_window();
                }
            }
            Kind::EarlyLate { .. } => {
                if !ctx.end_of_window_reached() {
                    timers.set_end_of_window();
                }
                self.on_element_sequential(i, ctx, st, timers);
            }
            Kind::AfterEach => self.on_element_sequential(i, ctx, st, timers),
            Kind::ProcessingTime { delay, align } => {
                if st[i].deadline.is_none() {
                    let target = deadline_for(ctx.processing_time, delay, align);
                    st[i].deadline = Some(target);
                    timers.set_processing(target);
                }
            }
            Kind::Count(_) => st[i].count += 1,
            Kind::Repeatedly(child) => self.on_element(child, ctx, st, timers),
            Kind::AfterFirst | Kind::OrFinally { .. } => {
                for &c in &node.children {
                    self.on_element(c, ctx, st, timers);
                }
            }
            Kind::AfterAll => {
                for &c in &node.children {
                    if !st[c].finished {
                        self.on_element(c, ctx, st, timers);
                    }
                }
            }
            Kind::Never => {}
        }
    }

    /// The first unfinished sub-trigger only, unless windows may merge (then all of them,
    /// since merging may revive finished ones).
    fn on_element_sequential(&self, i: usize, ctx: &Ctx, st: &mut [NodeState], timers: &mut Timers<'_>) {
        if ctx.merging {
            for &c in &self.nodes[i].children {
                self.on_element(c, ctx, st, timers);
            }
        } else if let Some(c) = self.first_unfinished(i, st) {
            self.on_element(c, ctx, st, timers);
        }
    }

    /// Beam's `shouldFire`.
    pub(crate) fn should_fire(&self, i: usize, ctx: &Ctx, st: &[NodeState]) -> bool {
        let node = &self.nodes[i];
        match node.kind {
            Kind::Default | Kind::EndOfWindow => ctx.end_of_window_reached(),
            Kind::EarlyLate { early, late } => {
                if !st[early].finished {
                    self.should_fire(early, ctx, st) || ctx.end_of_window_reached()
                } else {
                    late.is_some_and(|l| self.should_fire(l, ctx, st))
                }
            }
            Kind::ProcessingTime { .. } => st[i].deadline.is_some_and(|d| ctx.processing_time >= d),
            Kind::Count(n) => st[i].count >= n,
            Kind::Repeatedly(child) => self.should_fire(child, ctx, st),
            Kind::AfterEach => self.first_unfinished(i, st).is_some_and(|c| self.should_fire(c, ctx, st)),
            Kind::AfterFirst => node.children.iter().any(|&c| st[c].finished || self.should_fire(c, ctx, st)),
            Kind::AfterAll => node.children.iter().all(|&c| st[c].finished || self.should_fire(c, ctx, st)),
            Kind::OrFinally { main, until } => {
                self.should_fire(main, ctx, st) || self.should_fire(until, ctx, st)
            }
            Kind::Never => false,
        }
    }

    /// Beam's `onFire`: adjusts the state for the next pane, setting finished bits.
    pub(crate) fn on_fire(&self, i: usize, ctx: &Ctx, st: &mut [NodeState]) {
        let node = &self.nodes[i];
        match node.kind {
            Kind::Default | Kind::Never => {}
            Kind::EndOfWindow => st[i].finished = true,
            Kind::EarlyLate { early, late } => {
                if !st[early].finished {
                    if !ctx.end_of_window_reached() {
                        // An early firing; the early trigger repeats implicitly.
                        self.on_fire(early, ctx, st);
                        self.reset_tree(early, st);
                    } else {
                        // The on-time firing: the early trigger is done for good.
                        if self.should_fire(early, ctx, st) {
                            self.on_fire(early, ctx, st);
                        }
                        st[early].finished = true;
                        self.clear(early, st);
                        match late {
                            None => st[i].finished = true,
                            Some(l) => self.clear(l, st),
                        }
                    }
                } else if let Some(l) = late {
                    // A late firing; the late trigger repeats implicitly.
                    self.on_fire(l, ctx, st);
                    self.reset_tree(l, st);
                } else {
                    st[i].finished = true;
                }
            }
            Kind::ProcessingTime { .. } | Kind::Count(_) => {
                self.clear(i, st);
                st[i].finished = true;
            }
            Kind::Repeatedly(child) => {
                self.on_fire(child, ctx, st);
                if st[child].finished {
                    self.reset_tree(child, st);
                }
            }
            Kind::AfterEach => {
                if let Some(c) = self.first_unfinished(i, st) {
                    self.on_fire(c, ctx, st);
                }
                if ctx.merging {
                    for &c in &node.children {
                        self.clear(c, st);
                    }
                }
                st[i].finished = self.first_unfinished(i, st).is_none();
            }
            Kind::AfterFirst => {
                for &c in &node.children {
                    if self.should_fire(c, ctx, st) {
                        self.on_fire(c, ctx, st);
                    } else {
                        self.clear(c, st);
                    }
                }
                st[i].finished = true;
            }
            Kind::AfterAll => {
                for &c in &node.children {
                    self.on_fire(c, ctx, st);
                }
                st[i].finished = true;
            }
            Kind::OrFinally { main, until } => {
                if self.should_fire(until, ctx, st) {
                    self.on_fire(until, ctx, st);
                    self.clear(main, st);
                } else {
                    self.on_fire(main, ctx, st);
                }
                st[i].finished = st[main].finished || st[until].finished;
            }
        }
    }

    /// Beam's `clear`: drops the data of the sub-tree (counts, deadlines), keeping the
    /// finished bits.
    pub(crate) fn clear(&self, i: usize, st: &mut [NodeState]) {
        for s in &mut st[i..self.nodes[i].end] {
            s.count = 0;
            s.deadline = None;
        }
    }

    /// Beam's `resetTree`: clears the sub-tree's finished bits and data.
    fn reset_tree(&self, i: usize, st: &mut [NodeState]) {
        for s in &mut st[i..self.nodes[i].end] {
            *s = NodeState::default();
        }
    }

    /// Beam's `onMerge`. `st` starts as the merge result's own state (empty for a new
    /// window); `sources` are the states of every previously active window being merged
    /// (including the result's own, when it was one of them).
    pub(crate) fn on_merge(
        &self,
        i: usize,
        ctx: &Ctx,
        st: &mut [NodeState],
        sources: &[&[NodeState]],
        timers: &mut Timers<'_>,
    ) {
        let node = &self.nodes[i];
        let finished_in_all = |j: usize| sources.iter().all(|s| s[j].finished);
        match node.kind {
            Kind::Default => {
                if !ctx.end_of_window_reached() {
                    timers.set_end_of_window();
                }
            }
            Kind::EndOfWindow => {
                st[i].finished = finished_in_all(i) && ctx.end_of_window_reached();
            }
            Kind::EarlyLate { early, late } => {
                if !finished_in_all(early) || !ctx.end_of_window_reached() {
                    self.on_merge(early, ctx, st, sources, timers);
                    st[early].finished = false;
                    if let Some(l) = late {
                        st[l].finished = false;
                        self.clear(l, st);
                    }
                } else {
                    st[early].finished = true;
                    if let Some(l) = late {
                        self.on_merge(l, ctx, st, sources, timers);
                    }
                }
            }
            Kind::ProcessingTime { .. } => {
                if st[i].finished {
                    st[i].deadline = None;
                } else {
                    st[i].deadline = sources.iter().filter_map(|s| s[i].deadline).min();
                    if let Some(d) = st[i].deadline {
                        timers.set_processing(d);
                    }
                }
            }
            Kind::Count(_) => {
                if sources.iter().any(|s| s[i].finished) {
                    st[i].finished = true;
                    st[i].count = 0;
                } else {
                    st[i].count = sources.iter().map(|s| s[i].count).sum();
                }
            }
            Kind::Repeatedly(child) => self.on_merge(child, ctx, st, sources, timers),
            Kind::AfterEach => {
                let mut prior_all_finished = true;
                for &c in &node.children {
                    if prior_all_finished {
                        self.on_merge(c, ctx, st, sources, timers);
                        prior_all_finished &= st[c].finished;
                    } else {
                        self.clear(c, st);
                    }
                }
                st[i].finished = self.first_unfinished(i, st).is_none();
            }
            Kind::AfterFirst | Kind::AfterAll | Kind::OrFinally { .. } => {
                for &c in &node.children {
                    self.on_merge(c, ctx, st, sources, timers);
                }
                st[i].finished = if matches!(node.kind, Kind::AfterAll) {
                    node.children.iter().all(|&c| st[c].finished)
                } else {
                    node.children.iter().any(|&c| st[c].finished)
                };
            }
            Kind::Never => {}
        }
    }
}

/// When an `AfterProcessingTime` whose pane's first element arrived at `now` is due:
/// `now + delay`, then rounded up to the next `offset + k * period` when aligned.
pub(crate) fn deadline_for(
    now: Timestamp,
    delay: Duration,
    align: Option<(Duration, Duration)>,
) -> Timestamp {
    let mut t = now + delay;
    if let Some((period, offset)) = align {
        if period.millis() > 0 {
            let since = (t.millis() - offset.millis()).rem_euclid(period.millis());
            if since != 0 {
                t = t + Duration::from_millis(period.millis() - since);
            }
        }
    }
    t
}

fn compile_node(trigger: &Trigger, nodes: &mut Vec<Node>) -> usize {
    let index = nodes.len();
    nodes.push(Node { kind: Kind::Never, children: Vec::new(), end: index + 1 });
    let mut children = Vec::new();
    let kind = match trigger {
        Trigger::Default => Kind::Default,
        Trigger::AfterWatermark { early: None, late: None } => Kind::EndOfWindow,
        Trigger::AfterWatermark { early, late } => {
            let early = match early {
                Some(t) => compile_node(t, nodes),
                None => compile_node(&Trigger::Never, nodes),
            };
            children.push(early);
            let late = late.as_ref().map(|t| compile_node(t, nodes));
            children.extend(late);
            Kind::EarlyLate { early, late }
        }
        Trigger::AfterProcessingTime { delay, align } => {
            Kind::ProcessingTime { delay: *delay, align: *align }
        }
        Trigger::AfterCount(n) => Kind::Count(*n),
        Trigger::Repeatedly(t) => {
            let child = compile_node(t, nodes);
            children.push(child);
            Kind::Repeatedly(child)
        }
        Trigger::AfterEach(ts) | Trigger::AfterFirst(ts) | Trigger::AfterAll(ts) if ts.is_empty() => {
            Kind::Never
        }
        Trigger::AfterEach(ts) | Trigger::AfterFirst(ts) | Trigger::AfterAll(ts) => {
            children.extend(ts.iter().map(|t| compile_node(t, nodes)));
            match trigger {
                Trigger::AfterEach(_) => Kind::AfterEach,
                Trigger::AfterFirst(_) => Kind::AfterFirst,
                _ => Kind::AfterAll,
            }
        }
        Trigger::OrFinally { main, until } => {
            let main = compile_node(main, nodes);
            let until = compile_node(until, nodes);
            children.extend([main, until]);
            Kind::OrFinally { main, until }
        }
        Trigger::Never => Kind::Never,
    };
    let end = nodes.len();
    nodes[index] = Node { kind, children, end };
    index
}
