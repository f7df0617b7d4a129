//! `cargo bench -p torvyn-runtime --bench connectors`: a file of lines read by the `file`
//! source and written by the `file` sink, in bytes per second, beside copies of the same
//! file in the same run: `std::io::copy` from a `BufReader` to a `BufWriter` (which std
//! turns into a copy inside the kernel, `copy_file_range`, between two files), a plain
//! buffered copy whose bytes pass through user space, and a buffered copy line by line.
//! `docs/performance.md` reads them.

mod support;

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use torvyn_runtime::{
    ConnectorSpec, FileSinkSpec, FileSourceSpec, Framing, FramingSpec, HostOptions, Oversize,
    StageBody,
};

use support::{flow, run, runtime, stage};

/// Lines in the file, each [`LINE`] bytes with its newline: 16 MiB in all.
const LINES: usize = 160_000;
const LINE: usize = 105;

fn write_input(path: &Path) {
    let mut out = BufWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..LINES {
        writeln!(out, "{i:>10} {}", "x".repeat(LINE - 12)).unwrap();
    }
    out.flush().unwrap();
}

fn files(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.log");
    let output = dir.path().join("out.log");
    let checkpoint = dir.path().join("state/bench/src.json");
    write_input(&input);
    let bytes = std::fs::metadata(&input).unwrap().len();
    let mut group = c.benchmark_group("file");
    group.throughput(Throughput::Bytes(bytes));
    group.sample_size(20);

    group.bench_function("buffered-copy", |b| {
        b.iter(|| {
            let mut reader = BufReader::new(std::fs::File::open(&input).unwrap());
            let mut writer = BufWriter::new(std::fs::File::create(&output).unwrap());
            std::io::copy(&mut reader, &mut writer).unwrap();
            writer.flush().unwrap();
        });
    });
    group.bench_function("buffered-copy-user-space", |b| {
        b.iter(|| {
            let mut reader = BufReader::new(std::fs::File::open(&input).unwrap());
            let mut writer = BufWriter::new(std::fs::File::create(&output).unwrap());
            loop {
                let chunk = reader.fill_buf().unwrap();
                if chunk.is_empty() {
                    break;
                }
                writer.write_all(chunk).unwrap();
                let read = chunk.len();
                reader.consume(read);
            }
            writer.flush().unwrap();
        });
    });
    group.bench_function("buffered-copy-by-line", |b| {
        b.iter(|| {
            let reader = BufReader::new(std::fs::File::open(&input).unwrap());
            let mut writer = BufWriter::new(std::fs::File::create(&output).unwrap());
            for line in reader.split(b'\n') {
                writer.write_all(&line.unwrap()).unwrap();
                writer.write_all(b"\n").unwrap();
            }
            writer.flush().unwrap();
        });
    });

    let runtime = runtime();
    let host = support::host(HostOptions::default());
    let source = ConnectorSpec::FileSource(FileSourceSpec {
        include: vec![input.display().to_string()],
        framing: FramingSpec {
            framing: Framing::Lines,
            max_element_size: 1 << 20,
            oversize: Oversize::Fail,
        },
        follow: false,
        checkpoint: checkpoint.clone(),
    });
    let sink = ConnectorSpec::FileSink(FileSinkSpec {
        path: output.clone(),
        framing: Framing::Lines,
        fsync: false,
    });
    group.bench_function("source-sink-flow", |b| {
        b.iter(|| {
            // Each run reads the whole file again, into a file of its own.
            let _ = std::fs::remove_file(&checkpoint);
            let _ = std::fs::remove_file(&output);
            let stages = vec![
                stage("src", StageBody::Connector(source.clone()), String::new()),
                stage("out", StageBody::Connector(sink.clone()), String::new()),
            ];
            run(&runtime, &host, flow(stages), LINES as u64);
        });
    });
    group.finish();
}

criterion_group!(benches, files);
criterion_main!(benches);
