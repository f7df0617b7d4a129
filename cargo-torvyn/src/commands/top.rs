//! `cargo torvyn top`: a live view of a running host's flows, read from the inspection
//! API that `cargo torvyn run --listen` serves.

use std::time::Duration;

use clap::Args;
use miette::{Context, IntoDiagnostic};
use ratatui::Terminal;
use ratatui::backend::{Backend, TestBackend};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Row, Table};
use serde::Deserialize;

use torvyn_runtime::ConnectorReport;

use super::live;
use crate::output;

/// Where `top` looks when neither its argument nor the `listen` setting says.
const DEFAULT_ADDRESS: &str = "127.0.0.1:9464";

/// Watch the flows of a running host: per node and queue, throughput, call latency, queue
/// fill, time blocked, drops and errors, refreshed each interval
///
/// Reads the inspection API of `cargo torvyn run --listen ADDR`. Each figure is for the
/// last interval. The node that holds the flow back is highlighted: the one downstream of
/// the queue that blocked its upstream the longest or, with no queue blocking, the busiest.
/// `q` or Esc quits.
#[derive(Debug, Args)]
pub(crate) struct TopCommand {
    /// The host's address, as given to `run --listen`: HOST:PORT or unix:PATH [default:
    /// the `listen` setting, else 127.0.0.1:9464]
    #[arg(value_name = "ADDR")]
    addr: Option<String>,

    /// Time between two refreshes
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = crate::cli::refresh_interval)]
    interval: Duration,

    /// Print one frame as text on stdout, made from two samples an interval apart, and exit
    #[arg(long)]
    once: bool,
}

impl TopCommand {
    pub(crate) fn exec(self) -> miette::Result<()> {
        let addr = match &self.addr {
            Some(addr) => addr.clone(),
            None => (crate::settings::for_manifest(None)?.listen()?)
                .map_or_else(|| DEFAULT_ADDRESS.to_owned(), |listen| listen.to_string()),
        };
        let base = live::base(&addr)?;
        let mut previous = sample(&base)?;
        if self.once {
            std::thread::sleep(self.interval);
            let view = View::between(&previous, &sample(&base)?);
            let mut terminal =
                Terminal::new(TestBackend::new(120, view.height())).into_diagnostic()?;
            terminal
                .draw(|frame| view.draw(frame, frame.area()))
                .into_diagnostic()?;
            print!("{}", text_of(terminal.backend()));
            return Ok(());
        }
        let mut terminal = ratatui::try_init()
            .into_diagnostic()
            .wrap_err("cannot take over the terminal (use --once to print a frame)")?;
        let shown = watch(&mut terminal, &base, &mut previous, self.interval);
        ratatui::restore();
        shown
    }
}

/// Redraws every `interval` until `q`, Esc or Ctrl-C.
fn watch<B: Backend>(
    terminal: &mut Terminal<B>,
    base: &str,
    previous: &mut Vec<Flow>,
    interval: Duration,
) -> miette::Result<()>
where
    B::Error: Send + Sync + 'static,
{
    let mut view = View::between(previous, previous);
    loop {
        terminal
            .draw(|frame| view.draw(frame, frame.area()))
            .into_diagnostic()?;
        if event::poll(interval).into_diagnostic()? {
            if let Event::Key(key) = event::read().into_diagnostic()? {
                let ctrl_c =
                    key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c');
                if ctrl_c || matches!(key.code, KeyCode::Char('q') | KeyCode::Esc) {
                    return Ok(());
                }
            }
            continue;
        }
        let current = sample(base)?;
        view = View::between(previous, &current);
        *previous = current;
    }
}

/// Every flow's latest figures.
fn sample(base: &str) -> miette::Result<Vec<Flow>> {
    (live::flows(base)?.into_iter())
        .map(|flow| {
            serde_json::from_value(flow)
                .into_diagnostic()
                .wrap_err("the host's figures are not what this version of `top` reads")
        })
        .collect()
}

/// What `GET /flows/NAME` answers, as far as `top` reads it.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Flow {
    name: String,
    paused: bool,
    /// The long call the flow is inside of, if any: its figures are as of its start.
    #[serde(default)]
    in_call: Option<InCall>,
    report: Report,
}

