//! The optimizer (FlumeJava's): rewrites the pipeline graph before it is translated into a
//! timely dataflow.
//!
//! * **Fusion** (`fusion.rs`): chains of element-wise steps (producer-consumer fusion) and
//!   element-wise steps reading the same collection (sibling fusion) run as one timely
//!   operator, with no channel between the stages.
//! * **Combiner lifting** (`lifting.rs`): `CombinePerKey` (and `combine_globally`, which is
//!   built on it) pre-aggregates each input batch per key and window on the worker that
//!   read it, so that accumulators, not elements, cross the shuffle.
//!
//! Every optimization can be switched off ([`OptimizerOptions`], [`crate::Runner::optimizer`]);
//! results are the same either way. [`crate::Pipeline::plan`] shows what the optimizer
//! does to a pipeline.

pub(crate) mod fusion;
pub(crate) mod lifting;

use crate::error::RuntimeError;
use crate::graph::{BuildFn, Graph, NodeId, NodeKind, Pipeline, PortRef, Translation};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

/// The environment variable that sets the default [`OptimizerOptions`] (for running a
/// test suite with the optimizer off): `off` (or `none`) switches every optimization
/// off; a comma-separated list (`fusion,sibling_fusion,combiner_lifting`) switches on
/// only those; unset, empty, `on` or `all` leaves all on.
pub const OPTIMIZER_ENV: &str = "MILLSTREAM_OPTIMIZER";

/// Which optimizations the optimizer applies. All are on by default.
///
/// ```
/// use millstream_runtime::{OptimizerOptions, Runner};
/// let runner = Runner::new().optimizer(OptimizerOptions { combiner_lifting: false, ..OptimizerOptions::all() });
/// # let _ = runner;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OptimizerOptions {
    /// Runs chains of element-wise steps (map, filter, flat_map, ParDo, window
    /// assignment) as one operator.
    pub fusion: bool,
    /// Runs element-wise steps that read the same collection in one operator.
    pub sibling_fusion: bool,
    /// Pre-aggregates `CombinePerKey` on each worker before the shuffle.
    pub combiner_lifting: bool,
}

impl OptimizerOptions {
    /// Every optimization on.
    pub fn all() -> Self {
        OptimizerOptions { fusion: true, sibling_fusion: true, combiner_lifting: true }
    }

    /// Every optimization off: each step runs as its own operator, as written.
    pub fn none() -> Self {
        OptimizerOptions { fusion: false, sibling_fusion: false, combiner_lifting: false }
    }

    /// The options [`OPTIMIZER_ENV`] asks for; all on when it is unset. An unknown name
    /// in the list is ignored (with a warning), never fatal: the variable only tunes
    /// performance.
    pub fn from_env() -> Self {
        match std::env::var(OPTIMIZER_ENV) {
            Ok(v) => Self::parse(&v),
            Err(_) => Self::all(),
        }
    }

    /// Parses the [`OPTIMIZER_ENV`] syntax.
    fn parse(value: &str) -> Self {
        let value = value.trim();
        match value.to_ascii_lowercase().as_str() {
            "" | "on" | "all" => return Self::all(),
            "off" | "none" => return Self::none(),
            _ => {}
        }
        let mut options = Self::none();
        for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name.to_ascii_lowercase().as_str() {
                "fusion" => options.fusion = true,
                "sibling_fusion" => options.sibling_fusion = true,
                "combiner_lifting" | "lifting" => options.combiner_lifting = true,
                other => tracing::warn!(name = other, "{OPTIMIZER_ENV}: unknown optimization ignored"),
            }
        }
        options
    }
}

impl Default for OptimizerOptions {
    /// [`OptimizerOptions::from_env`]: all on unless [`OPTIMIZER_ENV`] says otherwise.
    fn default() -> Self {
        Self::from_env()
    }
}

/// One operator (or group of operators) to build, in translation order.
pub(crate) struct Step {
    /// The node passed to the build function.
    pub(crate) node: NodeId,
    pub(crate) build: Arc<BuildFn>,
}

