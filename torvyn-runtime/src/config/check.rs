//! The checks that need the whole manifest and nothing else: every reference resolves,
//! every name can be shown and used, every number is within its [`bounds`](super::bounds).

use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::bounds::{self, Bounds};
use super::{EdgeDecl, ErrorPolicyDecl, FallbackDecl, FlowDecl, LimitsDecl, ManifestError};
use super::{ProjectManifest, RetryDecl};

impl ProjectManifest {
    /// Adds to `problems` what is wrong with the manifest as a whole: every problem, not
    /// just the first.
    pub(super) fn find_problems(&self, problems: &mut Vec<ManifestError>) {
        let mut keep = |result: Result<(), ManifestError>| {
            if let Err(problem) = result {
                problems.push(problem);
            }
        };
        let manifest = &self.manifest;
        let project = &manifest.project.name;
        if project.get_ref().trim().is_empty() {
            keep(Err(self.error_at(
                project.span(),
                "the project name is empty",
                None,
            )));
        } else {
            keep(self.check_file_name("project", project.get_ref(), project.span()));
        }
        for (name, decl) in &manifest.components {
            keep(self.check_file_name("component", name, decl.path.span()));
            if decl.path.get_ref().trim().is_empty() {
                keep(Err(self.error_at(
                    decl.path.span(),
                    "the component path is empty",
                    None,
                )));
            }
            self.check_limits(&decl.limits, &mut keep);
            self.check_build(name, decl, &mut keep);
        }
        self.check_connectors(&mut keep);
        self.check_settings(&mut keep);
        for (name, test) in &manifest.tests {
            keep(self.check_name("test", name, test.span()));
            let decl = test.get_ref();
            let missing = match (&decl.component, &decl.flow) {
                (Some(component), None) => (!manifest.components.contains_key(component.get_ref()))
                    .then(|| {
                        (
                            component.span(),
                            format!("component `{}`", component.get_ref()),
                        )
                    }),
                (None, Some(flow)) => (!manifest.flows.contains_key(flow.get_ref()))
                    .then(|| (flow.span(), format!("flow `{}`", flow.get_ref()))),
                _ => Some((
                    test.span(),
                    "neither or both of `component` and `flow`".to_owned(),
                )),
            };
            if let Some((span, what)) = missing {
                keep(Err(self.error_at(
                    span,
                    format!("test `{name}` names {what}, which this manifest does not declare"),
                    Some("a test names one `component` or one `flow` of this manifest".into()),
                )));
            }
        }
        for (flow, decl) in &manifest.flows {
            let before = problems.len();
            self.check_flow(flow, decl, problems);
            // Its shape, once every name in it resolves, with the roles declared here.
            if problems.len() == before {
                let declared = |name: &str| manifest.declared_role(name);
                problems.extend(crate::topology::check_flow(self, flow, decl, declared));
            }
        }
    }

