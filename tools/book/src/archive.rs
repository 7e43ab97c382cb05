//! Every listing as a crate that builds on its own, outside this workspace, in one
//! `.tar.gz`: the same `listings/NN-chapter/name` folders, each manifest with what it inherits
//! from the workspace written out, and each crate's own `Cargo.lock`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use toml::{Table, Value};

use crate::child::{self, Interrupt};

/// Longer than Cargo takes to resolve a crate with its registry index to fetch, or tar to
/// pack the listings; a step that hangs (a network that never answers) fails instead.
const STEP_TIME: Duration = Duration::from_secs(300);

/// What the archive says about itself, at its root.
const README: &str = "\
# The book's listings

Each folder under listings/ is a crate of its own, as the book shows it:

    cd listings/02-udp/udp-chat
    cargo run -- --help

Its Cargo.toml pins the versions the book was tested with, and its Cargo.lock holds every
crate below them; `cargo build --locked` keeps them all. A listing that uses another (most
of chapter 9's use ctrl-c-cleanup) finds it by a relative path: keep the folders together.
";

/// Writes the archive of every crate under `root/listings` into `out`, a `.tar.gz`. If
/// `interrupt` is set first, the step under way is stopped and nothing is written.
pub fn write(root: &Path, out: &Path, interrupt: &Interrupt) -> Result<()> {
    let workspace = Workspace::read(root)?;
    let crates = listing_crates(root)?;
    let stage = tempfile::Builder::new().prefix("book-archive.").tempdir()?;
    let listings = stage.path().join("listings");
    for dir in &crates {
        copy_tree(&root.join(dir), &stage.path().join(dir))?;
    }
    let rustfmt = root.join("listings/rustfmt.toml");
    if rustfmt.is_file() {
        fs::copy(&rustfmt, listings.join("rustfmt.toml"))?;
    }
    fs::write(stage.path().join("README.md"), README)?;

    // Every manifest first: a crate's lock is resolved through the listings it uses.
    for dir in &crates {
        let manifest = stage.path().join(dir).join("Cargo.toml");
        let text = fs::read_to_string(&manifest)?;
        let standalone = standalone_manifest(&text, dir, &crates, &workspace)
            .with_context(|| format!("{}", dir.join("Cargo.toml").display()))?;
        fs::write(&manifest, standalone)?;
    }
    for dir in &crates {
        let crate_dir = stage.path().join(dir);
        interrupt.check()?;
        let names = lock(&crate_dir, &workspace.lock_text, interrupt)
            .with_context(|| format!("cannot lock {}", dir.display()))?;
        let manifest = crate_dir.join("Cargo.toml");
        let mut text = fs::read_to_string(&manifest)?;
        text.push_str(&workspace.profiles_for(&names)?);
        fs::write(&manifest, text)?;
    }

    let packed = stage.path().join("listings.tar.gz");
    let mut tar = Command::new("tar");
    tar.arg("-czf")
        .arg(&packed)
        .arg("-C")
        .arg(stage.path())
        .args(["README.md", "listings"])
        .stdin(Stdio::null());
    if child::on_path("tar").is_none() {
        bail!("cargo book archive needs tar (apt-get install tar)");
    }
    let status = child::run(&mut tar, "tar", STEP_TIME, interrupt)?;
    if !status.success() {
        bail!("tar failed ({status})");
    }
    fs::copy(&packed, out).with_context(|| format!("cannot write {}", out.display()))?;
    Ok(())
}

/// Every listing crate, as a path relative to `root` (`listings/02-udp/udp-chat`), in order.
pub fn listing_crates(root: &Path) -> Result<Vec<PathBuf>> {
    let mut crates = Vec::new();
    for chapter in sorted_entries(&root.join("listings"))? {
        if !chapter.is_dir() {
            continue;
        }
        for dir in sorted_entries(&chapter)? {
            if dir.join("Cargo.toml").is_file() {
                crates.push(dir.strip_prefix(root)?.to_path_buf());
            }
        }
    }
    Ok(crates)
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries = fs::read_dir(dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<Vec<_>, _>>()?;
    entries.sort();
    Ok(entries)
}

/// Copies a crate's sources: everything but its build output and hidden files (an editor's,
/// git's).
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for entry in sorted_entries(from)? {
        let name = entry.file_name().unwrap_or_default();
        if name == "target" || name.to_string_lossy().starts_with('.') {
            continue;
        }
        if entry.is_dir() {
            copy_tree(&entry, &to.join(name))?;
        } else {
            fs::copy(&entry, to.join(name))?;
        }
    }
    Ok(())
}

/// What the listings inherit, read from the workspace's `Cargo.toml` and `Cargo.lock`.
struct Workspace {
    package: Table,
    dependencies: Table,
    profile: Table,
    lock: Vec<Table>,
    lock_text: String,
}

impl Workspace {
    fn read(root: &Path) -> Result<Self> {
        let manifest: Table = read_toml(&root.join("Cargo.toml"))?;
        let lock_text = fs::read_to_string(root.join("Cargo.lock"))
            .context("no Cargo.lock: build the workspace once first (cargo build)")?;
        let lock: Table = lock_text.parse().context("Cargo.lock")?;
        let workspace = table(&manifest, "workspace");
        Ok(Self {
            package: table(&workspace, "package"),
            dependencies: table(&workspace, "dependencies"),
            profile: table(&manifest, "profile"),
            lock: lock
                .get("package")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|package| package.as_table().cloned())
                .collect(),
            lock_text,
        })
    }

    /// The version of `dependency` that `package` (a workspace member) is locked to. Cargo.lock
    /// lists a member's dependencies by name, with the version only where several exist.
    fn locked_version(&self, package: &str, dependency: &str) -> Result<String> {
        let entry = self
            .lock
            .iter()
            .find(|entry| str_of(entry, "name") == Some(package) && !entry.contains_key("source"))
            .with_context(|| format!("{package} is not in Cargo.lock: run cargo build first"))?;
        let listed = entry
            .get("dependencies")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .find(|listed| listed.split(' ').next() == Some(dependency))
            .with_context(|| {
                format!("Cargo.lock has no {dependency} for {package}: run cargo build first")
            })?;
        if let Some(version) = listed.split(' ').nth(1) {
            return Ok(version.to_string());
        }
        let mut versions = self
            .lock
            .iter()
            .filter(|entry| str_of(entry, "name") == Some(dependency))
            .filter_map(|entry| str_of(entry, "version"));
        match (versions.next(), versions.next()) {
            (Some(version), None) => Ok(version.to_string()),
            _ => bail!("Cargo.lock has no single version of {dependency}"),
        }
    }

    /// The workspace's profiles, with only the per-package settings of `packages`: Cargo warns
    /// about a profile for a package that is not in the build.
    fn profiles_for(&self, packages: &[String]) -> Result<String> {
        let mut profiles = Table::new();
        for (name, settings) in &self.profile {
            let Some(settings) = settings.as_table() else {
                continue;
            };
            let mut kept = settings.clone();
            if let Some(Value::Table(per_package)) = kept.get_mut("package") {
                per_package.retain(|spec, _| spec == "*" || packages.iter().any(|p| p == spec));
            }
            profiles.insert(name.clone(), Value::Table(kept));
        }
        if profiles.is_empty() {
            return Ok(String::new());
        }
        let mut root = Table::new();
        root.insert("profile".into(), Value::Table(profiles));
        Ok(format!(
            "\n# The book's workspace profiles, for the packages this crate builds (the listings\n\
             # that measure speed, and tokio, run optimized code).\n{}",
            toml::to_string(&root)?
        ))
    }
}

