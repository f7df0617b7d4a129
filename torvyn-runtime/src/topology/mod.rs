//! The shape of a flow: from the manifest's nodes, edges and error policies to a checked
//! plan of nodes and queues, with every role checked against the place the node holds.
//!
//! A flow is a directed acyclic graph. A node with several outgoing edges sends each
//! element down every one of them (fan-out); a node with several incoming edges takes from
//! each in turn (fan-in). Edges out of a router name one of its ports. A node whose error
//! policy is `dead-letter` gets one more queue, to its dead-letter sink.

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use crate::config::{
    DeadLetterDecl, EdgeDecl, ErrorPolicyDecl, FallbackDecl, FlowDecl, ManifestError, Overflow,
    ProjectManifest, SimplePolicy, bounds,
};
use crate::contracts::{CONTRACT_VERSION, Role};

/// Wait before the first retry when a policy does not set one.
pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(10);

/// What the driver does with an element a node failed on, once any retries are used up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// The flow fails.
    FailFlow,
    /// The element is counted as failed and the flow goes on.
    Skip,
    /// The element goes, unchanged, to this node's dead-letter edge.
    DeadLetter,
}

/// Retries of `unavailable` errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts after the first.
    pub attempts: u32,
    /// Wait before the first retry; doubled before each next one.
    pub backoff: Duration,
}

/// A node's error policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorPolicy {
    /// Retries, for `unavailable` errors only.
    pub retry: Option<Retry>,
    /// What happens then. A trap restarts the component unless this is `FailFlow`.
    pub then: Fallback,
}

impl ErrorPolicy {
    /// The default: the first error fails the flow.
    pub const FAIL_FLOW: ErrorPolicy = ErrorPolicy {
        retry: None,
        then: Fallback::FailFlow,
    };
}

/// One named output of a router and the edges leaving from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// The name `route` returns.
    pub name: String,
    /// Indexes into [`FlowPlan::edges`].
    pub edges: Vec<usize>,
}

/// One node of a planned flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePlan {
    /// The node's name (the component's name in the manifest).
    pub name: String,
    /// Its role.
    pub role: Role,
    /// What happens when it fails on an element.
    pub on_error: ErrorPolicy,
    /// Edges feeding it, as indexes into [`FlowPlan::edges`].
    pub inputs: Vec<usize>,
    /// Edges it feeds (every data edge, ports included).
    pub outputs: Vec<usize>,
    /// A router's ports; empty for other roles.
    pub ports: Vec<Port>,
    /// The edge to its dead-letter sink, when its policy has one.
    pub dead_letter: Option<usize>,
}

/// One queue of a planned flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgePlan {
    /// Upstream node, as an index into [`FlowPlan::nodes`].
    pub from: usize,
    /// Downstream node.
    pub to: usize,
    /// The router port it leaves from.
    pub port: Option<String>,
    /// Most elements it holds.
    pub capacity: usize,
    /// What it does when full.
    pub overflow: Overflow,
    /// Length at which a source feeding it is paused.
    pub high_watermark: usize,
    /// Length at which that source is resumed.
    pub low_watermark: usize,
    /// Whether it carries failed elements to a dead-letter sink.
    pub dead_letter: bool,
}

/// A flow checked and laid out for the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowPlan {
    /// The flow's name.
    pub flow: String,
    /// Its nodes, in the order of the manifest's `nodes`.
    pub nodes: Vec<NodePlan>,
    /// Its queues: the manifest's edges in order, then the dead-letter edges.
    pub edges: Vec<EdgePlan>,
    /// Node indexes in topological order: every edge goes from earlier to later.
    pub order: Vec<usize>,
    /// The time each call into a component is given.
    pub invocation_deadline: Option<Duration>,
    /// How long a sink that answered `pause` gets no element, when not the default.
    pub sink_pause: Option<Duration>,
    /// How often a node may be restarted after traps.
    pub restarts: RestartBudget,
}

/// How often a node may be restarted after traps: at most `max` restarts within any
/// `period`, as process supervisors count restart intensity (Erlang/OTP's supervisor
/// `intensity` and `period`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartBudget {
    /// Restarts allowed within `period`; `0` fails the flow on the first trap.
    pub max: u32,
    /// The sliding period over which restarts are counted.
    pub period: Duration,
}

impl RestartBudget {
    /// The budget of a flow that sets neither `max-restarts` nor `restart-period`: ten
    /// restarts in ten seconds, enough for the odd bad element of a busy flow, and few
    /// enough that a stage failing on every call stops within a second or two.
    pub const DEFAULT: RestartBudget = RestartBudget {
        max: 10,
        period: Duration::from_secs(10),
    };
}

