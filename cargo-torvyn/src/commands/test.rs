//! `cargo torvyn test`: runs the `[tests.NAME]` of the project, feeding recorded or
//! hand-written elements to a component or a flow and comparing what comes out.

use std::path::Path;

use clap::Args;
use miette::{Context, IntoDiagnostic, bail, miette};
use serde_json::{Value, json};
use torvyn_runtime::{
    FlowPlan, FlowSpec, Host, ProjectManifest, Recorder, Role, RunOptions, StageBody, StageSpec,
    TestDecl, TestElement,
};

use crate::cli::{BuildArgs, ManifestArgs, OutputArgs, WarningArgs};
use crate::output::{self, counted, status};
use crate::project;

/// Run the project's tests: feed elements to a component or a flow, compare what comes out
///
/// Each `[tests.NAME]` of Torvyn.toml names a `component` or a `flow`, an `input` file and
/// an `expected` file, both with one JSON element per line (`{"payload": "…",
/// "content-type": "…"}`, or a bare string for text; bytes that are not UTF-8 as
/// `{"payload-hex": "ff00…"}`; element attributes as `"attributes": {"path": "…"}`). A
/// component is fed the input and what it emits is recorded; a flow has its source fed the
/// input (if given) and its sinks recorded. Payloads are compared byte for byte; an
/// expected element that lists attributes must carry exactly those (one that lists none is
/// not checked for them). A mismatch prints a diff; `--bless` writes what came out as the
/// expected file.
#[derive(Debug, Args)]
pub(crate) struct TestCommand {
    /// The tests to run [default: all]
    #[arg(value_name = "TEST")]
    tests: Vec<String>,

    /// Write what came out as each test's expected elements
    #[arg(long)]
    bless: bool,

    #[command(flatten)]
    manifest: ManifestArgs,

    #[command(flatten)]
    warnings: WarningArgs,

    #[command(flatten)]
    build: BuildArgs,

    #[command(flatten)]
    output: OutputArgs,
}

impl TestCommand {
    pub(crate) fn exec(self) -> miette::Result<()> {
        let format = self.output.message_format;
        let project = super::link::torvyn_project(&self.manifest, &self.warnings, format, "test")?;
        let all = &project.manifest().tests;
        if all.is_empty() {
            bail!(
                help = "add a `[tests.NAME]` table with `component` (or `flow`), `input` and `expected`",
                "`{}` declares no test",
                project.path().display()
            );
        }
        for name in &self.tests {
            if !all.contains_key(name) {
                let known: Vec<_> = all.keys().cloned().collect();
                bail!(
                    help = format!("tests: {}", known.join(", ")),
                    "no test `{name}`"
                );
            }
        }
        let selected: Vec<(&String, &TestDecl)> = (all.iter())
            .filter(|(name, _)| self.tests.is_empty() || self.tests.contains(name))
            .map(|(name, test)| (name, test.get_ref()))
            .collect();
        let runtime = tokio::runtime::Runtime::new()
            .into_diagnostic()
            .wrap_err("cannot start the async runtime")?;
        let (mut passed, mut failed) = (0, 0);
        for (name, test) in selected {
            let outcome = runtime
                .block_on(self.run_one(&project, test))
                .wrap_err_with(|| format!("test `{name}` could not run"));
            // An expected file that cannot be read fails its test, not the run.
            let (ok, detail) = match outcome
                .and_then(|(actual, sinks)| self.compare(&project, test, &actual, &sinks))
            {
                Ok(compared) => compared,
                Err(error) => (false, format!("{error:?}")),
            };
            if ok && self.bless {
                passed += 1;
                status("Blessed", format!("test `{name}`: {detail}"));
            } else if ok {
                passed += 1;
                status("ok", format!("test `{name}`"));
            } else {
                failed += 1;
                status("FAILED", format!("test `{name}`"));
                eprintln!("{detail}");
            }
            output::json(
                self.output.message_format,
                &json!({ "reason": "test", "name": name, "ok": ok, "detail": detail }),
            );
        }
        status("Tested", format!("{passed} passed, {failed} failed"));
        if failed > 0 {
            bail!("{} failed", counted(failed, "test"));
        }
        Ok(())
    }

