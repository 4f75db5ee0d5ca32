//! The page size, from `sysconf(_SC_PAGESIZE)`, read once. Never assumed: arm64 and ppc64
//! kernels run with 16 KiB and 64 KiB pages.

use std::sync::OnceLock;

pub fn page_size() -> u64 {
    static PAGE_SIZE: OnceLock<u64> = OnceLock::new();
    *PAGE_SIZE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if n > 0 {
            n as u64
        } else {
            4096
        }
    })
}