#[derive(Debug, Clone, Deserialize)]
struct InCall {
    node: Option<String>,
    for_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
struct Report {
    outcome: String,
    /// Seconds since the flow started.
    duration: f64,
    delivered: u64,
    nodes: Vec<Node>,
    edges: Vec<Edge>,
}

#[derive(Debug, Clone, Deserialize)]
struct Node {
    name: String,
    role: String,
    received: u64,
    emitted: u64,
    errors: u64,
    restarts: u64,
    calls: Calls,
    /// What a built-in connector playing the node did.
    #[serde(default)]
    connector: Option<ConnectorReport>,
}

#[derive(Debug, Clone, Deserialize)]
struct Calls {
    busy_ns: u64,
    latency: Option<Histogram>,
}

/// A node's call durations: counts in buckets bounded by 1, 2, 4, … µs, then the rest.
#[derive(Debug, Clone, Deserialize)]
struct Histogram {
    counts: Vec<u64>,
}

#[derive(Debug, Clone, Deserialize)]
struct Edge {
    from: String,
    to: String,
    capacity: u64,
    depth: u64,
    dropped: u64,
    blocked_ns: u64,
}

/// What one frame shows: each flow's figures over the interval between two samples.
#[derive(Debug)]
struct View {
    flows: Vec<FlowView>,
}

#[derive(Debug)]
struct FlowView {
    title: String,
    nodes: Vec<[String; 7]>,
    edges: Vec<[String; 5]>,
    /// Rows to highlight: the node holding the flow back, and the queue in front of it.
    bottleneck: Option<(usize, Option<usize>)>,
    verdict: String,
    /// A line per built-in connector: what it did since the flow started.
    connectors: Vec<String>,
}

impl View {
    /// The figures of `current`, as rates and shares of the time since `previous` (all
    /// since the start, for a flow `previous` does not have).
    fn between(previous: &[Flow], current: &[Flow]) -> View {
        let flows = (current.iter())
            .map(|flow| {
                let before = previous.iter().find(|p| p.name == flow.name);
                FlowView::between(before, flow)
            })
            .collect();
        View { flows }
    }

    fn height(&self) -> u16 {
        let rows: u16 = self.flows.iter().map(FlowView::height).sum();
        rows.max(3)
    }

