//! Pod metadata for log records: what the log file's path cannot say (labels, the owning
//! workload, the container's image and GPU request, `infersight.io/*` annotations such as
//! the server a pod runs), from the pods the source watches.
//!
//! A deleted pod's metadata is kept for [`DELETED_POD_GRACE`]: its last log lines are
//! usually read after the API server has forgotten it.

use super::{NVIDIA_GPU, quantity};
use k8s_openapi::api::core::v1::Pod;
use model::{AttrValue, Attributes, names};
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

/// How long a deleted pod's metadata is kept for its last lines.
pub const DELETED_POD_GRACE: Duration = Duration::from_secs(600);

/// What is added to one pod's records: attributes for every container, and per container.
#[derive(Debug, Default)]
struct PodInfo {
    /// Bumped on every change, so that callers can cache what they built from it.
    version: u64,
    common: Vec<(String, AttrValue)>,
    containers: HashMap<String, Vec<(String, AttrValue)>>,
    deleted: Option<Instant>,
    /// Where it asks to be scraped, if it does.
    metrics: Option<AnnotatedEndpoint>,
}

/// A pod's metrics endpoint as its `prometheus.io/scrape`, `prometheus.io/port` and
/// `prometheus.io/path` annotations give it (the convention Prometheus' own Kubernetes
/// examples and most Helm charts follow).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnnotatedEndpoint {
    /// `http://<pod IP>:<port><path>`.
    pub url: String,
    /// The pod's namespace.
    pub namespace: String,
    /// The pod's name.
    pub pod: String,
    /// The container that declares the port, where one does.
    pub container: Option<String>,
}

/// Metadata of the pods seen, by pod uid. Shared between the Kubernetes source (which fills
/// it) and whatever enriches log records.
#[derive(Debug, Default)]
pub struct PodMetadata {
    pods: RwLock<HashMap<String, PodInfo>>,
}

impl PodMetadata {
    /// Takes in the current state of `pod`.
    pub fn update(&self, pod: &Pod) {
        let Some(uid) = pod.metadata.uid.clone() else {
            return;
        };
        let mut pods = self.pods.write().unwrap_or_else(|e| e.into_inner());
        let version = pods.get(&uid).map_or(0, |p| p.version + 1);
        pods.insert(uid, info_of(pod, version));
    }

    /// Marks `pod` deleted: its metadata stays for [`DELETED_POD_GRACE`], then goes.
    pub fn deleted(&self, pod: &Pod) {
        if let Some(uid) = &pod.metadata.uid {
            self.deleted_uid(uid);
        }
    }

    /// Marks pod `uid` deleted, as [`PodMetadata::deleted`].
    pub fn deleted_uid(&self, uid: &str) {
        let now = Instant::now();
        let mut pods = self.pods.write().unwrap_or_else(|e| e.into_inner());
        if let Some(info) = pods.get_mut(uid) {
            info.deleted = Some(now);
        }
        pods.retain(|_, p| p.deleted.is_none_or(|at| now - at < DELETED_POD_GRACE));
    }

    /// The version of what is known of pod `uid` (changes whenever it does); `None` for a
    /// pod never seen.
    pub fn version(&self, uid: &str) -> Option<u64> {
        let pods = self.pods.read().unwrap_or_else(|e| e.into_inner());
        pods.get(uid).map(|p| p.version)
    }

    /// The metrics endpoints of running pods that ask to be scraped.
    pub fn annotated_endpoints(&self) -> Vec<AnnotatedEndpoint> {
        let pods = self.pods.read().unwrap_or_else(|e| e.into_inner());
        let mut out: Vec<AnnotatedEndpoint> = pods
            .values()
            .filter(|p| p.deleted.is_none())
            .filter_map(|p| p.metrics.clone())
            .collect();
        out.sort_by(|a, b| a.url.cmp(&b.url));
        out
    }