impl FlowPlan {
    /// A chain of `nodes` (name and role, in flow order), every edge of `capacity` and
    /// blocking, every node failing the flow on its first error: the shape of a test.
    pub fn chain(flow: &str, nodes: &[(String, Role)], capacity: usize) -> Self {
        let count = nodes.len();
        let edge = |e: usize| EdgePlan {
            from: e,
            to: e + 1,
            port: None,
            capacity,
            overflow: Overflow::Block,
            high_watermark: capacity,
            low_watermark: capacity / 2,
            dead_letter: false,
        };
        FlowPlan {
            flow: flow.to_owned(),
            nodes: (nodes.iter().enumerate())
                .map(|(n, (name, role))| NodePlan {
                    name: name.clone(),
                    role: *role,
                    on_error: ErrorPolicy::FAIL_FLOW,
                    inputs: if n == 0 { Vec::new() } else { vec![n - 1] },
                    outputs: if n + 1 == count { Vec::new() } else { vec![n] },
                    ports: Vec::new(),
                    dead_letter: None,
                })
                .collect(),
            edges: (0..count.saturating_sub(1)).map(edge).collect(),
            order: (0..count).collect(),
            invocation_deadline: None,
            sink_pause: None,
            restarts: RestartBudget::DEFAULT,
        }
    }
}

/// Checks flow `flow` and lays it out, asking `role_of` for the role of each node's
/// component. Every problem is reported, each naming the nodes involved and pointing at
/// the manifest.
pub fn plan_flow(
    project: &ProjectManifest,
    flow: &str,
    decl: &FlowDecl,
    mut role_of: impl FnMut(&str) -> Role,
) -> Result<FlowPlan, ManifestError> {
    let (plan, mut problems) = lay_out(project, flow, decl, |name| Some(role_of(name)));
    match (plan, problems.len()) {
        (Some(plan), 0) => Ok(plan),
        (_, 1) => Err(problems.remove(0)),
        _ => Err(ManifestError::Several { problems }),
    }
}

/// Every problem with the shape of flow `flow` that can be found when only some roles are
/// known: `role_of` answers `None` for a node whose component has not been looked at (a
/// manifest's `role`, when it declares one). The checks that need a role are made for the
/// nodes whose role is known; the others (edges declared twice or to their own node,
/// cycles, nodes joined to nothing) for every node.
pub fn check_flow(
    project: &ProjectManifest,
    flow: &str,
    decl: &FlowDecl,
    role_of: impl FnMut(&str) -> Option<Role>,
) -> Vec<ManifestError> {
    lay_out(project, flow, decl, role_of).1
}

