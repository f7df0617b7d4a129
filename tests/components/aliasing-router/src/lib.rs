//! Test router written against the canonical ABI by hand, as a hostile toolchain could
//! write one: its `route` answers [`PORTS`] port names that all point at one string of
//! [`NAME_BYTES`] bytes in its memory. It holds 1 MiB and a list of 64 pointers, but its
//! answer, lifted whole, would be 64 MiB of host strings: the host bounds what a call
//! hands it by the component's `memory` limit, not by the bytes the component holds.

#![allow(
    unsafe_code,
    reason = "the export is written against the canonical ABI by hand"
)]

wit_bindgen::generate!({
    path: ["../../../wit/streaming", "../../../wit/filtering"],
    inline: "
        package test:aliasing-router;

        world aliasing-router {
            import torvyn:streaming/types@0.1.0;
            export torvyn:filtering/router@0.1.0;
        }
    ",
    world: "test:aliasing-router/aliasing-router",
    generate_all,
});

use torvyn::streaming::types::{Buffer, FlowContext};

/// How many port names one answer holds.
const PORTS: usize = 64;

/// The length of the one string every port name points at: 1 MiB.
const NAME_BYTES: usize = 1 << 20;

/// `route`'s answer as the canonical ABI lays out `result<list<string>, process-error>`:
/// the case (0, `ok`) at offset 0, the list's pointer and length at 4 and 8.
#[repr(C, align(4))]
struct Answer {
    case: u32,
    names: *const Name,
    count: usize,
    _error: u32,
}

/// A `string` as the canonical ABI lays it out: pointer, then length in bytes.
#[repr(C)]
struct Name {
    bytes: *const u8,
    len: usize,
}

/// `torvyn:filtering/router@0.1.0#route`, its `stream-element` flattened: the meta's
/// sequence, time and content type (pointer and length), then the payload's and the
/// context's borrowed handles.
///
/// # Safety
///
/// Called by the component model only, with handles it lent for this call.
#[unsafe(export_name = "torvyn:filtering/router@0.1.0#route")]
unsafe extern "C" fn route(
    _sequence: i64,
    _timestamp_ns: i64,
    _content_type: *mut u8,
    _content_type_len: usize,
    payload: u32,
    context: u32,
) -> *const Answer {
    // A borrowed handle is given back before the call returns.
    // SAFETY: the component model lent these handles for this call.
    drop(unsafe { Buffer::from_handle(payload) });
    drop(unsafe { FlowContext::from_handle(context) });
    let name: &'static [u8] = Vec::leak(vec![b'p'; NAME_BYTES]);
    let names: Vec<Name> = (0..PORTS)
        .map(|_| Name {
            bytes: name.as_ptr(),
            len: name.len(),
        })
        .collect();
    let names = Vec::leak(names);
    Box::leak(Box::new(Answer {
        case: 0,
        names: names.as_ptr(),
        count: names.len(),
        _error: 0,
    }))
}
