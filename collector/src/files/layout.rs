//! The kubelet's log layout: `<root>/<namespace>_<pod>_<uid>/<container>/<restart>.log`.

use model::{AttrValue, Attributes, names};
use std::io;
use std::path::{Path, PathBuf};

/// Who wrote a log file, read from its path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodLogFile {
    /// Namespace of the pod.
    pub namespace: String,
    /// Pod name.
    pub pod_name: String,
    /// Pod uid.
    pub pod_uid: String,
    /// Container name.
    pub container: String,
    /// The container's restart count (the `N` of `N.log`).
    pub restart_count: u32,
    /// Whether this is a rotated file (`N.log.<stamp>`) rather than the live `N.log`.
    pub rotated: bool,
}

impl PodLogFile {
    /// Reads `<ns>_<pod>_<uid>/<container>/<N>.log` (or the kubelet's rotated
    /// `<N>.log.<YYYYMMDD-HHMMSS>`) relative to `root`. Compressed (`.gz`) and temporary
    /// (`.tmp`) files and anything else give `None`: they are never read as new files.
    pub fn from_path(root: &Path, path: &Path) -> Option<Self> {
        let rel = path.strip_prefix(root).ok()?;
        let mut parts = rel.iter();
        let pod_dir = parts.next()?.to_str()?;
        let container = parts.next()?.to_str()?;
        let file = parts.next()?.to_str()?;
        if parts.next().is_some() {
            return None;
        }
        let (stem, rotated) = match file.split_once(".log") {
            Some((stem, "")) => (stem, false),
            Some((stem, rest)) => {
                let stamp = rest.strip_prefix('.')?;
                let is_stamp =
                    !stamp.is_empty() && stamp.bytes().all(|c| c.is_ascii_digit() || c == b'-');
                if !is_stamp {
                    return None;
                }
                (stem, true)
            }
            None => return None,
        };
        let restart_count = stem.parse().ok()?;
        // Namespace and pod names are DNS labels/subdomains and cannot hold '_', so the
        // directory name splits unambiguously; splitting from the right keeps an odd uid
        // from shifting the other two.
        let mut it = pod_dir.rsplitn(3, '_');
        let pod_uid = it.next()?;
        let pod_name = it.next()?;
        let namespace = it.next()?;
        if [namespace, pod_name, pod_uid, container]
            .iter()
            .any(|s| s.is_empty())
        {
            return None;
        }
        Some(PodLogFile {
            namespace: namespace.to_string(),
            pod_name: pod_name.to_string(),
            pod_uid: pod_uid.to_string(),
            container: container.to_string(),
            restart_count,
            rotated,
        })
    }

    /// The resource attributes every record of this file carries.
    pub fn resource(&self) -> Attributes {
        [
            (
                names::K8S_NAMESPACE_NAME,
                AttrValue::from(self.namespace.as_str()),
            ),
            (names::K8S_POD_NAME, AttrValue::from(self.pod_name.as_str())),
            (names::K8S_POD_UID, AttrValue::from(self.pod_uid.as_str())),
            (
                names::K8S_CONTAINER_NAME,
                AttrValue::from(self.container.as_str()),
            ),
            (
                names::K8S_CONTAINER_RESTART_COUNT,
                AttrValue::Int(i64::from(self.restart_count)),
            ),
        ]
        .into_iter()
        .collect()
    }
}

/// A container log file in docker's own layout: `<root>/<id>/<id>-json.log`, rotated by
/// docker to `<id>-json.log.1`, `.2`, … (and `.N.gz` when compression is on).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DockerLogFile {
    /// The container id (hex).
    pub container_id: String,
    /// Whether this is a rotated file (`…-json.log.N`).
    pub rotated: bool,
}

impl DockerLogFile {
    /// Reads `<id>/<id>-json.log[.N]` relative to `root`.
    pub fn from_path(root: &Path, path: &Path) -> Option<Self> {
        let rel = path.strip_prefix(root).ok()?;
        let mut parts = rel.iter();
        let dir = parts.next()?.to_str()?;
        let file = parts.next()?.to_str()?;
        if parts.next().is_some() {
            return None;
        }
        let (live, rotated) = match file.split_once("-json.log") {
            Some((_, "")) => (file, false),
            Some((id, rest)) => {
                let n = rest.strip_prefix('.')?;
                if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                (&file[..id.len() + "-json.log".len()], true)
            }
            None => return None,
        };
        let id = super::docker::docker_container_id(live)?;
        (id == dir).then(|| DockerLogFile {
            container_id: id.to_string(),
            rotated,
        })
    }
}

