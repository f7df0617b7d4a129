//! Unit tests of the buffer table: ownership moves, budgets, pools and the copy ledger.

use super::*;

fn table() -> BufferTable {
    BufferTable::new(vec![StageBudget::default(); 2])
}

#[test]
fn a_buffer_travels_from_stage_to_host_to_stage_and_back_to_the_pool() {
    let mut table = table();
    let mutable = table.allocate(0, 5).unwrap();
    table.append(0, mutable, b"hello").unwrap();
    table.set_content_type(0, mutable, "text/plain").unwrap();
    let frozen = table.freeze(0, mutable).unwrap();
    table.drop_mutable(0, mutable).unwrap();
    table.take_output(0, frozen).unwrap();
    table.lend(frozen, 1);
    assert_eq!(table.read(1, frozen, 0, u64::MAX).unwrap(), &b"hello"[..]);
    assert_eq!(table.content_type(frozen).unwrap(), "text/plain");
    table.give_back(frozen);
    table.release(frozen);
    assert_eq!(table.live(), 0);
    assert_eq!(
        table.copies(),
        CopyStats {
            copies: 2,
            bytes: 10
        }
    );
    assert_eq!(table.pool_stats().returns, 1);
}

#[test]
fn a_buffer_lent_to_another_table_is_not_copied_and_returns_to_the_pool_once() {
    let mut flow = table();
    let rep = host_output(&mut flow, 0, b"payload");
    let mut own = table();
    let lent = own.insert_lent(flow.lend_away(rep), "text/plain");
    // Read in its own table by stage 1, and still readable in the flow's.
    own.lend(lent, 1);
    assert_eq!(own.read(1, lent, 0, u64::MAX).unwrap(), &b"payload"[..]);
    assert_eq!(own.content_type(lent).unwrap(), "text/plain");
    own.give_back(lent);
    flow.lend(rep, 0);
    assert_eq!(flow.read(0, rep, 0, 3).unwrap(), &b"pay"[..]);
    flow.give_back(rep);
    own.release(lent);
    flow.release(rep);
    assert_eq!((own.live(), flow.live()), (0, 0));
    // Its memory went back to the flow's pool, and nowhere else.
    assert_eq!(
        (flow.pool_stats().returns, own.pool_stats().returns),
        (1, 0)
    );
    // The copies: the write, the flow's read; then the lent read, once absorbed.
    assert_eq!(flow.copies().copies, 2);
    flow.absorb_copies(&mut own);
    assert_eq!(flow.copies().copies, 3);
    assert_eq!(flow.copies_per_stage()[1].copies, 1);
    assert_eq!(own.copies().copies, 0);
}

#[test]
fn bytes_read_share_the_buffer_and_outlive_it_without_its_memory_being_reused() {
    let mut table = table();
    let rep = host_output(&mut table, 0, b"payload");
    table.lend(rep, 1);
    let whole = table.read(1, rep, 0, u64::MAX).unwrap();
    let part = table.read(1, rep, 3, 2).unwrap();
    table.give_back(rep);
    // Both reads point into the buffer's own memory: nothing was copied for them.
    let content = table.lend_away(rep);
    assert_eq!(whole.as_ptr(), content.as_ptr());
    assert_eq!(part.as_ptr(), content.as_ptr().wrapping_add(3));
    drop(content);
    // Each read counts the one copy its caller makes of it.
    assert_eq!(
        table.copies_per_stage()[1],
        CopyStats {
            copies: 2,
            bytes: 9
        }
    );
    // Released while the reads are still held, the memory cannot go back to the pool.
    table.release(rep);
    assert_eq!(table.pool_stats().returns, 0);
    let reused = host_output(&mut table, 0, b"overwritten");
    assert_eq!((&whole[..], &part[..]), (&b"payload"[..], &b"lo"[..]));
    table.release(reused);
    assert_eq!(table.pool_stats().returns, 1);
}

