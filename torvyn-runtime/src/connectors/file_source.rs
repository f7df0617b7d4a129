//! The `file` source: the files matching its globs, read one after another and cut into
//! elements, resumed from their checkpoints; with `follow`, read on as `tail -F` does.
//!
//! Each element (and each element that fails, such as a line that is not JSON) gets a
//! ticket, in the order they are read. When the flow learns an element's final fate, the
//! ticket is marked; the checkpoint of each file moves over the contiguous prefix of
//! marked tickets. A failed element is marked too: a file has no way to offer it again
//! but a rerun, and the node's policy (`skip`) chose to go on without it. An element of a
//! flow that failed, or that was still in flight when its output closed, is never marked,
//! so a rerun reads it again.
//!
//! Follow mode: at the end of every file, the source is not ready until its next look, a
//! few times a second ([`FOLLOW_POLL`]). A look finds appends, files that newly match the
//! globs, a file rotated by rename (its path names another inode: the old file is read to
//! its end, then the new one from its start) and a truncated file (shorter than what was
//! read: read again from its start).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::FileSourceSpec;
use super::checkpoint::{
    self, Before, Checkpoints, FINGERPRINT_BYTES, FileCheckpoint, Identity, StateLock, new_version,
};
use super::framing::{Frame, Framer, place};
use crate::attributes::{Attributes, ReadAt, ReadAtQueue};
use crate::config::Framing;
use crate::engine::ProcessError;
use crate::observability::ConnectorReport;
use crate::reactor::{CallError, host_output};
use crate::resources::BufferTable;

/// How often a followed file is looked at once it has been read to its end.
pub(crate) const FOLLOW_POLL: Duration = Duration::from_millis(100);
/// How often checkpoints are stored while they move.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);
/// How much is read from a file at once.
const READ_SIZE: usize = 64 * 1024;

/// `pattern` as a glob of the files below `dir`: itself when absolute, else joined to
/// `dir`, whose own characters (`[`, `*`, `?`) are escaped so that they match only
/// themselves.
pub fn glob_in(dir: &Path, pattern: &str) -> String {
    if Path::new(pattern).is_absolute() {
        return pattern.to_owned();
    }
    format!(
        "{}/{pattern}",
        glob::Pattern::escape(&dir.to_string_lossy())
    )
}

/// The files matching `patterns`, in order: each pattern's matches sorted by path, each
/// file once. Unreadable folders are skipped.
pub fn glob_files(patterns: &[String]) -> Result<Vec<PathBuf>, String> {
    let mut files = Vec::new();
    for pattern in patterns {
        let paths = glob::glob(pattern).map_err(|e| format!("`{pattern}` is not a glob: {e}"))?;
        let mut matched: Vec<PathBuf> = paths.flatten().filter(|p| p.is_file()).collect();
        matched.sort();
        for path in matched {
            if !files.contains(&path) {
                files.push(path);
            }
        }
    }
    Ok(files)
}

/// What `patterns` match that is not a regular file, each with what it is instead (at
/// most `most` of them): why globs that match paths can match no file to read.
pub(crate) fn glob_others(patterns: &[String], most: usize) -> Vec<(PathBuf, &'static str)> {
    use std::os::unix::fs::FileTypeExt;
    let matched = (patterns.iter()).filter_map(|pattern| glob::glob(pattern).ok());
    (matched.flat_map(|paths| paths.flatten()))
        .filter(|path| !path.is_file())
        .take(most)
        .map(|path| {
            let what = match (std::fs::metadata(&path), std::fs::symlink_metadata(&path)) {
                (Ok(meta), _) if meta.is_dir() => "a folder",
                (Ok(meta), _) if meta.file_type().is_fifo() => "a named pipe",
                (Ok(_), _) => "not a regular file",
                (Err(_), Ok(link)) if link.file_type().is_symlink() => "a symbolic link to nothing",
                (Err(_), _) => "not readable",
            };
            (path, what)
        })
        .collect()
}

/// Why a file is no longer read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retired {
    /// Read to its end (without `follow`), or rotated away and then read to its end.
    Done,
    /// Truncated: a new entry reads it again; this one's checkpoint is meaningless.
    Truncated,
}

