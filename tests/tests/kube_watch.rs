//! The Kubernetes source against a loopback API server that speaks the list/watch wire
//! format: a real `kube::Client`, scripted answers ([`tests::fake_kube`]). Scenario: events
//! listed then watched, a repeat, a malformed object, a bookmark, 410 Expired inside the
//! watch stream (relist), and a pod going Running → OOMKilled and CrashLoopBackOff →
//! Running, with a dropped watch and the API server away for a while (500, 503, 500) on the
//! way.

use collector::Shutdown;
use collector::kube::{KubeSource, KubeSourceConfig};
use model::{Record, RecordKind, names};
use serde_json::{Value, json};
use std::collections::{HashSet, VecDeque};
use std::time::Duration;
use tests::fake_kube::{Answer, FakeApi, Script, fixture, line, list, with_version};
use tokio::sync::mpsc;

/// A source watching the loopback API server `api`, cluster-wide.
async fn source_of(api: &FakeApi) -> KubeSource {
    KubeSource::connect(KubeSourceConfig {
        api_url: Some(api.url.clone()),
        node_name: None,
    })
    .await
    .expect("client")
}

/// The watch line of 410 Expired: the history the watch would resume from is gone.
fn expired() -> String {
    line(
        "ERROR",
        &json!({"kind":"Status","apiVersion":"v1","metadata":{},
            "status":"Failure","message":"too old resource version: 100 (1000002)",
            "reason":"Expired","code":410}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_and_pod_changes_are_recorded_once_through_relists_drops_and_errors() {
    let events: Vec<Value> = fixture("k8s-events.json")
        .into_iter()
        .filter(|e| e["apiVersion"] == "v1")
        .collect();
    let (listed, watched) = events.split_at(events.len() - 2);
    let back_off = events
        .iter()
        .find(|e| e["reason"] == "BackOff" && e.get("series").is_none_or(Value::is_null))
        .expect("a legacy BackOff event")
        .clone();
    let mut repeated = back_off.clone();
    repeated["count"] = json!(back_off["count"].as_i64().unwrap_or(1) + 1);
    let repeated = with_version(repeated, 1_000_000);
    let mut relisted: Vec<Value> = events.clone();
    for e in &mut relisted {
        if e["metadata"]["uid"] == back_off["metadata"]["uid"] {
            *e = repeated.clone();
        }
    }

    let pod = fixture("k8s-pods.json")[0].clone();
    let mut oom_killed = with_version(pod.clone(), 919_400);
    let status = &mut oom_killed["status"]["containerStatuses"][0];
    status["restartCount"] = json!(1);
    status["ready"] = json!(false);
    status["state"] = json!({"waiting": {"reason": "CrashLoopBackOff",
        "message": "back-off 10s restarting failed container"}});
    status["lastState"] = json!({"terminated": {"exitCode": 137, "reason": "OOMKilled",
        "startedAt": "2025-03-04T09:14:03Z", "finishedAt": "2025-03-04T10:52:41Z"}});
    let mut running_again = with_version(oom_killed.clone(), 919_420);
    running_again["status"]["containerStatuses"][0]["state"] =
        json!({"running": {"startedAt": "2025-03-04T10:53:02Z"}});
    running_again["status"]["containerStatuses"][0]["ready"] = json!(true);

    let mut script = Script::default();
    script.answers.insert(
        "/api/v1/events",
        VecDeque::from([
            Answer::List(list("EventList", "100", listed.to_vec())),
            Answer::Watch {
                lines: vec![
                    line("ADDED", &watched[0]),
                    line("ADDED", &watched[1]),
                    line("MODIFIED", &repeated),
                    // Not an Event: counted and skipped, the stream goes on.
                    r#"{"type":"ADDED","object":{"kind":"Event","apiVersion":"v1","metadata":"oops"}}"#
                        .to_string(),
                    line("BOOKMARK", &json!({"kind":"Event","apiVersion":"v1",
                        "metadata":{"resourceVersion":"1000001"}})),
                    expired(),
                ],
                close: true,
            },
            Answer::List(list("EventList", "1000003", relisted)),
        ]),
    );
    script.answers.insert(
        "/api/v1/pods",
        VecDeque::from([
            Answer::List(list("PodList", "919377", vec![pod.clone()])),
            Answer::Watch {
                lines: vec![line("MODIFIED", &oom_killed)],
                // The connection drops: the watcher re-watches from the last version.
                close: true,
            },
            // Then the API server is away for a while: three failures in a row, retried
            // with backoff, each counted.
            Answer::Status(500),
            Answer::Status(503),
            Answer::Status(500),
            Answer::Watch {
                lines: vec![line("MODIFIED", &running_again)],
                close: false,
            },
        ]),
    );
    let api = FakeApi::start(script).await;

    let source = source_of(&api).await;
    let metrics = source.state().metrics;
    let (tx, mut rx) = mpsc::channel(64);
    let shutdown = Shutdown::new();
    let running = tokio::spawn(source.run(tx, shutdown.clone()));

    // The end of the script: the events' watch after the relist, and the pods' watch
    // after the 500, each seen; the source sends a change's records before it asks for
    // more, so by then everything is in the channel.
    let settled = async {
        api.wait_for("WATCH /api/v1/events", 2).await;
        api.wait_for("WATCH /api/v1/pods", 3).await;
        // The last pod line is sent on that watch; wait for its record.
        let mut records: Vec<Record> = Vec::new();
        while !records.iter().any(|r| r.body.contains("no longer waiting")) {
            let batch = rx.recv().await.expect("the source runs");
            records.extend(batch.records);
        }
        records
    };
    let mut records = tokio::time::timeout(Duration::from_secs(60), settled)
        .await
        .expect("the scenario finishes (a guard, not a wait)");
    while let Ok(batch) = rx.try_recv() {
        records.extend(batch.records);
    }
    shutdown.trigger();
    running.await.expect("the source stops");

    let events: Vec<&Record> = records
        .iter()
        .filter(|r| r.kind == RecordKind::K8sEvent)
        .collect();
    let ids: HashSet<_> = events.iter().map(|r| r.id).collect();
    assert_eq!(ids.len(), events.len(), "no event recorded twice");
    assert_eq!(
        events.len(),
        listed.len() + watched.len() + 1,
        "every event once, the repeat once more, the relist nothing: {:#?}",
        events.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    assert_eq!(api.seen("LIST /api/v1/events"), 2, "410 Expired relisted");
    assert_eq!(
        api.seen("LIST /api/v1/pods"),
        1,
        "a dropped watch is resumed, not relisted"
    );

    let (states, pods): (Vec<&Record>, Vec<&Record>) = records
        .iter()
        .filter(|r| r.kind == RecordKind::K8sObject)
        .partition(|r| r.attributes.get(names::K8S_OBJECT_STATE).is_some());
    // The pod's whole state goes with the list and with each change: the last is the
    // container running again, with its OOM kill as how its last run ended.
    let last = states
        .iter()
        .rfind(|r| r.resource.get_str(names::K8S_CONTAINER_NAME).is_some())
        .unwrap_or_else(|| panic!("a container's state among {states:#?}"));
    assert_eq!(
        (
            last.attributes.get_str(names::K8S_CONTAINER_WAITING_REASON),
            last.attributes
                .get_str(names::K8S_CONTAINER_LAST_TERMINATED_REASON),
        ),
        (None, Some("OOMKilled")),
        "{last:#?}"
    );
    let oom = pods
        .iter()
        .find(|r| r.attributes.get_str(names::ERROR_TYPE) == Some("oom_killed"))
        .unwrap_or_else(|| panic!("an OOM kill among {pods:#?}"));
    assert_eq!(
        oom.attributes
            .get_str(names::K8S_CONTAINER_LAST_TERMINATED_REASON),
        Some("OOMKilled")
    );
    assert_eq!(
        oom.resource.get_str(names::K8S_POD_NAME),
        pod["metadata"]["name"].as_str()
    );
    let waits: Vec<Option<&str>> = pods
        .iter()
        .filter(|r| r.body.contains("waiting"))
        .map(|r| r.attributes.get_str(names::K8S_CONTAINER_WAITING_REASON))
        .collect();
    assert_eq!(waits, [Some("CrashLoopBackOff"), None]);
    assert_eq!(
        pods.len(),
        4,
        "phase, restart, back-off, running again: {pods:#?}"
    );
    assert!(
        metrics
            .watch_errors
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 4,
        "the malformed object and the three failures are counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_with_kube_api_turns_an_oom_kill_into_an_incident_and_indexes_the_events() {
    let now = format!("{}Z", &tests::cri_now()[..19]);
    let pod = fixture("k8s-pods.json")[0].clone();
    let (name, namespace, uid) = (
        pod["metadata"]["name"].clone(),
        pod["metadata"]["namespace"].clone(),
        pod["metadata"]["uid"].clone(),
    );
    let mut oom_killed = with_version(pod.clone(), 919_400);
    let status = &mut oom_killed["status"]["containerStatuses"][0];
    status["restartCount"] = json!(1);
    status["state"] = json!({"waiting": {"reason": "CrashLoopBackOff"}});
    status["lastState"] = json!({"terminated": {"exitCode": 137, "reason": "OOMKilled",
        "startedAt": now, "finishedAt": now}});
    let mut back_off = fixture("k8s-events.json")
        .into_iter()
        .find(|e| e["reason"] == "BackOff" && e["apiVersion"] == "v1")
        .expect("a BackOff event");
    back_off["involvedObject"] =
        json!({"kind": "Pod", "name": name, "namespace": namespace, "uid": uid});
    back_off["metadata"]["namespace"] = namespace.clone();
    back_off["lastTimestamp"] = json!(now);
    let back_off_again = back_off.clone();

    let mut script = Script::default();
    script.answers.insert(
        "/api/v1/events",
        VecDeque::from([Answer::List(list("EventList", "5", vec![back_off]))]),
    );
    script.answers.insert(
        "/api/v1/pods",
        VecDeque::from([
            Answer::List(list("PodList", "919377", vec![pod])),
            Answer::Watch {
                lines: vec![line("MODIFIED", &oom_killed)],
                close: false,
            },
        ]),
    );
    let deployment = |rv: &str, desired: i64, ready: i64| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "vllm-mistral-7b", "namespace": namespace, "uid": "d-1",
                "resourceVersion": rv, "creationTimestamp": now},
            "spec": {"replicas": desired, "selector": {}, "template": {}},
            "status": {"readyReplicas": ready, "availableReplicas": ready}})
    };
    script.answers.insert(
        "/apis/apps/v1/deployments",
        VecDeque::from([
            Answer::List(list("DeploymentList", "7", vec![deployment("7", 2, 2)])),
            Answer::Watch {
                lines: vec![line("MODIFIED", &deployment("8", 3, 2))],
                close: false,
            },
        ]),
    );
    script.answers.insert(
        "/api/v1/nodes",
        VecDeque::from([Answer::List(list(
            "NodeList",
            "9",
            vec![gpu_node(9, 7, false, &now)],
        ))]),
    );
    script.answers.insert(
        "/api/v1/resourcequotas",
        VecDeque::from([Answer::List(list(
            "ResourceQuotaList",
            "9",
            vec![gpu_quota(9, 8)],
        ))]),
    );
    let api = FakeApi::start(script).await;
    let url = api.url.clone();
    let dir = tempfile::tempdir().expect("temp dir");
    let (logs, data) = (dir.path().join("pods"), dir.path().join("data"));
    std::fs::create_dir_all(&logs).expect("logs dir");
    let (l, d, u) = (logs.clone(), data.clone(), url.clone());
    let (name2, namespace2, uid2) = (name.clone(), namespace.clone(), uid.clone());
    let checked = tokio::task::spawn_blocking(move || {
        let running = tests::Running::start(&l, &d, &["--kube-api", &u]);
        let incidents = running.wait_for("/api/v1/incidents", Duration::from_secs(60), |b| {
            b["incidents"]
                .as_array()
                .is_some_and(|all| all.iter().any(|i| i["kind"] == "oom_killed"))
        });
        // The pod is known by now: its log lines carry its workload, image and GPUs.
        let pod_dir = l
            .join(format!(
                "{}_{}_{}",
                namespace2.as_str().unwrap_or_default(),
                name2.as_str().unwrap_or_default(),
                uid2.as_str().unwrap_or_default()
            ))
            .join("vllm");
        std::fs::create_dir_all(&pod_dir).expect("pod log dir");
        std::fs::write(
            pod_dir.join("0.log"),
            format!(
                "{now} stdout F INFO 03-04 09:14:20 [api_server.py:1090] Starting vLLM API server on http://0.0.0.0:8000\n\
                 {now} stdout F INFO 03-04 09:14:21 [logger.py:39] Received request cmpl-1: prompt: None.\n",
                now = tests::cri_now()
            ),
        )
        .expect("log lines");
        let line = running.wait_for("/api/v1/search?q=Starting", Duration::from_secs(60), |b| {
            b["total"] == 1
        });
        // Its start line is not in the log: the model its command line names counts.
        let received = running.wait_for(
            "/api/v1/search?q=%22Received%20request%22",
            Duration::from_secs(60),
            |b| b["total"] == 1,
        );
        assert_eq!(
            received["hits"][0]["attributes"][names::GEN_AI_REQUEST_MODEL],
            "mistralai/Mistral-7B-Instruct-v0.3",
            "{received}"
        );
        let events = running.wait_for(
            "/api/v1/search?kind=k8s_event&q=*",
            Duration::from_secs(60),
            |b| b["total"] == 1,
        );
        let objects = running.wait_for(
            "/api/v1/search?kind=k8s_object&q=*",
            Duration::from_secs(60),
            |b| changes(b) == 7 && states(b) >= 2,
        );
        let (_, metrics) = running.get_text("/metrics");
        let (_, pods) = running.get("/api/v1/pods");
        let (status, _) = running.terminate(Duration::from_secs(30));
        assert!(status.success(), "a clean stop");
        (incidents, events, objects, metrics, line, pods)
    });
    let (incidents, events, objects, metrics, line, pods) =
        tokio::time::timeout(Duration::from_secs(120), checked)
            .await
            .expect("a guard, not a wait")
            .expect("the checks ran");
    let resource = &line["hits"][0]["resource"];
    assert_eq!(
        resource[names::K8S_DEPLOYMENT_NAME],
        "vllm-mistral-7b",
        "{resource}"
    );
    assert_eq!(
        resource[names::CONTAINER_IMAGE_NAME],
        "vllm/vllm-openai:v0.8.5"
    );
    assert_eq!(resource[names::K8S_CONTAINER_GPU_LIMIT], 1);
    assert_eq!(resource["k8s.pod.label.app"], "mistral-7b");
    let incident = incidents["incidents"]
        .as_array()
        .and_then(|all| all.iter().find(|i| i["kind"] == "oom_killed"))
        .expect("the OOM kill is an incident")
        .clone();
    assert_eq!(incident["pod"], name, "{incident}");
    assert_eq!(
        events["hits"][0]["attributes"][names::K8S_EVENT_REASON],
        "BackOff"
    );
    assert!(
        metrics.contains("infersight_kube_events_total{source=\"cluster\"} 1"),
        "{metrics}"
    );
    let bodies: Vec<&str> = objects["hits"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|h| h["body"].as_str())
        .collect();
    assert!(bodies.iter().any(|b| b.contains("OOMKilled")), "{bodies:?}");
    // The pod's state now, from the same records.
    assert_eq!(
        pods["pods"],
        json!([{"namespace": namespace, "pod": name, "node": pods["pods"][0]["node"],
            "phase": "Running", "restarts": 1, "updated": pods["pods"][0]["updated"],
            "containers": [{"name": "vllm", "restarts": 1, "waiting": "CrashLoopBackOff",
                "last_termination": "OOMKilled", "last_exit_code": 137}]}]),
        "{pods}"
    );
    assert!(
        bodies
            .iter()
            .any(|b| b.contains("3 desired, 2 ready") && b.contains("was 2 desired")),
        "a scale-up that is not ready yet: {bodies:?}"
    );
    for sample in [
        format!("k8s_container_restarts{{namespace={namespace},pod={name},container=\"vllm\"}} 1"),
        format!(
            "k8s_container_waiting{{namespace={namespace},pod={name},container=\"vllm\",reason=\"CrashLoopBackOff\"}} 1"
        ),
        format!("k8s_pod_phase{{namespace={namespace},pod={name},phase=\"Running\"}} 1"),
        format!(
            "k8s_container_resource_limits{{namespace={namespace},pod={name},container=\"vllm\",resource=\"nvidia.com/gpu\"}} 1"
        ),
        "k8s_node_gpu_allocatable{node=\"gpu-node-3\"} 7".to_string(),
        "k8s_node_gpu_capacity{node=\"gpu-node-3\"} 8".to_string(),
        "k8s_node_condition{node=\"gpu-node-3\",condition=\"Ready\",status=\"True\"} 1"
            .to_string(),
        "k8s_resourcequota{namespace=\"llm-serving\",resourcequota=\"gpu-quota\",resource=\"requests.nvidia.com/gpu\",type=\"used\"} 8"
            .to_string(),
    ] {
        assert!(metrics.contains(&sample), "{sample} in {metrics}");
    }
    let desired = format!(
        "k8s_workload_replicas_desired{{namespace={namespace},kind=\"Deployment\",name=\"vllm-mistral-7b\"}} 3"
    );
    assert!(metrics.contains(&desired), "{desired} in {metrics}");

    // A restart relists everything the first run indexed, plus one new event: the index
    // ends with each once. The phase record, made again from the same pod, replaces its
    // copy (its observed time says which run wrote it).
    let mut scheduled = fixture("k8s-events.json")
        .into_iter()
        .find(|e| e["reason"] == "Scheduled")
        .expect("a Scheduled event");
    scheduled["lastTimestamp"] = json!(now);
    let first_run_ended = tests::cri_now();
    api.push(
        "/api/v1/events",
        Answer::List(list("EventList", "6", vec![back_off_again, scheduled])),
    );
    let restarted = tokio::task::spawn_blocking(move || {
        let running = tests::Running::start(&logs, &data, &["--kube-api", &url]);
        let events = running.wait_for(
            "/api/v1/search?kind=k8s_event&q=*",
            Duration::from_secs(60),
            |b| b["total"].as_u64() >= Some(2),
        );
        let objects = running.wait_for(
            "/api/v1/search?kind=k8s_object&q=*",
            Duration::from_secs(60),
            |b| {
                b["hits"].as_array().into_iter().flatten().any(|h| {
                    h["attributes"][names::K8S_POD_PHASE].is_string()
                        && h["body"]
                            .as_str()
                            .is_some_and(|b| b.ends_with("is Running"))
                        && h["observed_timestamp"]
                            .as_str()
                            .is_some_and(|t| t > first_run_ended.as_str())
                })
            },
        );
        let events_now = running.get("/api/v1/search?kind=k8s_event&q=*").1;
        drop(events);
        (events_now, objects)
    });
    let (events, objects) = tokio::time::timeout(Duration::from_secs(120), restarted)
        .await
        .expect("a guard, not a wait")
        .expect("the checks ran");
    assert_eq!(events["total"], 2, "each event once: {events}");
    assert_eq!(
        changes(&objects),
        7,
        "each pod, workload, node and quota change once: {objects}"
    );
}

/// Hits of a search that are `k8s_object` records of a change, not of a pod's hourly state.
fn changes(search: &Value) -> usize {
    search["hits"].as_array().map_or(0, |hits| {
        hits.iter()
            .filter(|h| h["attributes"][names::K8S_OBJECT_STATE].is_null())
            .count()
    })
}

/// Hits of a search that are a pod's (or its container's) hourly state.
fn states(search: &Value) -> usize {
    search["hits"].as_array().map_or(0, Vec::len) - changes(search)
}

/// A GPU node at resourceVersion `rv`: Ready, `allocatable` of its 8 GPUs offered, under
/// memory pressure or not, its kubelet last heard at `heartbeat`.
fn gpu_node(rv: u64, allocatable: u32, memory_pressure: bool, heartbeat: &str) -> Value {
    let condition = |kind: &str, status: &str| {
        json!({"type": kind, "status": status, "lastHeartbeatTime": heartbeat,
            "lastTransitionTime": "2025-03-01T00:00:00Z", "reason": format!("Kubelet{kind}")})
    };
    json!({"apiVersion": "v1", "kind": "Node",
    "metadata": {"name": "gpu-node-3", "uid": "6f1c2a50-node-3",
        "resourceVersion": rv.to_string(), "creationTimestamp": "2025-03-01T00:00:00Z",
        "labels": {"nvidia.com/gpu.product": "NVIDIA-H100-80GB-HBM3"}},
    "spec": {"podCIDR": "10.244.3.0/24"},
    "status": {
        "capacity": {"cpu": "96", "memory": "1056Gi", "nvidia.com/gpu": "8", "pods": "110"},
        "allocatable": {"cpu": "95500m", "memory": "1040Gi",
            "nvidia.com/gpu": allocatable.to_string(), "pods": "110"},
        "conditions": [
            condition("MemoryPressure", if memory_pressure { "True" } else { "False" }),
            condition("DiskPressure", "False"),
            condition("Ready", "True"),
        ]}})
}

/// The `llm-serving` namespace's GPU quota at resourceVersion `rv`, `used` of 8 GPUs taken.
fn gpu_quota(rv: u64, used: u32) -> Value {
    json!({"apiVersion": "v1", "kind": "ResourceQuota",
        "metadata": {"name": "gpu-quota", "namespace": "llm-serving", "uid": "0d9e-quota",
            "resourceVersion": rv.to_string(), "creationTimestamp": "2025-03-01T00:00:00Z"},
        "spec": {"hard": {"requests.nvidia.com/gpu": "8", "limits.memory": "1Ti"}},
        "status": {
            "hard": {"requests.nvidia.com/gpu": "8", "limits.memory": "1Ti"},
            "used": {"requests.nvidia.com/gpu": used.to_string(), "limits.memory": "384Gi"}}})
}

/// Receives batches until `done` holds of everything received.
async fn receive_until(
    rx: &mut mpsc::Receiver<model::Batch>,
    records: &mut Vec<Record>,
    done: impl Fn(&[Record]) -> bool,
) {
    while !done(records) {
        let batch = rx.recv().await.expect("the source runs");
        records.extend(batch.records);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_server_holds_up_no_other_watch_and_lines_split_across_reads_arrive_whole() {
    let events: Vec<Value> = fixture("k8s-events.json")
        .into_iter()
        .filter(|e| e["apiVersion"] == "v1")
        .collect();
    let (listed, watched) = events.split_at(events.len() / 2);
    // The events' list hangs until the test lets it go; everything after it trickles in.
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let at_once = || {
        let go = std::sync::Arc::new(tokio::sync::Notify::new());
        go.notify_one();
        go
    };
    let slow =
        |answer: Answer, release: std::sync::Arc<tokio::sync::Notify>, chunk: usize| Answer::Slow {
            answer: Box::new(answer),
            release,
            chunk,
        };
    let mut script = Script::default();
    script.answers.insert(
        "/api/v1/events",
        VecDeque::from([
            slow(
                Answer::List(list("EventList", "100", listed.to_vec())),
                release.clone(),
                512,
            ),
            slow(
                Answer::Watch {
                    lines: watched.iter().map(|e| line("ADDED", e)).collect(),
                    close: false,
                },
                at_once(),
                64,
            ),
        ]),
    );
    script.answers.insert(
        "/api/v1/nodes",
        VecDeque::from([
            Answer::List(list(
                "NodeList",
                "10",
                vec![gpu_node(10, 8, false, "2025-03-04T10:00:00Z")],
            )),
            slow(
                Answer::Watch {
                    lines: vec![
                        // A heartbeat: nothing that matters changed.
                        line("MODIFIED", &gpu_node(11, 8, false, "2025-03-04T10:05:00Z")),
                        // A GPU failed its health check, and memory ran short.
                        line("MODIFIED", &gpu_node(12, 7, true, "2025-03-04T10:06:00Z")),
                    ],
                    close: false,
                },
                at_once(),
                7,
            ),
        ]),
    );
    script.answers.insert(
        "/api/v1/resourcequotas",
        VecDeque::from([
            Answer::List(list("ResourceQuotaList", "20", vec![gpu_quota(20, 6)])),
            slow(
                Answer::Watch {
                    lines: vec![line("MODIFIED", &gpu_quota(21, 8))],
                    close: false,
                },
                at_once(),
                7,
            ),
        ]),
    );
    let api = FakeApi::start(script).await;
    let source = KubeSource::connect(KubeSourceConfig {
        api_url: Some(api.url.clone()),
        node_name: Some("gpu-node-3".into()),
    })
    .await
    .expect("client");
    let state = source.state();
    let (tx, mut rx) = mpsc::channel(64);
    let shutdown = Shutdown::new();
    let running = tokio::spawn(source.run(tx, shutdown.clone()));

    let of_kind = |records: &[Record], kind: &str| -> Vec<Record> {
        records
            .iter()
            .filter(|r| {
                r.kind == RecordKind::K8sObject
                    && r.attributes.get_str(names::K8S_OBJECT_KIND) == Some(kind)
            })
            .cloned()
            .collect()
    };
    let mut records = Vec::new();
    let scenario = async {
        // While the events' list hangs, the node's and the quota's changes come through.
        receive_until(&mut rx, &mut records, |r| {
            of_kind(r, "Node").len() == 2 && of_kind(r, "ResourceQuota").len() == 2
        })
        .await;
        assert!(
            !records.iter().any(|r| r.kind == RecordKind::K8sEvent),
            "the events' list has not been answered yet"
        );
        let node_lists = api.targets("/api/v1/nodes");
        assert!(
            node_lists
                .iter()
                .all(|t| t.contains("fieldSelector=metadata.name%3Dgpu-node-3")),
            "a node agent watches its own node only: {node_lists:?}"
        );
        release.notify_one();
        receive_until(&mut rx, &mut records, |r| {
            r.iter().filter(|r| r.kind == RecordKind::K8sEvent).count() >= events.len()
        })
        .await;
    };
    tokio::time::timeout(Duration::from_secs(60), scenario)
        .await
        .expect("the scenario finishes (a guard, not a wait)");
    shutdown.trigger();
    running.await.expect("the source stops");

    let event_ids: HashSet<_> = records
        .iter()
        .filter(|r| r.kind == RecordKind::K8sEvent)
        .map(|r| r.id)
        .collect();
    assert_eq!(event_ids.len(), events.len(), "each event once, whole");
    let nodes = of_kind(&records, "Node");
    let pressure = nodes.last().expect("two node records");
    assert_eq!(
        pressure.attributes.get_str(names::K8S_NODE_PROBLEMS),
        Some("MemoryPressure"),
        "{}",
        pressure.body
    );
    assert_eq!(
        pressure
            .attributes
            .get(names::K8S_NODE_GPU_ALLOCATABLE)
            .and_then(|v| v.as_f64()),
        Some(7.0)
    );
    let quotas = of_kind(&records, "ResourceQuota");
    assert_eq!(
        quotas[1].attributes.get_str(names::K8S_QUOTA_EXHAUSTED),
        Some("requests.nvidia.com/gpu"),
        "{}",
        quotas[1].body
    );
    let node_table = state.nodes.snapshot();
    assert_eq!(node_table.len(), 1);
    assert_eq!(node_table[0].1.gpu_allocatable, 7.0);
    let quota_table = state.quotas.snapshot();
    assert_eq!(quota_table[0].1["requests.nvidia.com/gpu"].used, 8.0);
    let m = &state.metrics;
    assert_eq!(
        m.watch_errors.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "slowness is not an error, and no line was cut"
    );
    assert_eq!(
        m.relists.load(std::sync::atomic::Ordering::Relaxed),
        collector::kube::WATCHED_RESOURCES.len() as u64,
        "one list per kind, none again"
    );
}

/// 410 Expired: the watch's history is gone, and with it the DELETED lines of what went
/// meanwhile. The relist that follows is all there is: a pod and a deployment it no longer
/// lists were deleted, and must not stay on the tables (and `/api/v1/pods`) for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_relist_no_longer_lists_was_deleted_while_the_watch_was_away() {
    let pods = fixture("k8s-pods.json");
    let (kept, gone) = (pods[0].clone(), pods[1].clone());
    let (llama, mistral) = (deployment("llama", "d-1"), deployment("mistral", "d-2"));
    let mut script = Script::default();
    script.answers.insert(
        "/api/v1/pods",
        VecDeque::from([
            Answer::List(list("PodList", "100", vec![kept.clone(), gone.clone()])),
            Answer::Watch {
                lines: vec![expired()],
                close: true,
            },
            Answer::List(list("PodList", "200", vec![kept.clone()])),
        ]),
    );
    script.answers.insert(
        "/apis/apps/v1/deployments",
        VecDeque::from([
            Answer::List(list("DeploymentList", "100", vec![llama.clone(), mistral])),
            Answer::Watch {
                lines: vec![expired()],
                close: true,
            },
            Answer::List(list("DeploymentList", "200", vec![llama])),
        ]),
    );
    let api = FakeApi::start(script).await;
    let source = source_of(&api).await;
    let state = source.state();
    let (tx, mut rx) = mpsc::channel(64);
    let shutdown = Shutdown::new();
    let running = tokio::spawn(source.run(tx, shutdown.clone()));

    let gone_name = gone["metadata"]["name"].as_str().unwrap_or_default();
    let mut records = Vec::new();
    let deleted = |records: &[Record]| {
        records
            .iter()
            .find(|r| r.attributes.get_str(names::K8S_POD_PHASE) == Some("Deleted"))
            .cloned()
    };
    tokio::time::timeout(Duration::from_secs(60), async {
        receive_until(&mut rx, &mut records, |r| deleted(r).is_some()).await;
        // The deployments' relist ends with their watch after it.
        api.wait_for("WATCH /apis/apps/v1/deployments", 2).await;
    })
    .await
    .expect("the relists finish (a guard, not a wait)");
    let deleted = deleted(&records).expect("a deletion record");
    assert_eq!(
        deleted.resource.get_str(names::K8S_POD_NAME),
        Some(gone_name)
    );
    assert_eq!(
        deleted.resource.get_str(names::K8S_POD_UID),
        gone["metadata"]["uid"].as_str()
    );
    assert_eq!(deleted.kind, RecordKind::K8sObject);
    let still: Vec<String> = state
        .pods
        .snapshot()
        .into_iter()
        .map(|((_, n), _)| n)
        .collect();
    assert_eq!(
        still,
        [kept["metadata"]["name"].as_str().unwrap_or_default()]
    );
    let workloads: Vec<String> = state
        .workloads
        .snapshot()
        .into_iter()
        .map(|((_, _, n), _)| n)
        .collect();
    assert_eq!(workloads, ["llama"]);
    while let Ok(batch) = rx.try_recv() {
        records.extend(batch.records);
    }
    shutdown.trigger();
    running.await.expect("the source stops");
    assert_eq!(
        records
            .iter()
            .filter(|r| r.attributes.get_str(names::K8S_POD_PHASE) == Some("Deleted"))
            .count(),
        1,
        "only the pod no longer listed"
    );
    // And the deployment no longer listed has the record of its deletion: search finds
    // when it went.
    let workloads_gone: Vec<&str> = records
        .iter()
        .filter(|r| r.attributes.get(names::K8S_OBJECT_DELETED).is_some())
        .filter_map(|r| r.attributes.get_str(names::K8S_OBJECT_NAME))
        .collect();
    assert_eq!(workloads_gone, ["mistral"]);
}

/// A Deployment of two ready replicas in `llm-serving`, as the API server lists it.
fn deployment(name: &str, uid: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "llm-serving", "uid": uid,
            "resourceVersion": "7", "creationTimestamp": "2025-03-04T09:00:00Z"},
        "spec": {"replicas": 2, "selector": {}, "template": {}},
        "status": {"readyReplicas": 2, "availableReplicas": 2}})
}