/// The plan of flow `flow`, when every role is known and nothing is wrong, and every
/// problem found.
fn lay_out(
    project: &ProjectManifest,
    flow: &str,
    decl: &FlowDecl,
    mut role_of: impl FnMut(&str) -> Option<Role>,
) -> (Option<FlowPlan>, Vec<ManifestError>) {
    if decl.nodes.is_empty() {
        let empty = ManifestError::NoNodes {
            path: project.path().to_owned(),
            flow: flow.to_owned(),
        };
        return (None, vec![empty]);
    }
    let planner = Planner {
        project,
        flow,
        decl,
        roles: decl.nodes.iter().map(|n| role_of(n.get_ref())).collect(),
    };
    let mut problems = Vec::new();
    let mut keep = |result: Result<(), ManifestError>| {
        if let Err(problem) = result {
            problems.push(problem);
        }
    };
    let mut nodes: Vec<NodePlan> = (decl.nodes.iter().zip(&planner.roles))
        .map(|(name, role)| NodePlan {
            name: name.get_ref().clone(),
            // Stands in for a role not known; such a plan is never returned.
            role: role.unwrap_or(Role::Processor),
            on_error: ErrorPolicy::FAIL_FLOW,
            inputs: Vec::new(),
            outputs: Vec::new(),
            ports: Vec::new(),
            dead_letter: None,
        })
        .collect();
    let mut edges = Vec::with_capacity(decl.edges.len());
    // Where each planned edge is declared: an edge found wrong is not planned.
    let mut spans = Vec::with_capacity(decl.edges.len());
    for (e, spanned) in decl.edges.iter().enumerate() {
        let edge = match planner.edge(&nodes, spanned) {
            Ok(edge) => edge,
            Err(problem) => {
                keep(Err(problem));
                continue;
            }
        };
        if decl.edges[..e]
            .iter()
            .any(|other| same_edge(other.get_ref(), spanned.get_ref()))
        {
            keep(Err(planner.at(
                spanned.span(),
                format!(
                    "edge from `{}` to `{}` is declared twice",
                    nodes[edge.from].name, nodes[edge.to].name
                ),
                Some("remove one of them".into()),
            )));
            continue;
        }
        let e = edges.len();
        nodes[edge.from].outputs.push(e);
        nodes[edge.to].inputs.push(e);
        if let Some(port) = &edge.port {
            let ports = &mut nodes[edge.from].ports;
            match ports.iter_mut().find(|p| &p.name == port) {
                Some(existing) => existing.edges.push(e),
                None => ports.push(Port {
                    name: port.clone(),
                    edges: vec![e],
                }),
            }
        }
        edges.push(edge);
        spans.push(spanned.span());
    }
    for (name, policy) in &decl.on_error {
        let n = planner.index(name.get_ref());
        match planner.policy(&nodes, n, policy) {
            Ok(on_error) => nodes[n].on_error = on_error,
            Err(problem) => {
                keep(Err(problem));
                continue;
            }
        }
        if let Some(target) = dead_letter_target(policy.get_ref()) {
            let t = planner.index(&target.dead_letter);
            nodes[n].dead_letter = Some(edges.len());
            nodes[t].inputs.push(edges.len());
            let capacity = decl.queue_capacity_or(project.defaults().queue_capacity) as usize;
            spans.push(policy.span());
            edges.push(EdgePlan {
                from: n,
                to: t,
                port: None,
                capacity,
                overflow: Overflow::Block,
                high_watermark: capacity,
                low_watermark: capacity / 2,
                dead_letter: true,
            });
        }
    }
    let misplaced: Vec<_> = (0..nodes.len())
        .filter_map(|n| planner.check_role(&nodes, &edges, &spans, n).err())
        .collect();
    // A node in the wrong place leaves its neighbours unjoined: that is one problem.
    let placed = misplaced.is_empty();
    misplaced.into_iter().for_each(|problem| keep(Err(problem)));
    if placed {
        for (n, node) in nodes.iter().enumerate() {
            keep(planner.check_connected(n, node));
        }
    }
    let order = match planner.order(&nodes, &edges) {
        Ok(order) => order,
        Err(problem) => {
            keep(Err(problem));
            return (None, problems);
        }
    };
    // The durations were checked with the manifest, which reports what is wrong with them.
    let duration = |d: &Option<Spanned<String>>, range| {
        (d.as_ref()).and_then(|d| project.duration(d, range).ok())
    };
    let plan = FlowPlan {
        flow: flow.to_owned(),
        nodes,
        edges,
        order,
        invocation_deadline: duration(&decl.invocation_deadline, bounds::INVOCATION_DEADLINE),
        sink_pause: duration(&decl.sink_pause, bounds::SINK_PAUSE),
        restarts: RestartBudget {
            max: (decl.max_restarts.as_ref()).map_or(RestartBudget::DEFAULT.max, |m| *m.get_ref()),
            period: duration(&decl.restart_period, bounds::RESTART_PERIOD)
                .unwrap_or(RestartBudget::DEFAULT.period),
        },
    };
    let known = planner.roles.iter().all(Option::is_some);
    ((known && problems.is_empty()).then_some(plan), problems)
}

fn same_edge(a: &EdgeDecl, b: &EdgeDecl) -> bool {
    a.from.get_ref() == b.from.get_ref()
        && a.to.get_ref() == b.to.get_ref()
        && a.port.as_ref().map(Spanned::get_ref) == b.port.as_ref().map(Spanned::get_ref)
}

fn dead_letter_target(policy: &ErrorPolicyDecl) -> Option<&DeadLetterDecl> {
    match policy {
        ErrorPolicyDecl::DeadLetter(target) => Some(target),
        ErrorPolicyDecl::Retry(retry) => match &retry.then {
            Some(FallbackDecl::DeadLetter(target)) => Some(target),
            _ => None,
        },
        ErrorPolicyDecl::Simple(_) => None,
    }
}

struct Planner<'a> {
    project: &'a ProjectManifest,
    flow: &'a str,
    decl: &'a FlowDecl,
    /// Each node's role, where it is known.
    roles: Vec<Option<Role>>,
}

