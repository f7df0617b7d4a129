//! A WASI command that exports no Torvyn interface; the runtime must reject it as a stage.

fn main() {}
