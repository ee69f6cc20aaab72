//! The attribute and resource names of the contract (DESIGN.md §3).
//!
//! `infersight parse`, the index schema and the API all use these names; keeping them in
//! one place means a typo is a compile error rather than a silently empty column.

/// Kubernetes namespace of the pod that wrote the record.
pub const K8S_NAMESPACE_NAME: &str = "k8s.namespace.name";
/// Pod name.
pub const K8S_POD_NAME: &str = "k8s.pod.name";
/// Pod uid.
pub const K8S_POD_UID: &str = "k8s.pod.uid";
/// Container name inside the pod.
pub const K8S_CONTAINER_NAME: &str = "k8s.container.name";
/// How many times the container had restarted when it wrote the line.
pub const K8S_CONTAINER_RESTART_COUNT: &str = "k8s.container.restart_count";
/// Node that runs the pod.
pub const K8S_NODE_NAME: &str = "k8s.node.name";
/// Container runtime id.
pub const CONTAINER_ID: &str = "container.id";
/// The container's image (`vllm/vllm-openai:v0.8.5`), from the pod spec.
pub const CONTAINER_IMAGE_NAME: &str = "container.image.name";
/// GPUs (`nvidia.com/gpu`) the container requests.
pub const K8S_CONTAINER_GPU_REQUEST: &str = "k8s.container.gpu.request";
/// GPUs (`nvidia.com/gpu`) the container is limited to.
pub const K8S_CONTAINER_GPU_LIMIT: &str = "k8s.container.gpu.limit";
/// The model the container's command line names (`--served-model-name`, `--model`,
/// `vllm serve <model>`, TGI's `MODEL_ID`): what its requests are counted under when its
/// server's start line was not read (the agent started after the pod).
pub const K8S_CONTAINER_MODEL: &str = "k8s.container.model";
/// The Deployment that runs the pod (through its ReplicaSet).
pub const K8S_DEPLOYMENT_NAME: &str = "k8s.deployment.name";
/// The ReplicaSet that runs the pod, when no Deployment owns it.
pub const K8S_REPLICASET_NAME: &str = "k8s.replicaset.name";
/// The StatefulSet that runs the pod.
pub const K8S_STATEFULSET_NAME: &str = "k8s.statefulset.name";
/// The DaemonSet that runs the pod.
pub const K8S_DAEMONSET_NAME: &str = "k8s.daemonset.name";
/// The Job that runs the pod.
pub const K8S_JOB_NAME: &str = "k8s.job.name";
/// Prefix of a pod label in a resource (`k8s.pod.label.app`), as OpenTelemetry names it.
pub const K8S_POD_LABEL_PREFIX: &str = "k8s.pod.label.";
/// Prefix of a pod annotation in a resource (`k8s.pod.annotation.<key>`).
pub const K8S_POD_ANNOTATION_PREFIX: &str = "k8s.pod.annotation.";
/// The pod annotation (or label) that names the server a pod's containers run, overriding
/// detection: `infersight.io/server: vllm`.
pub const SERVER_ANNOTATION: &str = "infersight.io/server";

/// The file a log record was read from (OpenTelemetry `log.file.path`).
pub const LOG_FILE_PATH: &str = "log.file.path";
/// Set when the line was not valid UTF-8 and was decoded lossily.
pub const LOG_INVALID_UTF8: &str = "log.invalid_utf8";
/// Set when a line was longer than the configured cap and was cut.
pub const LOG_TRUNCATED: &str = "log.truncated";
/// Why a container-runtime line could not be decoded (the raw line is kept as the body).
pub const LOG_DECODE_ERROR: &str = "log.decode_error";
/// How many physical lines were joined into this record (a traceback, a goroutine dump, a
/// message with continuation lines); absent for a single line.
pub const LOG_LINES: &str = "log.lines";
/// Set when a line's end (`F`, or a docker `log` ending in a newline) never came and the
/// collector emitted what it had after a timeout or at the end of a finished file.
pub const LOG_PARTIAL: &str = "log.partial";
/// Set when ANSI colour codes were removed from the body.
pub const LOG_ANSI_STRIPPED: &str = "log.ansi_stripped";
/// A process prefix such as vLLM's `(APIServer pid=3646)`.
pub const LOG_PROCESS_TAG: &str = "log.process_tag";
/// How many times Ray's log deduplication says the line occurred (`[repeated 3x across
/// cluster]`: the line stands for itself and 3 more).
pub const LOG_REPEATED: &str = "log.repeated";

