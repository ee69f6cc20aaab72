//! `deploy/kubernetes/`: every manifest is a real Kubernetes object (it parses into the
//! k8s-openapi type of its kind and nothing in it is left over: a misspelt field would be
//! silently ignored by the API server), the role only reads what the source watches, the
//! agent reads pod logs read-only and knows its node, the config it mounts is valid and
//! publishes to the brokers and topic the aggregators consume, and the aggregators, which
//! never ask the Kubernetes API, carry no token for it.

use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::path::Path;

/// Where `original` has something `typed` (its round trip through the type) lacks or says
/// otherwise.
fn differences(original: &Value, typed: &Value, at: &str, out: &mut Vec<String>) {
    match (original, typed) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                match b.get(k) {
                    Some(w) => differences(v, w, &format!("{at}.{k}"), out),
                    None => out.push(format!("{at}.{k} is not a field of the type")),
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                differences(v, w, &format!("{at}[{i}]"), out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(format!("{at}: {a} became {b}")),
    }
}

fn typed<T: DeserializeOwned + Serialize>(doc: &Value, file: &str) -> T {
    let object: T = serde_json::from_value(doc.clone())
        .unwrap_or_else(|e| panic!("{file}: {} does not parse: {e}", doc["kind"]));
    let mut problems = Vec::new();
    differences(
        doc,
        &serde_json::to_value(&object).unwrap(),
        "",
        &mut problems,
    );
    assert!(problems.is_empty(), "{file}: {problems:#?}");
    object
}

fn manifests() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/kubernetes");
    let mut all = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path).unwrap();
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        all.extend(docs.into_iter().map(|d| (name.clone(), d)));
    }
    all
}

