//! Process hardening the room worker applies before it touches media: the plaintext of every
//! participant's media passes through this process's memory, so it must not leave through a
//! core dump, a debugger, swap, or a privilege-gaining exec.
//!
//! - `prctl(PR_SET_DUMPABLE, 0)`: no core dumps, and same-uid processes cannot `ptrace` it or
//!   read `/proc/PID/mem`.
//! - `setrlimit(RLIMIT_CORE, 0)`: belt and braces for the core dump.
//! - `mlockall(MCL_CURRENT | MCL_FUTURE)`: every page stays in RAM, so decrypted frames never
//!   reach a swap device. Needs `RLIMIT_MEMLOCK` large enough (or `CAP_IPC_LOCK`); when the
//!   limit forbids it the worker logs a warning, carries on, and reports the failure in
//!   `ready` and `stats` so the deployment can be fixed (or swap disabled).
//! - `prctl(PR_SET_NO_NEW_PRIVS, 1)`: nothing it could exec gains privileges.

use mediaseal_rooms::control::HardeningReport;
use rustix::mm::{MlockAllFlags, mlockall};
use rustix::process::{DumpableBehavior, Resource, Rlimit, set_dumpable_behavior, setrlimit};
use rustix::thread::set_no_new_privs;

/// Applies every measure it can and says which took effect. Never fails: a measure that the
/// environment refuses is reported, not fatal (callers may refuse to run without it). Runs
/// before logging is set up, so it logs nothing: pass the report to [`log_hardening`].
pub fn harden_process() -> HardeningReport {
    // Order matters only in that every step runs before any media arrives.
    let not_dumpable = set_dumpable_behavior(DumpableBehavior::NotDumpable).is_ok();
    let no_core = Rlimit {
        current: Some(0),
        maximum: Some(0),
    };
    let core_limit_zero = setrlimit(Resource::Core, no_core).is_ok();
    let memory_lock_error = mlockall(MlockAllFlags::CURRENT | MlockAllFlags::FUTURE)
        .err()
        .map(|e| {
            let limit = rustix::process::getrlimit(Resource::Memlock);
            format!(
                "mlockall(MCL_CURRENT|MCL_FUTURE) failed ({e}); RLIMIT_MEMLOCK is {}; decrypted \
                 media may reach swap: raise the limit (LimitMEMLOCK=infinity, ulimit -l) or \
                 run without swap",
                limit
                    .current
                    .map_or_else(|| "unlimited".to_owned(), |b| format!("{b} bytes"))
            )
        });
    let no_new_privs = set_no_new_privs(true).is_ok();
    HardeningReport {
        not_dumpable,
        core_limit_zero,
        memory_locked: memory_lock_error.is_none(),
        memory_lock_error,
        no_new_privs,
    }
}

/// Logs a warning for every measure of `report` that did not take effect.
pub fn log_hardening(report: &HardeningReport) {
    if !report.not_dumpable {
        tracing::warn!("prctl(PR_SET_DUMPABLE, 0) failed: a crash could leave a core dump");
    }
    if !report.core_limit_zero {
        tracing::warn!("setrlimit(RLIMIT_CORE, 0) failed: a crash could leave a core dump");
    }
    if let Some(message) = &report.memory_lock_error {
        tracing::warn!("{message}");
    }
    if !report.no_new_privs {
        tracing::warn!("prctl(PR_SET_NO_NEW_PRIVS, 1) failed");
    }
    if report.not_dumpable && report.core_limit_zero && report.memory_locked && report.no_new_privs
    {
        tracing::info!("hardened: not dumpable, no core dumps, memory locked, no new privileges");
    }
}