    /// `resource` (a log record's: pod uid and container name) with what is known of its
    /// pod added; attributes it already has are kept. `None` for a pod never seen.
    pub fn enrich(&self, resource: &Attributes) -> Option<Attributes> {
        let uid = resource.get_str(names::K8S_POD_UID)?;
        let pods = self.pods.read().unwrap_or_else(|e| e.into_inner());
        let info = pods.get(uid)?;
        let container = resource
            .get_str(names::K8S_CONTAINER_NAME)
            .and_then(|c| info.containers.get(c));
        let mut out = resource.clone();
        for (k, v) in info.common.iter().chain(container.into_iter().flatten()) {
            if out.get(k).is_none() {
                out.insert(k.clone(), v.clone());
            }
        }
        Some(out)
    }
}

fn info_of(pod: &Pod, version: u64) -> PodInfo {
    let meta = &pod.metadata;
    let mut common: Vec<(String, AttrValue)> = Vec::new();
    for (k, v) in meta.labels.iter().flatten() {
        common.push((
            format!("{}{k}", names::K8S_POD_LABEL_PREFIX),
            v.clone().into(),
        ));
    }
    // Only Infersight's own annotations: others can be large (kubectl's last applied
    // configuration) and say nothing about the logs.
    for (k, v) in meta.annotations.iter().flatten() {
        if k.starts_with("infersight.io/") {
            common.push((
                format!("{}{k}", names::K8S_POD_ANNOTATION_PREFIX),
                v.clone().into(),
            ));
        }
    }
    if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.clone()) {
        common.push((names::K8S_NODE_NAME.into(), node.into()));
    }
    if let Some((kind, name)) = owner_workload(pod) {
        common.push((kind.into(), name.into()));
    }
    let mut containers = HashMap::new();
    for c in pod.spec.iter().flat_map(|s| &s.containers) {
        let mut attrs: Vec<(String, AttrValue)> = Vec::new();
        if let Some(image) = &c.image {
            attrs.push((names::CONTAINER_IMAGE_NAME.into(), image.clone().into()));
        }
        let resources = c.resources.as_ref();
        for (key, quantities) in [
            (
                names::K8S_CONTAINER_GPU_REQUEST,
                resources.and_then(|r| r.requests.as_ref()),
            ),
            (
                names::K8S_CONTAINER_GPU_LIMIT,
                resources.and_then(|r| r.limits.as_ref()),
            ),
        ] {
            if let Some(n) = quantities
                .and_then(|q| q.get(NVIDIA_GPU))
                .and_then(quantity::value)
                .map(|n| n as i64)
            {
                attrs.push((key.into(), AttrValue::Int(n)));
            }
        }
        if let Some(model) = served_model(c) {
            attrs.push((names::K8S_CONTAINER_MODEL.into(), model.into()));
        }
        containers.insert(c.name.clone(), attrs);
    }
    PodInfo {
        version,
        common,
        containers,
        deleted: None,
        metrics: annotated_endpoint(pod),
    }
}

/// The model container `c` serves, as its command line names it: the name clients ask for
/// (`--served-model-name`, KServe's `--model_name`) over the model (`--model`,
/// `--model-id`, `--model-path`, `vllm serve <model>`), else TGI's `MODEL_ID` variable.
/// A shell's `-c "vllm serve …"` is split into its words too.
fn served_model(c: &k8s_openapi::api::core::v1::Container) -> Option<String> {
    let words: Vec<&str> = c
        .command
        .iter()
        .chain(c.args.iter())
        .flatten()
        .flat_map(|w| w.split_whitespace())
        .map(|w| w.trim_matches(['\'', '"']))
        .collect();
    let flag = |names: &[&str]| {
        words.iter().enumerate().find_map(|(i, w)| {
            names.iter().find_map(|name| match w.strip_prefix(name)? {
                "" => words.get(i + 1).filter(|v| !v.starts_with('-')).copied(),
                rest => rest.strip_prefix('='),
            })
        })
    };
    let positional = || {
        words
            .windows(3)
            .find(|w| w[0].ends_with("vllm") && w[1] == "serve" && !w[2].starts_with('-'))
            .map(|w| w[2])
    };
    flag(&["--served-model-name", "--served_model_name", "--model_name"])
        .or_else(|| {
            flag(&[
                "--model",
                "--model-id",
                "--model_id",
                "--model-path",
                "--model_path",
            ])
        })
        .or_else(positional)
        .map(str::to_string)
        .filter(|m| !m.is_empty())
        .or_else(|| {
            c.env
                .iter()
                .flatten()
                .find(|e| e.name == "MODEL_ID")
                .and_then(|e| e.value.clone())
        })
}

