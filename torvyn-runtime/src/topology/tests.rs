//! The planner's checks, each on a small manifest: orders, ports, policies and every bad
//! shape, found with the manifest or with the roles.

use super::*;
use std::path::Path;

/// A project of components `a` to `t` and flow `main`, or what its manifest's own
/// checks (the shape checks that need no role among them) found wrong.
fn try_project(flow: &str) -> Result<ProjectManifest, ManifestError> {
    let components: String = ["a", "b", "c", "d", "r", "s", "t"]
        .iter()
        .map(|n| format!("[components.{n}]\npath = \"{n}.wasm\"\n"))
        .collect();
    let text = format!("[project]\nname = \"t\"\n{components}[flows.main]\n{flow}\n");
    ProjectManifest::parse(Path::new("Torvyn.toml"), text)
}

fn project(flow: &str) -> ProjectManifest {
    try_project(flow).unwrap()
}

/// Every problem, a line each.
fn lines(error: ManifestError) -> String {
    match error {
        ManifestError::Several { problems } => {
            let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
            lines.join("\n")
        }
        error => error.to_string(),
    }
}

fn roles(name: &str) -> Role {
    match name {
        "a" | "d" => Role::Source,
        "b" => Role::Processor,
        "r" => Role::Router,
        _ => Role::Sink,
    }
}

/// The plan of `flow`, or every problem the manifest's checks or the planner found.
fn plan(flow: &str) -> Result<FlowPlan, String> {
    let project = try_project(flow).map_err(lines)?;
    let (name, decl) = project.select_flows(&[]).unwrap()[0];
    plan_flow(&project, name, decl, roles).map_err(lines)
}

#[test]
fn a_chain_is_ordered_by_its_edges_not_by_node_order() {
    let plan = plan(
        "nodes = [\"c\", \"a\", \"b\"]\nedges = [{ from = \"b\", to = \"c\", capacity = 3 }, { from = \"a\", to = \"b\" }]\nqueue-capacity = 8",
    )
    .unwrap();
    let names: Vec<_> = plan
        .order
        .iter()
        .map(|&n| plan.nodes[n].name.as_str())
        .collect();
    assert_eq!(names, ["a", "b", "c"]);
    let capacities: Vec<_> = plan.edges.iter().map(|e| e.capacity).collect();
    assert_eq!(capacities, [3, 8]);
}

#[test]
fn fan_out_fan_in_and_ports_are_planned() {
    let plan = plan(
        "nodes = [\"a\", \"d\", \"r\", \"b\", \"c\", \"s\"]\nedges = [\
         { from = \"a\", to = \"r\" }, { from = \"d\", to = \"r\" },\
         { from = \"r\", port = \"x\", to = \"b\" }, { from = \"r\", port = \"x\", to = \"c\" },\
         { from = \"r\", port = \"y\", to = \"s\" }, { from = \"b\", to = \"s\" }]\n\
         [flows.main.on-error]\nb = { retry = 2, backoff = \"5ms\", then = { dead-letter = \"c\" } }",
    )
    .unwrap();
    let r = &plan.nodes[2];
    assert_eq!(r.inputs, [0, 1]);
    assert_eq!(r.ports.len(), 2);
    assert_eq!(r.ports[0].edges, [2, 3]);
    let b = &plan.nodes[3];
    assert_eq!(
        b.on_error,
        ErrorPolicy {
            retry: Some(Retry {
                attempts: 2,
                backoff: Duration::from_millis(5)
            }),
            then: Fallback::DeadLetter
        }
    );
    let dead_letter = &plan.edges[b.dead_letter.unwrap()];
    assert!(dead_letter.dead_letter);
    assert_eq!(plan.nodes[dead_letter.to].name, "c");
    let place = |name: &str| plan.order.iter().position(|&n| plan.nodes[n].name == name);
    assert!(place("b") < place("s") && place("b") < place("c"));
    assert!(place("r") < place("b"));
}