    /// Runs `test` and returns what came out, each element and the sink that took it, and
    /// the names of the flow's sinks (none for a component test).
    async fn run_one(
        &self,
        project: &ProjectManifest,
        test: &TestDecl,
    ) -> miette::Result<(Vec<(String, TestElement)>, Vec<String>)> {
        let input = match &test.input {
            Some(file) => read_elements(&project.dir().join(file), &[])?,
            None => Vec::new(),
        };
        let recorder = Recorder::default();
        let (host, spec) = match (&test.component, &test.flow) {
            (Some(component), _) => component_flow(
                project,
                component.get_ref(),
                input,
                &recorder,
                self.build.release,
            )?,
            (None, Some(flow)) => {
                let flows = project.select_flows(std::slice::from_ref(flow.get_ref()))?;
                let (host, mut specs) =
                    super::link::link_flows(project, &flows, self.build.release)?;
                let mut spec = specs.remove(0);
                substitute(&mut spec, input, &recorder)?;
                (host, spec)
            }
            (None, None) => bail!("a test names a `component` or a `flow`"),
        };
        let sinks = match test.flow {
            Some(_) => (spec.plan.nodes.iter())
                .filter(|node| node.role == Role::Sink)
                .map(|node| node.name.clone())
                .collect(),
            None => Vec::new(),
        };
        host.run(spec, RunOptions::default()).await?;
        Ok((recorder.take(), sinks))
    }

    /// Compares `actual` with the expected file, byte for byte, or writes it there with
    /// `--bless`; `sinks` are those the expected elements may name.
    fn compare(
        &self,
        project: &ProjectManifest,
        test: &TestDecl,
        actual: &[(String, TestElement)],
        sinks: &[String],
    ) -> miette::Result<(bool, String)> {
        let path = project.dir().join(&test.expected);
        // A component test records one output; only a flow test says which sink took what.
        let flow_test = test.flow.is_some();
        let lines = |elements: &[(String, TestElement)]| -> String {
            (elements.iter())
                .map(|(sink, element)| {
                    format!("{}\n", to_json(element, flow_test.then_some(sink.as_str())))
                })
                .collect()
        };
        let actual_text = lines(actual);
        if self.bless {
            std::fs::write(&path, &actual_text)
                .into_diagnostic()
                .wrap_err_with(|| format!("cannot write `{}`", path.display()))?;
            return Ok((
                true,
                format!(
                    "{} into {}",
                    counted(actual.len(), "element"),
                    crate::cargo::relative(&path).display()
                ),
            ));
        }
        let expected = read_elements(&path, sinks)?;
        let same_element = |(e_sink, e): &(String, TestElement),
                            (a_sink, a): &(String, TestElement)| {
            e.payload == a.payload
                && e.content_type == a.content_type
                // An expected element that lists no attributes does not check them: a
                // file source's real path differs from machine to machine.
                && (e.attributes.is_empty() || sorted(&e.attributes) == sorted(&a.attributes))
                && (!flow_test || e_sink == a_sink)
        };
        if expected.len() == actual.len()
            && expected.iter().zip(actual).all(|(e, a)| same_element(e, a))
        {
            let ok = format!("{} as expected", counted(actual.len(), "element"));
            return Ok((true, ok));
        }
        let diff = similar::TextDiff::from_lines(&lines(&expected), &actual_text)
            .unified_diff()
            .header(&format!("expected ({})", test.expected), "actual")
            .to_string();
        Ok((false, diff))
    }
}

/// The field of an element whose payload is text, as it is written.
const PAYLOAD: &str = "payload";
/// The field of an element whose payload is bytes that are not UTF-8, in hex.
const PAYLOAD_HEX: &str = "payload-hex";
/// The field of an element's attributes: an object of strings.
const ATTRIBUTES: &str = "attributes";
/// The fields an element may have.
const FIELDS: [&str; 5] = [PAYLOAD, PAYLOAD_HEX, "content-type", "sink", ATTRIBUTES];

/// Attributes in key order: a test file's JSON object does not keep the order they were
/// set in.
fn sorted(attributes: &[(String, String)]) -> Vec<&(String, String)> {
    let mut sorted: Vec<_> = attributes.iter().collect();
    sorted.sort();
    sorted
}