/// Which inference server wrote the line (vllm, tgi, sglang, …).
pub const LLM_SERVER: &str = "llm.server";
/// What the line reports (stats, request_received, request_finished, error, …).
pub const LLM_EVENT: &str = "llm.event";
/// The request id as the server logs it.
pub const LLM_REQUEST_ID: &str = "llm.request_id";
/// Model name.
pub const GEN_AI_REQUEST_MODEL: &str = "gen_ai.request.model";
/// The request's `max_tokens`.
pub const GEN_AI_REQUEST_MAX_TOKENS: &str = "gen_ai.request.max_tokens";
/// The request's sampling temperature.
pub const GEN_AI_REQUEST_TEMPERATURE: &str = "gen_ai.request.temperature";
/// Prompt tokens.
pub const GEN_AI_USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
/// Generated tokens.
pub const GEN_AI_USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
/// Why generation stopped (`stop`, `length`, …).
pub const GEN_AI_RESPONSE_FINISH_REASONS: &str = "gen_ai.response.finish_reasons";

/// End-to-end request time, ms.
pub const LLM_E2E_MS: &str = "llm.e2e_ms";
/// Time queued before the engine took the request, ms.
pub const LLM_QUEUE_MS: &str = "llm.queue_ms";
/// Validation (tokenisation, checks) time, ms.
pub const LLM_VALIDATION_MS: &str = "llm.validation_ms";
/// Inference time (prefill + decode), ms.
pub const LLM_INFERENCE_MS: &str = "llm.inference_ms";
/// Prompt processing (prefill) time, ms.
pub const LLM_PREFILL_MS: &str = "llm.prefill_ms";
/// Generation (decode) time, ms.
pub const LLM_DECODE_MS: &str = "llm.decode_ms";
/// Time to first token, ms.
pub const LLM_TTFT_MS: &str = "llm.ttft_ms";
/// Where `llm.ttft_ms` comes from: `logged` (the server logged it, or the times it is the
/// difference of), `estimated` (derived from a related logged time, such as llama.cpp's
/// prompt processing, which leaves out queueing) or `scraped` (the server's histograms).
pub const LLM_TTFT_SOURCE: &str = "llm.ttft_source";
/// Counts of a scraped server's requests by time to first token, over the interval since
/// its previous scrape: (attribute, upper bound in seconds). Each holds the requests above
/// the previous bound and at most this one (not cumulative), so the counts of several
/// intervals, pods and aggregators add up. The bounds are vLLM's; another server's buckets
/// are spread over them in proportion to their overlap, as Prometheus's
/// `histogram_quantile` takes the values of a bucket to be spread evenly. Percentiles of
/// servers that log no per-request TTFT (vLLM v1) come from these.
pub const LLM_TTFT_BUCKETS: [(&str, f64); 23] = [
    ("llm.ttft_bucket_1ms", 0.001),
    ("llm.ttft_bucket_5ms", 0.005),
    ("llm.ttft_bucket_10ms", 0.01),
    ("llm.ttft_bucket_20ms", 0.02),
    ("llm.ttft_bucket_40ms", 0.04),
    ("llm.ttft_bucket_60ms", 0.06),
    ("llm.ttft_bucket_80ms", 0.08),
    ("llm.ttft_bucket_100ms", 0.1),
    ("llm.ttft_bucket_250ms", 0.25),
    ("llm.ttft_bucket_500ms", 0.5),
    ("llm.ttft_bucket_750ms", 0.75),
    ("llm.ttft_bucket_1s", 1.0),
    ("llm.ttft_bucket_2500ms", 2.5),
    ("llm.ttft_bucket_5s", 5.0),
    ("llm.ttft_bucket_7500ms", 7.5),
    ("llm.ttft_bucket_10s", 10.0),
    ("llm.ttft_bucket_20s", 20.0),
    ("llm.ttft_bucket_40s", 40.0),
    ("llm.ttft_bucket_80s", 80.0),
    ("llm.ttft_bucket_160s", 160.0),
    ("llm.ttft_bucket_640s", 640.0),
    ("llm.ttft_bucket_2560s", 2560.0),
    ("llm.ttft_bucket_inf", f64::INFINITY),
];
/// The scraped histograms whose observations each scrape keeps per interval: each one's
/// buckets and the attribute of its total time, first token, queue time, end to end.
pub const LLM_INTERVAL_HISTOGRAMS: [(&[(&str, f64)], &str); 3] = [
    (&LLM_TTFT_BUCKETS, LLM_TTFT_TOTAL_MS),
    (&LLM_QUEUE_BUCKETS, LLM_QUEUE_TOTAL_MS),
    (&LLM_E2E_BUCKETS, LLM_E2E_TOTAL_MS),
];
/// The time to first token of a scraped server's requests over the interval since its
/// previous scrape, together, ms (its histogram's sum grew by it): with the counts of
/// [`LLM_TTFT_BUCKETS`], their mean.
pub const LLM_TTFT_TOTAL_MS: &str = "llm.ttft_total_ms";
/// The same of their time queued ([`LLM_QUEUE_BUCKETS`]).
pub const LLM_QUEUE_TOTAL_MS: &str = "llm.queue_total_ms";
/// The same of their time end to end ([`LLM_E2E_BUCKETS`]).
pub const LLM_E2E_TOTAL_MS: &str = "llm.e2e_total_ms";
/// The same for a scraped server's requests by the time they waited in its queue (vLLM's
/// bounds of its request latency histograms; a queue is short when all is well, so most
/// fall in the first, below 0.3 s).
pub const LLM_QUEUE_BUCKETS: [(&str, f64); 22] = [
    ("llm.queue_bucket_300ms", 0.3),
    ("llm.queue_bucket_500ms", 0.5),
    ("llm.queue_bucket_800ms", 0.8),
    ("llm.queue_bucket_1s", 1.0),
    ("llm.queue_bucket_1500ms", 1.5),
    ("llm.queue_bucket_2s", 2.0),
    ("llm.queue_bucket_2500ms", 2.5),
    ("llm.queue_bucket_5s", 5.0),
    ("llm.queue_bucket_10s", 10.0),
    ("llm.queue_bucket_15s", 15.0),
    ("llm.queue_bucket_20s", 20.0),
    ("llm.queue_bucket_30s", 30.0),
    ("llm.queue_bucket_40s", 40.0),
    ("llm.queue_bucket_50s", 50.0),
    ("llm.queue_bucket_60s", 60.0),
    ("llm.queue_bucket_120s", 120.0),
    ("llm.queue_bucket_240s", 240.0),
    ("llm.queue_bucket_480s", 480.0),
    ("llm.queue_bucket_960s", 960.0),
    ("llm.queue_bucket_1920s", 1920.0),
    ("llm.queue_bucket_7680s", 7680.0),
    ("llm.queue_bucket_inf", f64::INFINITY),
];
/// The same for a scraped server's requests by their time end to end, as the server
/// measures it (vLLM's bounds).
pub const LLM_E2E_BUCKETS: [(&str, f64); 22] = [
    ("llm.e2e_bucket_300ms", 0.3),
    ("llm.e2e_bucket_500ms", 0.5),
    ("llm.e2e_bucket_800ms", 0.8),
    ("llm.e2e_bucket_1s", 1.0),
    ("llm.e2e_bucket_1500ms", 1.5),
    ("llm.e2e_bucket_2s", 2.0),
    ("llm.e2e_bucket_2500ms", 2.5),
    ("llm.e2e_bucket_5s", 5.0),
    ("llm.e2e_bucket_10s", 10.0),
    ("llm.e2e_bucket_15s", 15.0),
    ("llm.e2e_bucket_20s", 20.0),
    ("llm.e2e_bucket_30s", 30.0),
    ("llm.e2e_bucket_40s", 40.0),
    ("llm.e2e_bucket_50s", 50.0),
    ("llm.e2e_bucket_60s", 60.0),
    ("llm.e2e_bucket_120s", 120.0),
    ("llm.e2e_bucket_240s", 240.0),
    ("llm.e2e_bucket_480s", 480.0),
    ("llm.e2e_bucket_960s", 960.0),
    ("llm.e2e_bucket_1920s", 1920.0),
    ("llm.e2e_bucket_7680s", 7680.0),
    ("llm.e2e_bucket_inf", f64::INFINITY),
];
/// The server's own (monotonic) clock when it wrote the line, seconds; TensorRT-LLM logs it
/// so that a request's times can be subtracted exactly.
pub const LLM_SERVER_CLOCK_S: &str = "llm.server_clock_s";
/// Time per output token, ms.
pub const LLM_TPOT_MS: &str = "llm.tpot_ms";
/// Generation speed, tokens/s.
pub const LLM_TOKENS_PER_S: &str = "llm.tokens_per_s";