    fn draw(&self, frame: &mut ratatui::Frame<'_>, area: Rect) {
        if self.flows.is_empty() {
            let waiting = Paragraph::new("No flow has published figures yet.")
                .block(Block::bordered().title(" torvyn top "));
            frame.render_widget(waiting, area);
            return;
        }
        let heights = (self.flows.iter()).map(|f| Constraint::Length(f.height()));
        let areas = Layout::vertical(heights).split(area);
        for (flow, area) in self.flows.iter().zip(areas.iter()) {
            flow.draw(frame, *area);
        }
    }
}

impl FlowView {
    fn between(previous: Option<&Flow>, flow: &Flow) -> FlowView {
        let report = &flow.report;
        let node_before =
            |name: &str| previous.and_then(|p| p.report.nodes.iter().find(|n| n.name == name));
        let edge_before = |edge: &Edge| {
            previous.and_then(|p| {
                (p.report.edges.iter()).find(|e| e.from == edge.from && e.to == edge.to)
            })
        };
        let seconds = (report.duration - previous.map_or(0.0, |p| p.report.duration)).max(1e-9);
        let delivered = report.delivered - previous.map_or(0, |p| p.report.delivered);

        let mut busiest = None::<(usize, f64)>;
        let nodes = (report.nodes.iter().enumerate())
            .map(|(i, node)| {
                let before = node_before(&node.name);
                let handled = match node.role.as_str() {
                    "source" => node.emitted - before.map_or(0, |b| b.emitted),
                    _ => node.received - before.map_or(0, |b| b.received),
                };
                let busy = (node.calls.busy_ns - before.map_or(0, |b| b.calls.busy_ns)) as f64
                    / (seconds * 1e9);
                if busiest.is_none_or(|(_, most)| busy > most) {
                    busiest = Some((i, busy));
                }
                let latency = latency_between(
                    before.and_then(|b| b.calls.latency.as_ref()),
                    node.calls.latency.as_ref(),
                );
                [
                    node.name.clone(),
                    node.role.clone(),
                    format!("{:.0}/s", handled as f64 / seconds),
                    latency,
                    format!("{:.0} %", busy * 100.0),
                    node.errors.to_string(),
                    node.restarts.to_string(),
                ]
            })
            .collect();

        let mut most_blocked = None::<(usize, f64)>;
        let edges = (report.edges.iter().enumerate())
            .map(|(i, edge)| {
                let before = edge_before(edge);
                let blocked =
                    (edge.blocked_ns - before.map_or(0, |b| b.blocked_ns)) as f64 / (seconds * 1e9);
                if blocked > 0.01 && most_blocked.is_none_or(|(_, most)| blocked > most) {
                    most_blocked = Some((i, blocked));
                }
                [
                    format!("{} → {}", edge.from, edge.to),
                    format!("{}/{}", edge.depth, edge.capacity),
                    format!("{:.0} %", blocked.min(1.0) * 100.0),
                    (edge.dropped - before.map_or(0, |b| b.dropped)).to_string(),
                    String::new(),
                ]
            })
            .collect::<Vec<_>>();

        let node_index = |name: &str| report.nodes.iter().position(|n| n.name == name);
        let in_call = (flow.in_call.as_ref()).and_then(|c| Some((c.node.as_deref()?, c.for_ms)));
        let (bottleneck, verdict) = match (most_blocked, busiest) {
            // A call that has run for a second holds the whole flow: nothing else moves.
            _ if let Some((node, for_ms)) = in_call.filter(|(_, ms)| *ms >= 1000) => (
                node_index(node).map(|n| (n, None)),
                format!(
                    "Stuck: `{node}` has been inside one call for {:.1} s; these figures are from before it.",
                    for_ms as f64 / 1000.0
                ),
            ),
            (Some((e, share)), _) => {
                let edge = &report.edges[e];
                (
                    node_index(&edge.to).map(|n| (n, Some(e))),
                    format!(
                        "Bottleneck: `{}`. Its input queue {} → {} was full {:.0} % of the time, holding `{}` back.",
                        edge.to,
                        edge.from,
                        edge.to,
                        share.min(1.0) * 100.0,
                        edge.from
                    ),
                )
            }
            (None, Some((n, share))) if share > 0.0 => (
                Some((n, None)),
                format!(
                    "Busiest: `{}` ({:.0} % of the time in calls); no queue is holding anything back.",
                    report.nodes[n].name,
                    share * 100.0
                ),
            ),
            _ => (None, "Idle.".to_owned()),
        };
        let mut edges = edges;
        if let Some((_, Some(e))) = bottleneck {
            edges[e][4] = "blocked".to_owned();
        }
        let state = match (report.outcome.as_str(), flow.paused) {
            ("running", true) => "paused".to_owned(),
            (outcome, _) => outcome.to_owned(),
        };
        FlowView {
            title: format!(
                " flow `{}`: {state}, {:.0} elements/s delivered ",
                flow.name,
                delivered as f64 / seconds
            ),
            nodes,
            edges,
            bottleneck,
            verdict,
            connectors: connector_lines(&report.nodes),
        }
    }

    /// Rows it takes: borders, two tables with their headers, a blank line between them,
    /// and the verdict.
    fn height(&self) -> u16 {
        (self.nodes.len() + self.edges.len() + self.connectors.len() + 6) as u16
    }

