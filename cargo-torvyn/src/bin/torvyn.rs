//! `torvyn`: the same command line as `cargo torvyn`, for hosts without Cargo.

fn main() {
    std::process::exit(cargo_torvyn::main());
}