#[test]
fn memory_shared_by_reads_goes_back_to_the_pool_whole_whether_full_or_not() {
    for size in [5, 256] {
        let mut table = table();
        let rep = host_output(&mut table, 0, &vec![7; size]);
        table.lend(rep, 1);
        assert_eq!(table.read(1, rep, 0, u64::MAX).unwrap().len(), size);
        table.give_back(rep);
        table.release(rep);
        assert_eq!(table.pool_stats().returns, 1, "{size} bytes");
        // Taken again from the pool, with all of its 256 bytes.
        let again = table.allocate(0, 1).unwrap();
        assert_eq!(table.pool_stats().hits, 1, "{size} bytes");
        assert_eq!(
            table.slots[again as usize].bytes.capacity(),
            256,
            "{size} bytes"
        );
    }
}

/// A buffer the host owns, holding `bytes`, made by `stage`.
fn host_output(table: &mut BufferTable, stage: usize, bytes: &[u8]) -> u32 {
    let mutable = table.allocate(stage, bytes.len() as u64).unwrap();
    table.append(stage, mutable, bytes).unwrap();
    let frozen = table.freeze(stage, mutable).unwrap();
    table.drop_mutable(stage, mutable).unwrap();
    table.take_output(stage, frozen).unwrap();
    frozen
}

#[test]
fn a_frozen_mutable_buffer_refuses_writes() {
    let mut table = table();
    let mutable = table.allocate(0, 4).unwrap();
    table.freeze(0, mutable).unwrap();
    assert_eq!(
        table.append(0, mutable, b"x"),
        Err(BufferError::CapacityExceeded)
    );
    assert_eq!(table.capacity(mutable).unwrap(), 0);
    assert!(matches!(
        table.freeze(0, mutable),
        Err(BufferError::Misuse(_))
    ));
}

#[test]
fn writes_are_bounded_by_capacity_and_offset() {
    let mut table = table();
    let mutable = table.allocate(0, 0).unwrap();
    assert_eq!(table.capacity(mutable).unwrap(), 256);
    assert_eq!(
        table.write(0, mutable, 1, b"x"),
        Err(BufferError::OutOfBounds)
    );
    assert_eq!(
        table.append(0, mutable, &[0; 257]),
        Err(BufferError::CapacityExceeded)
    );
    table.append(0, mutable, b"abc").unwrap();
    table.write(0, mutable, 1, b"ZZZ").unwrap();
    let frozen = table.freeze(0, mutable).unwrap();
    assert_eq!(table.read(0, frozen, 2, 10).unwrap(), &b"ZZ"[..]);
    assert_eq!(table.read(0, frozen, 10, 10).unwrap(), &b""[..]);
}

#[test]
fn a_stage_cannot_touch_another_stages_buffers() {
    let mut table = table();
    let mutable = table.allocate(0, 4).unwrap();
    assert!(matches!(
        table.append(1, mutable, b"x"),
        Err(BufferError::Misuse(_))
    ));
    let frozen = table.freeze(0, mutable).unwrap();
    assert!(matches!(
        table.read(1, frozen, 0, 1),
        Err(BufferError::Misuse(_))
    ));
    assert!(matches!(
        table.take_output(1, frozen),
        Err(BufferError::Misuse(_))
    ));
    assert!(matches!(table.size(999), Err(BufferError::Misuse(_))));
}

/// A `text/plain` buffer holding `hello`, made by stage 0 as a component makes it through
/// the 0.1.0 contract: `allocate`, `append`, `set-content-type`, `freeze`, and dropping the
/// mutable handle.
fn made_stepwise(table: &mut BufferTable) -> u32 {
    let mutable = table.allocate(0, 5).unwrap();
    table.append(0, mutable, b"hello").unwrap();
    table.set_content_type(0, mutable, "text/plain").unwrap();
    let frozen = table.freeze(0, mutable).unwrap();
    table.drop_mutable(0, mutable).unwrap();
    frozen
}

/// Checks that `rep`, made by [`made_stepwise`] or in one step and handed over by stage 0,
/// holds what it should and reaches stage 1 with one more copy.
fn lent_after_its_making(table: &mut BufferTable, rep: u32) {
    assert_eq!(table.content_type(rep).unwrap(), "text/plain");
    assert_eq!(table.capacity(rep).unwrap(), 256);
    assert_eq!(table.handles_held(0), 0);
    table.lend(rep, 1);
    assert_eq!(table.read(1, rep, 0, u64::MAX).unwrap(), &b"hello"[..]);
    table.give_back(rep);
    table.release(rep);
    assert_eq!(table.live(), 0);
    assert_eq!(table.copies().copies, 2);
    assert_eq!(table.copies_per_stage()[0].bytes, 5);
}

