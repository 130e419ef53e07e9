//! Our XDP program (datapath/xsk/bpf/xdpsched.bpf.c, compiled by build.rs
//! and embedded) and the libbpf/libxdp calls around it: load, bind a socket
//! into its map, attach, read its counters, detach; silencing the libraries'
//! logs; detaching what a killed process left.

use crate::params::XdpMode;

unsafe extern "C" fn quiet_libbpf(
    _level: libbpf_sys::libbpf_print_level,
    _fmt: *const std::os::raw::c_char,
    _ap: *mut libbpf_sys::__va_list_tag,
) -> std::os::raw::c_int {
    0
}

unsafe extern "C" fn quiet_libxdp(
    _level: libxdp_sys::libxdp_print_level,
    _fmt: *const std::os::raw::c_char,
    _ap: *mut libxdp_sys::__va_list_tag,
) -> std::os::raw::c_int {
    0
}

/// Silences libbpf's and libxdp's own logging (ELF section notices, the
/// dispatcher fallback when bpffs is missing): xdpsched reports failures
/// itself, with the errno. `--verbose` leaves the libraries' logging on.
pub fn quiet_library_logs() {
    // SAFETY: both setters store a function pointer in a library global; the
    // functions are `extern "C"`, never unwind and ignore their arguments. Called
    // once at start-up before any socket is created, so no library call is
    // reading the global concurrently.
    unsafe {
        libbpf_sys::libbpf_set_print(Some(quiet_libbpf));
        libxdp_sys::libxdp_set_print(Some(quiet_libxdp));
    }
}

/// Detaches any XDP program (generic and native mode) from the interface with
/// index `ifindex`: what `xdpsched cleanup` does after a crash. Returns the
/// modes that had a program.
pub fn detach_xdp(ifindex: u32) -> Result<Vec<&'static str>, std::io::Error> {
    let mut detached = Vec::new();
    for (flag, mode) in [(2u32, "generic"), (4u32, "native")] {
        let mut id = 0u32;
        // SAFETY: `id` is a valid out-pointer for the call's duration.
        let q = unsafe { libbpf_sys::bpf_xdp_query_id(ifindex as i32, flag as i32, &mut id) };
        if q < 0 {
            return Err(std::io::Error::from_raw_os_error(-q));
        }
        if id == 0 {
            continue;
        }
        // SAFETY: a null options pointer is allowed (no expected program id).
        let r = unsafe { libbpf_sys::bpf_xdp_detach(ifindex as i32, flag, std::ptr::null()) };
        if r < 0 {
            return Err(std::io::Error::from_raw_os_error(-r));
        }
        detached.push(mode);
    }
    Ok(detached)
}

/// The compiled XDP program (datapath/xsk/bpf/xdpsched.bpf.c).
static XDP_OBJ: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/xdpsched.bpf.o"));

/// Our XDP program attached to one port, with its maps.
#[derive(Debug)]
pub struct XdpProgram {
    obj: std::ptr::NonNull<libbpf_sys::bpf_object>,
    ifindex: u32,
    flags: u32,
    xsks_fd: i32,
    peer_fd: i32,
    counters_fd: i32,
    prog_fd: i32,
}

fn errno(r: i32) -> std::io::Error {
    std::io::Error::from_raw_os_error(r.unsigned_abs() as i32)
}

impl XdpProgram {
    /// Loads the program for `ifindex` (not attached yet: bind the sockets with
    /// [`XdpProgram::bind_socket`] first, then [`XdpProgram::attach`], so that no
    /// frame meets the program before its socket is in place); frames of a queue
    /// without a socket will be dropped if `closed`, else go to `peer`
    /// (another ifindex) or the stack.
    pub fn load(ifindex: u32, peer: Option<u32>, closed: bool) -> Result<Self, std::io::Error> {
        let name = c"xdpsched";
        // SAFETY: the options struct is zeroed then sized as libbpf requires; the object
        // bytes are a static that outlives the object (libbpf copies them anyway).
        let obj = unsafe {
            let mut opts: libbpf_sys::bpf_object_open_opts = std::mem::zeroed();
            opts.sz = std::mem::size_of::<libbpf_sys::bpf_object_open_opts>() as _;
            opts.object_name = name.as_ptr();
            libbpf_sys::bpf_object__open_mem(XDP_OBJ.as_ptr().cast(), XDP_OBJ.len() as _, &opts)
        };
        let obj = std::ptr::NonNull::new(obj).ok_or_else(std::io::Error::last_os_error)?;
        let mut prog = Self {
            obj,
            ifindex,
            flags: 0,
            xsks_fd: -1,
            peer_fd: -1,
            counters_fd: -1,
            prog_fd: -1,
        };
        // SAFETY: `obj` is a valid object just opened; the names are NUL-terminated; the
        // map updates read a live u32 key and value for the duration of each call.
        unsafe {
            let r = libbpf_sys::bpf_object__load(obj.as_ptr());
            if r < 0 {
                return Err(errno(r));
            }
            let p = libbpf_sys::bpf_object__find_program_by_name(
                obj.as_ptr(),
                c"xdpsched_redirect".as_ptr(),
            );
            if p.is_null() {
                return Err(std::io::Error::other(
                    "xdpsched_redirect not found in the XDP object",
                ));
            }
            prog.prog_fd = libbpf_sys::bpf_program__fd(p);
            prog.xsks_fd =
                libbpf_sys::bpf_object__find_map_fd_by_name(obj.as_ptr(), c"xsks_map".as_ptr());
            prog.peer_fd =
                libbpf_sys::bpf_object__find_map_fd_by_name(obj.as_ptr(), c"peer_map".as_ptr());
            prog.counters_fd =
                libbpf_sys::bpf_object__find_map_fd_by_name(obj.as_ptr(), c"counters".as_ptr());
            let mode_fd =
                libbpf_sys::bpf_object__find_map_fd_by_name(obj.as_ptr(), c"fail_mode".as_ptr());
            if prog.xsks_fd < 0 || prog.peer_fd < 0 || prog.counters_fd < 0 || mode_fd < 0 {
                return Err(std::io::Error::other("maps missing from the XDP object"));
            }
            // FAIL_CLOSED in the program.
            let (key, mode) = (0u32, u32::from(closed));
            let r = libbpf_sys::bpf_map_update_elem(
                mode_fd,
                (&key as *const u32).cast(),
                (&mode as *const u32).cast(),
                0,
            );
            if r < 0 {
                return Err(errno(r));
            }
            if let Some(peer) = peer {
                let key = 0u32;
                let r = libbpf_sys::bpf_map_update_elem(
                    prog.peer_fd,
                    (&key as *const u32).cast(),
                    (&peer as *const u32).cast(),
                    0,
                );
                if r < 0 {
                    return Err(errno(r));
                }
            }
        }
        Ok(prog)
    }