/// A file known to this run.
struct Tracked {
    path: PathBuf,
    /// Its path as text, the `path` attribute of its elements.
    name: Arc<str>,
    /// Whether its lines are numbered: not when it was resumed from a checkpoint that did
    /// not count them.
    numbered: bool,
    /// Closed once the file is retired, so that a rotated file deleted later frees its
    /// space.
    file: Option<File>,
    identity: Identity,
    /// Which reading of the file this is (its checkpoint's `version`): the `file-version`
    /// attribute of its elements.
    version: Arc<str>,
    framer: Framer,
    /// How far it has been read.
    fed: u64,
    /// Its first bytes as read (up to [`FINGERPRINT_BYTES`]), when read from its start:
    /// what a look compares the file's start with, and its fingerprint.
    head: Vec<u8>,
    /// Everything up to here has its fate known.
    settled: u64,
    /// The last bytes read, up to [`FINGERPRINT_BYTES`], ending at `fed`.
    tail: Vec<u8>,
    /// The bytes before a position of the file, as read: where it had been read to when
    /// a checkpoint was last stored, or the checkpoint's own position when resumed from
    /// one (until this run has read a KiB). What a restart (or a look, while followed)
    /// finds there if the file is still this one.
    before: Option<Before>,
    /// The lines that end at or before `settled`.
    settled_lines: u64,
    /// Elements ending at or before this position had been read by the run that wrote
    /// the checkpoint this one resumed from: reading them again is a replay.
    replay_until: u64,
    /// Read to its current end (it may grow, when followed).
    at_end: bool,
    /// Its path now names another file: once read to its end, it is done.
    rotated: bool,
    retired: Option<Retired>,
}

/// An element or failed element whose fate is awaited.
struct Pending {
    file: usize,
    end: u64,
    /// The lines of its file that end at or before `end`.
    lines: u64,
    known: bool,
}

pub(crate) struct FileSource {
    /// Held while the source is open.
    _lock: StateLock,
    index: usize,
    spec: FileSourceSpec,
    files: Vec<Tracked>,
    /// The file being read.
    current: usize,
    /// Tickets of the results handed out and not yet taken by the driver.
    tickets: VecDeque<u64>,
    /// Attributes of the elements handed out and not yet taken by the driver.
    attributes: ReadAtQueue,
    /// Elements whose fate is awaited, by ticket from `first_ticket`.
    pending: VecDeque<Pending>,
    first_ticket: u64,
    /// The checkpoints read at the start, to resume files found later (when followed).
    resumed_from: Checkpoints,
    /// The checkpoints moved since they were last stored.
    dirty: bool,
    /// A file has a version that no stored checkpoint holds yet: stored before any of its
    /// elements is handed out, so that a restart that reads them again names them alike.
    unstored_version: bool,
    stored_at: Instant,
    next_look: Option<Instant>,
    report: ConnectorReport,
}

impl FileSource {
    pub(crate) fn open(spec: &FileSourceSpec, index: usize) -> Result<Self, String> {
        let lock = StateLock::take(&spec.checkpoint)?;
        let resumed_from = Checkpoints::load(&spec.checkpoint).map_err(|e| e.to_string())?;
        let mut source = FileSource {
            _lock: lock,
            index,
            spec: spec.clone(),
            files: Vec::new(),
            current: 0,
            tickets: VecDeque::new(),
            attributes: ReadAtQueue::default(),
            pending: VecDeque::new(),
            first_ticket: 0,
            resumed_from,
            dirty: false,
            unstored_version: false,
            stored_at: Instant::now(),
            next_look: None,
            report: ConnectorReport::new("file"),
        };
        for path in glob_files(&spec.include)? {
            source.track(path)?;
        }
        if source.files.is_empty() && !spec.follow {
            return Err(format!("no file matches {}", spec.include.join(", ")));
        }
        source.tick(true)?;
        Ok(source)
    }

    /// Starts reading `path`: where its checkpoint says, else at its start.
    fn track(&mut self, path: PathBuf) -> Result<(), String> {
        let describe = |e: std::io::Error| format!("cannot read `{}`: {e}", path.display());
        let mut file = File::open(&path).map_err(describe)?;
        let identity = Identity::of(&file).map_err(describe)?;
        let resumed = (self.resumed_from.find(&file).map_err(describe)?)
            .filter(|c| file.metadata().is_ok_and(|m| m.len() >= c.offset))
            .map(|c| {
                (
                    c.offset,
                    c.read,
                    c.lines,
                    c.version.clone(),
                    c.before.clone(),
                )
            });
        let resuming = resumed.is_some();
        let (offset, replay_until, lines, version, before) =
            resumed.unwrap_or((0, 0, Some(0), None, None));
        if resuming {
            self.report.resumed_files += 1;
            file.seek(SeekFrom::Start(offset)).map_err(describe)?;
        }
        // Stored before any of its elements is handed out (by `open`, or at the end of the
        // look that found it): a new version, or one resumed from a checkpoint that a store
        // of this run's files has left out of the state file since.
        if version.is_none() || self.report.checkpoints > 0 {
            (self.dirty, self.unstored_version) = (true, true);
        }
        let version = version.unwrap_or_else(new_version);
        let spec = self.spec.framing;
        let mut framer = Framer::new(spec.framing, spec.max_element_size, spec.oversize);
        framer.reset(offset, lines.unwrap_or(0));
        self.files.push(Tracked {
            name: path.to_string_lossy().into(),
            // Under `whole` framing, no line is counted: a checkpoint says nothing of them.
            numbered: lines.is_some() && spec.framing != Framing::Whole,
            settled_lines: lines.unwrap_or(0),
            path,
            file: Some(file),
            identity,
            version: version.into(),
            framer,
            fed: offset,
            head: Vec::new(),
            settled: offset,
            tail: Vec::new(),
            before,
            replay_until,
            at_end: false,
            rotated: false,
            retired: None,
        });
        Ok(())
    }