/// What kind of failure a record reports (cuda_oom, nccl_error, engine_dead,
/// context_overflow, oom_killed, traceback, …).
pub const ERROR_TYPE: &str = "error.type";
/// The exception's type (`torch.OutOfMemoryError`).
pub const EXCEPTION_TYPE: &str = "exception.type";
/// The exception's message.
pub const EXCEPTION_MESSAGE: &str = "exception.message";
/// A grouped traceback, from its `Traceback (most recent call last):` line on.
pub const EXCEPTION_STACKTRACE: &str = "exception.stacktrace";

/// `k8s.event.reason` of a `k8s_event` record: `OOMKilling`, `BackOff`, `FailedScheduling`, …
pub const K8S_EVENT_REASON: &str = "k8s.event.reason";
/// `k8s.event.type` of a `k8s_event` record: `Normal` or `Warning`.
pub const K8S_EVENT_TYPE: &str = "k8s.event.type";
/// `k8s.event.uid` of a `k8s_event` record: the Event object's uid.
pub const K8S_EVENT_UID: &str = "k8s.event.uid";
/// `k8s.event.count` of a `k8s_event` record: how often it happened (`count`, or the
/// series' count).
pub const K8S_EVENT_COUNT: &str = "k8s.event.count";
/// `k8s.event.reporting_component` of a `k8s_event` record: `kubelet`, `default-scheduler`, …
pub const K8S_EVENT_REPORTING_COMPONENT: &str = "k8s.event.reporting_component";
/// The kind of the object a `k8s_event` or `k8s_object` record is about (`Pod`, `Node`, …).
pub const K8S_OBJECT_KIND: &str = "k8s.object.kind";
/// The name of that object.
pub const K8S_OBJECT_NAME: &str = "k8s.object.name";
/// The uid of that object.
pub const K8S_OBJECT_UID: &str = "k8s.object.uid";
/// `true` on a `k8s_object` record that states an object's whole state as of its
/// timestamp (the `kube` source's hourly pod states) rather than one change: what lasts
/// while older change records leave with retention.
pub const K8S_OBJECT_STATE: &str = "k8s.object.state";
/// `true` on the record of a workload's deletion (a Deployment, StatefulSet or autoscaler
/// seen deleted, or found gone at a relist); a pod's deletion is `k8s.pod.phase=Deleted`.
pub const K8S_OBJECT_DELETED: &str = "k8s.object.deleted";
/// A pod's phase: `Pending`, `Running`, `Succeeded`, `Failed`, `Unknown`.
pub const K8S_POD_PHASE: &str = "k8s.pod.phase";
/// Why a container's last run ended (`OOMKilled`, `Error`, `Completed`).
pub const K8S_CONTAINER_LAST_TERMINATED_REASON: &str = "k8s.container.last_terminated_reason";
/// The exit code of a container's last run (137 after an OOM kill).
pub const K8S_CONTAINER_LAST_TERMINATED_EXIT_CODE: &str = "k8s.container.last_terminated_exit_code";
/// Why a container waits (`CrashLoopBackOff`, `ImagePullBackOff`, `ContainerCreating`).
pub const K8S_CONTAINER_WAITING_REASON: &str = "k8s.container.waiting_reason";
/// Replicas a workload wants (an autoscaler: what it asks for).
pub const K8S_REPLICAS_DESIRED: &str = "k8s.replicas.desired";
/// Replicas ready (an autoscaler: what its target has).
pub const K8S_REPLICAS_READY: &str = "k8s.replicas.ready";
/// Replicas available (an autoscaler: its ceiling).
pub const K8S_REPLICAS_AVAILABLE: &str = "k8s.replicas.available";
/// Whether a node is Ready (`True`, `False`, `Unknown`: its Ready condition's status).
pub const K8S_NODE_READY: &str = "k8s.node.ready";
/// A node's conditions that report a problem (`MemoryPressure,DiskPressure`), and
/// `Unschedulable` when it is cordoned; absent when there are none.
pub const K8S_NODE_PROBLEMS: &str = "k8s.node.problems";
/// GPUs (`nvidia.com/gpu`) a node offers to pods.
pub const K8S_NODE_GPU_ALLOCATABLE: &str = "k8s.node.gpu.allocatable";
/// GPUs a node has.
pub const K8S_NODE_GPU_CAPACITY: &str = "k8s.node.gpu.capacity";
/// GPUs a namespace's quota allows to be requested (`requests.nvidia.com/gpu` hard).
pub const K8S_QUOTA_GPU_HARD: &str = "k8s.resourcequota.gpu.hard";
/// GPUs requested against a namespace's quota.
pub const K8S_QUOTA_GPU_USED: &str = "k8s.resourcequota.gpu.used";
/// A quota's resources that are used up (`requests.nvidia.com/gpu,pods`): new pods that
/// need them are refused.
pub const K8S_QUOTA_EXHAUSTED: &str = "k8s.resourcequota.exhausted";