#[test]
fn every_manifest_is_a_kubernetes_object_and_the_agent_reads_only_what_it_needs() {
    let docs = manifests();
    let mut kinds = Vec::new();
    let mut daemon_set = None;
    let mut stateful_set = None;
    let mut services = Vec::new();
    let mut config = None;
    for (file, doc) in &docs {
        let kind = doc["kind"].as_str().unwrap_or_default().to_string();
        match kind.as_str() {
            "Namespace" => drop(typed::<Namespace>(doc, file)),
            "ServiceAccount" => drop(typed::<ServiceAccount>(doc, file)),
            "Secret" => drop(typed::<Secret>(doc, file)),
            "Service" => services.push(typed::<Service>(doc, file)),
            "StatefulSet" => stateful_set = Some(typed::<StatefulSet>(doc, file)),
            "ClusterRoleBinding" => drop(typed::<ClusterRoleBinding>(doc, file)),
            "ClusterRole" => {
                let role: ClusterRole = typed(doc, file);
                let rules = role.rules.unwrap_or_default();
                for rule in &rules {
                    for verb in &rule.verbs {
                        assert!(
                            ["get", "list", "watch"].contains(&verb.as_str()),
                            "{file}: the role may only read, not `{verb}`"
                        );
                    }
                }
                let granted: Vec<(&str, &str)> = rules
                    .iter()
                    .flat_map(|r| {
                        let resources = r.resources.iter().flatten();
                        r.api_groups.iter().flatten().flat_map(move |g| {
                            resources.clone().map(move |res| (g.as_str(), res.as_str()))
                        })
                    })
                    .collect();
                let watched = collector::kube::WATCHED_RESOURCES;
                for needed in watched {
                    assert!(
                        granted.contains(&needed),
                        "{file}: the source watches {needed:?}; grant get/list/watch on it"
                    );
                }
                for extra in &granted {
                    assert!(
                        watched.contains(extra),
                        "{file}: {extra:?} is granted but nothing watches it (least privilege)"
                    );
                }
            }
            "DaemonSet" => daemon_set = Some(typed::<DaemonSet>(doc, file)),
            "ConfigMap" => config = Some(typed::<ConfigMap>(doc, file)),
            other => panic!("{file}: a {other} the test does not know"),
        }
        kinds.push(kind);
    }
    for needed in [
        "ServiceAccount",
        "ClusterRole",
        "DaemonSet",
        "StatefulSet",
        "Service",
        "ConfigMap",
    ] {
        assert!(
            kinds.iter().any(|k| k == needed),
            "a {needed} among {kinds:?}"
        );
    }

    let agent = daemon_set.expect("the agent DaemonSet");
    let pod = agent.spec.unwrap().template.spec.unwrap();
    let container = &pod.containers[0];
    let logs = container
        .volume_mounts
        .iter()
        .flatten()
        .find(|m| m.mount_path == "/var/log/pods")
        .expect("pod logs mounted");
    assert_eq!(
        logs.read_only,
        Some(true),
        "pod logs are read, never written"
    );
    for mount in container.volume_mounts.iter().flatten() {
        assert!(
            mount.read_only == Some(true) || mount.mount_path == "/var/lib/infersight",
            "only the agent's own state is written: {}",
            mount.mount_path
        );
    }
    let proc_mounted = container
        .volume_mounts
        .iter()
        .flatten()
        .any(|m| m.mount_path == "/host/proc");
    assert!(
        proc_mounted,
        "GPU processes are traced through the host's /proc"
    );
    let node = container
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "NODE_NAME")
        .and_then(|e| e.value_from.as_ref())
        .and_then(|v| v.field_ref.as_ref())
        .map(|f| f.field_path.as_str());
    assert_eq!(
        node,
        Some("spec.nodeName"),
        "the node from the downward API"
    );
    let agent_args = container.args.clone().unwrap_or_default();
    assert!(
        agent_args.iter().any(|a| a == "--kube-node=$(NODE_NAME)"),
        "{agent_args:?}"
    );

    // Aggregators find each other through a headless Service that selects them, on the
    // port they listen on.
    let aggregator = stateful_set.expect("the aggregator StatefulSet");
    let spec = aggregator.spec.unwrap();
    // The index is bounded to fit its volume, with room for merges.
    let volume_gib: u64 = spec
        .volume_claim_templates
        .iter()
        .flatten()
        .find(|c| c.metadata.name.as_deref() == Some("data"))
        .and_then(|c| {
            c.spec
                .as_ref()?
                .resources
                .as_ref()?
                .requests
                .as_ref()?
                .get("storage")
        })
        .and_then(|q| q.0.strip_suffix("Gi")?.parse().ok())
        .expect("the data volume's size in Gi");
    let retention_mb: u64 = spec
        .template
        .spec
        .as_ref()
        .and_then(|p| p.containers[0].args.as_ref())
        .into_iter()
        .flatten()
        .find_map(|a| a.strip_prefix("--retention-mb=")?.parse().ok())
        .expect("the aggregators bound their index: --retention-mb");
    assert!(
        retention_mb * 100 <= volume_gib * 1024 * 85,
        "--retention-mb={retention_mb} leaves no room on a {volume_gib}Gi volume"
    );
    let labels = spec.template.metadata.unwrap().labels.unwrap();
    let aggregator_pod = spec.template.spec.unwrap();
    assert_eq!(
        aggregator_pod.automount_service_account_token,
        Some(false),
        "the aggregators read Kafka, not the Kubernetes API: no token to steal"
    );
    let aggregator_container = aggregator_pod.containers[0].clone();
    let args = aggregator_container.args.clone().unwrap_or_default();
    // A static member per pod, named by the downward API.
    assert!(
        args.iter()
            .any(|a| a == "--kafka-group-instance-id=$(POD_NAME)"),
        "{args:?}"
    );
    let pod_name = aggregator_container
        .env
        .iter()
        .flatten()
        .find(|e| e.name == "POD_NAME")
        .and_then(|e| e.value_from.as_ref())
        .and_then(|v| v.field_ref.as_ref())
        .map(|f| f.field_path.as_str());
    assert_eq!(pod_name, Some("metadata.name"));
    let peers = args
        .iter()
        .find_map(|a| a.strip_prefix("--peers=dns:"))
        .unwrap_or_else(|| panic!("aggregators name their peers: {args:?}"));
    let (name, port) = peers.rsplit_once(':').unwrap();
    let listen_port = args
        .iter()
        .find_map(|a| a.strip_prefix("--listen="))
        .and_then(|l| l.rsplit_once(':'))
        .map(|(_, p)| p.to_string());
    assert_eq!(Some(port.to_string()), listen_port, "{args:?}");
    let service = services
        .iter()
        .find(|s| {
            let m = &s.metadata;
            name == format!(
                "{}.{}.svc",
                m.name.as_deref().unwrap_or_default(),
                m.namespace.as_deref().unwrap_or_default()
            )
        })
        .unwrap_or_else(|| panic!("no Service is `{name}`"));
    let service_spec = service.spec.clone().unwrap();
    assert_eq!(
        service_spec.cluster_ip.as_deref(),
        Some("None"),
        "headless: its name lists each replica"
    );
    assert_eq!(
        service_spec.publish_not_ready_addresses,
        Some(true),
        "a replica that is not ready is still asked, and its absence flagged"
    );
    for (k, v) in service_spec.selector.unwrap() {
        assert_eq!(
            labels.get(&k),
            Some(&v),
            "the Service selects the aggregators"
        );
    }
    assert_eq!(
        spec.service_name.as_deref(),
        service.metadata.name.as_deref()
    );

    // The mounted config is one `infersight validate` accepts.
    let toml = config
        .and_then(|c| c.data)
        .and_then(|d| d.get("infersight.toml").cloned())
        .expect("the config file in the ConfigMap");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("infersight.toml");
    std::fs::write(&file, toml).unwrap();
    let (code, stdout, stderr) =
        tests::run_cli(&["validate", "--config", file.to_str().unwrap()], "");
    assert_eq!(code, 0, "{stdout}{stderr}");
    let config = std::fs::read_to_string(&file).unwrap();
    assert!(
        config.contains("proc_root = \"/host/proc\""),
        "the gpu source reads the mounted /proc: {config}"
    );

    // The agents publish where the aggregators consume (a flag on the agent would win
    // over its file, so it must agree too).
    let pipeline: toml::Table = config.parse().unwrap();
    let kafka_sinks: Vec<&toml::Table> = pipeline
        .get("sinks")
        .and_then(|s| s.as_table())
        .into_iter()
        .flat_map(|sinks| sinks.values().filter_map(|s| s.as_table()))
        .filter(|s| s.get("type").and_then(|t| t.as_str()) == Some("kafka"))
        .collect();
    assert_eq!(
        kafka_sinks.len(),
        1,
        "the agent publishes its records to Kafka: {config}"
    );
    let flag = |args: &[String], name: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("--{name}=")))
            .map(str::to_string)
    };
    for (key, flag_name) in [("brokers", "kafka-brokers"), ("topic", "kafka-topic")] {
        let consumed = flag(&args, flag_name)
            .unwrap_or_else(|| panic!("the aggregators name --{flag_name}: {args:?}"));
        let published = flag(&agent_args, flag_name).unwrap_or_else(|| {
            kafka_sinks[0][key]
                .as_str()
                .unwrap_or_else(|| panic!("[sinks.kafka] {key}"))
                .to_string()
        });
        assert_eq!(
            published, consumed,
            "the agents publish to {key} `{published}`, the aggregators consume `{consumed}`"
        );
    }
}