/// A pod and a Deployment deleted while Infersight was down: no watch saw them go, and the
/// next run's lists simply lack them. What the first run recorded is in its checkpoints, so
/// the next run finds them gone, records their deletion, and `/api/v1/pods` and
/// `/api/v1/workloads` no longer show them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_and_a_deployment_deleted_while_infersight_was_down_leave_the_lists() {
    // Their status is of March 2025, before the year `/api/v1/pods` looks back: their
    // changes are that old, and their state as of now is what lists them.
    let pods = fixture("k8s-pods.json");
    let (kept, gone) = (pods[0].clone(), pods[1].clone());
    let name = |pod: &Value| {
        pod["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let (kept_name, gone_name) = (name(&kept), name(&gone));
    let mut script = Script::default();
    script.answers.insert(
        "/api/v1/pods",
        VecDeque::from([Answer::List(list(
            "PodList",
            "100",
            vec![kept.clone(), gone],
        ))]),
    );
    let (llama, mistral) = (deployment("llama", "d-1"), deployment("mistral", "d-2"));
    script.answers.insert(
        "/apis/apps/v1/deployments",
        VecDeque::from([Answer::List(list(
            "DeploymentList",
            "100",
            vec![llama.clone(), mistral],
        ))]),
    );
    let api = FakeApi::start(script).await;
    let url = api.url.clone();
    let dir = tempfile::tempdir().expect("temp dir");
    let (logs, data) = (dir.path().join("pods"), dir.path().join("data"));
    std::fs::create_dir_all(&logs).expect("logs dir");
    let names_in = |list: &'static str, field: &'static str| {
        move |b: &Value| -> Vec<String> {
            let mut names: Vec<String> = b[list]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p[field].as_str().map(str::to_string))
                .collect();
            names.sort();
            names
        }
    };
    let (pod_names, workload_names) = (names_in("pods", "pod"), names_in("workloads", "name"));
    let (l, d, u) = (logs.clone(), data.clone(), url.clone());
    let mut both = vec![kept_name.clone(), gone_name.clone()];
    both.sort();
    let first = tokio::task::spawn_blocking(move || {
        let running = tests::Running::start(&l, &d, &["--kube-api", &u]);
        running.wait_for("/api/v1/pods", Duration::from_secs(60), |b| {
            pod_names(b) == both
        });
        running.wait_for("/api/v1/workloads", Duration::from_secs(60), |b| {
            workload_names(b) == ["llama", "mistral"]
        });
        let (status, _) = running.terminate(Duration::from_secs(30));
        assert!(status.success(), "a clean stop");
    });
    tokio::time::timeout(Duration::from_secs(120), first)
        .await
        .expect("a guard, not a wait")
        .expect("the first run lists both pods");

    // Meanwhile the second pod and the mistral Deployment are deleted: the next lists
    // have only the others.
    api.push(
        "/api/v1/pods",
        Answer::List(list("PodList", "200", vec![kept])),
    );
    api.push(
        "/apis/apps/v1/deployments",
        Answer::List(list("DeploymentList", "200", vec![llama])),
    );
    let (k, g) = (kept_name.clone(), gone_name.clone());
    let second = tokio::task::spawn_blocking(move || {
        let running = tests::Running::start(&logs, &data, &["--kube-api", &url]);
        let pods = running.wait_for("/api/v1/pods", Duration::from_secs(60), |b| {
            pod_names(b) == [k.clone()]
        });
        let deletion = running.wait_for(
            &format!("/api/v1/search?kind=k8s_object&pod={g}&q=deleted"),
            Duration::from_secs(60),
            |b| b["total"] == 1,
        );
        running.wait_for("/api/v1/workloads", Duration::from_secs(60), |b| {
            workload_names(b) == ["llama"]
        });
        let (_, metrics) = running.get_text("/metrics");
        running.terminate(Duration::from_secs(30));
        (pods, deletion, metrics)
    });
    let (pods, deletion, metrics) = tokio::time::timeout(Duration::from_secs(120), second)
        .await
        .expect("a guard, not a wait")
        .expect("the second run finds the pod and the Deployment gone");
    assert_eq!(pods["pods"][0]["phase"], "Running", "{pods}");
    let hit = &deletion["hits"][0];
    assert_eq!(hit["attributes"][names::K8S_POD_PHASE], "Deleted", "{hit}");
    assert_eq!(hit["resource"][names::K8S_POD_NAME], gone_name.as_str());
    assert!(
        !metrics.contains(&format!("pod=\"{gone_name}\"")),
        "the gone pod is off the tables /metrics reads"
    );
}
