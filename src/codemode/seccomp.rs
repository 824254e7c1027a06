//! The Code Mode worker's seccomp filter (Linux on x86_64 and aarch64).
//!
//! The worker only computes: it reads its job and tool replies from stdin
//! and writes lines to stdout, both open before the filter is installed. So
//! once it is, every system call that reaches outside the process is
//! refused with `EPERM`: opening or changing files, sockets, starting
//! programs or processes, tracing, mounts and namespaces, kernel modules,
//! BPF, io_uring, keyrings, identity changes. A call from another ABI (x32,
//! or a foreign architecture) kills the process. What remains is what a
//! Rust program needs to allocate, compute and exit.
//!
//! A denylist, not an allowlist: the allocator and the standard library may
//! use calls a list would have to chase across kernel and libc versions,
//! and none of them reaches beyond the process.

/// Why the filter could not be installed.
#[derive(Debug, thiserror::Error)]
#[error("the Code Mode worker cannot install its seccomp filter: {0}")]
pub struct SeccompError(std::io::Error);

#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
mod filter {
    use libc::*;

    #[cfg(target_arch = "x86_64")]
    pub const ARCH: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
    #[cfg(target_arch = "aarch64")]
    pub const ARCH: u32 = 0xc000_00b7; // AUDIT_ARCH_AARCH64

    /// Calls the x86_64 ABI still has and aarch64 replaced by `*at` forms.
    #[cfg(target_arch = "x86_64")]
    const LEGACY: &[c_long] = &[
        SYS_open,
        SYS_creat,
        SYS_unlink,
        SYS_rename,
        SYS_mkdir,
        SYS_rmdir,
        SYS_link,
        SYS_symlink,
        SYS_chmod,
        SYS_chown,
        SYS_lchown,
        SYS_mknod,
        SYS_fork,
        SYS_vfork,
        SYS_uselib,
    ];
    #[cfg(target_arch = "aarch64")]
    const LEGACY: &[c_long] = &[];

    const DENIED: &[c_long] = &[
        // files
        SYS_openat,
        SYS_openat2,
        SYS_open_by_handle_at,
        SYS_name_to_handle_at,
        SYS_unlinkat,
        SYS_renameat,
        SYS_renameat2,
        SYS_mkdirat,
        SYS_linkat,
        SYS_symlinkat,
        SYS_fchmod,
        SYS_fchmodat,
        SYS_fchown,
        SYS_fchownat,
        SYS_truncate,
        SYS_ftruncate,
        SYS_mknodat,
        SYS_chdir,
        SYS_fchdir,
        SYS_memfd_create,
        // network
        SYS_socket,
        SYS_socketpair,
        SYS_connect,
        SYS_accept,
        SYS_accept4,
        SYS_bind,
        SYS_listen,
        SYS_sendto,
        SYS_sendmsg,
        SYS_sendmmsg,
        SYS_recvfrom,
        SYS_recvmsg,
        SYS_recvmmsg,
        // programs, processes and other processes
        SYS_execve,
        SYS_execveat,
        SYS_clone,
        SYS_clone3,
        SYS_ptrace,
        SYS_process_vm_readv,
        SYS_process_vm_writev,
        SYS_kill,
        SYS_pidfd_open,
        SYS_pidfd_getfd,
        SYS_pidfd_send_signal,
        // identity
        SYS_setuid,
        SYS_setgid,
        SYS_setreuid,
        SYS_setregid,
        SYS_setresuid,
        SYS_setresgid,
        SYS_setgroups,
        SYS_setfsuid,
        SYS_setfsgid,
        // the system
        SYS_mount,
        SYS_umount2,
        SYS_chroot,
        SYS_pivot_root,
        SYS_setns,
        SYS_unshare,
        SYS_bpf,
        SYS_perf_event_open,
        SYS_keyctl,
        SYS_add_key,
        SYS_request_key,
        SYS_io_uring_setup,
        SYS_io_uring_enter,
        SYS_io_uring_register,
        SYS_userfaultfd,
        SYS_init_module,
        SYS_finit_module,
        SYS_delete_module,
        SYS_kexec_load,
        SYS_reboot,
        SYS_swapon,
        SYS_swapoff,
        SYS_personality,
        SYS_sethostname,
        SYS_setdomainname,
        SYS_acct,
        SYS_quotactl,
        SYS_settimeofday,
        SYS_clock_settime,
        SYS_adjtimex,
        SYS_fanotify_init,
        SYS_inotify_init1,
    ];

    #[repr(C)]
    pub struct Instruction {
        code: u16,
        jt: u8,
        jf: u8,
        k: u32,
    }

    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_KILL_PROCESS: u32 = 0x8000_0000;
    const RET_ERRNO: u32 = 0x0005_0000;
    /// `offsetof(struct seccomp_data, nr)` and `arch`.
    const NR: u32 = 0;
    const ARCH_AT: u32 = 4;
    /// Syscall numbers of the x32 ABI have this bit set.
    const X32_BIT: u32 = 0x4000_0000;

    fn op(code: u16, jt: u8, jf: u8, k: u32) -> Instruction {
        Instruction { code, jt, jf, k }
    }

    /// The program: check the architecture, refuse x32, then each denied
    /// number jumps to the `EPERM` return at the end.
    pub fn program() -> Vec<Instruction> {
        let denied: Vec<u32> = LEGACY.iter().chain(DENIED).map(|&n| n as u32).collect();
        assert!(denied.len() < 250, "the filter's jumps fit in a byte");
        let mut p = vec![
            op(LD_W_ABS, 0, 0, ARCH_AT),
            op(JEQ_K, 1, 0, ARCH),
            op(RET_K, 0, 0, RET_KILL_PROCESS),
            op(LD_W_ABS, 0, 0, NR),
            op(JGE_K, 0, 1, X32_BIT),
            op(RET_K, 0, 0, RET_KILL_PROCESS),
        ];
        let n = denied.len();
        for (i, nr) in denied.into_iter().enumerate() {
            // Past the remaining comparisons and the allow, onto the errno.
            p.push(op(JEQ_K, (n - i) as u8, 0, nr));
        }
        p.push(op(RET_K, 0, 0, RET_ALLOW));
        p.push(op(RET_K, 0, 0, RET_ERRNO | EPERM as u32));
        p
    }
}

/// Installs the filter on this process, for good. Requires no_new_privs
/// (set by the worker just before).
#[cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]
pub fn confine() -> Result<(), SeccompError> {
    #[repr(C)]
    struct Program {
        len: u16,
        filter: *const filter::Instruction,
    }
    let p = filter::program();
    let prog = Program {
        len: p.len() as u16,
        filter: p.as_ptr(),
    };
    // SAFETY: `prog` points at `p`, which outlives the call; the kernel
    // copies the program and keeps no reference to it.
    let rc = unsafe {
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER as libc::c_ulong,
            &prog as *const Program as libc::c_ulong,
            0,
            0,
        )
    };
    if rc != 0 {
        return Err(SeccompError(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// No filter where none is written (documented in docs/security.md).
#[cfg(not(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
)))]
pub fn confine() -> Result<(), SeccompError> {
    Ok(())
}

/// Whether this build installs a filter at all.
pub const AVAILABLE: bool = cfg!(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
));
