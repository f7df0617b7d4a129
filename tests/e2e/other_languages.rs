//! Components that are not Rust crates: a component's own build command
//! (`[components.NAME.build]`), rerun only when what it reads changed, with the tools it
//! names installed into the cache; and the Python and JavaScript processor templates,
//! scaffolded, built, tested and run as a user would.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::support::{Guest, Run, TestProject, in_folder, installed, run_with_input, torvyn};

/// A project whose processor `up` is "built" by copying the test guest `guest` to
/// `out/up.wasm` with `cp`, after the `[components.up.build]` keys in `build`.
fn copied(guest: Guest, role: &str, build: &str) -> TestProject {
    TestProject::new().manifest(&copied_text(guest, role, build))
}

/// The manifest of [`copied`].
fn copied_text(guest: Guest, role: &str, build: &str) -> String {
    let wasm = guest.wasm();
    format!(
        r#"[project]
name = "built"

[sources.input]
type = "stdin"

[components.up]
path = "out/up.wasm"
role = "{role}"

[components.up.build]
command = "cp '{}' out/up.wasm"
{build}

[sinks.output]
type = "stdout"

[flows.main]
nodes = ["input", "up", "output"]
edges = [{{ from = "input", to = "up" }}, {{ from = "up", to = "output" }}]
"#,
        wasm.display()
    )
}

/// The JSON line `build --message-format json` printed for component `name`.
fn built(run: &Run, name: &str) -> serde_json::Value {
    (run.stdout.lines())
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .find(|message| message["reason"] == "component-built" && message["package"] == name)
        .unwrap_or_else(|| panic!("no component-built message for `{name}`:\n{}", run.stdout))
}

