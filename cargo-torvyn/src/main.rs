//! `cargo-torvyn`: run by Cargo as `cargo torvyn …`, or directly.

fn main() {
    std::process::exit(cargo_torvyn::main());
}