impl Planner<'_> {
    fn at(&self, span: Range<usize>, message: String, help: Option<String>) -> ManifestError {
        self.project.error_at(span, message, help)
    }

    /// The index of a node; references were resolved when the manifest was loaded.
    fn index(&self, name: &str) -> usize {
        let nodes = &self.decl.nodes;
        nodes.iter().position(|n| n.get_ref() == name).unwrap_or(0)
    }

    fn node_span(&self, n: usize) -> Range<usize> {
        self.decl.nodes[n].span()
    }

    fn edge(
        &self,
        nodes: &[NodePlan],
        spanned: &Spanned<EdgeDecl>,
    ) -> Result<EdgePlan, ManifestError> {
        let edge = spanned.get_ref();
        let (from, to) = (
            self.index(edge.from.get_ref()),
            self.index(edge.to.get_ref()),
        );
        let (source, target) = (&nodes[from], &nodes[to]);
        if from == to {
            return Err(self.at(
                spanned.span(),
                format!("edge from `{}` to itself", source.name),
                None,
            ));
        }
        match (&edge.port, self.roles[from]) {
            (None, Some(Role::Router)) => {
                return Err(self.at(
                    spanned.span(),
                    format!(
                        "edge from router `{}` to `{}` names no port",
                        source.name, target.name
                    ),
                    Some("add `port = \"NAME\"`, a name the router returns from `route`".into()),
                ));
            }
            (Some(port), Some(role)) if role != Role::Router => {
                return Err(self.at(
                    port.span(),
                    format!(
                        "edge from `{}` names port `{}`, but `{}` is a {role}, not a router",
                        source.name,
                        port.get_ref(),
                        source.name
                    ),
                    Some("only routers have ports; remove `port`".into()),
                ));
            }
            _ => {}
        }
        let default = self.project.defaults().queue_capacity;
        let capacity = edge.capacity(self.decl, default) as usize;
        let (high, low) = edge.watermarks(self.decl, default);
        Ok(EdgePlan {
            from,
            to,
            port: edge.port.as_ref().map(|p| p.get_ref().clone()),
            capacity,
            overflow: edge.overflow,
            high_watermark: high as usize,
            low_watermark: low as usize,
            dead_letter: false,
        })
    }

    fn policy(
        &self,
        nodes: &[NodePlan],
        n: usize,
        spanned: &Spanned<ErrorPolicyDecl>,
    ) -> Result<ErrorPolicy, ManifestError> {
        let node = &nodes[n];
        let (retry, then) = match spanned.get_ref() {
            ErrorPolicyDecl::Simple(simple) => (None, Some(FallbackDecl::Simple(*simple))),
            ErrorPolicyDecl::DeadLetter(d) => (None, Some(FallbackDecl::DeadLetter(d.clone()))),
            ErrorPolicyDecl::Retry(retry) => {
                // Checked with the manifest, which reports a bad backoff.
                let backoff =
                    (self.project.retry_backoff(retry, spanned.span())).unwrap_or(DEFAULT_BACKOFF);
                let retry_plan = Retry {
                    attempts: retry.retry,
                    backoff,
                };
                (Some(retry_plan), retry.then.clone())
            }
        };
        let then = match then {
            None | Some(FallbackDecl::Simple(SimplePolicy::FailFlow)) => Fallback::FailFlow,
            Some(FallbackDecl::Simple(SimplePolicy::Skip)) => Fallback::Skip,
            Some(FallbackDecl::DeadLetter(target)) => {
                let t = self.index(&target.dead_letter);
                let problem = if t == n {
                    Some(format!(
                        "node `{}` cannot be its own dead-letter sink",
                        node.name
                    ))
                } else if self.roles[n] == Some(Role::Source) {
                    Some(format!(
                        "source `{}` cannot dead-letter: a failed `pull` has no element to send",
                        node.name
                    ))
                } else if let Some(role) = self.roles[t].filter(|&r| r != Role::Sink) {
                    Some(format!(
                        "dead-letter node `{}` must be a sink, but its component is a {role}",
                        nodes[t].name
                    ))
                } else if self.decl.on_error.iter().any(|(k, p)| {
                    k.get_ref() == &nodes[t].name && dead_letter_target(p.get_ref()).is_some()
                }) {
                    Some(format!(
                        "dead-letter sink `{}` sends its own failures to a dead-letter sink",
                        nodes[t].name
                    ))
                } else {
                    None
                };
                if let Some(message) = problem {
                    return Err(self.at(spanned.span(), message, None));
                }
                Fallback::DeadLetter
            }
        };
        Ok(ErrorPolicy { retry, then })
    }

    /// A source has no inputs and a sink no outputs.
    fn check_role(
        &self,
        nodes: &[NodePlan],
        edges: &[EdgePlan],
        spans: &[Range<usize>],
        n: usize,
    ) -> Result<(), ManifestError> {
        let node = &nodes[n];
        let name = &node.name;
        let first_data_input = node.inputs.iter().find(|&&e| !edges[e].dead_letter);
        if let (Some(Role::Source), Some(&e)) = (self.roles[n], first_data_input) {
            return Err(self.at(
                spans[e].clone(),
                format!(
                    "node `{name}` is a source, but the edge from `{}` feeds it",
                    nodes[edges[e].from].name
                ),
                Some("a source has no inputs; remove this edge".into()),
            ));
        }
        if let (Some(Role::Sink), Some(&e)) = (self.roles[n], node.outputs.first()) {
            return Err(self.at(
                spans[e].clone(),
                format!(
                    "node `{name}` is a sink, but it has an edge to `{}`",
                    nodes[edges[e].to].name
                ),
                Some("a sink has no outputs; remove this edge".into()),
            ));
        }
        Ok(())
    }

    /// Every node but a source is fed, and every node but a sink feeds something; a node
    /// whose role is not known is joined to something.
    fn check_connected(&self, n: usize, node: &NodePlan) -> Result<(), ManifestError> {
        let name = &node.name;
        let Some(role) = self.roles[n] else {
            if node.inputs.is_empty() && node.outputs.is_empty() && node.dead_letter.is_none() {
                return Err(self.at(
                    self.node_span(n),
                    format!("node `{name}` of flow `{}` is joined by no edge", self.flow),
                    Some("add an edge to or from it, or remove it from `nodes`".into()),
                ));
            }
            return Ok(());
        };
        if role != Role::Source && node.inputs.is_empty() {
            return Err(self.at(
                self.node_span(n),
                format!("node `{name}` of flow `{}` is fed by no edge", self.flow),
                Some(format!(
                    "it is a {role}: add an edge to it, or remove it from `nodes`"
                )),
            ));
        }
        if role != Role::Sink && node.outputs.is_empty() {
            return Err(self.at(
                self.node_span(n),
                format!(
                    "node `{name}` of flow `{}` feeds no edge, so its output would be lost",
                    self.flow
                ),
                Some(format!(
                    "it is a {role}: add an edge from it, or remove it from `nodes`; {}",
                    exports_of(Role::Sink)
                )),
            ));
        }
        Ok(())
    }

    /// Kahn's algorithm: a topological order, or the nodes on a cycle.
    fn order(&self, nodes: &[NodePlan], edges: &[EdgePlan]) -> Result<Vec<usize>, ManifestError> {
        let mut pending: Vec<usize> = nodes.iter().map(|n| n.inputs.len()).collect();
        let mut order: Vec<usize> = (0..nodes.len()).filter(|&n| pending[n] == 0).collect();
        let mut next = 0;
        while let Some(&n) = order.get(next) {
            next += 1;
            let out = nodes[n].outputs.iter().chain(&nodes[n].dead_letter);
            for &e in out {
                let to = edges[e].to;
                pending[to] -= 1;
                if pending[to] == 0 {
                    order.push(to);
                }
            }
        }
        if order.len() == nodes.len() {
            return Ok(order);
        }
        // What is left is on a cycle or downstream of one; peel off the downstream part.
        let mut stuck: Vec<usize> = (0..nodes.len()).filter(|&n| pending[n] > 0).collect();
        loop {
            let before = stuck.len();
            let feeds_stuck = |n: usize, stuck: &[usize]| {
                nodes[n]
                    .outputs
                    .iter()
                    .chain(&nodes[n].dead_letter)
                    .any(|&e| stuck.contains(&edges[e].to))
            };
            let kept: Vec<usize> = stuck
                .iter()
                .copied()
                .filter(|&n| feeds_stuck(n, &stuck))
                .collect();
            stuck = kept;
            if stuck.len() == before {
                break;
            }
        }
        let names: Vec<String> = stuck
            .iter()
            .map(|&n| format!("`{}`", nodes[n].name))
            .collect();
        let span = self
            .decl
            .edges
            .iter()
            .find(|e| {
                let (f, t) = (
                    self.index(e.get_ref().from.get_ref()),
                    self.index(e.get_ref().to.get_ref()),
                );
                stuck.contains(&f) && stuck.contains(&t)
            })
            .map_or_else(|| self.node_span(stuck[0]), Spanned::span);
        Err(self.at(
            span,
            format!(
                "the edges of flow `{}` form a cycle through {}",
                self.flow,
                names.join(", ")
            ),
            Some("a flow is acyclic: elements run from sources to sinks".into()),
        ))
    }
}

/// The interface a component must export to hold `role`.
fn exports_of(role: Role) -> String {
    format!("a {role} exports `{}@{CONTRACT_VERSION}`", role.interface())
}

#[cfg(test)]
mod tests;