    /// Whether `tracked` has something to read now: it is not at its end, or its end
    /// ends its last element (without `follow`, or once rotated away).
    fn to_read(&self, tracked: &Tracked) -> bool {
        let last = tracked.at_end && (!self.spec.follow || tracked.rotated);
        tracked.retired.is_none() && (!tracked.at_end || last)
    }

    pub(crate) fn ready(&mut self) -> bool {
        if self.unstored_version {
            // Asked again after the tick that stores it.
            self.next_look.get_or_insert(Instant::now() + FOLLOW_POLL);
            return false;
        }
        if !self.spec.follow || self.files.iter().any(|f| self.to_read(f)) {
            return true;
        }
        match self.next_look {
            Some(at) if Instant::now() < at => false,
            _ => {
                self.next_look = None;
                self.look();
                let waiting = !self.files.iter().any(|f| self.to_read(f));
                if waiting {
                    self.next_look = Some(Instant::now() + FOLLOW_POLL);
                }
                !waiting
            }
        }
    }

    pub(crate) fn poll_at(&self) -> Option<Instant> {
        self.next_look
    }

    /// Follow mode, every file at its end: looks for appends, rotations, truncations and
    /// new files.
    fn look(&mut self) {
        for i in 0..self.files.len() {
            let tracked = &mut self.files[i];
            let Some(file) = &tracked.file else {
                continue;
            };
            let Ok(open) = file.metadata() else {
                continue;
            };
            // Shorter than what was read, or other first bytes, or other last bytes read
            // before the latest stored checkpoint: cut and written again (`> file`, `copytruncate`)
            // between two looks.
            let rewritten = match tracked.head.is_empty() {
                true => !tracked.identity.matches(file).unwrap_or(true),
                false => !checkpoint::starts_with(file, &tracked.head).unwrap_or(true),
            } || (tracked.before.as_ref())
                .is_some_and(|b| !b.matches(file).unwrap_or(true));
            if open.len() < tracked.fed || rewritten {
                // Truncated: a new entry reads it from its start.
                let path = tracked.path.clone();
                self.retire(i, Retired::Truncated);
                let _ = self.track_from_start(path);
                continue;
            }
            if open.len() > tracked.fed {
                tracked.at_end = false;
            }
            let renamed = std::fs::metadata(&tracked.path).map_or(true, |now| {
                (now.dev(), now.ino()) != (tracked.identity.device, tracked.identity.inode)
            });
            if renamed && !tracked.rotated {
                // Read on to its end, then the file now at its path from its start.
                tracked.rotated = true;
                tracked.at_end = false;
                self.current = i;
                let path = tracked.path.clone();
                if path.exists() {
                    let _ = self.track_from_start(path);
                }
            }
        }
        if let Ok(paths) = glob_files(&self.spec.include) {
            for path in paths {
                // Known by device and inode: a rotated file renamed to a name the globs
                // match too is the same file, not a new one.
                let Ok(meta) = std::fs::metadata(&path) else {
                    continue;
                };
                let id = (meta.dev(), meta.ino());
                let known =
                    (self.files.iter()).any(|f| (f.identity.device, f.identity.inode) == id);
                if !known {
                    let _ = self.track(path);
                }
            }
        }
        if self.unstored_version {
            // A failure leaves it unstored: the connector's next tick tries again.
            let _ = self.tick(true);
        }
    }

    /// File `i` is read no more: its handle is closed.
    fn retire(&mut self, i: usize, how: Retired) {
        let tracked = &mut self.files[i];
        tracked.retired = Some(how);
        tracked.file = None;
    }

