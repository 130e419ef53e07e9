//! A lane's waits: sleeping in `ppoll` until its sockets or a watched
//! descriptor have something, and busy polling the devices' NAPI.

use crate::lane::Lane;

impl Lane {
    /// Sleeps until a frame arrives on one of the sockets this lane receives
    /// on, a watched descriptor becomes readable, or `timeout` passes (the
    /// kernel wakes AF_XDP pollers when it puts frames in an RX ring). A lane
    /// that waits on nothing just sleeps. Returns whether a watched
    /// descriptor was readable.
    pub fn wait_rx(&mut self, timeout: std::time::Duration) -> bool {
        self.wait_from(0, timeout)
    }

    /// Sleeps until a watched descriptor becomes readable or `timeout`
    /// passes, not woken by arrivals (which wait in the RX rings). Returns
    /// whether a watched descriptor was readable.
    pub fn wait_watched(&mut self, timeout: std::time::Duration) -> bool {
        self.wait_from(self.sockets, timeout)
    }

    /// `ppoll` on `pollfds[from..]`.
    fn wait_from(&mut self, from: usize, timeout: std::time::Duration) -> bool {
        for p in &mut self.pollfds {
            p.revents = 0;
        }
        let ts = nix::libc::timespec {
            tv_sec: timeout.as_secs().min(3600) as nix::libc::time_t,
            tv_nsec: timeout.subsec_nanos() as nix::libc::c_long,
        };
        let fds = &mut self.pollfds[from.min(self.sockets)..];
        // SAFETY: `fds` is a slice of initialised entries that lives for the call, passed
        // with its length; ppoll only reads the fds and writes `revents` (a socket of this
        // lane's, or a watched fd: one closed meanwhile is reported POLLNVAL, nothing
        // worse); `ts` is a valid timespec and a null signal mask is allowed. The result
        // (ready count or EINTR) needs no handling: the caller looks at the rings and
        // `revents` anyway.
        unsafe {
            nix::libc::ppoll(
                fds.as_mut_ptr(),
                fds.len() as nix::libc::nfds_t,
                &ts,
                std::ptr::null(),
            );
        }
        self.pollfds[self.sockets..]
            .iter()
            .any(|p| p.revents & nix::libc::POLLIN != 0)
    }

    /// Turns on preferred busy polling on the sockets this lane receives on
    /// (`SO_PREFER_BUSY_POLL`, `SO_BUSY_POLL` = `usecs`, `SO_BUSY_POLL_BUDGET`
    /// = `budget`): when the lane polls ([`Lane::busy_poll`]) the kernel runs
    /// the device queue's NAPI in this thread instead of in softirq or a NAPI
    /// thread. For the kernel to leave NAPI to the poller between polls, the
    /// device needs `napi_defer_hard_irqs` and `gro_flush_timeout` set
    /// (sysfs); without them busy polling still works, NAPI just also runs as
    /// usual.
    pub fn enable_busy_poll(&mut self, usecs: u32, budget: u32) -> std::io::Result<()> {
        use nix::libc::{
            c_int, SOL_SOCKET, SO_BUSY_POLL, SO_BUSY_POLL_BUDGET, SO_PREFER_BUSY_POLL,
        };
        let opts = [
            (SO_PREFER_BUSY_POLL, 1),
            (SO_BUSY_POLL, usecs.min(c_int::MAX as u32) as c_int),
            (SO_BUSY_POLL_BUDGET, budget.min(u16::MAX as u32) as c_int),
        ];
        for p in &self.pollfds[..self.sockets] {
            for (opt, val) in opts {
                // SAFETY: `p.fd` is an open socket of this lane's; the option value is a
                // c_int that lives for the call, and its size is passed with it.
                let r = unsafe {
                    nix::libc::setsockopt(
                        p.fd,
                        SOL_SOCKET,
                        opt,
                        (&val as *const c_int).cast(),
                        std::mem::size_of::<c_int>() as nix::libc::socklen_t,
                    )
                };
                if r != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
        }
        Ok(())
    }

    /// Busy-polls the device queues behind this lane's receiving sockets
    /// once (a non-blocking `recvfrom` on each: with busy polling enabled the
    /// kernel runs their NAPI here and fills the RX rings).
    pub fn busy_poll(&mut self) {
        for p in &self.pollfds[..self.sockets] {
            // A zero-length receive is what AF_XDP's recvmsg expects (it copies
            // nothing); the result needs no handling: the caller reads the RX ring.
            let flags = nix::sys::socket::MsgFlags::MSG_DONTWAIT;
            let _ = nix::sys::socket::recv(p.fd, &mut [], flags);
        }
    }

    /// Adds `fd` to what [`Lane::wait_rx`] waits on (readable): an eventfd
    /// another thread writes to wake this lane. The caller keeps `fd` open
    /// while the lane may wait on it.
    pub fn watch(&mut self, fd: std::os::fd::RawFd) {
        self.pollfds.push(nix::libc::pollfd {
            fd,
            events: nix::libc::POLLIN,
            revents: 0,
        });
    }
}