/// HTTP method of an access line.
pub const HTTP_REQUEST_METHOD: &str = "http.request.method";
/// Path of an access line.
pub const URL_PATH: &str = "url.path";
/// HTTP status of an access line.
pub const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
/// The client's address of an access line.
pub const CLIENT_ADDRESS: &str = "client.address";
/// Envoy's response flags on its access line (`UC`, `UF`, `UO`, `URX`, `DC`, …): why the
/// proxy, not the server, ended a call (an upstream reset, a circuit breaker, a client gone).
pub const ENVOY_RESPONSE_FLAGS: &str = "envoy.response_flags";

/// Requests running in the engine.
pub const LLM_RUNNING: &str = "llm.running";
/// Requests waiting (queued) in the engine.
pub const LLM_WAITING: &str = "llm.waiting";
/// Requests swapped out to CPU memory.
pub const LLM_SWAPPED: &str = "llm.swapped";
/// GPU KV-cache usage, 0–100.
pub const LLM_KV_CACHE_PCT: &str = "llm.kv_cache_pct";
/// Prefix-cache hit rate, 0–100.
pub const LLM_PREFIX_CACHE_HIT_PCT: &str = "llm.prefix_cache_hit_pct";
/// Prompt (prefill) throughput in tokens/s.
pub const LLM_PROMPT_THROUGHPUT_TPS: &str = "llm.prompt_throughput_tps";
/// Generation (decode) throughput in tokens/s.
pub const LLM_GEN_THROUGHPUT_TPS: &str = "llm.gen_throughput_tps";
/// Tokens an engine generated since its previous stats line: the line's generation
/// throughput times the stretch the engine rated (see the processor). Summed over a range,
/// the tokens generated in it, whatever the logging interval or idle pauses; the tokens/s of
/// a server that logs no request ends.
pub const LLM_GENERATED_TOKENS: &str = "llm.generated_tokens";
/// Index of the engine that logged a stats line (vLLM v1 `Engine 000:`, SGLang's `DP1`).
pub const LLM_ENGINE_INDEX: &str = "llm.engine_index";
/// Requests that ended between two scrapes of a server's `/metrics`, by its own counters
/// (vLLM's `request_success_total` over every finish reason, TGI's successes and failures,
/// SGLang's `num_requests_total`): summed over a range, the requests of a server that logs
/// none (vLLM v1 without request logging).
pub const LLM_REQUESTS_ENDED: &str = "llm.requests_ended";
/// Of [`LLM_REQUESTS_ENDED`], those that failed: vLLM's finished as `abort` or `error`,
/// TGI's `tgi_request_failure`, SGLang's aborted.
pub const LLM_REQUESTS_FAILED: &str = "llm.requests_failed";

