//! The ownership rules under arbitrary sequences of what guests may ask: whatever the
//! handle and the stage, the table never panics, refuses what the rules forbid, and
//! accounts for every buffer.

use proptest::prelude::*;

use super::*;

const STAGES: usize = 3;

#[derive(Debug, Clone)]
enum Op {
    Allocate {
        stage: usize,
        hint: u64,
    },
    Append {
        stage: usize,
        handle: usize,
        len: usize,
    },
    Freeze {
        stage: usize,
        handle: usize,
    },
    Filled {
        stage: usize,
        len: usize,
    },
    DropMutable {
        stage: usize,
        handle: usize,
    },
    DropBuffer {
        stage: usize,
        handle: usize,
    },
    TakeOutput {
        stage: usize,
        handle: usize,
    },
    Read {
        stage: usize,
        handle: usize,
    },
    Release {
        handle: usize,
    },
    Reclaim {
        stage: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let stage = 0..STAGES;
    let handle = 0usize..64;
    prop_oneof![
        (stage.clone(), 0u64..70_000).prop_map(|(stage, hint)| Op::Allocate { stage, hint }),
        (stage.clone(), handle.clone(), 0usize..300).prop_map(|(stage, handle, len)| Op::Append {
            stage,
            handle,
            len
        }),
        (stage.clone(), handle.clone()).prop_map(|(stage, handle)| Op::Freeze { stage, handle }),
        (stage.clone(), 0usize..70_000).prop_map(|(stage, len)| Op::Filled { stage, len }),
        (stage.clone(), handle.clone())
            .prop_map(|(stage, handle)| Op::DropMutable { stage, handle }),
        (stage.clone(), handle.clone())
            .prop_map(|(stage, handle)| Op::DropBuffer { stage, handle }),
        (stage.clone(), handle.clone())
            .prop_map(|(stage, handle)| Op::TakeOutput { stage, handle }),
        (stage.clone(), handle.clone()).prop_map(|(stage, handle)| Op::Read { stage, handle }),
        handle.prop_map(|handle| Op::Release { handle }),
        stage.prop_map(|stage| Op::Reclaim { stage }),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Mutable,
    Husk,
    Owned,
    Host,
}

/// What the rules say each live buffer is: its handle, its holder and its kind.
#[derive(Default)]
struct Model(Vec<(u32, usize, Kind)>);

impl Model {
    /// The live handle `index` picks, or a handle no buffer has.
    fn pick(&self, index: usize) -> u32 {
        self.0.get(index).map_or(1_000 + index as u32, |b| b.0)
    }

    fn is(&self, rep: u32, stage: usize, kinds: &[Kind]) -> bool {
        self.0
            .iter()
            .any(|&(r, s, k)| r == rep && s == stage && kinds.contains(&k))
    }

    fn set(&mut self, rep: u32, kind: Kind) {
        if let Some(buffer) = self.0.iter_mut().find(|b| b.0 == rep) {
            buffer.2 = kind;
        }
    }

    fn remove(&mut self, rep: u32) {
        self.0.retain(|b| b.0 != rep);
    }
}

proptest! {
    #[test]
    fn guests_cannot_break_the_ownership_rules(ops in prop::collection::vec(op(), 0..300)) {
        let budget = StageBudget { max_bytes: 200_000, max_handles: 6 };
        let mut table = BufferTable::new(vec![budget; STAGES]);
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Allocate { stage, hint } => {
                    if let Ok(rep) = table.allocate(stage, hint) {
                        model.0.push((rep, stage, Kind::Mutable));
                    }
                }
                Op::Append { stage, handle, len } => {
                    let rep = model.pick(handle);
                    let result = table.append(stage, rep, &vec![7; len]);
                    if !model.is(rep, stage, &[Kind::Mutable, Kind::Husk]) {
                        prop_assert!(matches!(result, Err(BufferError::Misuse(_))));
                    }
                }
                Op::Freeze { stage, handle } => {
                    let rep = model.pick(handle);
                    let allowed = model.is(rep, stage, &[Kind::Mutable]);
                    match table.freeze(stage, rep) {
                        Ok(frozen) => {
                            prop_assert!(allowed);
                            model.set(rep, Kind::Husk);
                            model.0.push((frozen, stage, Kind::Owned));
                        }
                        // Out of budget: the buffer stays as it was.
                        Err(BufferError::AllocationFailed(_)) => prop_assert!(allowed),
                        Err(_) => prop_assert!(!allowed),
                    }
                }
                Op::Filled { stage, len } => match table.filled(stage, &vec![7; len], "") {
                    Ok(rep) => model.0.push((rep, stage, Kind::Owned)),
                    // Out of budget: nothing is made.
                    Err(error) => {
                        prop_assert!(matches!(error, BufferError::AllocationFailed(_)));
                    }
                },
                Op::DropMutable { stage, handle } => {
                    let rep = model.pick(handle);
                    let allowed = model.is(rep, stage, &[Kind::Mutable, Kind::Husk]);
                    prop_assert_eq!(table.drop_mutable(stage, rep).is_ok(), allowed);
                    if allowed {
                        model.remove(rep);
                    }
                }
                Op::DropBuffer { stage, handle } => {
                    let rep = model.pick(handle);
                    let allowed = model.is(rep, stage, &[Kind::Owned]);
                    prop_assert_eq!(table.drop_buffer(stage, rep).is_ok(), allowed);
                    if allowed {
                        model.remove(rep);
                    }
                }
                Op::TakeOutput { stage, handle } => {
                    let rep = model.pick(handle);
                    let allowed = model.is(rep, stage, &[Kind::Owned]);
                    prop_assert_eq!(table.take_output(stage, rep).is_ok(), allowed);
                    if allowed {
                        model.set(rep, Kind::Host);
                    }
                }
                Op::Read { stage, handle } => {
                    let rep = model.pick(handle);
                    let allowed = model.is(rep, stage, &[Kind::Owned]);
                    prop_assert_eq!(table.read(stage, rep, 0, u64::MAX).is_ok(), allowed);
                }
                Op::Release { handle } => {
                    // The host releases only what it holds.
                    let rep = model.pick(handle);
                    if model.0.iter().any(|&(r, _, k)| r == rep && k == Kind::Host) {
                        table.release(rep);
                        model.remove(rep);
                    }
                }
                Op::Reclaim { stage } => {
                    table.reclaim(stage);
                    model.0.retain(|&(_, s, k)| s != stage || k == Kind::Host);
                }
            }
            prop_assert_eq!(table.live(), model.0.len());
            for stage in 0..STAGES {
                let held = table.held[stage];
                prop_assert!(held.handles <= budget.max_handles);
                prop_assert!(held.bytes <= budget.max_bytes);
            }
        }
        for (rep, _, kind) in std::mem::take(&mut model.0) {
            if kind == Kind::Host {
                table.release(rep);
            }
        }
        for stage in 0..STAGES {
            table.reclaim(stage);
        }
        prop_assert_eq!(table.live(), 0);
    }
}