    fn draw(&self, frame: &mut ratatui::Frame<'_>, area: Rect) {
        let block = Block::bordered().title(self.title.as_str());
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let [nodes, edges, verdict, connectors] = Layout::vertical([
            Constraint::Length(self.nodes.len() as u16 + 1),
            Constraint::Length(self.edges.len() as u16 + 2),
            Constraint::Length(1),
            Constraint::Length(self.connectors.len() as u16),
        ])
        .areas(inner);
        let highlight = Style::default().fg(Color::Red).add_modifier(Modifier::BOLD);
        let header = Style::default().add_modifier(Modifier::UNDERLINED);
        let node_rows = (self.nodes.iter().enumerate()).map(|(i, row)| {
            let style = match self.bottleneck {
                Some((n, _)) if n == i => highlight,
                _ => Style::default(),
            };
            Row::new(row.clone()).style(style)
        });
        let node_table = Table::new(
            node_rows,
            [
                Constraint::Length(16),
                Constraint::Length(11),
                Constraint::Length(12),
                Constraint::Length(18),
                Constraint::Length(7),
                Constraint::Length(7),
                Constraint::Length(9),
            ],
        )
        .header(
            Row::new([
                "node",
                "role",
                "elements",
                "call p50 / p99",
                "busy",
                "errors",
                "restarts",
            ])
            .style(header),
        );
        frame.render_widget(node_table, nodes);
        let edge_rows = (self.edges.iter().enumerate()).map(|(i, row)| {
            let style = match self.bottleneck {
                Some((_, Some(e))) if e == i => highlight,
                _ => Style::default(),
            };
            Row::new(row.clone()).style(style)
        });
        let edge_table = Table::new(
            edge_rows,
            [
                Constraint::Length(28),
                Constraint::Length(12),
                Constraint::Length(9),
                Constraint::Length(9),
                Constraint::Length(8),
            ],
        )
        .header(Row::new(["queue", "fill", "blocked", "dropped", ""]).style(header));
        let [_, edges] =
            Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(edges);
        frame.render_widget(edge_table, edges);
        frame.render_widget(Paragraph::new(Line::from(self.verdict.as_str())), verdict);
        let lines = self.connectors.iter().map(|l| Line::from(l.as_str()));
        frame.render_widget(Paragraph::new(lines.collect::<Vec<_>>()), connectors);
    }
}

/// `NODE (TYPE): what it did`, for each node a built-in connector plays.
fn connector_lines(nodes: &[Node]) -> Vec<String> {
    let connectors = nodes.iter().filter_map(|node| {
        let connector = node.connector.as_ref()?;
        let figures = output::connector_figures(node.role == "source", connector);
        Some(format!("{} ({}): {figures}", node.name, connector.kind))
    });
    connectors.collect()
}

/// "p50 / p99" of the calls made between two histograms of a node.
fn latency_between(before: Option<&Histogram>, now: Option<&Histogram>) -> String {
    let Some(now) = now else {
        return "–".to_owned();
    };
    let counts: Vec<u64> = (now.counts.iter().enumerate())
        .map(|(i, count)| count - before.and_then(|b| b.counts.get(i)).copied().unwrap_or(0))
        .collect();
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return "–".to_owned();
    }
    let at = |q: f64| {
        let wanted = (q * total as f64).ceil() as u64;
        let mut seen = 0;
        for (i, count) in counts.iter().enumerate() {
            seen += count;
            if seen >= wanted {
                return match i {
                    i if i + 1 == counts.len() => format!(">{}", micros(1 << (i - 1))),
                    i => format!("≤{}", micros(1 << i)),
                };
            }
        }
        unreachable!("the counts add up to the total")
    };
    format!("{} / {}", at(0.5), at(0.99))
}

fn micros(us: u64) -> String {
    match us {
        us if us >= 1_000_000 => format!("{}s", us / 1_000_000),
        us if us >= 1_000 => format!("{}ms", us / 1_000),
        us => format!("{us}µs"),
    }
}