    /// The problems of flow `flow` that need no plan: its names and numbers.
    fn check_flow(&self, flow: &str, decl: &FlowDecl, problems: &mut Vec<ManifestError>) {
        let manifest = &self.manifest;
        let mut keep = |result: Result<(), ManifestError>| {
            if let Err(problem) = result {
                problems.push(problem);
            }
        };
        let declared = || {
            let names = manifest.node_names();
            Some(format!(
                "declared components and connectors: {}",
                names.join(", ")
            ))
        };
        let flow_span = decl.nodes.first().map_or(0..0, Spanned::span);
        keep(self.check_file_name("flow", flow, flow_span));
        for (i, node) in decl.nodes.iter().enumerate() {
            if !manifest.declares_node(node.get_ref()) {
                keep(Err(self.error_at(
                    node.span(),
                    format!(
                        "node `{}` of flow `{flow}` names no component or connector",
                        node.get_ref()
                    ),
                    declared(),
                )));
            }
            if decl.nodes[..i]
                .iter()
                .any(|n| n.get_ref() == node.get_ref())
            {
                keep(Err(self.error_at(
                    node.span(),
                    format!("node `{}` appears twice in flow `{flow}`", node.get_ref()),
                    None,
                )));
            }
            keep(self.check_default_consumer(flow, node));
        }
        if let Some(capacity) = &decl.queue_capacity {
            keep(self.check_count(capacity, bounds::QUEUE_CAPACITY, "queue capacity"));
        }
        for edge in &decl.edges {
            let edge = edge.get_ref();
            for end in [&edge.from, &edge.to] {
                if !decl.nodes.iter().any(|n| n.get_ref() == end.get_ref()) {
                    keep(Err(self.error_at(
                        end.span(),
                        format!(
                            "edge end `{}` is not a node of flow `{flow}`",
                            end.get_ref()
                        ),
                        Some(format!(
                            "add `{}` to `nodes` of flow `{flow}`, or fix the name",
                            end.get_ref()
                        )),
                    )));
                }
            }
            if let Some(capacity) = &edge.capacity {
                keep(self.check_count(capacity, bounds::QUEUE_CAPACITY, "queue capacity"));
            }
            if let Some(port) = &edge.port {
                keep(self.check_name("port", port.get_ref(), port.span()));
            }
            keep(self.check_watermarks(decl, edge));
        }
        let is_node = |name: &str| decl.nodes.iter().any(|n| n.get_ref() == name);
        for (node, policy) in &decl.on_error {
            if !is_node(node.get_ref()) {
                keep(Err(self.error_at(
                    node.span(),
                    format!(
                        "`on-error` names `{}`, which is not a node of flow `{flow}`",
                        node.get_ref()
                    ),
                    None,
                )));
            }
            let (retry, dead_letter) = match policy.get_ref() {
                ErrorPolicyDecl::Simple(_) => (None, None),
                ErrorPolicyDecl::DeadLetter(d) => (None, Some(d)),
                ErrorPolicyDecl::Retry(retry) => match &retry.then {
                    Some(FallbackDecl::DeadLetter(d)) => (Some(retry), Some(d)),
                    _ => (Some(retry), None),
                },
            };
            if let Some(retry) = retry {
                keep(self.retry_backoff(retry, policy.span()).map(drop));
                if let Err(why) = bounds::RETRIES.check_count(retry.retry) {
                    keep(Err(self.error_at(
                        policy.span(),
                        format!("the number of retries {why}"),
                        None,
                    )));
                }
            }
            if let Some(target) = dead_letter.map(|d| &d.dead_letter)
                && !is_node(target)
            {
                keep(Err(self.error_at(
                    policy.span(),
                    format!("dead-letter node `{target}` is not a node of flow `{flow}`"),
                    Some(format!(
                        "add a sink `{target}` to `nodes` of flow `{flow}`, or fix the name"
                    )),
                )));
            }
        }
        let timings = [
            (&decl.invocation_deadline, bounds::INVOCATION_DEADLINE),
            (&decl.sink_pause, bounds::SINK_PAUSE),
            (&decl.restart_period, bounds::RESTART_PERIOD),
        ];
        if let Some(max) = &decl.max_restarts {
            keep(self.check_count(max, bounds::MAX_RESTARTS, "max-restarts"));
        }
        for (duration, range) in timings {
            if let Some(duration) = duration {
                keep(self.duration(duration, range).map(drop));
            }
        }
    }

    /// Parses the duration (such as `10ms`) of a setting and checks it is within `range`.
    pub fn duration(
        &self,
        text: &Spanned<String>,
        range: Bounds<Duration>,
    ) -> Result<Duration, ManifestError> {
        self.duration_at(text.get_ref(), text.span(), range)
    }

    /// A retry policy's backoff, written at `span`; [`DEFAULT_BACKOFF`] when it sets none.
    ///
    /// [`DEFAULT_BACKOFF`]: crate::topology::DEFAULT_BACKOFF
    pub fn retry_backoff(
        &self,
        retry: &RetryDecl,
        span: Range<usize>,
    ) -> Result<Duration, ManifestError> {
        match &retry.backoff {
            Some(text) => self.duration_at(text, span, bounds::RETRY_BACKOFF),
            None => Ok(crate::topology::DEFAULT_BACKOFF),
        }
    }

    fn duration_at(
        &self,
        text: &str,
        span: Range<usize>,
        range: Bounds<Duration>,
    ) -> Result<Duration, ManifestError> {
        let duration = humantime::parse_duration(text).map_err(|error| {
            self.error_at(
                span.clone(),
                format!("`{text}` is not a duration: {error}"),
                Some("write a number and a unit, such as `10ms`, `2s` or `1m`".into()),
            )
        })?;
        range.check_written(duration, text.trim()).map_err(|why| {
            let (min, max) = (
                humantime::format_duration(range.min),
                humantime::format_duration(range.max),
            );
            self.error_at(
                span,
                why,
                Some(format!("write a duration from {min} to {max}")),
            )
        })
    }

    /// The `[settings]` table: no setting of the machine rather than the project, each
    /// value within its bounds.
    fn check_settings(&self, keep: &mut impl FnMut(Result<(), ManifestError>)) {
        let settings = &self.manifest.settings;
        let machine = [
            ("cache-dir", settings.cache_dir.is_some()),
            ("registry.username", settings.registry.username.is_some()),
            ("registry.password", settings.registry.password.is_some()),
            ("registry.insecure", !settings.registry.insecure.is_empty()),
        ];
        for (key, set) in machine {
            if set {
                keep(Err(self.error_at(
                    self.settings_span(key),
                    format!("`{key}` is a setting of the machine, not of the project"),
                    Some(format!(
                        "set it in the user's configuration file, or in {}",
                        super::settings::env_var(key)
                    )),
                )));
            }
        }
        if let Err(error) = settings.defaults() {
            keep(Err(self.error_at(
                self.settings_span(error.key),
                format!("`{}` of {}", error.key, error.why),
                None,
            )));
        }
    }