/// A GPU's uuid (`GPU-c4529c8d-…`; a MIG device's `MIG-…`); on a record about several
/// GPUs, their uuids joined by commas.
pub const GPU_UUID: &str = "gpu.uuid";
/// A GPU's index on its node (`nvidia-smi`'s order).
pub const GPU_INDEX: &str = "gpu.index";
/// A GPU's product name (`NVIDIA H100 80GB HBM3`).
pub const GPU_MODEL: &str = "gpu.model";
/// How many GPUs a record's figures cover (a pod with several: utilisation averaged,
/// memory and power summed, temperature the hottest).
pub const GPU_COUNT: &str = "gpu.count";
/// Where GPU figures came from: `nvml` or `dcgm`.
pub const GPU_SOURCE: &str = "gpu.source";
/// GPU memory bandwidth utilisation, percent (0–100).
pub const GPU_MEMORY_UTILIZATION_PCT: &str = "gpu.memory.utilization_pct";
/// GPU memory in all, bytes.
pub const GPU_MEMORY_TOTAL_BYTES: &str = "gpu.memory.total_bytes";
/// Milliseconds between a record and the GPU snapshot its `gpu.*` figures come from
/// (positive: the snapshot is later).
pub const GPU_SNAPSHOT_OFFSET_MS: &str = "gpu.snapshot_offset_ms";
/// The URL a scraped record's figures were read from.
pub const SCRAPE_URL: &str = "scrape.url";
/// GPU utilisation, percent (0–100).
pub const GPU_UTILIZATION_PCT: &str = "gpu.utilization_pct";
/// GPU memory in use, bytes.
pub const GPU_MEMORY_USED_BYTES: &str = "gpu.memory.used_bytes";
/// GPU power draw, watts.
pub const GPU_POWER_W: &str = "gpu.power_w";
/// GPU temperature, °C.
pub const GPU_TEMPERATURE_C: &str = "gpu.temperature_c";

