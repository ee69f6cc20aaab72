//! Which pod a GPU process belongs to, from what the node itself says: the process's
//! cgroup names its container (`/proc/<pid>/cgroup`), and the kubelet's
//! `/var/log/containers/<pod>_<namespace>_<container>-<container id>.log` links name the
//! container's pod. No API server is needed, so attribution works on a node agent alone.

use std::collections::HashMap;
use std::path::PathBuf;

/// A pod (and container) a GPU serves.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct PodRef {
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
    /// The container, where known.
    pub container: Option<String>,
}

/// Finds the pods of processes on this node.
#[derive(Clone, Debug)]
pub struct ContainerPods {
    proc_root: PathBuf,
    containers_dir: PathBuf,
}

impl Default for ContainerPods {
    fn default() -> Self {
        ContainerPods::new("/proc", "/var/log/containers")
    }
}

impl ContainerPods {
    /// Reads processes under `proc_root` and container links in `containers_dir`.
    pub fn new(proc_root: impl Into<PathBuf>, containers_dir: impl Into<PathBuf>) -> Self {
        ContainerPods {
            proc_root: proc_root.into(),
            containers_dir: containers_dir.into(),
        }
    }

    /// The pods of `pids`, for those that run in a container of a pod this node knows (a
    /// process that is gone, or runs outside Kubernetes, is left out).
    pub fn pods_of(&self, pids: &[u32]) -> HashMap<u32, PodRef> {
        let containers: HashMap<u32, String> = pids
            .iter()
            .filter_map(|pid| Some((*pid, self.container_id(*pid)?)))
            .collect();
        if containers.is_empty() {
            return HashMap::new();
        }
        let pods = self.container_pods();
        containers
            .into_iter()
            .filter_map(|(pid, cid)| Some((pid, pods.get(&cid)?.clone())))
            .collect()
    }

    /// The container id of `pid`, from its cgroup.
    pub fn container_id(&self, pid: u32) -> Option<String> {
        let text =
            std::fs::read_to_string(self.proc_root.join(pid.to_string()).join("cgroup")).ok()?;
        text.lines().find_map(container_of_cgroup)
    }

    /// Every container id this node has logs for, with its pod.
    fn container_pods(&self) -> HashMap<String, PodRef> {
        let Ok(dir) = std::fs::read_dir(&self.containers_dir) else {
            return HashMap::new();
        };
        dir.flatten()
            .filter_map(|e| pod_of_log_name(&e.file_name().to_string_lossy()))
            .collect()
    }
}

/// The container id a cgroup line names, whatever the runtime and cgroup version:
/// `…/pod<uid>/<id>` (v1), `…/cri-containerd-<id>.scope`, `crio-<id>.scope`,
/// `docker-<id>.scope` (v2 with systemd).
fn container_of_cgroup(line: &str) -> Option<String> {
    let path = line.splitn(3, ':').nth(2)?;
    let last = path.rsplit('/').next()?;
    let last = last.strip_suffix(".scope").unwrap_or(last);
    let id = ["cri-containerd-", "crio-", "docker-", "containerd-"]
        .iter()
        .find_map(|p| last.strip_prefix(p))
        .unwrap_or(last);
    (id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| id.to_string())
}

/// `(container id, pod)` of a kubelet container log link name,
/// `<pod>_<namespace>_<container>-<container id>.log`.
fn pod_of_log_name(name: &str) -> Option<(String, PodRef)> {
    let stem = name.strip_suffix(".log")?;
    let (rest, id) = stem.rsplit_once('-')?;
    let mut parts = rest.splitn(3, '_');
    let (pod, namespace, container) = (parts.next()?, parts.next()?, parts.next()?);
    Some((
        id.to_string(),
        PodRef {
            namespace: namespace.to_string(),
            name: pod.to_string(),
            container: Some(container.to_string()),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3b4f2c0d8a9e1f7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b";

    #[test]
    fn every_runtime_and_cgroup_version_names_the_container() {
        for line in [
            format!("12:memory:/kubepods/burstable/pod0b1c/{ID}"),
            format!(
                "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0b1c.slice/cri-containerd-{ID}.scope"
            ),
            format!("0::/kubepods.slice/kubepods-pod0b1c.slice/crio-{ID}.scope"),
            format!("0::/system.slice/docker-{ID}.scope"),
        ] {
            assert_eq!(container_of_cgroup(&line).as_deref(), Some(ID), "{line}");
        }
        assert_eq!(container_of_cgroup("0::/user.slice/session-3.scope"), None);
        assert_eq!(container_of_cgroup("garbage"), None);
    }

    #[test]
    fn a_gpu_process_is_traced_to_its_pod_through_proc_and_the_container_links() {
        let root = tempfile::tempdir().expect("temp dir");
        let (proc_root, containers) = (root.path().join("proc"), root.path().join("containers"));
        std::fs::create_dir_all(proc_root.join("4242")).unwrap();
        std::fs::create_dir_all(proc_root.join("77")).unwrap();
        std::fs::create_dir_all(&containers).unwrap();
        std::fs::write(
            proc_root.join("4242/cgroup"),
            format!("0::/kubepods.slice/kubepods-pod0b1c.slice/cri-containerd-{ID}.scope\n"),
        )
        .unwrap();
        std::fs::write(
            proc_root.join("77/cgroup"),
            "0::/system.slice/sshd.service\n",
        )
        .unwrap();
        std::fs::write(
            containers.join(format!(
                "vllm-llama3-8b-6d8485c99f-vfdkm_llm-serving_vllm-server-{ID}.log"
            )),
            "",
        )
        .unwrap();
        let pods = ContainerPods::new(&proc_root, &containers).pods_of(&[4242, 77, 9999]);
        assert_eq!(pods.len(), 1, "{pods:?}");
        assert_eq!(
            pods[&4242],
            PodRef {
                namespace: "llm-serving".into(),
                name: "vllm-llama3-8b-6d8485c99f-vfdkm".into(),
                container: Some("vllm-server".into()),
            }
        );
    }
}