/// One operator (or group of fused operators) of the plan, in build order.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    /// A node on its own; a combine possibly with its combiner lifted.
    Node { id: NodeId, lifted: bool },
    /// Element-wise nodes fused into one operator: the collection they read, and one
    /// chain per sibling (each a run of nodes where every output but the last has
    /// exactly one reader, the next node).
    Fused { input: PortRef, chains: Vec<Vec<NodeId>> },
}

/// The optimized plan of a graph: the operators to build, in order.
pub(crate) struct Plan {
    ops: Vec<Op>,
}

impl Plan {
    /// Plans `graph` under `options`.
    pub(crate) fn new(graph: &Graph, options: &OptimizerOptions) -> Plan {
        let nodes = &graph.nodes;
        let mut readers: HashMap<PortRef, Vec<NodeId>> = HashMap::new();
        for (id, n) in nodes.iter().enumerate() {
            for port in &n.inputs {
                readers.entry(*port).or_default().push(id);
            }
        }
        let fusable = |id: NodeId| nodes.get(id).is_some_and(|n| n.fusable.is_some() && n.inputs.len() == 1);
        // The node a fusable node's chain continues with: its output's only reader, when
        // that is fusable too.
        let next = |id: NodeId| -> Option<NodeId> {
            if !options.fusion || !fusable(id) {
                return None;
            }
            match readers.get(&PortRef { node: id, port: 0 }).map(Vec::as_slice) {
                Some(&[reader]) if fusable(reader) => Some(reader),
                _ => None,
            }
        };
        let mut continues = vec![false; nodes.len()];
        for id in 0..nodes.len() {
            if let Some(m) = next(id) {
                continues[m] = true;
            }
        }
        // Chains, grouped by the collection their head reads (siblings) when sibling
        // fusion is on.
        let mut groups: Vec<(PortRef, Vec<Vec<NodeId>>)> = Vec::new();
        let mut group_of_input: HashMap<PortRef, usize> = HashMap::new();
        for head in (0..nodes.len()).filter(|&id| fusable(id) && !continues[id]) {
            let mut chain = vec![head];
            while let Some(m) = chain.last().and_then(|&last| next(last)) {
                chain.push(m);
            }
            let input = nodes[head].inputs[0];
            match group_of_input.get(&input) {
                Some(&g) if options.sibling_fusion => groups[g].1.push(chain),
                _ => {
                    group_of_input.insert(input, groups.len());
                    groups.push((input, vec![chain]));
                }
            }
        }
        // A group of one node is that node's own operator; bigger groups are built where
        // their first node was (its input exists by then, and every reader of a group
        // output comes after the node producing it).
        let mut leader_of: HashMap<NodeId, usize> = HashMap::new();
        let mut in_group = vec![false; nodes.len()];
        for (g, (_, chains)) in groups.iter().enumerate() {
            if chains.iter().map(Vec::len).sum::<usize>() < 2 {
                continue;
            }
            let members = chains.iter().flatten().copied();
            if let Some(first) = members.clone().min() {
                leader_of.insert(first, g);
            }
            for m in members {
                in_group[m] = true;
            }
        }
        let mut ops = Vec::new();
        for (id, n) in nodes.iter().enumerate() {
            if let Some(&g) = leader_of.get(&id) {
                let (input, chains) = &groups[g];
                ops.push(Op::Fused { input: *input, chains: chains.clone() });
            } else if !in_group[id] {
                ops.push(Op::Node { id, lifted: options.combiner_lifting && n.lifted.is_some() });
            }
        }
        Plan { ops }
    }