#[test]
fn a_build_command_reruns_only_when_what_it_reads_changed() {
    let project = copied(Guest::Upper, "processor", r#"watch = ["src/*.txt"]"#);
    std::fs::create_dir_all(project.dir().join("src")).unwrap();
    std::fs::write(project.dir().join("src/a.txt"), "one").unwrap();
    let build = || {
        project
            .command(&["build", "--message-format", "json"])
            .success()
    };

    // The first build runs the command, into an output folder made for it.
    let first = build();
    assert!(
        first.stderr.contains("Building up: cp "),
        "{}",
        first.stderr
    );
    assert!(
        first.stderr.contains("Built up (processor)"),
        "{}",
        first.stderr
    );
    let message = built(&first, "up");
    assert_eq!(message["role"], "processor");
    let wasm = PathBuf::from(message["wasm"].as_str().unwrap());
    assert_eq!(wasm, project.dir().join("out/up.wasm"));

    // Nothing changed: fresh, the command does not run.
    let again = build();
    assert!(
        again.stderr.contains("Fresh up (processor)"),
        "{}",
        again.stderr
    );
    assert!(!again.stderr.contains("Building"), "{}", again.stderr);
    assert_eq!(built(&again, "up")["wasm"], message["wasm"]);

    // A watched file changed, a new one matched, the output removed or altered: it runs.
    let changes: [&dyn Fn(); 4] = [
        &|| std::fs::write(project.dir().join("src/a.txt"), "two").unwrap(),
        &|| std::fs::write(project.dir().join("src/b.txt"), "new").unwrap(),
        &|| std::fs::remove_file(&wasm).unwrap(),
        &|| std::fs::write(&wasm, b"not what the build made").unwrap(),
    ];
    for change in changes {
        change();
        let run = build();
        assert!(
            run.stderr.contains("Built up (processor)"),
            "{}",
            run.stderr
        );
        assert!(build().stderr.contains("Fresh up"));
    }
    // A file the globs do not match changes nothing.
    std::fs::write(project.dir().join("src/c.md"), "notes").unwrap();
    assert!(build().stderr.contains("Fresh up"));

    // `build -p` names it; `pack --pipeline` pins what it made, without its build.
    let named = project.command(&["build", "-p", "up"]).success();
    assert!(named.stderr.contains("Fresh up"), "{}", named.stderr);
    let packed = project.command(&["pack", "--pipeline"]).success();
    assert!(
        packed.stderr.contains("Packed pipeline `built`"),
        "{}",
        packed.stderr
    );

    // `run` builds the same way, and runs what was built.
    let run = run_with_input(project.dir(), b"hello\n").success();
    assert_eq!(run.stdout, "HELLO\n");
    assert!(run.stderr.contains("Fresh up"), "{}", run.stderr);
}

#[test]
fn a_build_without_watch_globs_runs_every_time() {
    let project = copied(Guest::Upper, "processor", "");
    for _ in 0..2 {
        let run = project.command(&["build"]).success();
        assert!(
            run.stderr.contains("Built up (processor)"),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn a_failed_or_wrong_build_is_a_diagnostic_at_its_line() {
    // The command fails: its exit status, at the command's line.
    let project = copied(Guest::Upper, "processor", "").manifest(
        "[project]\nname = \"b\"\n\n[components.up]\npath = \"out/up.wasm\"\n\n\
         [components.up.build]\ncommand = \"echo compiling >&2; exit 3\"\n",
    );
    let run = project.command(&["build"]).failure();
    assert!(
        run.stderr
            .contains("the build command of component `up` failed (exit status: 3)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("torvyn::build::command"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("Torvyn.toml:8:11"), "{}", run.stderr);
    assert!(run.stderr.contains("compiling"), "{}", run.stderr);

    // A command the shell does not find is said to be one.
    let project = project.manifest(
        "[project]\nname = \"b\"\n\n[components.up]\npath = \"out/up.wasm\"\n\n\
         [components.up.build]\ncommand = \"torvyn-no-such-compiler app.py\"\n",
    );
    let run = project.command(&["build"]).failure();
    assert!(
        run.stderr.contains("the shell found no such command"),
        "{}",
        run.stderr
    );

    // The command succeeds but makes nothing at `path`, where a file from before lies: that
    // file is not taken for what it made.
    let project = project.manifest(
        "[project]\nname = \"b\"\n\n[components.up]\npath = \"out/up.wasm\"\n\n\
         [components.up.build]\ncommand = \"true\"\n",
    );
    std::fs::create_dir_all(project.dir().join("out")).unwrap();
    std::fs::copy(Guest::Upper.wasm(), project.dir().join("out/up.wasm")).unwrap();
    let run = project.command(&["build"]).failure();
    assert!(
        run.stderr
            .contains("the build command of component `up` succeeded, but made no `out/up.wasm`"),
        "{}",
        run.stderr
    );

    // It makes a component of another role than the one declared.
    let watch = r#"watch = ["*.txt"]"#;
    let project = copied(Guest::Upper, "filter", watch);
    std::fs::write(project.dir().join("src.txt"), "the same throughout").unwrap();
    let run = project.command(&["build"]).failure();
    assert!(
        run.stderr
            .contains("is declared a filter, but it exports the processor interface"),
        "{}",
        run.stderr
    );
    // Nothing was recorded for what it made: declared right, it is built again, not
    // taken for fresh.
    let project = project.manifest(&copied_text(Guest::Upper, "processor", watch));
    let run = project.command(&["build"]).success();
    assert!(
        run.stderr.contains("Built up (processor)"),
        "{}",
        run.stderr
    );
    assert!(
        project
            .command(&["build"])
            .success()
            .stderr
            .contains("Fresh up")
    );

    // `check` refuses a build table where `path` names no `.wasm` file, and a bad glob.
    let project = TestProject::new().manifest(
        "[project]\nname = \"b\"\n\n[components.up]\npath = \"components/up\"\n\n\
         [components.up.build]\ncommand = \"make\"\nwatch = [\"src/[\"]\n\
         tools = [\"pip:thing\"]\n\n[flows.main]\nnodes = [\"up\"]\nedges = []\n",
    );
    let run = project.command(&["check"]).failure();
    assert!(
        run.stderr
            .contains("`pip` is not a registry build tools come from"),
        "{}",
        run.stderr
    );
    let project = project.manifest(
        "[project]\nname = \"b\"\n\n[components.up]\npath = \"components/up\"\n\n\
         [components.up.build]\ncommand = \"make\"\nwatch = [\"src/[\"]\n\n\
         [flows.main]\nnodes = [\"up\"]\nedges = []\n",
    );
    let run = project.command(&["check"]).failure();
    assert!(
        run.stderr
            .contains("its `path` must name the `.wasm` file it makes"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("`src/[` is not a glob"),
        "{}",
        run.stderr
    );
}

/// Whether `program` runs with `args`; `None` skips the test, saying so, unless CI
/// requires it.
fn available(program: &str, args: &[&str]) -> Option<()> {
    let spawned = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .spawn();
    let mut child = installed(spawned, program, program, "TORVYN_TEST_REQUIRE_GUEST_TOOLS")?;
    assert!(
        child.wait().unwrap().success(),
        "`{program} {}` failed",
        args.join(" ")
    );
    Some(())
}

/// Python with what makes a virtual environment, as PyPI tools need.
fn python() -> Option<()> {
    available("python3", &["-c", "import ensurepip, venv"])
}

/// npm, as npm tools need.
fn npm() -> Option<()> {
    available("npm", &["--version"])
}

#[test]
fn a_build_tool_is_installed_into_the_cache_once_and_found_on_the_path() {
    if python().is_none() {
        return;
    }
    let cache = tempfile::tempdir().unwrap();
    // `python` below is the tool's virtual environment's, which has `six`.
    let project = copied(Guest::Upper, "processor", "").manifest(&format!(
        "[project]\nname = \"b\"\n\n[components.up]\npath = \"out/up.wasm\"\n\n\
         [components.up.build]\n\
         command = \"python -c 'import six, shutil; shutil.copy(\\\"{}\\\", \\\"out/up.wasm\\\")'\"\n\
         watch = [\"*.txt\"]\ntools = [\"pypi:six==1.16.0\"]\n",
        Guest::Upper.wasm().display()
    ));
    let manifest = project.write_manifest();
    std::fs::write(project.dir().join("src.txt"), "read by the build").unwrap();
    let build = || {
        let output = torvyn()
            .env("TORVYN_CACHE_DIR", cache.path())
            .args(["torvyn", "build", "--manifest-path"])
            .arg(&manifest)
            .output()
            .unwrap();
        Run::from(output)
    };
    let first = build().success();
    let installed = cache.path().join("tools/pypi");
    let folder = (std::fs::read_dir(&installed).unwrap())
        .map(|entry| entry.unwrap().path())
        .find(|path| path.is_dir())
        .unwrap();
    let name = folder.file_name().unwrap().to_string_lossy();
    assert!(name.starts_with("six==1.16.0-"), "{name}");
    assert!(
        first.stderr.contains(&format!(
            "Installing pypi:six==1.16.0 into {}",
            folder.display()
        )),
        "{}",
        first.stderr
    );
    assert!(
        first.stderr.contains("Installed pypi:six==1.16.0 in"),
        "{}",
        first.stderr
    );
    assert!(
        first.stderr.contains("Built up (processor)"),
        "{}",
        first.stderr
    );
    // Installed once: the next build finds it.
    let second = build().success();
    assert!(!second.stderr.contains("Installing"), "{}", second.stderr);
    assert!(second.stderr.contains("Fresh up"), "{}", second.stderr);
    // An install that was cut short (no mark) is done again, not trusted.
    std::fs::remove_file(folder.join(".installed")).unwrap();
    std::fs::remove_file(project.dir().join("out/up.wasm")).unwrap();
    let third = build().success();
    assert!(
        third.stderr.contains("Installing pypi:six"),
        "{}",
        third.stderr
    );

    // A package that does not exist: the installer's failure, said as such.
    std::fs::write(
        &manifest,
        "[project]\nname = \"b\"\n\n[components.up]\npath = \"out/up.wasm\"\n\n\
         [components.up.build]\ncommand = \"true\"\ntools = [\"pypi:torvyn-no-such-package==0.0.0\"]\n",
    )
    .unwrap();
    let run = build().failure();
    assert!(
        run.stderr.contains(
            "component `up`: cannot install the build tool `pypi:torvyn-no-such-package==0.0.0`"
        ),
        "{}",
        run.stderr
    );
}

/// Scaffolds `template` as `name` in a new folder, then builds, tests and runs it as a
/// user would: `source` is the file of the component's code, whose edit rebuilds it.
fn a_language_template_works(template: &str, name: &str, source: &str, upper: &str, lower: &str) {
    let dir = tempfile::tempdir().unwrap();
    let created = Run::from(
        torvyn()
            .current_dir(dir.path())
            .args(["torvyn", "new", name, "--template", template])
            .output()
            .unwrap(),
    )
    .success();
    assert!(
        created.stderr.contains(&format!(
            "cd {name} && printf 'hello\\nworld\\n' | cargo torvyn run"
        )),
        "{}",
        created.stderr
    );
    let project = dir.path().join(name);
    assert!(project.join("wit/types.wit").is_file());
    assert!(!project.join("Cargo.toml").exists());

    // Built by its tool (installed into the cache the first time), then run.
    let run = run_with_input(&project, b"hello\nworld\n").success();
    assert_eq!(run.stdout, "HELLO\nWORLD\n", "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("Built {name} (processor) -> target/{name}.wasm")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("Accounted 2 emitted = 2 delivered"),
        "{}",
        run.stderr
    );

    // Input that is not UTF-8 raises `invalid-input`, which fails the flow by default.
    let run = run_with_input(&project, b"fine\n\xff\xfe\n").failure();
    assert_eq!(run.stdout, "FINE\n");
    assert!(
        run.stderr.contains(&format!("Fresh {name} (processor)")),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("invalid input: element 1 is not UTF-8"),
        "{}",
        run.stderr
    );

    // Its test passes, and `doctor` finds the tool installed.
    let test = in_folder(&project, &["test"]).success();
    assert!(test.stderr.contains("ok test `shout`"), "{}", test.stderr);
    let doctor = in_folder(&project, &["doctor"]).success();
    assert!(
        doctor.stderr.contains("is installed in"),
        "{}",
        doctor.stderr
    );

    // An edit to the code is built before the next run.
    let code = project.join(source);
    let text = std::fs::read_to_string(&code).unwrap();
    assert!(text.contains(upper), "{text}");
    std::fs::write(&code, text.replace(upper, lower)).unwrap();
    let run = run_with_input(&project, b"MiXeD\n").success();
    assert_eq!(run.stdout, "mixed\n");
    assert!(
        run.stderr.contains(&format!("Built {name} (processor)")),
        "{}",
        run.stderr
    );
}

#[test]
fn the_python_processor_template_is_built_tested_and_run() {
    if python().is_some() {
        a_language_template_works(
            "python-processor",
            "py-shout",
            "app.py",
            ".upper()",
            ".lower()",
        );
    }
}

#[test]
fn the_javascript_processor_template_is_built_tested_and_run() {
    if npm().is_some() {
        a_language_template_works(
            "javascript-processor",
            "js-shout",
            "app.js",
            ".toUpperCase()",
            ".toLowerCase()",
        );
    }
}

#[test]
fn init_makes_a_folder_a_python_or_javascript_processor_without_a_crate() {
    for (template, code) in [
        ("python-processor", "app.py"),
        ("javascript-processor", "app.js"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("mine");
        std::fs::create_dir(&folder).unwrap();
        // A Cargo workspace around it gains no member: there is no crate to add.
        let workspace = "[workspace]\nmembers = []\n";
        std::fs::write(dir.path().join("Cargo.toml"), workspace).unwrap();
        // A `.gitignore` of its own (a git repository's) is kept as it is.
        std::fs::write(folder.join(".gitignore"), "/secrets\n").unwrap();
        let made = in_folder(&folder, &["init", "--template", template]).success();
        let ignored = std::fs::read_to_string(folder.join(".gitignore")).unwrap();
        assert_eq!(ignored, "/secrets\n");
        assert!(
            made.stderr.contains(
                "kept the folder's own .gitignore; the template would have it ignore /target/"
            ),
            "{}",
            made.stderr
        );
        for file in [
            "Torvyn.toml",
            code,
            "wit/worlds.wit",
            "tests/shout.input.jsonl",
        ] {
            assert!(folder.join(file).is_file(), "{template}: {file}");
        }
        assert!(!folder.join("Cargo.toml").exists(), "{template}");
        let after = std::fs::read_to_string(dir.path().join("Cargo.toml")).unwrap();
        assert_eq!(after, workspace, "{template}");
        let check = in_folder(&folder, &["check"]).success();
        assert!(check.stderr.contains("no problems"), "{}", check.stderr);
        // Once more is refused, and changes nothing.
        in_folder(&folder, &["init", "--template", template]).failure();
    }
}
