//! How one worker wakes another: an eventfd in the sleeper's `ppoll` set,
//! written only when the sleeper says it sleeps.

use nix::sys::eventfd::{EfdFlags, EventFd};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::atomic::{fence, AtomicBool, Ordering};

/// Wakes a worker sleeping in `ppoll` (its eventfd is in the poll set).
pub(crate) struct Wake {
    fd: EventFd,
    sleeping: AtomicBool,
}

impl Wake {
    pub fn new() -> anyhow::Result<Self> {
        let fd = EventFd::from_flags(EfdFlags::EFD_NONBLOCK | EfdFlags::EFD_CLOEXEC)
            .map_err(|e| anyhow::anyhow!("creating an eventfd for a worker: {e}"))?;
        Ok(Self {
            fd,
            sleeping: AtomicBool::new(false),
        })
    }

    /// The descriptor to add to the sleeper's poll set.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// After pushing frames for this worker: wakes it if it sleeps. The
    /// fence pairs with the one in [`Wake::sleep`]: either the sleeper sees
    /// the frames before it sleeps, or this sees it sleeping.
    pub fn nudge(&self) {
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) {
            let _ = self.fd.write(1);
        }
    }

    /// Sleeps in `wait` unless `pending()` finds frames pushed for the worker.
    pub fn sleep(&self, pending: impl FnOnce() -> bool, wait: impl FnOnce() -> bool) {
        self.sleeping.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let woken = !pending() && wait();
        self.sleeping.store(false, Ordering::Relaxed);
        if woken {
            // Reset the counter (non-blocking; nothing to read is fine).
            let _ = self.fd.read();
        }
    }
}