/// Each `(metric, label names in its selector)` an expression names: identifiers of
/// Infersight's families (by their prefixes), and the labels matched in the braces after one.
fn selectors(expr: &str) -> Vec<(String, Vec<String>)> {
    const PREFIXES: [&str; 5] = ["infersight_", "llm_", "k8s_", "gpu_", "gen_ai_"];
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(start) = rest.find(|c: char| word(c)) {
        let tail = &rest[start..];
        let end = tail.find(|c: char| !word(c)).unwrap_or(tail.len());
        let (token, after) = tail.split_at(end);
        rest = after;
        // A word inside another (a label's value, `by (…)`) is not a metric unless prefixed.
        if !PREFIXES.iter().any(|p| token.starts_with(p)) {
            continue;
        }
        let mut labels = Vec::new();
        if let Some(inner) = after.strip_prefix('{') {
            let close = inner.find('}').expect("a selector's braces close");
            for matcher in inner[..close].split(',') {
                let name = matcher.split(['=', '!']).next().unwrap_or_default().trim();
                labels.push(name.to_string());
            }
            rest = &inner[close..];
        }
        out.push((token.to_string(), labels));
    }
    out
}

/// The families a `/metrics` text declares, by name, with their kind.
fn declared(exposition: &str) -> std::collections::BTreeMap<String, String> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, kind)| (name.to_string(), kind.to_string()))
        .collect()
}