#[test]
fn a_misplaced_role_is_explained() {
    let project = project("nodes = [\"c\", \"a\"]\nedges = [{ from = \"c\", to = \"a\" }]");
    let (name, decl) = project.select_flows(&[]).unwrap()[0];
    let error = plan_flow(&project, name, decl, roles).unwrap_err();
    insta::assert_snapshot!(crate::config::tests::render(&error));
}

#[test]
fn bad_shapes_are_refused_naming_the_nodes() {
    let cases = [
        (
            "nodes = [\"a\", \"b\", \"c\"]\nedges = [{ from = \"a\", to = \"b\" }, { from = \"b\", to = \"c\" }, { from = \"c\", to = \"b\" }]",
            "the edges of flow `main` form a cycle through `b`, `c`",
        ),
        (
            "nodes = [\"a\", \"b\", \"t\"]\nedges = [{ from = \"a\", to = \"t\" }]",
            "node `b` of flow `main` is joined by no edge",
        ),
        (
            "nodes = [\"a\", \"b\", \"c\"]\nedges = [{ from = \"a\", to = \"c\" }, { from = \"c\", to = \"b\" }]",
            "node `c` is a sink, but it has an edge to `b`",
        ),
        (
            "nodes = [\"a\", \"b\"]\nedges = [{ from = \"a\", to = \"b\" }]",
            "node `b` of flow `main` feeds no edge",
        ),
        (
            "nodes = [\"a\", \"r\", \"c\"]\nedges = [{ from = \"a\", to = \"r\" }, { from = \"r\", to = \"c\" }]",
            "edge from router `r` to `c` names no port",
        ),
        (
            "nodes = [\"a\", \"c\"]\nedges = [{ from = \"a\", port = \"x\", to = \"c\" }]",
            "but `a` is a source, not a router",
        ),
        (
            "nodes = [\"a\", \"c\"]\nedges = [{ from = \"a\", to = \"c\" }, { from = \"a\", to = \"c\" }]",
            "edge from `a` to `c` is declared twice",
        ),
        (
            "nodes = [\"a\", \"c\", \"d\"]\nedges = [{ from = \"a\", to = \"c\" }, { from = \"a\", to = \"d\" }]",
            "node `d` is a source, but the edge from `a` feeds it",
        ),
        (
            "nodes = [\"a\", \"b\", \"c\"]\nedges = [{ from = \"a\", to = \"c\" }, { from = \"b\", to = \"b\" }]",
            "edge from `b` to itself",
        ),
        (
            "nodes = [\"a\", \"b\", \"c\"]\nedges = [{ from = \"a\", to = \"c\" }]\n[flows.main.on-error]\nb = { dead-letter = \"c\" }",
            "node `b` of flow `main` is fed by no edge",
        ),
        (
            "nodes = [\"a\", \"b\", \"c\"]\nedges = [{ from = \"a\", to = \"b\" }, { from = \"b\", to = \"c\" }]\n[flows.main.on-error]\nb = { dead-letter = \"a\" }",
            // Found with the manifest, before roles are known: the dead letters of `b`
            // would flow back into `a`.
            "the edges of flow `main` form a cycle through `a`, `b`",
        ),
    ];
    for (flow, expected) in cases {
        let error = plan(flow).unwrap_err();
        assert!(error.contains(expected), "{flow}\n{error}");
    }
}

#[test]
fn a_cycle_names_its_nodes() {
    // Found with the manifest, before any role is known.
    let error = try_project(
        "nodes = [\"a\", \"b\", \"r\", \"c\"]\nedges = [{ from = \"a\", to = \"b\" }, { from = \"b\", to = \"r\" }, { from = \"r\", port = \"back\", to = \"b\" }, { from = \"r\", port = \"out\", to = \"c\" }]",
    )
    .unwrap_err();
    let rendered = crate::config::tests::render(&error);
    assert!(
        rendered.contains("form a cycle through `b`, `r`"),
        "{rendered}"
    );
    insta::assert_snapshot!(rendered);
}
