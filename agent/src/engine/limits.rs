//! The file-descriptor budget: every in-flight connect holds one descriptor.
//!
//! Default soft limits (1024) would cap a connect scan at a few hundred probes
//! in flight, so the agent raises its soft limit to the hard limit at start
//! and sizes its window from what it got.

/// Descriptors kept free for the gRPC connection, logs and the store.
const RESERVED_FDS: u64 = 128;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the soft limit now in force.
pub fn raise_nofile_limit() -> u64 {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let wanted = libc::rlimit { rlim_cur: lim.rlim_max, rlim_max: lim.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &wanted) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}

/// How many sockets may be open at once under a descriptor limit.
pub fn socket_budget(nofile: u64) -> usize {
    nofile.saturating_sub(RESERVED_FDS).max(16).min(u32::MAX as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_never_lowers() {
        let before = {
            let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
            unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
            lim.rlim_cur
        };
        assert!(raise_nofile_limit() >= before);
    }

    #[test]
    fn budget_keeps_a_reserve() {
        assert_eq!(socket_budget(1024), 896);
        assert_eq!(socket_budget(10), 16);
    }
}