/// Reads a file of elements, one JSON value per line: a string (a `text/plain` payload)
/// or `{"payload": "…", "content-type": "…", "sink": "…", "attributes": {"key": "value"}}`,
/// where bytes that are not UTF-8 are written `"payload-hex": "ff00…"` instead of
/// `payload`. `sink` may name one of `sinks` (a flow test's, for its expected elements),
/// and nothing else: an input, and a component test's expected elements, name none.
fn read_elements(path: &Path, sinks: &[String]) -> miette::Result<Vec<(String, TestElement)>> {
    let bytes = std::fs::read(path)
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot read `{}`", path.display()))?;
    // A byte-order mark, as some editors write, is not part of the first element.
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
    let mut elements = Vec::new();
    for (number, line) in bytes.split(|&b| b == b'\n').enumerate() {
        let at = || format!("{}:{}", path.display(), number + 1);
        let line = std::str::from_utf8(line).map_err(|error| {
            miette!(
                "{}: not UTF-8 at byte {} of the line (a payload of any bytes is written `\"{PAYLOAD_HEX}\": \"ff00…\"`)",
                at(),
                error.valid_up_to() + 1
            )
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line).map_err(|error| {
            // Each line is parsed alone: its column is what locates the error.
            let what = error.to_string();
            let where_in_line = format!(" at line {} column {}", error.line(), error.column());
            let what = what.strip_suffix(&where_in_line).unwrap_or(&what);
            miette!("{}:{}: not a JSON value: {what}", at(), error.column())
        })?;
        let element = match &value {
            Value::String(text) => ("".to_owned(), element(text.as_bytes(), "text/plain")),
            Value::Object(fields) => {
                if let Some(unknown) = fields.keys().find(|k| !FIELDS.contains(&k.as_str())) {
                    bail!(
                        help = "an element has `payload` (text) or `payload-hex` (bytes), and may have `content-type`, `sink` and `attributes`",
                        "{}: unknown field `{unknown}`",
                        at()
                    );
                }
                let text = |field: &str| match fields.get(field) {
                    None => Ok(None),
                    Some(Value::String(text)) => Ok(Some(text.as_str())),
                    Some(_) => Err(miette!("{}: `{field}` must be a string", at())),
                };
                let payload = match (text(PAYLOAD)?, text(PAYLOAD_HEX)?) {
                    (Some(text), None) => text.as_bytes().to_vec(),
                    (None, Some(hex)) => from_hex(hex)
                        .map_err(|why| miette!("{}: `{PAYLOAD_HEX}` is not hex: {why}", at()))?,
                    (Some(_), Some(_)) => {
                        bail!("{}: give `{PAYLOAD}` or `{PAYLOAD_HEX}`, not both", at())
                    }
                    (None, None) => bail!(
                        "{}: an element needs a `{PAYLOAD}` (text) or a `{PAYLOAD_HEX}` (bytes)",
                        at()
                    ),
                };
                let content_type = text("content-type")?.unwrap_or("text/plain");
                if content_type.len() > torvyn_runtime::MAX_CONTENT_TYPE_BYTES {
                    bail!(
                        "{}: `content-type` is {} bytes long; a content type is at most {}",
                        at(),
                        content_type.len(),
                        torvyn_runtime::MAX_CONTENT_TYPE_BYTES
                    );
                }
                let sink = text("sink")?.unwrap_or_default();
                if !sink.is_empty() && !sinks.iter().any(|s| s == sink) {
                    match sinks {
                        [] => bail!(
                            "{}: `sink` is for the expected elements of a flow test, to say which sink takes each",
                            at()
                        ),
                        _ => bail!(
                            "{}: `sink` names `{sink}`, which is not a sink of the flow; its sinks: {}",
                            at(),
                            sinks
                                .iter()
                                .map(|s| format!("`{s}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    }
                }
                let mut element = element(&payload, content_type);
                element.attributes = match fields.get(ATTRIBUTES) {
                    None => Vec::new(),
                    Some(Value::Object(pairs)) => (pairs.iter())
                        .map(|(key, value)| match value {
                            Value::String(value) => Ok((key.clone(), value.clone())),
                            _ => Err(miette!("{}: attribute `{key}` must be a string", at())),
                        })
                        .collect::<miette::Result<_>>()?,
                    Some(_) => bail!(
                        "{}: `{ATTRIBUTES}` must be an object of strings, such as {{\"path\": \"a.log\"}}",
                        at()
                    ),
                };
                torvyn_runtime::check_attributes(&element.attributes)
                    .map_err(|why| miette!("{}: `{ATTRIBUTES}`: {why}", at()))?;
                (sink.to_owned(), element)
            }
            _ => bail!(
                "{}: an element is a string or an object with a `payload`",
                at()
            ),
        };
        elements.push(element);
    }
    Ok(elements)
}

fn element(payload: &[u8], content_type: &str) -> TestElement {
    TestElement {
        payload: payload.to_vec(),
        content_type: content_type.to_owned(),
        attributes: Vec::new(),
    }
}

/// An element as a line of a test file: its payload as text when it is UTF-8, else in
/// hex, so that reading the line back gives the same bytes.
fn to_json(element: &TestElement, sink: Option<&str>) -> Value {
    let mut value = json!({ "content-type": element.content_type });
    match std::str::from_utf8(&element.payload) {
        Ok(text) => value[PAYLOAD] = json!(text),
        Err(_) => value[PAYLOAD_HEX] = json!(to_hex(&element.payload)),
    }
    if let Some(sink) = sink {
        value["sink"] = json!(sink);
    }
    if !element.attributes.is_empty() {
        let pairs: serde_json::Map<_, _> = (element.attributes.iter())
            .map(|(key, value)| (key.clone(), json!(value)))
            .collect();
        value[ATTRIBUTES] = Value::Object(pairs);
    }
    value
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(hex: &str) -> Result<Vec<u8>, String> {
    if !hex.len().is_multiple_of(2) {
        return Err(format!("{} digits, not an even number", hex.len()));
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            let pair = (hex.get(i..i + 2))
                .filter(|pair| pair.bytes().all(|b| b.is_ascii_hexdigit()))
                .ok_or_else(|| format!("not a hex digit at {}", i + 1))?;
            u8::from_str_radix(pair, 16).map_err(|e| e.to_string())
        })
        .collect()
}

/// Component `name` between a feed of `input` and a recorder, as a flow.
fn component_flow(
    project: &ProjectManifest,
    name: &str,
    input: Vec<(String, TestElement)>,
    recorder: &Recorder,
    release: bool,
) -> miette::Result<(Host, FlowSpec)> {
    let files = project::component_files(project, [name], release)?;
    let host = super::link::host_for(project)?;
    let loaded = super::link::load(&host, name, &files[name]);
    super::link::warn_unversioned(name, &loaded);
    let stage =
        torvyn_runtime::stage(project, name, &project.manifest().components[name], &loaded)?;
    let role = stage.body.role();
    if role == Role::Router {
        bail!("test a router within a flow, where its ports lead somewhere");
    }
    let fixture = |name: &str, body: StageBody| StageSpec {
        name: name.to_owned(),
        body,
        config: String::new(),
        limits: Default::default(),
        grants: Default::default(),
    };
    let mut stages = Vec::new();
    if role != Role::Source {
        let items: Vec<TestElement> = input.into_iter().map(|(_, element)| element).collect();
        let mut feed = fixture("input", StageBody::Feed(items));
        // The feed holds what the input file holds already: a large element is the
        // component's to take or refuse, within its own limits.
        feed.limits.budget.max_bytes = u64::MAX;
        stages.push(feed);
    }
    stages.push(stage);
    if role != Role::Sink {
        stages.push(fixture("output", StageBody::Record(recorder.clone())));
    }
    let nodes: Vec<(String, Role)> = stages
        .iter()
        .map(|s| (s.name.clone(), s.body.role()))
        .collect();
    let plan = FlowPlan::chain(name, &nodes, project.defaults().queue_capacity as usize);
    Ok((host, FlowSpec::new(plan, stages)))
}

/// The flow with its source fed `input` (when there is any) and its sinks recorded.
fn substitute(
    spec: &mut FlowSpec,
    input: Vec<(String, TestElement)>,
    recorder: &Recorder,
) -> miette::Result<()> {
    let sources: Vec<usize> = (0..spec.stages.len())
        .filter(|&n| spec.plan.nodes[n].role == Role::Source)
        .collect();
    if !input.is_empty() {
        let [source] = sources[..] else {
            bail!(
                "a flow test with `input` needs a flow of one source; this one has {}",
                sources.len()
            );
        };
        let items = input.into_iter().map(|(_, element)| element).collect();
        spec.stages[source].body = StageBody::Feed(items);
    }
    for (n, node) in spec.plan.nodes.iter().enumerate() {
        if node.role == Role::Sink {
            spec.stages[n].body = StageBody::Record(recorder.clone());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_bytes_round_trip_through_a_test_file_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("elements.jsonl");
        let payloads: [&[u8]; 4] = [b"text", b"\xff", "\u{fffd}".as_bytes(), &[0, 0xfe, 0x41]];
        let attributes = vec![("path".to_owned(), "/a b.log".to_owned())];
        let lines: String = (payloads.iter())
            .map(|p| {
                let mut element = element(p, "x/y");
                element.attributes = attributes.clone();
                format!("{}\n", to_json(&element, Some("out")))
            })
            .collect();
        std::fs::write(&path, &lines).unwrap();
        let read = read_elements(&path, &["out".to_owned()]).unwrap();
        assert_eq!(read.len(), payloads.len());
        for ((sink, element), payload) in read.iter().zip(payloads) {
            assert_eq!(
                (sink.as_str(), element.payload.as_slice()),
                ("out", payload)
            );
            assert_eq!(element.attributes, attributes);
        }
        assert!(lines.contains(r#""payload-hex":"ff""#), "{lines}");
        assert!(lines.contains("\"payload\":\"\u{fffd}\""), "{lines}");
    }

    #[test]
    fn a_content_type_longer_than_a_component_may_give_is_refused_at_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        let line = |len: usize| {
            format!(
                "{{\"payload\": \"x\", \"content-type\": \"{}\"}}\n",
                "a".repeat(len)
            )
        };
        std::fs::write(&path, line(8192)).unwrap();
        assert_eq!(
            read_elements(&path, &[]).unwrap()[0].1.content_type.len(),
            8192
        );
        std::fs::write(&path, line(8192) + &line(8193)).unwrap();
        let refused = read_elements(&path, &[]).unwrap_err().to_string();
        assert!(
            refused.contains(
                "in.jsonl:2: `content-type` is 8193 bytes long; a content type is at most 8192"
            ),
            "{refused}"
        );
    }

    #[test]
    fn a_sink_is_named_only_where_the_flow_has_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("expected.jsonl");
        std::fs::write(&path, "\"a\"\n{\"payload\": \"b\", \"sink\": \"out\"}\n").unwrap();
        let sinks = ["out".to_owned(), "audit".to_owned()];
        assert_eq!(read_elements(&path, &sinks).unwrap()[1].0, "out");
        let refused = read_elements(&path, &sinks[1..]).unwrap_err().to_string();
        assert!(
            refused.ends_with(
                "expected.jsonl:2: `sink` names `out`, which is not a sink of the flow; its sinks: `audit`"
            ),
            "{refused}"
        );
        // An input, or a component test's expected elements, name no sink.
        let refused = read_elements(&path, &[]).unwrap_err().to_string();
        assert!(
            refused.ends_with("expected.jsonl:2: `sink` is for the expected elements of a flow test, to say which sink takes each"),
            "{refused}"
        );
    }

    #[test]
    fn a_line_that_is_not_json_or_not_utf8_is_named_with_its_column_and_a_bom_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.jsonl");
        let refused = |bytes: &[u8]| {
            std::fs::write(&path, bytes).unwrap();
            read_elements(&path, &[]).unwrap_err().to_string()
        };
        assert!(
            refused(b"\"ok\"\n{\"payload\": ")
                .ends_with("in.jsonl:2:12: not a JSON value: EOF while parsing a value"),
            "{}",
            refused(b"\"ok\"\n{\"payload\": ")
        );
        assert!(
            refused(b"\"ok\"\r\n\"\xff\xfe\"\n")
                .contains("in.jsonl:2: not UTF-8 at byte 2 of the line"),
            "{}",
            refused(b"\"ok\"\r\n\"\xff\xfe\"\n")
        );
        std::fs::write(&path, b"\xef\xbb\xbf\"hello\"\r\n").unwrap();
        assert_eq!(read_elements(&path, &[]).unwrap()[0].1.payload, b"hello");
    }

    #[test]
    fn hex_is_checked() {
        assert_eq!(from_hex("00ffAb").unwrap(), [0, 0xff, 0xab]);
        assert!(from_hex("f").is_err());
        assert!(from_hex("+f").is_err());
        assert!(from_hex("zz").is_err());
        assert!(from_hex("é0").is_err());
    }
}