#[test]
fn a_host_stage_output_is_what_the_component_path_leaves_in_one_step() {
    let (mut fused, mut stepwise) = (table(), table());
    let one = fused.host_output(0, b"hello", "text/plain").unwrap();
    let frozen = made_stepwise(&mut stepwise);
    stepwise.take_output(0, frozen).unwrap();
    for (table, rep) in [(&mut fused, one), (&mut stepwise, frozen)] {
        lent_after_its_making(table, rep);
    }
    // The stage's budget is checked as `allocate` checks it.
    let mut small = BufferTable::new(vec![StageBudget {
        max_bytes: 256,
        max_handles: 1,
    }]);
    assert!(matches!(
        small.host_output(0, &[0; 257], ""),
        Err(BufferError::AllocationFailed(_))
    ));
    assert_eq!(small.copies().copies, 0);
    let rep = small.host_output(0, &[0; 256], "").unwrap();
    assert_eq!(small.size(rep).unwrap(), 256);
}

#[test]
fn a_filled_buffer_is_what_a_components_four_calls_leave_in_one() {
    let (mut fused, mut stepwise) = (table(), table());
    let one = fused.filled(0, b"hello", "text/plain").unwrap();
    let frozen = made_stepwise(&mut stepwise);
    for (table, rep) in [(&mut fused, one), (&mut stepwise, frozen)] {
        // The component holds it, as it holds what it froze, until it hands it over.
        assert_eq!(table.handles_held(0), 1);
        assert!(matches!(
            table.append(0, rep, b"!"),
            Err(BufferError::Misuse(_))
        ));
        table.take_output(0, rep).unwrap();
        lent_after_its_making(table, rep);
    }
    // It counts against the stage's budget as `allocate` does.
    let mut small = BufferTable::new(vec![StageBudget {
        max_bytes: 512,
        max_handles: 1,
    }]);
    assert!(matches!(
        small.filled(0, &[0; 513], ""),
        Err(BufferError::AllocationFailed(_))
    ));
    assert_eq!(small.copies().copies, 0);
    small.filled(0, &[0; 256], "").unwrap();
    assert!(matches!(
        small.filled(0, b"x", ""),
        Err(BufferError::AllocationFailed(_))
    ));
    // Bytes add up over buffers, and a buffer dropped gives its share back.
    let mut budget = BufferTable::new(vec![StageBudget {
        max_bytes: 512,
        max_handles: 4,
    }]);
    let first = budget.filled(0, &[0; 200], "").unwrap();
    budget.filled(0, &[0; 200], "").unwrap();
    assert!(matches!(
        budget.filled(0, &[0; 200], ""),
        Err(BufferError::AllocationFailed(_))
    ));
    budget.drop_buffer(0, first).unwrap();
    budget.filled(0, &[0; 200], "").unwrap();
}

#[test]
fn the_budget_limits_what_a_stage_holds() {
    let mut table = BufferTable::new(vec![StageBudget {
        max_bytes: 4096,
        max_handles: 3,
    }]);
    let first = table.allocate(0, 4000).unwrap();
    // Each buffer is charged its pool tier's capacity: 4 000 bytes take 4 KiB, 1 takes 256.
    let refused = |why: &str| Err(BufferError::AllocationFailed(why.to_owned()));
    assert_eq!(
        table.allocate(0, 1),
        refused(
            "stage would hold 4.2 KiB of buffers with this one's 256 B, over its \
             `buffer-memory` of 4.0 KiB"
        )
    );
    table.drop_mutable(0, first).unwrap();
    for _ in 0..3 {
        table.allocate(0, 1).unwrap();
    }
    assert_eq!(
        table.allocate(0, 1),
        refused("stage holds 3 buffer handles, its `buffer-handles` limit")
    );
}

