//! The allocator's freed pages, given back to the system at once after a
//! large free, rather than when jemalloc's decay gets to them.
//!
//! Loading the key table reads every user and key (rows of strings), and
//! each change copies the table; jemalloc keeps such freed pages dirty for
//! some ten seconds, and only purges them while something allocates, so an
//! idle server with 100,000 users held 44 MiB of them (BENCHMARKS.md).

/// Gives every arena's unused dirty pages back to the system; whether
/// jemalloc took the request. Where jemalloc is not the allocator (the
/// lib's test binaries) its arenas hold nothing, and it still answers.
pub fn give_back_freed() -> bool {
    // jemalloc's name for "all arenas" (MALLCTL_ARENAS_ALL is 4096).
    const ALL_ARENAS_PURGE: &std::ffi::CStr = c"arena.4096.purge";
    // SAFETY: `arena.<i>.purge` takes no argument and returns nothing: all
    // four pointers are null, as jemalloc's manual says for it.
    let rc = unsafe {
        tikv_jemalloc_sys::mallctl(
            ALL_ARENAS_PURGE.as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            0,
        )
    };
    if rc != 0 {
        tracing::debug!(rc, "jemalloc did not purge its arenas");
    }
    rc == 0
}

#[cfg(test)]
mod tests {
    /// A misspelt control name would make every purge a silent no-op.
    #[test]
    fn jemalloc_takes_the_purge() {
        assert!(super::give_back_freed());
    }
}