    /// Where the dotted `key` of the `[settings]` table is written: its name, or the
    /// nearest table above it that is.
    fn settings_span(&self, key: &str) -> Range<usize> {
        let Ok(root) = toml::de::DeTable::parse(&self.text) else {
            return 0..0;
        };
        let (mut table, mut span) = (root.get_ref(), 0..0);
        for part in std::iter::once("settings").chain(key.split('.')) {
            let Some((name, value)) = table.iter().find(|(name, _)| name.get_ref() == part) else {
                break;
            };
            span = name.span();
            match value.get_ref() {
                toml::de::DeValue::Table(inner) => table = inner,
                _ => break,
            }
        }
        span
    }

    /// A component's `[limits]`: each is within its bounds.
    fn check_limits(&self, limits: &LimitsDecl, keep: &mut impl FnMut(Result<(), ManifestError>)) {
        if let Some(time) = &limits.invocation_time {
            keep(self.duration(time, bounds::INVOCATION_TIME).map(drop));
        }
        let sizes = [
            (&limits.memory, bounds::MEMORY, "memory"),
            (
                &limits.buffer_memory,
                bounds::BUFFER_MEMORY,
                "buffer-memory",
            ),
        ];
        for (size, range, what) in sizes {
            if let Some(size) = size
                && let Err(why) = range.check_size(size.get_ref().as_u64())
            {
                keep(Err(self.error_at(
                    size.span(),
                    format!("`{what}` of {why}"),
                    None,
                )));
            }
        }
        let counts = [
            (
                &limits.table_elements,
                bounds::AT_LEAST_ONE,
                "table-elements",
            ),
            (&limits.instances, bounds::AT_LEAST_ONE, "instances"),
            (
                &limits.buffer_handles,
                bounds::BUFFER_HANDLES,
                "buffer-handles",
            ),
        ];
        for (count, range, what) in counts {
            if let Some(count) = count {
                keep(self.check_count(count, range, what));
            }
        }
        if let Some(fuel) = &limits.fuel {
            keep(self.check_count(fuel, bounds::FUEL, "fuel"));
        }
    }

    fn check_count<T>(
        &self,
        count: &Spanned<T>,
        range: Bounds<T>,
        what: &str,
    ) -> Result<(), ManifestError>
    where
        T: Copy + Into<u64> + std::fmt::Display,
    {
        match range.check_count(*count.get_ref()) {
            Ok(_) => Ok(()),
            Err(why) => Err(self.error_at(count.span(), format!("a {what} of {why}"), None)),
        }
    }

    /// A name a flow uses (of a component, flow, test or port) can be shown on one line and
    /// used as a metric label: not empty, and without control characters.
    pub(super) fn check_name(
        &self,
        what: &str,
        name: &str,
        span: Range<usize>,
    ) -> Result<(), ManifestError> {
        let problem = if name.trim().is_empty() {
            format!("a {what} name is empty")
        } else if name.chars().any(char::is_control) {
            format!(
                "the {what} name \"{}\" holds control characters",
                name.escape_debug()
            )
        } else {
            return Ok(());
        };
        Err(self.error_at(
            span,
            problem,
            Some("use letters, digits, `-` and `_`".into()),
        ))
    }

    /// A name that also names a folder or file, as [`check_name`](Self::check_name) asks,
    /// and one folder or file name: no `/` or `\\`, not `.` or `..`. A file source's
    /// checkpoint is `STATE/FLOW/NODE.json`, `bench` writes its report in a folder named
    /// after the flow, `pack` its layouts after the components and the project: a `/`
    /// would put the file elsewhere, where another could be (`a/b` + `c` and `a` + `b/c`
    /// are one checkpoint).
    pub(super) fn check_file_name(
        &self,
        what: &str,
        name: &str,
        span: Range<usize>,
    ) -> Result<(), ManifestError> {
        self.check_name(what, name, span.clone())?;
        if !(name.contains(['/', '\\']) || name == "." || name == "..") {
            return Ok(());
        }
        Err(self.error_at(
            span,
            format!(
                "the {what} name `{name}` is not one folder or file name, which Torvyn makes of \
                 it"
            ),
            Some("use letters, digits, `-` and `_`".into()),
        ))
    }

    fn check_watermarks(&self, decl: &FlowDecl, edge: &EdgeDecl) -> Result<(), ManifestError> {
        let default = self.defaults().queue_capacity;
        let capacity = edge.capacity(decl, default);
        if bounds::QUEUE_CAPACITY.check_count(capacity).is_err() {
            // Refused as a capacity already: watermarks made from it say nothing more.
            return Ok(());
        }
        let (high, low) = edge.watermarks(decl, default);
        let problem = if high > capacity {
            Some(format!(
                "the high watermark {high} is above the edge's capacity {capacity}"
            ))
        } else if low >= high {
            Some(format!(
                "the low watermark {low} must be below the high watermark {high}"
            ))
        } else {
            None
        };
        match problem {
            Some(message) => {
                let at = edge.high_watermark.as_ref().or(edge.low_watermark.as_ref());
                let span = at.map_or_else(|| edge.from.span(), Spanned::span);
                Err(self.error_at(span, message, None))
            }
            None => Ok(()),
        }
    }
}
