//! The listings' binaries, built once per test run by one nested `cargo build`, and found
//! where Cargo itself says it put them: never a stale binary, never a guessed path. The
//! libraries they link (tokio) come from the same build, for `compile_error_with`.

use std::collections::HashMap;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use super::workspace_root;

/// What one build made: each binary by name, and each library's `.rlib` files by crate name
/// (`tokio`), as Cargo reported them.
struct Built {
    binaries: HashMap<String, PathBuf>,
    libraries: HashMap<String, Vec<PathBuf>>,
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Result<Built, String>> = OnceLock::new();
    BUILT
        .get_or_init(build_workspace)
        .as_ref()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The path of the binary `name` of the workspace, freshly built.
pub fn binary(name: &str) -> PathBuf {
    built()
        .binaries
        .get(name)
        .cloned()
        .unwrap_or_else(|| panic!("the workspace has no binary {name:?}: is it a listing crate?"))
}

/// The `.rlib` of the library crate `name` (`tokio`) that the listings link, from the same
/// build: one file, or the test fails and says which it found, rather than guess between two
/// builds of the crate with other features.
pub fn library(name: &str) -> PathBuf {
    match built().libraries.get(name).map(Vec::as_slice) {
        Some([rlib]) => rlib.clone(),
        Some(found) => panic!("the build made {} rlibs of {name}: {found:?}", found.len()),
        None => panic!("the build made no library {name:?}: is it a listing's dependency?"),
    }
}

/// Builds the workspace's binaries, with what `cargo test` builds beside them: the same
/// packages (the whole workspace, which is also its default members) and its test targets,
/// so that dev-dependencies count, features come out the same, and no crate is compiled a
/// second time. (`--all-targets` would also build every binary a second time, as a bench.)
/// The outer `cargo test` has built all but the listings' binaries already; on a warm run
/// this build does nothing.
fn build_workspace() -> Result<Built, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    // Cargo gives this test variables that describe its own package. A build script that
    // watches one of them (ring watches CARGO_MANIFEST_DIR) would see it change between this
    // build and the outer `cargo test`, and both would rebuild on every run. Everything else
    // (CARGO_TARGET_DIR, CARGO_BUILD_*, RUSTFLAGS) is the outer build's, and stays.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        let per_package = ["CARGO_MANIFEST_", "CARGO_PKG_", "CARGO_BIN_EXE_"]
            .iter()
            .any(|prefix| name.starts_with(prefix))
            || [
                "CARGO_CRATE_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "CARGO_RUSTC_CURRENT_DIR",
                "OUT_DIR",
            ]
            .contains(&name.as_ref());
        if per_package {
            build.env_remove(name.as_ref());
        }
    }
    let output = build
        .args([
            "build",
            "--workspace",
            "--bins",
            "--tests",
            "--message-format=json-render-diagnostics",
        ])
        // The profile this test was built with: `cargo test` or `cargo test --release`.
        .args((!cfg!(debug_assertions)).then_some("--release"))
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run cargo: {e}"))
        .and_then(finish_within(BUILD_TIME))?;
    if !output.status.success() {
        return Err(format!(
            "cargo build failed, so no listing can run:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let mut binaries = HashMap::new();
    let mut libraries: HashMap<String, Vec<PathBuf>> = HashMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let is_kind = |kind: &str| {
            message["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == kind))
        };
        let test_build = message["profile"]["test"].as_bool() == Some(true);
        if message["reason"] != "compiler-artifact" || test_build {
            continue;
        }
        let Some(name) = message["target"]["name"].as_str() else {
            continue;
        };
        if is_kind("bin") {
            if let Some(path) = message["executable"].as_str() {
                binaries.insert(name.to_string(), PathBuf::from(path));
            }
        } else if is_kind("lib") {
            let rlibs = message["filenames"].as_array().into_iter().flatten();
            for rlib in rlibs
                .filter_map(|f| f.as_str())
                .filter(|f| f.ends_with(".rlib"))
            {
                let found = libraries.entry(name.replace('-', "_")).or_default();
                if !found.iter().any(|p| p.as_os_str() == rlib) {
                    found.push(PathBuf::from(rlib));
                }
            }
        }
    }
    if binaries.is_empty() {
        return Err("cargo build named no binary".into());
    }
    Ok(Built {
        binaries,
        libraries,
    })
}

/// Longer than a clean build of the whole workspace takes on a slow machine (minutes), but
/// not for ever: a build that waits on something that never comes fails, and says so.
const BUILD_TIME: Duration = Duration::from_secs(30 * 60);

/// Waits for `child` to end, at most `limit`, reading its output meanwhile (so that a full
/// pipe never blocks it); kills it if it does not end in time.
fn finish_within(limit: Duration) -> impl FnOnce(Child) -> Result<Output, String> {
    move |mut child| {
        let read = |pipe: Option<Box<dyn Read + Send>>| {
            thread::spawn(move || {
                let mut bytes = Vec::new();
                if let Some(mut pipe) = pipe {
                    let _ = pipe.read_to_end(&mut bytes);
                }
                bytes
            })
        };
        let stdout = read(
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let stderr = read(
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let deadline = Instant::now() + limit;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(100));
                }
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("cargo build did not finish in {limit:?}"));
                }
                Err(e) => return Err(format!("cannot wait for cargo: {e}")),
            }
        };
        Ok(Output {
            status,
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
        })
    }
}
