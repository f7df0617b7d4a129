//! The flow driver: the loop described in the module docs, and the report it leaves.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use super::queue::{Queue, Queued};
use super::stage::{CallError, Handled, Stage};
use crate::engine::{BackpressureSignal, FlowIdentity, LoadedComponent, ProcessError};
use crate::observability::{BufferReport, EdgeReport, FlowReport, Outcome, StageReport};
use crate::resources::{BufferTable, StageBudget};

/// Elements a flow handles between two yields to tokio.
const YIELD_EVERY: u32 = 32;
/// Longest a flow runs between two yields to tokio.
const YIELD_AFTER: Duration = Duration::from_micros(100);

/// A component in its place in a flow.
#[derive(Debug, Clone)]
pub struct StageSpec {
    /// The node's name.
    pub name: String,
    /// The component, loaded.
    pub component: LoadedComponent,
    /// Handed to the component's `init`.
    pub config: String,
}

/// A linear flow ready to run: stages source first, and a queue between each pair.
#[derive(Debug, Clone)]
pub struct FlowSpec {
    /// The flow's name.
    pub name: String,
    /// The stages, source first, sink last.
    pub stages: Vec<StageSpec>,
    /// Capacity of the queue after each stage but the last.
    pub capacities: Vec<usize>,
    /// How long the host holds off a sink that answered `pause`.
    pub sink_pause: Duration,
    /// What each stage may hold in buffers.
    pub budget: StageBudget,
}

/// Bounds on one run of a flow.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Stop the source after this many elements.
    pub limit: Option<u64>,
    /// Stop the source after this long.
    pub timeout: Option<Duration>,
    /// Stop the source when cancelled; what is in flight is still delivered.
    pub cancel: CancellationToken,
}

/// How a flow failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowErrorKind {
    /// The component could not be instantiated.
    Instantiate(String),
    /// `init` returned an error or trapped.
    Init(String),
    /// The component returned a `process-error`.
    Process(String),
    /// The component trapped (or misused a buffer, which traps it).
    Trap(String),
}

/// A flow that ended in failure, naming where.
#[derive(Debug, Clone, thiserror::Error, miette::Diagnostic)]
#[error("flow `{flow}`: stage `{stage}` {what}", what = self.describe())]
#[diagnostic(code(torvyn::flow::failed))]
pub struct FlowError {
    /// The flow.
    pub flow: String,
    /// The node that failed.
    pub stage: String,
    /// The element it was handling, if any.
    pub sequence: Option<u64>,
    /// What happened.
    pub kind: FlowErrorKind,
}

impl FlowError {
    fn describe(&self) -> String {
        let at = match self.sequence {
            Some(sequence) => format!(" on element {sequence}"),
            None => String::new(),
        };
        match &self.kind {
            FlowErrorKind::Instantiate(why) => format!("could not be instantiated: {why}"),
            FlowErrorKind::Init(why) => format!("failed in init: {why}"),
            FlowErrorKind::Process(why) => format!("returned an error{at}: {why}"),
            FlowErrorKind::Trap(why) => format!("trapped{at}: {why}"),
        }
    }
}