    /// The operators to build, in order, each with the node passed to its build function.
    pub(crate) fn steps(&self, graph: &Graph) -> Vec<Step> {
        let mut steps = Vec::with_capacity(self.ops.len());
        for op in &self.ops {
            match op {
                Op::Node { id, lifted } => {
                    let Some(n) = graph.nodes.get(*id) else { continue };
                    let build = match (&n.lifted, lifted) {
                        (Some(l), true) => l.clone(),
                        _ => n.build.clone(),
                    };
                    steps.push(Step { node: *id, build });
                }
                Op::Fused { input, chains } => {
                    let fusable = |id: &NodeId| graph.nodes.get(*id).and_then(|n| n.fusable.clone());
                    let Some(head) = chains.first().and_then(|c| c.first()).and_then(fusable) else {
                        continue;
                    };
                    let chains = chains
                        .iter()
                        .filter_map(|chain| {
                            let nodes: Vec<_> =
                                chain.iter().filter_map(|id| fusable(id).map(|f| (*id, f.stage))).collect();
                            let exit = chain.last().and_then(fusable)?.add_output;
                            Some(fusion::ChainSpec { nodes, exit })
                        })
                        .collect();
                    let spec = fusion::GroupSpec { input: *input, chains };
                    let build_group = head.build_group;
                    let node = spec.chains.first().and_then(|c| c.nodes.first()).map_or(0, |(id, _)| *id);
                    let build: Arc<BuildFn> =
                        Arc::new(move |t: &mut Translation<'_>, _node: NodeId| -> Result<(), RuntimeError> {
                            build_group(t, &spec)
                        });
                    steps.push(Step { node, build });
                }
            }
        }
        steps
    }

    /// A human-readable listing: one line per operator.
    pub(crate) fn describe(&self, graph: &Graph, options: &OptimizerOptions) -> String {
        let on = |b: bool| if b { "on" } else { "off" };
        let mut s = format!(
            "plan (fusion: {}, sibling fusion: {}, combiner lifting: {})\n",
            on(options.fusion),
            on(options.sibling_fusion),
            on(options.combiner_lifting)
        );
        let name = |id: &NodeId| graph.nodes.get(*id).map_or("?", |n| n.name.as_str());
        for op in &self.ops {
            match op {
                Op::Node { id, lifted } => {
                    let Some(n) = graph.nodes.get(*id) else { continue };
                    let inputs = n.inputs.iter().map(|p| p.node.to_string()).collect::<Vec<_>>().join(", ");
                    let _ = write!(s, "  [{id}] {} ({:?})", n.name, n.kind);
                    if !inputs.is_empty() {
                        let _ = write!(s, " <- [{inputs}]");
                    }
                    if *lifted {
                        s.push_str(": combiner lifted (partial combine before the shuffle)");
                    } else if n.kind == NodeKind::Combine {
                        let why = if n.lifted.is_some() { "lifting off" } else { "not liftable" };
                        let _ = write!(s, ": combiner not lifted ({why})");
                    }
                }
                Op::Fused { input, chains } => {
                    let ids = chains.iter().flatten().map(ToString::to_string).collect::<Vec<_>>().join(", ");
                    let stages = chains
                        .iter()
                        .map(|c| c.iter().map(name).collect::<Vec<_>>().join(" -> "))
                        .collect::<Vec<_>>()
                        .join(" | ");
                    let _ = write!(s, "  [{ids}] fused (ParDo): {stages} <- [{}]", input.node);
                }
            }
            s.push('\n');
        }
        s
    }
}

impl Pipeline {
    /// The plan the optimizer makes of this pipeline under `options`: one line per
    /// operator, with fused stages and lifted combiners marked.
    ///
    /// ```
    /// use millstream_model::combiners::Sum;
    /// use millstream_runtime::{OptimizerOptions, Pipeline};
    /// let p = Pipeline::new();
    /// let _ = p.create(vec![("a".to_string(), 1i64)]).combine_per_key(Sum).collect();
    /// let plan = p.plan(&OptimizerOptions::all());
    /// assert!(plan.contains("CombinePerKey (Combine) <- [0]: combiner lifted"));
    /// ```
    pub fn plan(&self, options: &OptimizerOptions) -> String {
        let g = self.lock();
        Plan::new(&g, options).describe(&g, options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_syntax() {
        assert_eq!(OptimizerOptions::parse(""), OptimizerOptions::all());
        assert_eq!(OptimizerOptions::parse("off"), OptimizerOptions::none());
        assert_eq!(
            OptimizerOptions::parse("fusion, lifting"),
            OptimizerOptions { fusion: true, sibling_fusion: false, combiner_lifting: true }
        );
    }
}