    /// Tracks `path` as a new file, read from its start whatever checkpoint it has.
    fn track_from_start(&mut self, path: PathBuf) -> Result<(), String> {
        let checkpoints = std::mem::take(&mut self.resumed_from);
        let tracked = self.track(path);
        self.resumed_from = checkpoints;
        tracked
    }

    pub(crate) fn pull_batch(
        &mut self,
        table: &mut BufferTable,
        max: u32,
    ) -> Result<super::Pulled, CallError> {
        let mut results = Vec::new();
        if self.unstored_version {
            // Its store failed: the next tick tries again, and fails the flow if it fails.
            return Ok(results);
        }
        while results.len() < max as usize {
            match self.next_result(table, &mut results)? {
                Step::Pushed { error: true } => break,
                Step::Pushed { error: false } => {}
                Step::Wait => break,
                Step::End => {
                    results.push(Ok(None));
                    break;
                }
            }
        }
        Ok(results)
    }

    /// Pushes the next element or error of the files onto `results`, reading as needed.
    fn next_result(
        &mut self,
        table: &mut BufferTable,
        results: &mut super::Pulled,
    ) -> Result<Step, CallError> {
        loop {
            let Some(i) = self.readable() else {
                return Ok(match self.spec.follow {
                    true => Step::Wait,
                    false => Step::End,
                });
            };
            let tracked = &mut self.files[i];
            // Without `follow`, and once rotated away, the end of a file ends its last
            // element; a followed file may still be written to.
            let last = tracked.at_end && (!self.spec.follow || tracked.rotated);
            let Some(framed) = tracked.framer.next(last) else {
                if last {
                    self.retire(i, Retired::Done);
                    continue;
                }
                let Some(file) = tracked.file.as_mut() else {
                    self.retire(i, Retired::Done);
                    continue;
                };
                let spare = tracked.framer.spare(READ_SIZE);
                let read = match file.read(&mut spare[..]) {
                    Ok(read) => read,
                    Err(error) => {
                        // Not an element: the error goes through the node's policy with a
                        // ticket already settled, and the file is read no more this run
                        // (a rerun reads it again from its checkpoint).
                        tracked.framer.filled(0, READ_SIZE);
                        let why = format!("cannot read `{}`: {error}", tracked.path.display());
                        let (settled, lines) = (tracked.settled, tracked.settled_lines);
                        self.retire(i, Retired::Done);
                        let ticket = self.push_pending(i, settled, lines, true);
                        self.tickets.push_back(ticket);
                        results.push(Err(ProcessError::Unavailable(why)));
                        return Ok(Step::Pushed { error: true });
                    }
                };
                if tracked.fed == tracked.head.len() as u64 {
                    let take = read.min(FINGERPRINT_BYTES as usize - tracked.head.len());
                    tracked.head.extend_from_slice(&spare[..take]);
                }
                let keep = FINGERPRINT_BYTES as usize;
                tracked
                    .tail
                    .extend_from_slice(&spare[read.saturating_sub(keep)..read]);
                let excess = tracked.tail.len().saturating_sub(keep);
                tracked.tail.drain(..excess);
                tracked.framer.filled(read, READ_SIZE);
                tracked.fed += read as u64;
                self.report.bytes += read as u64;
                if read == 0 {
                    tracked.at_end = true;
                    if self.spec.follow && !tracked.rotated {
                        self.current = i + 1;
                    }
                }
                continue;
            };
            let (at, lines) = (framed.end, tracked.framer.lines());
            let (line, start, numbered) = (framed.line, framed.start, tracked.numbered);
            let replayed = at <= tracked.replay_until;
            let result = match framed.frame {
                Frame::Element { range, truncated } => {
                    self.report.oversize_truncated += truncated as u64;
                    let bytes = tracked.framer.bytes(range);
                    let content_type = self.spec.framing.framing.content_type();
                    let output = host_output(table, self.index, bytes, content_type.into())?;
                    self.attributes.push(|| ReadAt {
                        path: Some(tracked.name.clone()),
                        version: Some(tracked.version.clone()),
                        line: if tracked.numbered { framed.line } else { 0 },
                        offset: framed.start,
                    });
                    Ok(Some(output))
                }
                Frame::Skipped => {
                    self.report.oversize_skipped += 1;
                    self.push_pending(i, at, lines, true);
                    continue;
                }
                Frame::NotJson(why) => Err(ProcessError::InvalidInput(format!(
                    "`{}`, {}, is not JSON: {why}",
                    tracked.path.display(),
                    place(line, start, numbered)
                ))),
                Frame::TooLong(length) => Err(ProcessError::InvalidInput(format!(
                    "`{}`: {} is {length} bytes, more than max-element-size ({} bytes)",
                    tracked.path.display(),
                    place(line, start, numbered),
                    self.spec.framing.max_element_size
                ))),
            };
            self.report.replayed += replayed as u64;
            let ticket = self.push_pending(i, at, lines, false);
            self.tickets.push_back(ticket);
            let error = result.is_err();
            results.push(result);
            return Ok(Step::Pushed { error });
        }
    }