fn describe_process_error(error: &ProcessError) -> String {
    match error {
        ProcessError::InvalidInput(why) => format!("invalid input: {why}"),
        ProcessError::Unavailable(why) => format!("unavailable: {why}"),
        ProcessError::Internal(why) => format!("internal error: {why}"),
        ProcessError::DeadlineExceeded => "deadline exceeded".into(),
        ProcessError::Fatal(why) => format!("fatal: {why}"),
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

struct Driver {
    flow: String,
    stages: Vec<Stage>,
    queues: Vec<Queue>,
    table: BufferTable,
    sink_pause: Duration,
    sink_resume_at: Option<Instant>,
    source_paused: bool,
    source_done: bool,
    outcome: Outcome,
    source_pauses: u64,
    sink_pauses: u64,
    delivered: u64,
}

impl Driver {
    fn fail(&self, stage: usize, sequence: Option<u64>, error: CallError) -> FlowError {
        let kind = match error {
            CallError::Process(error) => FlowErrorKind::Process(describe_process_error(&error)),
            CallError::Trap(trap) => FlowErrorKind::Trap(format!("{trap:?}")),
        };
        FlowError {
            flow: self.flow.clone(),
            stage: self.stages[stage].name.clone(),
            sequence,
            kind,
        }
    }

    fn source_emitted(&self) -> u64 {
        self.stages[0].emitted
    }

    /// Pulls one element from the source into the first queue.
    async fn pull(&mut self) -> Result<(), FlowError> {
        let sequence = self.source_emitted();
        match self.stages[0].pull(&mut self.table).await {
            Ok(Some(output)) => {
                self.queues[0].push(Queued {
                    sequence,
                    timestamp_ns: now_ns(),
                    content_type: output.meta.content_type,
                    buffer: output.payload.rep(),
                });
                if self.queues[0].is_full() {
                    self.signal_source(BackpressureSignal::Pause).await?;
                }
                Ok(())
            }
            Ok(None) => {
                self.source_done = true;
                Ok(())
            }
            Err(error) => Err(self.fail(0, Some(sequence), error)),
        }
    }

    async fn signal_source(&mut self, signal: BackpressureSignal) -> Result<(), FlowError> {
        self.source_paused = signal == BackpressureSignal::Pause;
        if self.source_paused {
            self.source_pauses += 1;
        }
        let result = self.stages[0].notify(&mut self.table, signal).await;
        result.map_err(|error| self.fail(0, None, error))
    }

    /// Runs stage `index` on the head of its input queue.
    async fn step(&mut self, index: usize) -> Result<(), FlowError> {
        let Some(element) = self.queues[index - 1].pop() else {
            return Ok(());
        };
        let sequence = element.sequence;
        let handled = self.stages[index]
            .handle(&mut self.table, element)
            .await
            .map_err(|error| self.fail(index, Some(sequence), error))?;
        match handled {
            Handled::Forward(output) => self.queues[index].push(output),
            Handled::Consumed => {}
            Handled::Delivered(signal) => {
                self.delivered += 1;
                if signal == BackpressureSignal::Pause {
                    self.sink_pauses += 1;
                    self.sink_resume_at = Some(Instant::now() + self.sink_pause);
                }
            }
        }
        Ok(())
    }

    fn sink_ready(&mut self) -> bool {
        match self.sink_resume_at {
            Some(at) if Instant::now() < at => false,
            Some(_) => {
                self.sink_resume_at = None;
                true
            }
            None => true,
        }
    }

    /// Does one unit of work; `false` when nothing could run right now.
    async fn turn(&mut self) -> Result<bool, FlowError> {
        let sink = self.stages.len() - 1;
        for index in (1..=sink).rev() {
            if self.queues[index - 1].is_empty() {
                continue;
            }
            let can_run = if index == sink {
                self.sink_ready()
            } else {
                !self.queues[index].is_full()
            };
            if can_run {
                self.step(index).await?;
                return Ok(true);
            }
        }
        if self.source_done {
            return Ok(false);
        }
        let first = &self.queues[0];
        if self.source_paused && first.len() <= first.capacity() / 2 {
            self.signal_source(BackpressureSignal::Ready).await?;
        }
        if !self.source_paused && !self.queues[0].is_full() {
            self.pull().await?;
            return Ok(true);
        }
        Ok(false)
    }

    fn drained(&self) -> bool {
        self.source_done && self.queues.iter().all(Queue::is_empty)
    }

    fn stop_source(&mut self, outcome: Outcome) {
        if !self.source_done {
            self.source_done = true;
            self.outcome = outcome;
        }
    }

    fn report(&self, duration: Duration) -> FlowReport {
        let per_stage = self.table.copies_per_stage();
        FlowReport {
            flow: self.flow.clone(),
            outcome: self.outcome,
            emitted: self.source_emitted(),
            delivered: self.delivered,
            duration,
            copies: self.table.copies(),
            source_pauses: self.source_pauses,
            sink_pauses: self.sink_pauses,
            stages: self
                .stages
                .iter()
                .zip(per_stage)
                .map(|(stage, copies)| StageReport {
                    name: stage.name.clone(),
                    role: stage.role,
                    received: stage.received,
                    emitted: stage.emitted,
                    dropped: stage.dropped,
                    copies: *copies,
                })
                .collect(),
            edges: self
                .queues
                .iter()
                .enumerate()
                .map(|(i, queue)| EdgeReport {
                    from: self.stages[i].name.clone(),
                    to: self.stages[i + 1].name.clone(),
                    capacity: queue.capacity(),
                    max_depth: queue.max_depth(),
                })
                .collect(),
            buffers: BufferReport {
                live: self.table.live(),
                high_water: self.table.slots(),
                pool: self.table.pool_stats(),
            },
        }
    }

    /// Tells the sink the stream has ended.
    async fn complete(&mut self) -> Result<(), FlowError> {
        let sink = self.stages.len() - 1;
        let completed = self.stages[sink].complete(&mut self.table).await;
        completed.map_err(|error| self.fail(sink, None, error))
    }

    /// Best-effort teardown of every started stage after a failure, except one that
    /// trapped (a trapped instance must not be entered again). The flow's error is what
    /// matters, so errors from teardown are ignored.
    async fn teardown_after_failure(&mut self, error: &FlowError) {
        let trapped = matches!(error.kind, FlowErrorKind::Trap(_)).then_some(&error.stage);
        for stage in &mut self.stages {
            if trapped != Some(&stage.name) {
                let _ = stage.teardown(&mut self.table).await;
            }
        }
    }
}

/// Instantiates every stage, calls `init`, runs the flow to its end and tears it down.
pub(crate) async fn run_flow(
    engine: &wasmtime::Engine,
    spec: FlowSpec,
    options: RunOptions,
) -> Result<FlowReport, FlowError> {
    let identity = Arc::new(FlowIdentity {
        flow_id: spec.name.clone(),
    });
    let mut driver = Driver {
        flow: spec.name.clone(),
        stages: Vec::with_capacity(spec.stages.len()),
        queues: spec.capacities.iter().map(|&c| Queue::new(c)).collect(),
        table: BufferTable::new(spec.stages.len(), spec.budget),
        sink_pause: spec.sink_pause,
        sink_resume_at: None,
        source_paused: false,
        source_done: false,
        outcome: Outcome::Completed,
        source_pauses: 0,
        sink_pauses: 0,
        delivered: 0,
    };
    for (index, stage) in spec.stages.iter().enumerate() {
        let started = start_stage(engine, index, stage, identity.clone()).await;
        match started {
            Ok(instance) => driver.stages.push(instance),
            Err(kind) => {
                // Stages already started get their teardown; this one never started.
                let error = FlowError {
                    flow: spec.name.clone(),
                    stage: stage.name.clone(),
                    sequence: None,
                    kind,
                };
                driver.teardown_after_failure(&error).await;
                return Err(error);
            }
        }
    }
    let started = Instant::now();
    let deadline = options.timeout.map(|t| started + t);
    let mut result = drive(&mut driver, &options, deadline).await;
    if result.is_ok() {
        result = driver.complete().await;
    }
    if let Err(error) = result {
        driver.teardown_after_failure(&error).await;
        return Err(error);
    }
    let duration = started.elapsed();
    let mut first_failure = None;
    for index in 0..driver.stages.len() {
        let torn_down = driver.stages[index].teardown(&mut driver.table).await;
        if let Err(error) = torn_down {
            first_failure.get_or_insert(driver.fail(index, None, error));
        }
    }
    match first_failure {
        Some(error) => Err(error),
        None => Ok(driver.report(duration)),
    }
}

/// Instantiates a stage and calls its `init`.
async fn start_stage(
    engine: &wasmtime::Engine,
    index: usize,
    stage: &StageSpec,
    identity: Arc<FlowIdentity>,
) -> Result<Stage, FlowErrorKind> {
    let mut instance = Stage::instantiate(
        engine,
        index,
        stage.name.clone(),
        &stage.component,
        identity,
    )
    .await
    .map_err(|e| FlowErrorKind::Instantiate(format!("{e:?}")))?;
    instance.init(&stage.config).await.map_err(|error| {
        FlowErrorKind::Init(match error {
            CallError::Process(error) => describe_process_error(&error),
            CallError::Trap(trap) => format!("{trap:?}"),
        })
    })?;
    Ok(instance)
}

async fn drive(
    driver: &mut Driver,
    options: &RunOptions,
    deadline: Option<Instant>,
) -> Result<(), FlowError> {
    let mut since_yield = 0u32;
    let mut last_yield = Instant::now();
    loop {
        if options.cancel.is_cancelled() {
            driver.stop_source(Outcome::Cancelled);
        }
        if options
            .limit
            .is_some_and(|limit| driver.source_emitted() >= limit)
        {
            driver.stop_source(Outcome::LimitReached);
        }
        if driver.turn().await? {
            since_yield += 1;
            if since_yield >= YIELD_EVERY || last_yield.elapsed() >= YIELD_AFTER {
                tokio::task::yield_now().await;
                since_yield = 0;
                last_yield = Instant::now();
                if deadline.is_some_and(|at| last_yield >= at) {
                    driver.stop_source(Outcome::TimedOut);
                }
            }
            continue;
        }
        if driver.drained() {
            return Ok(());
        }
        // Nothing can run: the sink asked to pause and every queue before it is full
        // (or the source is paused waiting for them to drain).
        let wake = driver.sink_resume_at.unwrap_or_else(Instant::now);
        tokio::select! {
            () = tokio::time::sleep_until(wake.into()) => {}
            () = options.cancel.cancelled(), if !driver.source_done => {}
        }
        since_yield = 0;
        last_yield = Instant::now();
        if deadline.is_some_and(|at| last_yield >= at) {
            driver.stop_source(Outcome::TimedOut);
        }
    }
}