/// Where `pod` asks to be scraped: only a running pod with an IP whose
/// `prometheus.io/scrape` is `"true"`; the port is `prometheus.io/port`, else the first
/// container port it declares; the path `prometheus.io/path`, else `/metrics`.
fn annotated_endpoint(pod: &Pod) -> Option<AnnotatedEndpoint> {
    let annotations = pod.metadata.annotations.as_ref()?;
    if annotations.get("prometheus.io/scrape").map(String::as_str) != Some("true") {
        return None;
    }
    let status = pod.status.as_ref()?;
    if status.phase.as_deref() != Some("Running") {
        return None;
    }
    let ip = status.pod_ip.as_deref().filter(|ip| !ip.is_empty())?;
    let containers = pod.spec.iter().flat_map(|s| &s.containers);
    let declared = containers.flat_map(|c| {
        c.ports
            .iter()
            .flatten()
            .map(move |p| (c.name.clone(), p.container_port))
    });
    let (container, port) = match annotations.get("prometheus.io/port") {
        Some(port) => {
            let port: i32 = port.trim().parse().ok()?;
            let container = declared.filter(|(_, p)| *p == port).map(|(c, _)| c).next();
            (container, port)
        }
        None => {
            let (c, p) = declared.into_iter().next()?;
            (Some(c), p)
        }
    };
    let path = annotations
        .get("prometheus.io/path")
        .map(String::as_str)
        .unwrap_or("/metrics");
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    // An IPv6 pod IP needs brackets in a URL.
    let host = if ip.contains(':') {
        format!("[{ip}]")
    } else {
        ip.to_string()
    };
    Some(AnnotatedEndpoint {
        url: format!("http://{host}:{port}{path}"),
        namespace: pod.metadata.namespace.clone().unwrap_or_default(),
        pod: pod.metadata.name.clone().unwrap_or_default(),
        container,
    })
}