/// The text of a rendered frame, one line per row, without trailing blanks.
fn text_of(backend: &TestBackend) -> String {
    let buffer = backend.buffer();
    let mut text = String::new();
    for y in 0..buffer.area.height {
        let line: String = (0..buffer.area.width)
            .map(|x| buffer[(x, y)].symbol())
            .collect();
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connector_says_what_it_did_under_its_flow() {
        let mut current = flow(2.0, 0, [0; 3], [10; 3]);
        current.report.nodes[0].connector = Some(ConnectorReport {
            kind: "nats".into(),
            acks: 10,
            redelivered: 2,
            lag: Some(5),
            ..ConnectorReport::default()
        });
        let text = render(&flow(1.0, 0, [0; 3], [0; 3]), &current);
        assert!(
            text.contains(
                "src (nats): 0 B read, 10 messages acknowledged, 2 delivered again, lag 5 messages"
            ),
            "{text}"
        );
    }

    fn flow(duration: f64, blocked_ns: u64, busy_ns: [u64; 3], counts: [u64; 3]) -> Flow {
        let node = |name: &str, role: &str, i: usize| {
            serde_json::json!({
                "name": name, "role": role, "received": counts[i], "emitted": counts[i],
                "errors": 0, "restarts": 0,
                "calls": { "busy_ns": busy_ns[i],
                    "latency": { "counts": [counts[i], 0, 0, 0, 0, 0] } }
            })
        };
        serde_json::from_value(serde_json::json!({
            "name": "main",
            "paused": false,
            "report": {
                "outcome": "running", "duration": duration, "delivered": counts[2],
                "nodes": [node("src", "source", 0), node("up", "processor", 1), node("out", "sink", 2)],
                "edges": [
                    { "from": "src", "to": "up", "capacity": 64, "depth": 64, "dropped": 0, "blocked_ns": 0 },
                    { "from": "up", "to": "out", "capacity": 8, "depth": 8, "dropped": 0, "blocked_ns": blocked_ns },
                ]
            }
        }))
        .unwrap()
    }

    fn render(previous: &Flow, current: &Flow) -> String {
        let view = View::between(
            std::slice::from_ref(previous),
            std::slice::from_ref(current),
        );
        let mut terminal = Terminal::new(TestBackend::new(100, view.height())).unwrap();
        terminal
            .draw(|frame| view.draw(frame, frame.area()))
            .unwrap();
        text_of(terminal.backend())
    }

    #[test]
    fn a_frame_names_the_queue_into_a_pausing_sink_as_what_holds_the_flow_back() {
        // Over one second the queue into `out` held `up` back for 0.9 s.
        let before = flow(1.0, 100_000_000, [0, 0, 0], [100, 90, 80]);
        let after = flow(
            2.0,
            1_000_000_000,
            [10_000_000, 20_000_000, 5_000_000],
            [110, 100, 90],
        );
        let frame = render(&before, &after);
        insta::assert_snapshot!(frame);
        assert!(frame.contains("up → out"), "{frame}");
        assert!(
            frame.contains("Bottleneck: `out`. Its input queue up → out was full 90 % of the time, holding `up` back."),
            "{frame}"
        );
    }

    #[test]
    fn without_blocking_the_busiest_node_is_named() {
        let before = flow(1.0, 0, [0, 0, 0], [0, 0, 0]);
        let after = flow(
            2.0,
            0,
            [100_000_000, 700_000_000, 50_000_000],
            [1000, 1000, 1000],
        );
        let frame = render(&before, &after);
        assert!(
            frame.contains("Busiest: `up` (70 % of the time in calls)"),
            "{frame}"
        );
        assert!(frame.contains("1000 elements/s delivered"), "{frame}");
    }

    #[test]
    fn a_flow_inside_a_long_call_is_named_stuck_there() {
        let before = flow(1.0, 0, [0, 0, 0], [10, 10, 10]);
        let mut after = before.clone();
        after.in_call = Some(InCall {
            node: Some("up".into()),
            for_ms: 2_500,
        });
        let frame = render(&before, &after);
        assert!(
            frame.contains("Stuck: `up` has been inside one call for 2.5 s"),
            "{frame}"
        );
    }

    #[test]
    fn percentiles_come_from_the_calls_of_the_interval() {
        let before = Histogram {
            counts: vec![10, 0, 0],
        };
        let now = Histogram {
            counts: vec![10, 99, 1],
        };
        assert_eq!(latency_between(Some(&before), Some(&now)), "≤2µs / ≤2µs");
        let slow = Histogram {
            counts: vec![10, 50, 50],
        };
        assert_eq!(latency_between(Some(&before), Some(&slow)), "≤2µs / >2µs");
        assert_eq!(latency_between(None, None), "–");
    }
}