/// Whether `metric` is a family `families` declares, or a series of a declared histogram.
fn is_exported(metric: &str, families: &std::collections::BTreeMap<String, String>) -> bool {
    families.contains_key(metric)
        || ["_bucket", "_sum", "_count"].iter().any(|suffix| {
            metric
                .strip_suffix(suffix)
                .is_some_and(|f| families.get(f).is_some_and(|k| k == "histogram"))
        })
}

#[test]
fn every_alert_rule_names_metrics_and_labels_infersight_exports() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus/infersight-alerts.yaml");
    let text = std::fs::read_to_string(&path).expect("the alert rules");
    let rules: Value = serde_saphyr::from_str(&text).expect("a Prometheus rules file");
    // Each rule's shape, and (alert, metric, labels matched) for what its expression names.
    let mut alerts = std::collections::BTreeSet::new();
    let mut named = Vec::new();
    let groups = rules["groups"].as_array().expect("groups");
    assert!(groups.len() >= 2, "{rules}");
    for rule in groups
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules"))
    {
        let alert = rule["alert"].as_str().expect("an alert name");
        assert!(alerts.insert(alert.to_string()), "{alert} twice");
        assert!(
            ["critical", "warning", "info"]
                .contains(&rule["labels"]["severity"].as_str().unwrap_or("")),
            "{alert}: a severity"
        );
        assert!(
            rule["annotations"]["summary"].is_string(),
            "{alert}: a summary"
        );
        let expr = rule["expr"].as_str().expect("an expression");
        let found = selectors(expr);
        assert!(!found.is_empty(), "{alert}: no metric of ours in {expr}");
        named.extend(found.into_iter().map(|(m, l)| (alert.to_string(), m, l)));
    }
    // What the demo exports. Some families are declared once they have a first figure
    // (the disk floor's after its first check): wait for every one named. The demo's
    // servers make samples of every `llm_*` family a rule matches labels of (its vLLM
    // answers 5xx now and then, and dies of a CUDA OOM every 20 s): wait for those too, so
    // that their labels are checked (the Kubernetes and Kafka families have none here).
    let (demo, _) =
        tests::Running::spawn(&["demo".into(), "--listen".into(), "127.0.0.1:0".into()]);
    let sampled =
        |metric: &str, labels: &[String]| metric.starts_with("llm_") && !labels.is_empty();
    demo.wait_until(
        "every family the rules name on /metrics",
        std::time::Duration::from_secs(60),
        || {
            let text = demo.get_text("/metrics").1;
            let families = declared(&text);
            named.iter().all(|(_, m, l)| {
                is_exported(m, &families) && (!sampled(m, l) || text.contains(&format!("\n{m}{{")))
            })
        },
    );
    let exposition = demo.get_text("/metrics").1;
    let families = declared(&exposition);
    for (alert, metric, labels) in &named {
        assert!(
            is_exported(metric, &families),
            "{alert}: `{metric}` is not exported"
        );
        // Where the demo has samples of it, the labels matched are among theirs.
        let samples: Vec<&str> = exposition
            .lines()
            .filter(|l| l.starts_with(&format!("{metric}{{")))
            .collect();
        assert!(
            !sampled(metric, labels) || !samples.is_empty(),
            "{alert}: no `{metric}` sample to check its labels against"
        );
        for label in labels.iter().filter(|_| !samples.is_empty()) {
            assert!(
                samples.iter().any(|s| {
                    [format!("{{{label}=\""), format!(",{label}=\"")]
                        .iter()
                        .any(|with| s.contains(with.as_str()))
                }),
                "{alert}: `{metric}` has no label `{label}`: {samples:?}"
            );
        }
    }
}