/// Every name above, for a reader that turns a name it reads back into the constant
/// (`crate::record_binary`: no allocation per attribute).
pub const ALL: [&str; 108] = [
    K8S_NAMESPACE_NAME,
    K8S_POD_NAME,
    K8S_POD_UID,
    K8S_CONTAINER_NAME,
    K8S_CONTAINER_RESTART_COUNT,
    K8S_NODE_NAME,
    CONTAINER_ID,
    CONTAINER_IMAGE_NAME,
    K8S_CONTAINER_GPU_REQUEST,
    K8S_CONTAINER_GPU_LIMIT,
    K8S_CONTAINER_MODEL,
    K8S_DEPLOYMENT_NAME,
    K8S_REPLICASET_NAME,
    K8S_STATEFULSET_NAME,
    K8S_DAEMONSET_NAME,
    K8S_JOB_NAME,
    K8S_POD_LABEL_PREFIX,
    K8S_POD_ANNOTATION_PREFIX,
    SERVER_ANNOTATION,
    LOG_FILE_PATH,
    LOG_INVALID_UTF8,
    LOG_TRUNCATED,
    LOG_DECODE_ERROR,
    LOG_LINES,
    LOG_PARTIAL,
    LOG_ANSI_STRIPPED,
    LOG_PROCESS_TAG,
    LOG_REPEATED,
    LLM_SERVER,
    LLM_EVENT,
    LLM_REQUEST_ID,
    GEN_AI_REQUEST_MODEL,
    GEN_AI_REQUEST_MAX_TOKENS,
    GEN_AI_REQUEST_TEMPERATURE,
    GEN_AI_USAGE_INPUT_TOKENS,
    GEN_AI_USAGE_OUTPUT_TOKENS,
    GEN_AI_RESPONSE_FINISH_REASONS,
    LLM_E2E_MS,
    LLM_QUEUE_MS,
    LLM_VALIDATION_MS,
    LLM_INFERENCE_MS,
    LLM_PREFILL_MS,
    LLM_DECODE_MS,
    LLM_TTFT_MS,
    LLM_TTFT_SOURCE,
    LLM_TTFT_TOTAL_MS,
    LLM_QUEUE_TOTAL_MS,
    LLM_E2E_TOTAL_MS,
    LLM_SERVER_CLOCK_S,
    LLM_TPOT_MS,
    LLM_TOKENS_PER_S,
    ERROR_TYPE,
    EXCEPTION_TYPE,
    EXCEPTION_MESSAGE,
    EXCEPTION_STACKTRACE,
    K8S_EVENT_REASON,
    K8S_EVENT_TYPE,
    K8S_EVENT_UID,
    K8S_EVENT_COUNT,
    K8S_EVENT_REPORTING_COMPONENT,
    K8S_OBJECT_KIND,
    K8S_OBJECT_NAME,
    K8S_OBJECT_UID,
    K8S_OBJECT_STATE,
    K8S_OBJECT_DELETED,
    K8S_POD_PHASE,
    K8S_CONTAINER_LAST_TERMINATED_REASON,
    K8S_CONTAINER_LAST_TERMINATED_EXIT_CODE,
    K8S_CONTAINER_WAITING_REASON,
    K8S_REPLICAS_DESIRED,
    K8S_REPLICAS_READY,
    K8S_REPLICAS_AVAILABLE,
    K8S_NODE_READY,
    K8S_NODE_PROBLEMS,
    K8S_NODE_GPU_ALLOCATABLE,
    K8S_NODE_GPU_CAPACITY,
    K8S_QUOTA_GPU_HARD,
    K8S_QUOTA_GPU_USED,
    K8S_QUOTA_EXHAUSTED,
    HTTP_REQUEST_METHOD,
    URL_PATH,
    HTTP_RESPONSE_STATUS_CODE,
    CLIENT_ADDRESS,
    ENVOY_RESPONSE_FLAGS,
    LLM_RUNNING,
    LLM_WAITING,
    LLM_SWAPPED,
    LLM_KV_CACHE_PCT,
    LLM_PREFIX_CACHE_HIT_PCT,
    LLM_PROMPT_THROUGHPUT_TPS,
    LLM_GEN_THROUGHPUT_TPS,
    LLM_GENERATED_TOKENS,
    LLM_ENGINE_INDEX,
    LLM_REQUESTS_ENDED,
    LLM_REQUESTS_FAILED,
    GPU_UUID,
    GPU_INDEX,
    GPU_MODEL,
    GPU_COUNT,
    GPU_SOURCE,
    GPU_MEMORY_UTILIZATION_PCT,
    GPU_MEMORY_TOTAL_BYTES,
    GPU_SNAPSHOT_OFFSET_MS,
    SCRAPE_URL,
    GPU_UTILIZATION_PCT,
    GPU_MEMORY_USED_BYTES,
    GPU_POWER_W,
    GPU_TEMPERATURE_C,
];
