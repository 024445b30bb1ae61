//! A run is claimed before it starts, so that local workers, several `ptv2 sweep` processes and
//! Slurm array tasks on one reports dir never train it twice. The claim is `claim.json` in the
//! run dir, created atomically (create-new) with its owner's pid and host; a thread refreshes its
//! modification time while the run trains. A claim is stale — and taken over — when its owner is a
//! dead process on this host, or when it has not been refreshed for `STALE_AFTER` (other hosts).
//! Dropping the claim removes the file.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

pub const CLAIM_FILE: &str = "claim.json";
const HEARTBEAT: Duration = Duration::from_secs(10);
const STALE_AFTER: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Owner {
    pid: u32,
    host: String,
}

fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// A live claim on a run; released when dropped.
pub struct Claim {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
}

impl Claim {
    /// Claim the run in `run_dir`, taking over a stale claim; `None` if a live owner has it.
    pub fn take(run_dir: &Path) -> Result<Option<Self>> {
        std::fs::create_dir_all(run_dir)
            .with_context(|| format!("cannot create {}", run_dir.display()))?;
        let path = run_dir.join(CLAIM_FILE);
        if let Some(claim) = Self::create(&path)? {
            return Ok(Some(claim));
        }
        if !is_stale(&path) {
            return Ok(None);
        }
        // Two workers may find it stale at once: removing is idempotent, creating is not.
        let _ = std::fs::remove_file(&path);
        Self::create(&path)
    }

    fn create(path: &Path) -> Result<Option<Self>> {
        // Written whole to a temporary file, then linked into place: linking fails when the
        // claim exists, and a claim is never seen half written.
        let owner = Owner {
            pid: std::process::id(),
            host: this_host(),
        };
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        let mut file =
            File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
        file.write_all(serde_json::to_string(&owner)?.as_bytes())
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        drop(file);
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
        }
        let stop = Arc::new(AtomicBool::new(false));
        let heartbeat = {
            let (stop, path) = (stop.clone(), path.to_path_buf());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    std::thread::park_timeout(HEARTBEAT);
                    if let Ok(file) = File::options().write(true).open(&path) {
                        let _ = file.set_modified(SystemTime::now());
                    }
                }
            })
        };
        Ok(Some(Self {
            path: path.to_path_buf(),
            stop,
            heartbeat: Some(heartbeat),
        }))
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(heartbeat) = self.heartbeat.take() {
            heartbeat.thread().unpark();
            let _ = heartbeat.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Is the claim at `path` left by a dead owner?
fn is_stale(path: &Path) -> bool {
    let owner: Option<Owner> = std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    match owner {
        Some(owner) if owner.host == this_host() => !process_alive(owner.pid),
        // Another host, or a claim torn by a crash while it was written: judge by its age.
        _ => std::fs::metadata(path)
            .and_then(|m| m.modified())
            .map(|t| t.elapsed().unwrap_or_default() > STALE_AFTER)
            .unwrap_or(true),
    }
}

fn process_alive(pid: u32) -> bool {
    // A killed process not yet reaped is a zombie: dead for our purpose.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.trim_start().chars().next());
    if state == Some(Some('Z')) || state == Some(Some('X')) {
        return false;
    }
    // SAFETY: signal 0 only checks that the process exists.
    let result = unsafe { libc::kill(pid as libc::pid_t, 0) };
    result == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_owner_at_a_time_and_dead_owners_lose_their_claim() {
        let dir = tempfile::tempdir().unwrap();
        let first = Claim::take(dir.path()).unwrap().expect("free");
        assert!(
            Claim::take(dir.path()).unwrap().is_none(),
            "held by a live process"
        );
        drop(first);
        assert!(!dir.path().join(CLAIM_FILE).exists());
        // A claim by a process that no longer exists is taken over at once.
        let dead = Owner {
            pid: i32::MAX as u32,
            host: this_host(),
        };
        std::fs::write(
            dir.path().join(CLAIM_FILE),
            serde_json::to_string(&dead).unwrap(),
        )
        .unwrap();
        assert!(Claim::take(dir.path()).unwrap().is_some());
    }
}