/// Who wrote a log file: a pod's container in the kubelet layout, or a container in
/// docker's layout (which names no pod).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogFile {
    /// `/var/log/pods/<ns>_<pod>_<uid>/<container>/<N>.log`
    Pod(PodLogFile),
    /// `/var/lib/docker/containers/<id>/<id>-json.log`
    Docker(DockerLogFile),
}

impl LogFile {
    /// The resource attributes every record of this file carries.
    pub fn resource(&self) -> Attributes {
        match self {
            LogFile::Pod(p) => p.resource(),
            LogFile::Docker(d) => [(
                names::CONTAINER_ID,
                AttrValue::from(d.container_id.as_str()),
            )]
            .into_iter()
            .collect(),
        }
    }

    /// Whether this is a rotated file rather than the one being written.
    pub fn rotated(&self) -> bool {
        match self {
            LogFile::Pod(p) => p.rotated,
            LogFile::Docker(d) => d.rotated,
        }
    }

    /// One container run's name: every file (live and rotated) of one run of one container
    /// has the same, so lines can be grouped across a rotation.
    pub fn container_run(&self) -> String {
        match self {
            LogFile::Pod(p) => format!("{}/{}/{}", p.pod_uid, p.container, p.restart_count),
            LogFile::Docker(d) => d.container_id.clone(),
        }
    }

    /// The pod's file, if it is one.
    pub fn pod(&self) -> Option<&PodLogFile> {
        match self {
            LogFile::Pod(p) => Some(p),
            LogFile::Docker(_) => None,
        }
    }
}

/// What one walk of the log trees finds, each list in path order.
#[derive(Debug, Default)]
pub struct Discovered {
    /// Live and rotated (uncompressed) container log files.
    pub files: Vec<(PathBuf, LogFile)>,
    /// Compressed rotations (kubelet's `<N>.log.<stamp>.gz`, docker's `-json.log.N.gz`).
    /// They are never read as new files; they are where a restart finds the rest of a file
    /// that was rotated and compressed before it was read to its end.
    pub compressed: Vec<(PathBuf, LogFile)>,
    /// Pod and container directories that exist but could not be listed (permissions): the
    /// files in them are still there, only unseen, and must not be taken for gone.
    pub unreadable: Vec<(PathBuf, io::Error)>,
}

/// Walks the kubelet layout under `root` once for both kinds of file.
///
/// A pod directory that vanishes while we walk it (the pod was deleted) is skipped, not an
/// error; only an unreadable `root` is.
pub fn discover_all(root: &Path) -> io::Result<Discovered> {
    let mut found = Discovered::default();
    discover_pods(root, &mut found)?;
    found.files.sort_by(|a, b| a.0.cmp(&b.0));
    found.compressed.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(found)
}

/// Walks docker's layout under `root` (`/var/lib/docker/containers`), adding to `found`.
pub fn discover_docker(root: &Path, found: &mut Discovered) -> io::Result<()> {
    for dir in std::fs::read_dir(root)? {
        let Ok(dir) = dir else { continue };
        let Ok(entries) = std::fs::read_dir(dir.path()) else {
            continue;
        };
        for path in entries.flatten().map(|e| e.path()) {
            if let Some(meta) = DockerLogFile::from_path(root, &path) {
                found.files.push((path, LogFile::Docker(meta)));
            } else if let Some(meta) = path
                .to_str()
                .and_then(|p| p.strip_suffix(".gz"))
                .and_then(|name| DockerLogFile::from_path(root, Path::new(name)))
                .filter(|m| m.rotated)
            {
                found.compressed.push((path, LogFile::Docker(meta)));
            }
        }
    }
    Ok(())
}

/// Lists `dir`; one that vanished is skipped (a deleted pod), one that cannot be read is
/// noted in `found.unreadable`.
fn list(dir: &Path, found: &mut Discovered) -> Option<std::fs::ReadDir> {
    match std::fs::read_dir(dir) {
        Ok(entries) => Some(entries),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => {
            found.unreadable.push((dir.to_path_buf(), e));
            None
        }
    }
}

fn discover_pods(root: &Path, found: &mut Discovered) -> io::Result<()> {
    for pod_dir in std::fs::read_dir(root)? {
        let Ok(pod_dir) = pod_dir else { continue };
        if !pod_dir.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let Some(containers) = list(&pod_dir.path(), found) else {
            continue;
        };
        for container_dir in containers.flatten() {
            if !container_dir.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let Some(entries) = list(&container_dir.path(), found) else {
                continue;
            };
            for path in entries.flatten().map(|e| e.path()) {
                if let Some(meta) = PodLogFile::from_path(root, &path) {
                    found.files.push((path, LogFile::Pod(meta)));
                } else if let Some(meta) = path
                    .to_str()
                    .and_then(|p| p.strip_suffix(".gz"))
                    .and_then(|name| PodLogFile::from_path(root, Path::new(name)))
                    .filter(|m| m.rotated)
                {
                    found.compressed.push((path, LogFile::Pod(meta)));
                }
            }
        }
    }
    Ok(())
}