    /// Attaches the loaded program to its interface in `mode`.
    pub fn attach(&mut self, mode: XdpMode) -> Result<(), std::io::Error> {
        let modes: &[u32] = match mode {
            XdpMode::Native => &[4],
            XdpMode::Skb => &[2],
            XdpMode::Auto => &[4, 2],
        };
        let mut last = 0;
        for &m in modes {
            // SAFETY: plain syscall wrapper on our program fd; null options are allowed.
            last = unsafe {
                libbpf_sys::bpf_xdp_attach(self.ifindex as i32, self.prog_fd, m, std::ptr::null())
            };
            if last == 0 {
                self.flags = m;
                return Ok(());
            }
        }
        Err(errno(last))
    }

    /// How the program is attached: "native" (driver), "skb" (generic), or
    /// "detached".
    pub fn attached_mode(&self) -> &'static str {
        match self.flags {
            4 => "native",
            2 => "skb",
            _ => "detached",
        }
    }

    /// Steers queue `queue`'s frames to the AF_XDP socket `fd`.
    pub fn bind_socket(&self, queue: u32, fd: i32) -> Result<(), std::io::Error> {
        // SAFETY: key and value point to live u32/i32 for the call; the map fd is ours.
        let r = unsafe {
            libbpf_sys::bpf_map_update_elem(
                self.xsks_fd,
                (&queue as *const u32).cast(),
                (&fd as *const i32).cast(),
                0,
            )
        };
        if r < 0 {
            return Err(errno(r));
        }
        Ok(())
    }

    /// Takes every socket out of the program's map: from now on the
    /// program sends the port's frames where it would if xdpsched had died
    /// (fail-open or closed), while the sockets keep what their RX rings
    /// hold. Queues without a socket are skipped.
    pub fn unbind_sockets(&self) -> Result<(), std::io::Error> {
        for queue in 0..crate::params::MAX_QUEUES {
            // SAFETY: the key points to a live u32 for the call; the map fd is ours.
            let r = unsafe {
                libbpf_sys::bpf_map_delete_elem(self.xsks_fd, (&queue as *const u32).cast())
            };
            if r < 0 && errno(r).kind() != std::io::ErrorKind::NotFound {
                return Err(errno(r));
            }
        }
        Ok(())
    }

    /// Frames the program sent (to the socket, failed open), summed over CPUs.
    pub fn counters(&self) -> (u64, u64) {
        let cpus = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .max(1);
        let mut out = [0u64; 2];
        for (i, o) in out.iter_mut().enumerate() {
            let key = i as u32;
            // One value per possible CPU; generous room in case of offline CPUs.
            let mut vals = vec![0u64; cpus.max(256)];
            // SAFETY: `vals` has room for one u64 per possible CPU, as a per-CPU map
            // lookup writes; key points to a live u32.
            let r = unsafe {
                libbpf_sys::bpf_map_lookup_elem(
                    self.counters_fd,
                    (&key as *const u32).cast(),
                    vals.as_mut_ptr().cast(),
                )
            };
            if r == 0 {
                *o = vals.iter().sum();
            }
        }
        (out[0], out[1])
    }

    /// Detaches the program (a clean exit; after a crash the program stays and fails open).
    pub fn detach(&mut self) {
        if self.flags != 0 {
            // SAFETY: plain syscall wrapper; null options are allowed.
            unsafe {
                libbpf_sys::bpf_xdp_detach(self.ifindex as i32, self.flags, std::ptr::null())
            };
            self.flags = 0;
        }
    }
}

impl Drop for XdpProgram {
    fn drop(&mut self) {
        self.detach();
        // SAFETY: the object was opened by us and is closed exactly once.
        unsafe { libbpf_sys::bpf_object__close(self.obj.as_ptr()) };
    }
}