/// The workload that runs the pod, as `(attribute, name)`: a ReplicaSet made by a
/// Deployment is named `<deployment>-<pod-template-hash>`, so the Deployment is that name
/// less the hash the pod carries as a label.
fn owner_workload(pod: &Pod) -> Option<(&'static str, String)> {
    let owner = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))?;
    Some(match owner.kind.as_str() {
        "ReplicaSet" => {
            let hash = pod
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("pod-template-hash"));
            match hash.and_then(|h| owner.name.strip_suffix(&format!("-{h}"))) {
                Some(deployment) => (names::K8S_DEPLOYMENT_NAME, deployment.to_string()),
                None => (names::K8S_REPLICASET_NAME, owner.name.clone()),
            }
        }
        "StatefulSet" => (names::K8S_STATEFULSET_NAME, owner.name.clone()),
        "DaemonSet" => (names::K8S_DAEMONSET_NAME, owner.name.clone()),
        "Job" => (names::K8S_JOB_NAME, owner.name.clone()),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube::tests::fixture_pods;

    #[test]
    fn log_records_get_the_pods_labels_workload_image_and_gpus() {
        let pod = &fixture_pods()[0];
        let meta = PodMetadata::default();
        let uid = pod.metadata.uid.clone().unwrap();
        let resource: Attributes = [
            (names::K8S_POD_UID, AttrValue::from(uid.as_str())),
            (names::K8S_CONTAINER_NAME, AttrValue::from("vllm")),
        ]
        .into_iter()
        .collect();
        assert!(meta.enrich(&resource).is_none(), "an unknown pod");
        meta.update(pod);
        let enriched = meta.enrich(&resource).expect("a known pod");
        assert_eq!(
            enriched.get_str(names::K8S_DEPLOYMENT_NAME),
            Some("vllm-mistral-7b")
        );
        assert!(
            enriched
                .get_str(names::CONTAINER_IMAGE_NAME)
                .is_some_and(|i| i.contains("vllm")),
            "{enriched:?}"
        );
        assert_eq!(
            enriched
                .get(names::K8S_CONTAINER_GPU_LIMIT)
                .and_then(|v| v.as_f64()),
            Some(1.0)
        );
        assert!(
            enriched
                .iter()
                .any(|(k, _)| k.starts_with(names::K8S_POD_LABEL_PREFIX)),
            "{enriched:?}"
        );
        let v = meta.version(&uid);
        meta.update(pod);
        assert_ne!(meta.version(&uid), v, "a change is a new version");
        meta.deleted(pod);
        assert!(
            meta.enrich(&resource).is_some(),
            "kept for the last lines after deletion"
        );
    }

    #[test]
    fn a_containers_command_line_names_the_model_it_serves() {
        // The fixture's `sh -c "vllm serve mistralai/Mistral-7B-Instruct-v0.3 …"`.
        let pods = fixture_pods();
        let fixture = &pods[0].spec.as_ref().expect("a spec").containers[0];
        assert_eq!(
            served_model(fixture).as_deref(),
            Some("mistralai/Mistral-7B-Instruct-v0.3")
        );
        let container = |args: &[&str], env: Option<(&str, &str)>| {
            serde_json::from_value::<k8s_openapi::api::core::v1::Container>(serde_json::json!({
                "name": "server",
                "args": args,
                "env": env.map(|(k, v)| vec![serde_json::json!({"name": k, "value": v})]),
            }))
            .expect("a container")
        };
        for (args, env, model) in [
            (
                &["--model", "/models/llama", "--served-model-name", "llama3"][..],
                None,
                Some("llama3"),
            ),
            (
                &["--model=/models/qwen", "--port=8000"][..],
                None,
                Some("/models/qwen"),
            ),
            (
                &["--model_name=llama3", "--model_id=meta-llama/Llama-3.1-8B"][..],
                None,
                Some("llama3"),
            ),
            (
                &["--model-path", "Qwen/Qwen2.5-7B", "--tp", "2"][..],
                None,
                Some("Qwen/Qwen2.5-7B"),
            ),
            (
                &["--port", "80"][..],
                Some(("MODEL_ID", "google/gemma-2-9b")),
                Some("google/gemma-2-9b"),
            ),
            (&["--max-model-len", "8192", "--model"][..], None, None),
        ] {
            assert_eq!(
                served_model(&container(args, env)).as_deref(),
                model,
                "{args:?}"
            );
        }
    }

    #[test]
    fn a_running_pod_that_asks_to_be_scraped_is_an_endpoint() {
        let mut pod = crate::kube::tests::fixture_pods()[0].clone();
        let meta = PodMetadata::default();
        meta.update(&pod);
        assert!(meta.annotated_endpoints().is_empty(), "it does not ask");
        let annotations = pod
            .metadata
            .annotations
            .get_or_insert_with(Default::default);
        annotations.insert("prometheus.io/scrape".into(), "true".into());
        annotations.insert("prometheus.io/port".into(), "8000".into());
        pod.status.as_mut().unwrap().pod_ip = Some("10.244.1.17".into());
        meta.update(&pod);
        let endpoints = meta.annotated_endpoints();
        assert_eq!(endpoints.len(), 1);
        assert_eq!(endpoints[0].url, "http://10.244.1.17:8000/metrics");
        assert_eq!(
            endpoints[0].namespace,
            pod.metadata.namespace.clone().unwrap()
        );
        pod.status.as_mut().unwrap().phase = Some("Failed".into());
        meta.update(&pod);
        assert!(meta.annotated_endpoints().is_empty(), "not running");
    }
}