/// Every live or rotated (uncompressed) container log file under `root`, in path order.
pub fn discover(root: &Path) -> io::Result<Vec<(PathBuf, PodLogFile)>> {
    Ok(discover_all(root)?
        .files
        .into_iter()
        .filter_map(|(path, f)| match f {
            LogFile::Pod(p) => Some((path, p)),
            LogFile::Docker(_) => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_who_wrote_the_file_from_its_path() {
        let root = Path::new("/var/log/pods");
        let p = root.join(
            "llm-serving_vllm-llama-7d9f-abcde_0f1e2d3c-aaaa-bbbb-cccc-123456789abc/vllm/2.log",
        );
        let f = PodLogFile::from_path(root, &p).unwrap();
        assert_eq!(f.namespace, "llm-serving");
        assert_eq!(f.pod_name, "vllm-llama-7d9f-abcde");
        assert_eq!(f.pod_uid, "0f1e2d3c-aaaa-bbbb-cccc-123456789abc");
        assert_eq!(f.container, "vllm");
        assert_eq!(f.restart_count, 2);
        assert_eq!(
            f.resource().get_str(names::K8S_POD_NAME),
            Some("vllm-llama-7d9f-abcde")
        );
    }

    #[test]
    fn kubelet_rotated_files_are_log_files_of_the_same_container() {
        let root = Path::new("/r");
        let f =
            PodLogFile::from_path(root, &root.join("ns_pod_uid/c/3.log.20250304-091405")).unwrap();
        assert_eq!(
            (f.restart_count, f.rotated, f.container.as_str()),
            (3, true, "c")
        );
        assert!(
            !PodLogFile::from_path(root, &root.join("ns_pod_uid/c/3.log"))
                .unwrap()
                .rotated
        );
    }

    #[test]
    fn compressed_temporary_and_foreign_files_are_not_log_files() {
        let root = Path::new("/r");
        for rel in [
            "ns_pod_uid/c/0.log.20250304-091405.gz",
            "ns_pod_uid/c/0.log.gz",
            "ns_pod_uid/c/0.log.tmp",
            "ns_pod_uid/c/x.log",
            "ns_pod/c/0.log",
            "ns_pod_uid/0.log",
            "ns_pod_uid/c/d/0.log",
        ] {
            assert_eq!(PodLogFile::from_path(root, &root.join(rel)), None, "{rel}");
        }
    }

    #[test]
    fn discovery_walks_the_tree_and_ignores_strays() {
        let dir = tempfile::tempdir().unwrap();
        let c = dir.path().join("llm_vllm-0_u1/vllm");
        std::fs::create_dir_all(&c).unwrap();
        std::fs::write(c.join("0.log"), "").unwrap();
        std::fs::write(c.join("0.log.20250304-091405.gz"), "").unwrap();
        std::fs::write(c.join("0.log.20250304-091405"), "").unwrap();
        std::fs::write(dir.path().join("stray.txt"), "").unwrap();
        let found = discover(dir.path()).unwrap();
        assert_eq!(
            found.len(),
            2,
            "the live file and the uncompressed rotated one"
        );
        assert_eq!(found[0].1.container, "vllm");
        assert!(discover(&dir.path().join("missing")).is_err());
        let compressed = discover_all(dir.path()).unwrap().compressed;
        assert_eq!(compressed.len(), 1);
        assert!(compressed[0].1.rotated());
    }

    #[test]
    fn docker_layout_files_carry_the_container_id() {
        let dir = tempfile::tempdir().unwrap();
        let id = "4b1c9e0f";
        let c = dir.path().join(id);
        std::fs::create_dir_all(&c).unwrap();
        for name in [
            format!("{id}-json.log"),
            format!("{id}-json.log.1"),
            format!("{id}-json.log.2.gz"),
            "config.v2.json".to_string(),
            "deadbeef-json.log".to_string(), // not this directory's container
        ] {
            std::fs::write(c.join(name), "").unwrap();
        }
        let mut found = Discovered::default();
        discover_docker(dir.path(), &mut found).unwrap();
        found.files.sort_by(|a, b| a.0.cmp(&b.0));
        let kinds: Vec<_> = found.files.iter().map(|(_, f)| f.rotated()).collect();
        assert_eq!(kinds, [false, true]);
        assert_eq!(found.compressed.len(), 1);
        assert_eq!(
            found.files[0].1.resource().get_str(names::CONTAINER_ID),
            Some(id)
        );
        assert_eq!(
            found.files[0].1.container_run(),
            found.files[1].1.container_run()
        );
    }
}
