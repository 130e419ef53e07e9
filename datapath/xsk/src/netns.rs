//! Network namespaces per thread: a thread enters a named namespace
//! (`ip netns add NAME`) with setns(2), so one process can own ports in two
//! namespaces (xdpgen sends from one and receives on the other, with one
//! clock). Sockets and AF_XDP bindings stay in the namespace they were
//! created in, whatever the thread does afterwards.

use std::fs::File;
use std::path::PathBuf;

/// Why a namespace could not be entered.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    /// No such namespace.
    #[error("network namespace {name:?} not found ({path}: {source}); create it with `ip netns add {name}`")]
    Open {
        /// The name.
        name: String,
        /// Where it was looked for.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// setns failed (needs CAP_SYS_ADMIN).
    #[error("could not enter network namespace {name:?}: {source} (needs root / CAP_SYS_ADMIN)")]
    Enter {
        /// The name.
        name: String,
        /// The error.
        source: nix::Error,
    },
}

/// Where `ip netns` keeps named namespaces.
pub fn path_of(name: &str) -> PathBuf {
    if name.contains('/') {
        PathBuf::from(name)
    } else {
        PathBuf::from("/var/run/netns").join(name)
    }
}

/// Moves the calling thread into network namespace `name` (a name under
/// /var/run/netns, or a path such as /proc/PID/ns/net). Other threads are
/// not affected.
pub fn enter(name: &str) -> Result<(), NetnsError> {
    let path = path_of(name);
    let f = File::open(&path).map_err(|source| NetnsError::Open {
        name: name.to_string(),
        path: path.display().to_string(),
        source,
    })?;
    nix::sched::setns(f, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|source| NetnsError::Enter {
        name: name.to_string(),
        source,
    })
}

/// Runs `f` in namespace `name` (if given) on the calling thread and moves
/// the thread back to where it was afterwards. Not for objects that must be
/// torn down in the namespace (an `Xsk` detaches its XDP programs by
/// ifindex when it drops): create those from a thread that [`enter`]s the
/// namespace for good.
pub fn within<R>(name: Option<&str>, f: impl FnOnce() -> R) -> Result<R, NetnsError> {
    let Some(name) = name else {
        return Ok(f());
    };
    let home = File::open("/proc/thread-self/ns/net").map_err(|source| NetnsError::Open {
        name: "(current)".into(),
        path: "/proc/thread-self/ns/net".into(),
        source,
    })?;
    enter(name)?;
    let r = f();
    nix::sched::setns(home, nix::sched::CloneFlags::CLONE_NEWNET).map_err(|source| {
        NetnsError::Enter {
            name: "(back home)".into(),
            source,
        }
    })?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_namespace_is_a_clear_error() {
        let e = enter("xdpsched-no-such-ns")
            .expect_err("absent")
            .to_string();
        assert!(
            e.contains("xdpsched-no-such-ns") && e.contains("ip netns add"),
            "{e}"
        );
        assert!(within(Some("xdpsched-no-such-ns"), || 1).is_err());
        assert_eq!(within(None, || 7).expect("no namespace"), 7);
    }
}
