//! A headless Chromium for the live pages' tests, driven over the DevTools
//! protocol on a pipe (`--remote-debugging-pipe`: no port, so it works
//! inside a network namespace the test process is not in): load a page,
//! evaluate JavaScript in it, take a screenshot. The browser is killed when
//! the guard drops.

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// A headless Chromium with one page.
#[derive(Debug)]
pub struct Browser {
    child: Child,
    to: ChildStdin,
    from: BufReader<ChildStdout>,
    next: u64,
    session: String,
    profile: std::path::PathBuf,
}

impl Browser {
    /// Starts Chromium in network namespace `ns` (None: this one) on `url`,
    /// a `width`×`height` window.
    pub fn open(ns: Option<&str>, url: &str, width: u32, height: u32) -> Browser {
        let profile = std::env::temp_dir().join(format!(
            "xdpsched-chromium-{}-{}",
            std::process::id(),
            url.len()
        ));
        let _ = std::fs::remove_dir_all(&profile);
        // fd 3: the commands (our pipe into its stdin); fd 4: the answers
        // (its stdout, our pipe): what --remote-debugging-pipe reads and writes.
        let script = format!(
            "exec chromium --headless=new --no-sandbox --disable-gpu --no-first-run \
             --user-data-dir={} --window-size={width},{height} --hide-scrollbars \
             --remote-debugging-pipe {url} 3<&0 4>&1 0</dev/null 1>/dev/null 2>/dev/null",
            profile.display()
        );
        let mut cmd = match ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "bash", "-c", &script]);
                c
            }
            None => {
                let mut c = Command::new("bash");
                c.args(["-c", &script]);
                c
            }
        };
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromium (the test command installs it)");
        let to = child.stdin.take().expect("stdin");
        let from = BufReader::new(child.stdout.take().expect("stdout"));
        let mut b = Browser {
            child,
            to,
            from,
            next: 0,
            session: String::new(),
            profile,
        };
        // The page's target, and a session on it.
        let t0 = Instant::now();
        let target = loop {
            let r = b.call(None, "Target.getTargets", json!({}));
            let page = r["targetInfos"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|t| t["type"] == "page")
                .and_then(|t| t["targetId"].as_str().map(str::to_owned));
            if let Some(p) = page {
                break p;
            }
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "no page target: {r}"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let r = b.call(
            None,
            "Target.attachToTarget",
            json!({ "targetId": target, "flatten": true }),
        );
        b.session = r["sessionId"].as_str().expect("a session").to_owned();
        b
    }

    /// One DevTools command (on the page's session unless `session` is
    /// None and none is set yet) and its result.
    fn call(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if let Some(s) = session {
            msg["sessionId"] = s.into();
        }
        self.to
            .write_all(format!("{msg}\0").as_bytes())
            .expect("write to chromium");
        self.to.flush().expect("flush");
        loop {
            let mut buf = Vec::new();
            let n = self
                .from
                .read_until(0, &mut buf)
                .expect("read from chromium");
            assert!(n > 0, "chromium closed the pipe (did it start?)");
            buf.pop();
            let v: Value = serde_json::from_slice(&buf).expect("a DevTools message");
            if v["id"] == id {
                assert!(v["error"].is_null(), "{method}: {v}");
                return v["result"].clone();
            }
        }
    }

    /// The value of `expr` evaluated in the page (awaited if a promise).
    pub fn eval(&mut self, expr: &str) -> Value {
        let s = self.session.clone();
        let r = self.call(
            Some(&s),
            "Runtime.evaluate",
            json!({ "expression": expr, "returnByValue": true, "awaitPromise": true }),
        );
        assert!(
            r["exceptionDetails"].is_null(),
            "{expr}: {}",
            r["exceptionDetails"]
        );
        r["result"]["value"].clone()
    }

    /// A PNG of the page as it is now.
    pub fn screenshot(&mut self) -> Vec<u8> {
        let s = self.session.clone();
        let r = self.call(
            Some(&s),
            "Page.captureScreenshot",
            json!({ "format": "png" }),
        );
        base64(r["data"].as_str().expect("base64 PNG"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// Standard base64 (with padding) to bytes.
fn base64(s: &str) -> Vec<u8> {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => 0,
        }
    };
    let bytes: Vec<u8> = s.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let pad = chunk.iter().filter(|&&c| c == b'=').count();
        let n = chunk.iter().fold(0u32, |acc, &c| {
            (acc << 6) | if c == b'=' { 0 } else { val(c) }
        });
        let n = n << (6 * (4 - chunk.len()));
        let b = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&b[..3 - pad.min(2)]);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_decodes() {
        assert_eq!(super::base64("aGVsbG8="), b"hello");
        assert_eq!(super::base64("aGk="), b"hi");
        assert_eq!(super::base64("YWJj"), b"abc");
    }
}