    /// The file to read from now: the current one, or the next with something to read.
    fn readable(&mut self) -> Option<usize> {
        let count = self.files.len();
        for k in 0..count {
            let i = (self.current + k) % count.max(1);
            if self.to_read(&self.files[i]) {
                self.current = i;
                return Some(i);
            }
        }
        None
    }

    fn push_pending(&mut self, file: usize, end: u64, lines: u64, known: bool) -> u64 {
        let ticket = self.first_ticket + self.pending.len() as u64;
        self.pending.push_back(Pending {
            file,
            end,
            lines,
            known,
        });
        if known {
            self.advance();
        }
        ticket
    }

    pub(crate) fn take_ticket(&mut self) -> Option<u64> {
        self.tickets.pop_front()
    }

    pub(crate) fn take_attributes(&mut self) -> Attributes {
        self.attributes.take()
    }

    pub(crate) fn omit_attributes(&mut self) {
        self.attributes.omit();
    }

    pub(crate) fn settled(&mut self, ticket: u64, failed: bool) {
        let index = ticket.checked_sub(self.first_ticket);
        let pending = index.and_then(|i| self.pending.get_mut(usize::try_from(i).ok()?));
        // A ticket settled in advance (a read error's) is not an element's.
        let Some(pending) = pending.filter(|p| !p.known) else {
            return;
        };
        pending.known = true;
        self.report.settled += 1;
        self.report.failed += u64::from(failed);
        self.advance();
    }

    /// Moves each file's checkpoint over the contiguous prefix of known fates.
    fn advance(&mut self) {
        while self.pending.front().is_some_and(|p| p.known) {
            let done = self.pending.pop_front().expect("a front");
            self.first_ticket += 1;
            let file = &mut self.files[done.file];
            if done.end >= file.settled {
                (file.settled, file.settled_lines) = (done.end, done.lines);
            }
            self.dirty = true;
        }
    }

    /// Stores the checkpoints when they moved and a second has passed, or `now`, or a file
    /// version is not stored yet.
    pub(crate) fn tick(&mut self, now: bool) -> Result<(), String> {
        let soon = now || self.unstored_version;
        if !self.dirty || (!soon && self.stored_at.elapsed() < CHECKPOINT_EVERY) {
            return Ok(());
        }
        let files = self
            .files
            .iter_mut()
            .filter(|f| f.retired != Some(Retired::Truncated));
        let mut checkpoints = Checkpoints::default();
        for tracked in files {
            // More of its start was read: a stronger fingerprint, of what was read.
            if tracked.head.len() as u64 > tracked.identity.length {
                let (device, inode) = (tracked.identity.device, tracked.identity.inode);
                tracked.identity = Identity::of_head(device, inode, &tracked.head);
            }
            // The bytes before where it had been read to, as read: a whole window of
            // them (a run that resumed keeps its checkpoint's until it has read a KiB).
            let window = tracked.fed.min(FINGERPRINT_BYTES);
            if tracked.tail.len() as u64 == window
                && (tracked.before.as_ref()).is_none_or(|b| b.offset != tracked.fed)
            {
                tracked.before = Some(Before::of_bytes(tracked.fed, &tracked.tail));
            }
            checkpoints.files.push(FileCheckpoint {
                path: tracked.path.clone(),
                identity: tracked.identity.clone(),
                offset: tracked.settled,
                read: tracked.framer.position(),
                lines: tracked.numbered.then_some(tracked.settled_lines),
                version: Some(tracked.version.to_string()),
                before: tracked.before.clone(),
            });
        }
        checkpoints.store(&self.spec.checkpoint).map_err(|e| {
            format!(
                "cannot store checkpoints in `{}`: {e}",
                self.spec.checkpoint.display()
            )
        })?;
        self.report.checkpoints += 1;
        (self.dirty, self.unstored_version) = (false, false);
        self.stored_at = Instant::now();
        Ok(())
    }

    pub(crate) fn report(&self) -> ConnectorReport {
        self.report.clone()
    }
}

/// What one step of reading gives.
enum Step {
    /// An element, or an error (which ends the batch), pushed onto the batch's results.
    Pushed { error: bool },
    /// Nothing now (a followed file at its end).
    Wait,
    /// Every file read to its end.
    End,
}