fn read_toml(path: &Path) -> Result<Table> {
    let text =
        fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.parse()
        .with_context(|| format!("cannot parse {}", path.display()))
}

fn table(parent: &Table, key: &str) -> Table {
    parent
        .get(key)
        .and_then(Value::as_table)
        .cloned()
        .unwrap_or_default()
}

fn str_of<'a>(table: &'a Table, key: &str) -> Option<&'a str> {
    table.get(key).and_then(Value::as_str)
}

/// `text`, the manifest of the listing in `dir`, with everything it inherits written out and
/// a `[workspace]` of its own. Lines are rewritten one by one, so that the reader keeps the
/// manifest's comments and order; the result is then parsed to make sure no inherited key
/// was left (a form this rewriting does not know).
fn standalone_manifest(
    text: &str,
    dir: &Path,
    crates: &[PathBuf],
    workspace: &Workspace,
) -> Result<String> {
    let original: Table = text.parse()?;
    let package = table(&original, "package");
    let name = str_of(&package, "name").context("no package name")?;
    let mut out = String::new();
    let mut section = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            let header = trimmed.trim_start_matches('[');
            section = header.split(']').next().unwrap_or_default().to_string();
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let (key, value) = match trimmed.split_once('=') {
            Some((key, value)) if !trimmed.starts_with('#') => (key.trim(), value.trim()),
            _ => {
                out.push_str(line);
                out.push('\n');
                continue;
            }
        };
        let is_dependency_table = section
            .rsplit('.')
            .next()
            .is_some_and(|last| last.ends_with("dependencies"));
        if let Some(field) = key.strip_suffix(".workspace") {
            if value != "true" {
                bail!("{key} = {value} is not a form this archive knows");
            }
            let written = if section == "package" {
                workspace
                    .package
                    .get(field)
                    .with_context(|| format!("the workspace has no package.{field}"))?
                    .to_string()
            } else if is_dependency_table {
                dependency(workspace, name, field, &Table::new())?
            } else {
                bail!("{key} in [{section}] is not a form this archive knows");
            };
            out.push_str(&format!("{field} = {written}\n"));
        } else if let Some(own) = inherited(is_dependency_table, value) {
            let written = dependency(workspace, name, key, &own)?;
            out.push_str(&format!("{key} = {written}\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str(
        "\n# A workspace of its own: this crate builds alone, even unpacked inside another.\n\
         [workspace]\n",
    );
    check_standalone(&out.parse()?, dir, crates)?;
    Ok(out)
}

/// The listing's own settings of a dependency written `{ workspace = true, ... }`.
fn inherited(is_dependency_table: bool, value: &str) -> Option<Table> {
    match value.parse::<Value>() {
        Ok(Value::Table(own)) if is_dependency_table && own.contains_key("workspace") => Some(own),
        _ => None,
    }
}

/// The dependency `key` of `package` as a standalone manifest writes it: the version the
/// workspace locked, exactly, with the workspace's settings and the listing's own (`own`,
/// such as `optional` or more `features`).
fn dependency(workspace: &Workspace, package: &str, key: &str, own: &Table) -> Result<String> {
    let shared = match workspace.dependencies.get(key) {
        Some(Value::String(_)) => Table::new(),
        Some(Value::Table(shared)) => shared.clone(),
        _ => bail!("the workspace has no dependency {key}"),
    };
    if shared.contains_key("path") || shared.contains_key("git") {
        bail!("{key} is not from a registry: this archive cannot pin its version");
    }
    let crate_name = str_of(&shared, "package").unwrap_or(key);
    let version = workspace.locked_version(package, crate_name)?;
    let mut fields = vec![("version".to_string(), Value::String(format!("={version}")))];
    let mut features: Vec<Value> = Vec::new();
    for settings in [&shared, own] {
        for (field, value) in settings {
            match (field.as_str(), value) {
                ("version" | "workspace", _) => {}
                ("features", Value::Array(more)) => {
                    for feature in more {
                        if !features.contains(feature) {
                            features.push(feature.clone());
                        }
                    }
                }
                _ => {
                    fields.retain(|(kept, _)| kept != field);
                    fields.push((field.clone(), value.clone()));
                }
            }
        }
    }
    if !features.is_empty() {
        fields.push(("features".into(), Value::Array(features)));
    }
    if fields.len() == 1 {
        return Ok(fields[0].1.to_string());
    }
    let fields: Vec<String> = fields
        .iter()
        .map(|(field, value)| format!("{field} = {value}"))
        .collect();
    Ok(format!("{{ {} }}", fields.join(", ")))
}

/// Fails if `manifest` still inherits anything, or uses a path outside the listings.
fn check_standalone(manifest: &Table, dir: &Path, crates: &[PathBuf]) -> Result<()> {
    let package = table(manifest, "package");
    if let Some((field, _)) = package.iter().find(|(_, value)| {
        value
            .as_table()
            .is_some_and(|t| t.contains_key("workspace"))
    }) {
        bail!("package.{field} is still inherited from the workspace");
    }
    let mut tables = vec![manifest.clone()];
    tables.extend(
        table(manifest, "target")
            .values()
            .filter_map(|target| target.as_table().cloned()),
    );
    for kind in ["dependencies", "dev-dependencies", "build-dependencies"] {
        for (key, spec) in tables.iter().flat_map(|t| table(t, kind)) {
            let Value::Table(spec) = spec else { continue };
            if spec.contains_key("workspace") {
                bail!("{kind}.{key} is still inherited from the workspace");
            }
            if let Some(path) = str_of(&spec, "path") {
                let target = crate::normalize(&dir.join(path));
                if !crates.contains(&target) {
                    bail!("{kind}.{key} is at {path}, not a listing the archive holds");
                }
            }
        }
    }
    Ok(())
}

/// Gives the crate in `dir` a `Cargo.lock` of its own and returns the packages in it. The
/// workspace's lock is copied in and Cargo prunes it to this crate's packages, keeping every
/// version: `cargo build --locked` would refuse the unpruned lock, and a lock generated afresh
/// would take the newest versions instead of the tested ones.
fn lock(dir: &Path, workspace_lock: &str, interrupt: &Interrupt) -> Result<Vec<String>> {
    let lock_path = dir.join("Cargo.lock");
    fs::write(&lock_path, workspace_lock)?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut metadata = Command::new(cargo);
    metadata
        .args(["metadata", "--format-version", "1", "--manifest-path"])
        .arg(dir.join("Cargo.toml"));
    let output = child::output(&mut metadata, "cargo metadata", STEP_TIME, interrupt)?;
    if !output.status.success() {
        // The one line of Cargo's complaint that says what went wrong.
        let text = String::from_utf8_lossy(&output.stderr);
        let line = text
            .lines()
            .find(|l| l.starts_with("error"))
            .or_else(|| text.lines().find(|l| !l.trim().is_empty()))
            .unwrap_or("no message");
        bail!("cargo metadata failed ({}): {}", output.status, line.trim());
    }
    let pruned: Table = read_toml(&lock_path)?;
    Ok(pruned
        .get("package")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|package| package.as_table().and_then(|t| str_of(t, "name")))
        .map(str::to_string)
        .collect())
}
