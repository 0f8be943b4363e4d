//! Network namespaces for the media tests (root only): each peer, server or TURN server in its
//! own namespace, joined by veth pairs, so a capture of one namespace sees exactly its traffic
//! and what cannot be routed cannot leak.

use std::process::Command;

/// Runs `script` with `sh -c`; fails the test with its output if it fails.
#[track_caller]
pub fn sh(script: &str) -> String {
    let out = Command::new("sh")
        .args(["-c", script])
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "`{script}` failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace with its loopback up; deleted (with the veth pairs in it) on drop.
#[derive(Debug)]
pub struct Netns {
    /// Its name (for `ip netns exec`).
    pub name: String,
}

impl Netns {
    /// Makes namespace `name`, replacing a leftover of an earlier run.
    #[track_caller]
    pub fn new(name: &str) -> Self {
        let _ = Command::new("ip").args(["netns", "del", name]).output();
        sh(&format!(
            "ip netns add {name} && ip -n {name} link set lo up"
        ));
        Self {
            name: name.to_owned(),
        }
    }

    /// The command prefix that runs a program inside it.
    pub fn exec(&self) -> [&str; 4] {
        ["ip", "netns", "exec", &self.name]
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A veth pair between `a` (a namespace, or `None` for the caller's own) and `b`, named
/// `a_if` / `b_if`, with `a_ip` / `b_ip` (CIDR) on its ends, both up.
#[track_caller]
pub fn veth((a, a_if, a_ip): (Option<&Netns>, &str, &str), (b, b_if, b_ip): (&Netns, &str, &str)) {
    let on = |ns: Option<&Netns>| ns.map_or(String::new(), |n| format!("-n {} ", n.name));
    let (a_on, b_on) = (on(a), on(Some(b)));
    let _ = Command::new("sh")
        .args(["-c", &format!("ip {a_on}link del {a_if}")])
        .output();
    sh(&format!(
        "ip {a_on}link add {a_if} type veth peer name {b_if} netns {b} && \
         ip {a_on}addr add {a_ip} dev {a_if} && ip {a_on}link set {a_if} up && \
         ip {b_on}addr add {b_ip} dev {b_if} && ip {b_on}link set {b_if} up",
        b = b.name
    ));
}
