//! The shape of a flow: from the manifest's nodes and edges to an ordered plan of stages,
//! with every role checked against the position the node holds.
//!
//! Flows are linear chains for now: one source, any number of processors and filters,
//! one sink.

use crate::config::{DEFAULT_QUEUE_CAPACITY, FlowDecl, ManifestError, ProjectManifest};
use crate::contracts::Role;

/// One node of a planned chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePlan {
    /// The node's name (the component's name in the manifest).
    pub name: String,
    /// Its role.
    pub role: Role,
}

/// A flow laid out as a chain, source first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainPlan {
    /// The flow's name.
    pub flow: String,
    /// The nodes in flow order.
    pub nodes: Vec<NodePlan>,
    /// Capacity of the queue after each node but the last.
    pub capacities: Vec<usize>,
}

/// Lays out flow `flow` as a chain, asking `role_of` for the role of each node's
/// component. Every error points at the manifest.
pub fn plan_chain(
    project: &ProjectManifest,
    flow: &str,
    decl: &FlowDecl,
    mut role_of: impl FnMut(&str) -> Role,
) -> Result<ChainPlan, ManifestError> {
    let nodes = &decl.nodes;
    let index = |name: &str| nodes.iter().position(|n| n.get_ref() == name);
    let mut next = vec![None; nodes.len()];
    let mut prev = vec![None; nodes.len()];
    for edge in &decl.edges {
        let (from, to) = (&edge.get_ref().from, &edge.get_ref().to);
        // References were resolved when the manifest was loaded.
        let (f, t) = (
            index(from.get_ref()).unwrap_or(0),
            index(to.get_ref()).unwrap_or(0),
        );
        if f == t {
            return Err(project.error_at(
                edge.span(),
                format!("edge from `{}` to itself", from.get_ref()),
                None,
            ));
        }
        let not_linear = |name: &str, what: &str| {
            project.error_at(
                edge.span(),
                format!("node `{name}` of flow `{flow}` has more than one {what} edge"),
                Some("flows are linear chains: each node feeds at most one other".into()),
            )
        };
        if next[f].replace(t).is_some() {
            return Err(not_linear(from.get_ref(), "outgoing"));
        }
        if prev[t].replace(f).is_some() {
            return Err(not_linear(to.get_ref(), "incoming"));
        }
    }
    let heads: Vec<usize> = (0..nodes.len()).filter(|&i| prev[i].is_none()).collect();
    let Some(&head) = heads.first() else {
        let first = &nodes[0];
        return Err(project.error_at(
            first.span(),
            format!("the edges of flow `{flow}` form a cycle"),
            Some("a flow starts at a source that no edge feeds".into()),
        ));
    };
    let mut order = vec![head];
    while let Some(n) = next[*order.last().unwrap_or(&head)] {
        if order.contains(&n) {
            return Err(project.error_at(
                nodes[n].span(),
                format!(
                    "the edges of flow `{flow}` form a cycle through `{}`",
                    nodes[n].get_ref()
                ),
                None,
            ));
        }
        order.push(n);
    }
    if order.len() != nodes.len() {
        let stray = (0..nodes.len()).find(|i| !order.contains(i)).unwrap_or(0);
        return Err(project.error_at(
            nodes[stray].span(),
            format!(
                "node `{}` is not connected to the chain that starts at `{}`",
                nodes[stray].get_ref(),
                nodes[head].get_ref()
            ),
            Some("add an edge to or from it, or remove it from `nodes`".into()),
        ));
    }
    if order.len() < 2 {
        return Err(project.error_at(
            nodes[head].span(),
            format!("flow `{flow}` needs at least a source and a sink"),
            None,
        ));
    }
    let last = order.len() - 1;
    let mut plan = Vec::with_capacity(order.len());
    for (position, &n) in order.iter().enumerate() {
        let name = nodes[n].get_ref();
        let role = role_of(name);
        let (fits, wanted) = match position {
            0 => (role == Role::Source, "a source"),
            p if p == last => (role == Role::Sink, "a sink"),
            _ => (
                matches!(role, Role::Processor | Role::Filter),
                "a processor or a filter",
            ),
        };
        if !fits {
            let place = match position {
                0 => "first".to_owned(),
                p if p == last => "last".to_owned(),
                p => format!("at position {}", p + 1),
            };
            return Err(project.error_at(
                nodes[n].span(),
                format!(
                    "node `{name}` is {place} in flow `{flow}`, so it must be {wanted}, but its component is a {role}"
                ),
                Some(exports_needed(position, last)),
            ));
        }
        plan.push(NodePlan {
            name: name.clone(),
            role,
        });
    }
    let default = decl
        .queue_capacity
        .as_ref()
        .map_or(DEFAULT_QUEUE_CAPACITY, |c| *c.get_ref());
    let capacities = order
        .windows(2)
        .map(|pair| {
            decl.edges
                .iter()
                .map(|e| e.get_ref())
                .find(|e| index(e.from.get_ref()) == Some(pair[0]))
                .and_then(|e| e.capacity.as_ref().map(|c| *c.get_ref()))
                .unwrap_or(default) as usize
        })
        .collect();
    Ok(ChainPlan {
        flow: flow.to_owned(),
        nodes: plan,
        capacities,
    })
}