#[test]
fn frozen_mutable_buffers_left_for_a_collector_cost_no_handle_of_the_budget() {
    let mut table = BufferTable::new(vec![StageBudget {
        max_bytes: 4096,
        max_handles: 3,
    }]);
    // A guest that hands every frozen buffer on but never drops the husk, as a
    // garbage-collected language does until its collector runs.
    let mut husks = Vec::new();
    for _ in 0..3 * HUSKS_PER_HANDLE {
        let mutable = table.allocate(0, 10).unwrap();
        let frozen = table.freeze(0, mutable).unwrap();
        table.take_output(0, frozen).unwrap();
        table.release(frozen);
        husks.push(mutable);
    }
    let mutable = table.allocate(0, 10).unwrap();
    let refused = table.freeze(0, mutable).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "allocation failed: stage holds 48 frozen mutable buffers it never dropped, its limit \
         (16 for each of its `buffer-handles`)"
    );
    // The collector runs: the husks go, and freezing works again.
    for husk in husks {
        table.drop_mutable(0, husk).unwrap();
    }
    table.freeze(0, mutable).unwrap();
}

#[test]
fn a_shared_buffer_lives_until_its_last_holder_releases_it() {
    let mut table = table();
    let mutable = table.allocate(0, 1).unwrap();
    let frozen = table.freeze(0, mutable).unwrap();
    table.take_output(0, frozen).unwrap();
    table.share(frozen, 2);
    table.release(frozen);
    table.release(frozen);
    assert_eq!(table.live(), 2, "the husk and the shared buffer");
    table.release(frozen);
    assert_eq!(table.live(), 1);
}

#[test]
fn reclaiming_a_stage_frees_what_it_held() {
    let mut table = table();
    let kept = table.allocate(1, 10).unwrap();
    let frozen = table.freeze(1, kept).unwrap();
    table.allocate(1, 10).unwrap();
    let other = table.allocate(0, 10).unwrap();
    table.reclaim(1);
    assert_eq!(table.live(), 1);
    assert!(table.size(frozen).is_err());
    assert!(table.size(other).is_ok());
}

#[test]
fn clone_into_mutable_copies_once() {
    let mut table = table();
    let mutable = table.allocate(0, 3).unwrap();
    table.append(0, mutable, b"abc").unwrap();
    let frozen = table.freeze(0, mutable).unwrap();
    let copy = table.clone_into_mutable(0, frozen).unwrap();
    assert_eq!(table.size(copy).unwrap(), 3);
    assert_eq!(table.copies().copies, 2);
}

#[test]
fn a_content_type_past_the_longest_traps_and_leaves_nothing_held() {
    let mut table = table();
    let longest = "x".repeat(MAX_CONTENT_TYPE_BYTES);
    let longer = longest.clone() + "x";
    let too_long = Err(BufferError::ContentTypeTooLong(MAX_CONTENT_TYPE_BYTES + 1));

    let mutable = table.allocate(0, 5).unwrap();
    assert_eq!(table.set_content_type(0, mutable, &longer), too_long);
    let frozen = table.freeze(0, mutable).unwrap();
    assert_eq!(table.content_type(frozen).unwrap(), "");
    table.drop_mutable(0, mutable).unwrap();
    table.drop_buffer(0, frozen).unwrap();

    assert_eq!(
        table.filled(0, b"hello", &longer).map(|_| ()),
        too_long.clone()
    );
    assert_eq!(table.handles_held(0), 0);
    assert_eq!(table.live(), 0);

    let filled = table.filled(0, b"hello", &longest).unwrap();
    assert_eq!(table.content_type(filled).unwrap(), longest);

    // The host's own stages are held to the same bound.
    assert_eq!(
        table.host_output(1, b"hello", &longer).map(|_| ()),
        too_long
    );
    assert_eq!(table.live(), 1);
    let made = table.host_output(1, b"hello", &longest).unwrap();
    assert_eq!(table.content_type(made).unwrap(), longest);
}

#[test]
fn a_content_type_from_outside_is_fitted_by_dropping_its_parameters() {
    assert_eq!(
        fitted_content_type("text/csv; header=present", 24),
        "text/csv; header=present"
    );
    assert_eq!(
        fitted_content_type("text/csv; header=present", 23),
        "text/csv"
    );
    assert_eq!(fitted_content_type("text/csv ; a=b", 9), "text/csv");
    assert_eq!(
        fitted_content_type("text/csv", 7),
        "application/octet-stream"
    );
}
