//! A cgroup of its own for each Code Mode worker, where the node may make
//! one: a bound on the worker's resident memory (`RLIMIT_AS` bounds only its
//! address space) and on its process count.
//!
//! The group is made beside the node's own (from `/proc/self/cgroup`):
//! - cgroup v1: a `tollgate-worker-<pid>` directory in the node's `memory`
//!   and `pids` hierarchies, with `memory.limit_in_bytes` and `pids.max`;
//! - cgroup v2: a child of the node's group when that group delegates the
//!   `memory` and `pids` controllers (`cgroup.subtree_control`), with
//!   `memory.max`, `memory.swap.max` and `pids.max`.
//!
//! The worker is moved in before it is sent its job, so no script runs
//! outside it. Where no group can be made (no write access, a v2 group with
//! processes and no delegation) the worker runs without one: its rlimits
//! and seccomp filter still hold. The directories go when the worker has
//! exited.

use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";

/// The cgroup directories one worker was moved into; removed on drop.
#[derive(Debug)]
pub struct WorkerGroup {
    dirs: Vec<PathBuf>,
}

impl Drop for WorkerGroup {
    fn drop(&mut self) {
        for d in &self.dirs {
            let _ = std::fs::remove_dir(d);
        }
    }
}

impl WorkerGroup {
    /// Moves process `pid` into groups of its own limited to `resident_bytes`
    /// of memory and one process. `None` when no group could be made.
    pub fn join(pid: u32, resident_bytes: u64) -> Option<WorkerGroup> {
        let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let name = format!("tollgate-worker-{pid}");
        let mut group = WorkerGroup { dirs: Vec::new() };
        if Path::new(ROOT).join("cgroup.controllers").exists() {
            let path = own.lines().find_map(|l| l.strip_prefix("0::"))?;
            let parent = Path::new(ROOT).join(path.trim_start_matches('/'));
            let delegated = std::fs::read_to_string(parent.join("cgroup.subtree_control")).ok()?;
            let has = |c: &str| delegated.split_whitespace().any(|d| d == c);
            if !(has("memory") && has("pids")) {
                return None;
            }
            let dir = make(&parent, &name, &mut group)?;
            set(&dir, "memory.max", resident_bytes)?;
            let _ = set(&dir, "memory.swap.max", 0);
            set(&dir, "pids.max", 1)?;
            set(&dir, "cgroup.procs", pid.into())?;
            return Some(group);
        }
        for (controller, file, value) in [
            ("memory", "memory.limit_in_bytes", resident_bytes),
            ("pids", "pids.max", 1),
        ] {
            let path = own.lines().find_map(|l| {
                let mut parts = l.splitn(3, ':');
                let (_, list, path) = (parts.next()?, parts.next()?, parts.next()?);
                list.split(',').any(|c| c == controller).then_some(path)
            })?;
            let parent = Path::new(ROOT)
                .join(controller)
                .join(path.trim_start_matches('/'));
            let dir = make(&parent, &name, &mut group)?;
            set(&dir, file, value)?;
            if controller == "memory" {
                // No swap either, where the kernel accounts it.
                let _ = set(&dir, "memory.memsw.limit_in_bytes", value);
            }
            set(&dir, "cgroup.procs", pid.into())?;
        }
        Some(group)
    }
}

fn make(parent: &Path, name: &str, group: &mut WorkerGroup) -> Option<PathBuf> {
    let dir = parent.join(name);
    std::fs::create_dir(&dir).ok()?;
    group.dirs.push(dir.clone());
    Some(dir)
}

fn set(dir: &Path, file: &str, value: u64) -> Option<()> {
    std::fs::write(dir.join(file), value.to_string()).ok()
}