/// What a component must export to hold `position` in a chain whose last index is `last`.
fn exports_needed(position: usize, last: usize) -> String {
    let export = |role: Role| {
        format!(
            "`{}@{}`",
            role.interface(),
            crate::contracts::CONTRACT_VERSION
        )
    };
    match position {
        0 => format!("a source exports {}", export(Role::Source)),
        p if p == last => format!("a sink exports {}", export(Role::Sink)),
        _ => format!(
            "a processor exports {}; a filter exports {}",
            export(Role::Processor),
            export(Role::Filter)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn project(flow: &str) -> ProjectManifest {
        let text = format!(
            "[project]\nname = \"t\"\n[components.a]\npath = \"a.wasm\"\n[components.b]\npath = \"b.wasm\"\n[components.c]\npath = \"c.wasm\"\n[flows.main]\n{flow}\n"
        );
        ProjectManifest::parse(Path::new("Torvyn.toml"), text).unwrap()
    }

    fn roles(name: &str) -> Role {
        match name {
            "a" => Role::Source,
            "b" => Role::Processor,
            _ => Role::Sink,
        }
    }

    fn plan(flow: &str) -> Result<ChainPlan, String> {
        let project = project(flow);
        let (name, decl) = project.select_flow(None).unwrap();
        plan_chain(&project, name, decl, roles).map_err(|e| e.to_string())
    }

    #[test]
    fn a_chain_is_ordered_by_its_edges_not_by_node_order() {
        let plan = plan(
            "nodes = [\"c\", \"a\", \"b\"]\nedges = [{ from = \"b\", to = \"c\", capacity = 3 }, { from = \"a\", to = \"b\" }]\nqueue-capacity = 8",
        )
        .unwrap();
        let names: Vec<_> = plan.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(plan.capacities, [8, 3]);
    }

    #[test]
    fn a_misplaced_role_is_explained() {
        let project = project("nodes = [\"c\", \"a\"]\nedges = [{ from = \"c\", to = \"a\" }]");
        let (name, decl) = project.select_flow(None).unwrap();
        let error = plan_chain(&project, name, decl, roles).unwrap_err();
        insta::assert_snapshot!(crate::config::tests::render(&error));
    }

    #[test]
    fn roles_must_fit_their_place() {
        let error =
            plan("nodes = [\"c\", \"a\"]\nedges = [{ from = \"c\", to = \"a\" }]").unwrap_err();
        assert!(
            error.contains("node `c` is first in flow `main`, so it must be a source, but its component is a sink"),
            "{error}"
        );
    }

    #[test]
    fn cycles_branches_and_strays_are_refused() {
        let cycle = plan(
            "nodes = [\"a\", \"b\"]\nedges = [{ from = \"a\", to = \"b\" }, { from = \"b\", to = \"a\" }]",
        );
        assert!(cycle.unwrap_err().contains("cycle"));
        let fan_out = plan(
            "nodes = [\"a\", \"b\", \"c\"]\nedges = [{ from = \"a\", to = \"b\" }, { from = \"a\", to = \"c\" }]",
        );
        assert!(fan_out.unwrap_err().contains("more than one outgoing edge"));
        let stray = plan("nodes = [\"a\", \"b\", \"c\"]\nedges = [{ from = \"a\", to = \"c\" }]");
        assert!(stray.unwrap_err().contains("node `b` is not connected"));
    }
}
