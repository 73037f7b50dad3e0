//! Container attribution from `/proc/PID/cgroup`: each runtime names its
//! cgroups in a recognisable way (v1 and v2 alike). The first line that
//! matches wins.

use crate::inventory::Container;

/// The container a running process is in, from `PID/cgroup` under the
/// open procfs directory `proc`; `None` when it is in none or has exited.
/// `buf` is reused: the tracer asks this for every creating process.
pub fn of_pid(proc: std::os::fd::BorrowedFd<'_>, pid: u32, buf: &mut Vec<u8>) -> Option<Container> {
    use std::io::Write;
    // "4294967295/cgroup" and its NUL fit: no allocation per call.
    let mut name = [0u8; 32];
    let mut w = &mut name[..];
    write!(w, "{pid}/cgroup\0").ok()?;
    let name = std::ffi::CStr::from_bytes_until_nul(&name).ok()?;
    // Left empty when the process is gone: `buf` is then no one's file.
    buf.clear();
    crate::sys::read_at(proc, name, buf).ok()?;
    from_cgroup_file(buf)
}

/// Reads the runtime and container id out of a cgroup file's content.
pub fn from_cgroup_file(content: &[u8]) -> Option<Container> {
    let text = String::from_utf8_lossy(content);
    text.lines().find_map(|line| {
        // "hierarchy-ID:controllers:path"
        let path = line.splitn(3, ':').nth(2)?;
        from_cgroup_path(path)
    })
}

/// Recognises one cgroup path.
pub fn from_cgroup_path(path: &str) -> Option<Container> {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    // Walk from the leaf up: the innermost claim is the container itself
    // (a docker container inside a Kubernetes pod is the pod's container).
    let kube = parts.iter().any(|p| p.starts_with("kubepods"));
    for (i, part) in parts.iter().enumerate().rev() {
        let scope = part.strip_suffix(".scope").unwrap_or(part);
        let found = if let Some(id) = scope.strip_prefix("docker-") {
            Some(("docker", id))
        } else if let Some(id) = scope.strip_prefix("cri-containerd-") {
            Some((if kube { "kubernetes" } else { "containerd" }, id))
        } else if let Some(id) = scope.strip_prefix("crio-") {
            if id.starts_with("conmon-") {
                None
            } else {
                Some(("kubernetes", id))
            }
        } else if let Some(id) = scope.strip_prefix("libpod-") {
            // libpod-conmon-ID is podman's monitor, not the container.
            if id.starts_with("conmon-") {
                None
            } else {
                Some(("podman", id))
            }
        } else if let Some(name) = scope.strip_prefix("lxc.payload.") {
            Some(("lxc", name))
        } else if let Some(name) = scope.strip_prefix("machine-")
            && i > 0
            && parts[i - 1] == "machine.slice"
            && part.ends_with(".scope")
        {
            // systemd-nspawn registers as machine-NAME.scope (libvirt's
            // machine-qemu… scopes are VMs and hold no namespaces of note).
            if name.starts_with("qemu") {
                None
            } else {
                Some(("systemd-nspawn", name))
            }
        } else if i > 0 && is_hex_id(scope) {
            // cgroupfs drivers: /docker/ID, /kubepods/…/podUID/ID, /lxc/NAME.
            match parts[i - 1] {
                "docker" => Some(("docker", scope)),
                _ if kube => Some(("kubernetes", scope)),
                _ => None,
            }
        } else if i > 0 && parts[i - 1] == "lxc" && i == parts.len() - 1 {
            Some(("lxc", scope))
        } else {
            None
        };
        // "docker-" alone names no container (found by the cgroup fuzz target).
        if let Some((runtime, id)) = found
            && !id.is_empty()
        {
            return Some(Container::new(runtime, id));
        }
    }
    None
}

fn is_hex_id(s: &str) -> bool {
    s.len() >= 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f1b2c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809";

    fn rt(path: &str) -> Option<(&'static str, String)> {
        from_cgroup_path(path).map(|c| (c.runtime, c.id))
    }

    #[test]
    fn docker_systemd_and_cgroupfs() {
        assert_eq!(
            rt(&format!("/system.slice/docker-{ID}.scope")),
            Some(("docker", ID.into()))
        );
        assert_eq!(rt(&format!("/docker/{ID}")), Some(("docker", ID.into())));
    }

    #[test]
    fn kubernetes_and_containerd() {
        let p = format!(
            "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1234.slice/cri-containerd-{ID}.scope"
        );
        assert_eq!(rt(&p), Some(("kubernetes", ID.into())));
        assert_eq!(
            rt(&format!("/kubepods/burstable/pod12-34/{ID}")),
            Some(("kubernetes", ID.into()))
        );
        assert_eq!(
            rt(&format!("/system.slice/cri-containerd-{ID}.scope")),
            Some(("containerd", ID.into()))
        );
        assert_eq!(
            rt(&format!("/kubepods.slice/crio-{ID}.scope")),
            Some(("kubernetes", ID.into()))
        );
    }

    #[test]
    fn podman_lxc_nspawn() {
        assert_eq!(
            rt(&format!("/machine.slice/libpod-{ID}.scope")),
            Some(("podman", ID.into()))
        );
        assert_eq!(
            rt(&format!("/machine.slice/libpod-conmon-{ID}.scope")),
            None
        );
        assert_eq!(rt("/lxc.payload.web1"), Some(("lxc", "web1".into())));
        assert_eq!(
            rt("/lxc.payload.web1/init.scope"),
            Some(("lxc", "web1".into()))
        );
        assert_eq!(rt("/lxc/web2"), Some(("lxc", "web2".into())));
        assert_eq!(
            rt("/machine.slice/machine-deb12.scope"),
            Some(("systemd-nspawn", "deb12".into()))
        );
        assert_eq!(rt("/machine.slice/machine-qemu\\x2d1\\x2dvm.scope"), None);
    }

    #[test]
    fn host_paths_are_not_containers() {
        assert_eq!(rt("/"), None);
        assert_eq!(rt("/user.slice/user-0.slice/session-1.scope"), None);
        assert_eq!(rt("/system.slice/docker.service"), None);
        assert_eq!(rt("/process_api/694f4c219de9add66a3abb6306d3574d"), None);
    }

    #[test]
    fn file_with_v1_and_v2_lines() {
        let file = format!("12:pids:/\n4:memory:/docker/{ID}\n0::/\n");
        let c = from_cgroup_file(file.as_bytes()).unwrap();
        assert_eq!((c.runtime, c.id.as_str()), ("docker", ID));
        assert_eq!(from_cgroup_file(b"0::/init.scope\n"), None);
        assert_eq!(from_cgroup_file(b"garbage\xff"), None);
    }

    /// Found by the cgroup fuzz target: a runtime's prefix with no id after
    /// it was a container whose id was "".
    #[test]
    fn fuzz_prefix_without_id_is_no_container() {
        let file =
            b"12:pids:/machine-/burstable/pod1234/3f1b2c4d5e6f708192192a3b5d6e7f809\n0::docker-/\n";
        assert_eq!(from_cgroup_file(file), None);
        for path in [
            "/docker-.scope",
            "/libpod-",
            "/lxc.payload.",
            "/cri-containerd-.scope",
        ] {
            assert_eq!(rt(path), None, "{path}");
        }
        // The walk goes on upwards past an empty claim.
        assert_eq!(
            rt(&format!("/docker-{ID}.scope/docker-")),
            Some(("docker", ID.into()))
        );
    }
}
