use super::*;

fn load(text: &str) -> Result<PipelineConfig, ConfigError> {
    PipelineConfig::load("test.toml", text, &Overrides::default())
}

fn problem_keys(text: &str) -> Vec<String> {
    load(text)
        .unwrap_err()
        .problems
        .into_iter()
        .map(|p| p.key)
        .collect()
}

#[test]
fn the_local_preset_is_valid_and_flags_override_it() {
    let overrides = Overrides {
        logs_dir: Some("/tmp/pods".into()),
        data_dir: Some("/tmp/data".into()),
        listen: Some("127.0.0.1:9999".into()),
        retention_hours: Some(168),
        retention_mb: Some(40_960),
        ..Overrides::default()
    };
    let c = PipelineConfig::load("preset local", preset("local").unwrap(), &overrides).unwrap();
    assert_eq!(c.data_dir, PathBuf::from("/tmp/data"));
    let SinkConfig::Index(index) = &c.sinks["index"] else {
        panic!("an index sink")
    };
    assert_eq!(
        (
            index.retention_hours,
            index.retention_mb,
            index.min_free_disk_percent
        ),
        (168, 40_960, 15.0)
    );
    assert_eq!(c.api.as_ref().unwrap().listen, "127.0.0.1:9999");
    let SourceConfig::Files(f) = &c.sources["pod_logs"] else {
        panic!("a files source")
    };
    assert_eq!(f.logs_dir, PathBuf::from("/tmp/pods"));
    assert_eq!(f.poll_interval_ms, 250);
    assert_eq!(f.read_from, ReadFromConfig::Beginning);
    let end =
        load("[sources.s]\ntype='files'\nread_from='end'\n[sinks.i]\ntype='index'\ninputs=['s']")
            .unwrap();
    let SourceConfig::Files(f) = &end.sources["s"] else {
        panic!("a files source")
    };
    assert_eq!(f.read_from, ReadFromConfig::End);
    let bad = load(
        "[sources.s]\ntype='files'\nread_from='middle'\n[sinks.i]\ntype='index'\ninputs=['s']",
    )
    .unwrap_err();
    assert!(bad.to_string().contains("beginning"), "{bad}");
    assert_eq!(c.inputs_of("index"), ["parse"]);
}

#[test]
fn agent_and_aggregator_presets_load_and_meet_in_one_topic() {
    let overrides = Overrides {
        api_token: Some("0123456789abcdef0123".into()),
        ..Overrides::default()
    };
    let agent = PipelineConfig::load("agent", preset("agent").unwrap(), &overrides).unwrap();
    let aggregator =
        PipelineConfig::load("aggregator", preset("aggregator").unwrap(), &overrides).unwrap();
    let Some(SinkConfig::Kafka(out)) = agent.sinks.values().next() else {
        panic!("the agent publishes to Kafka")
    };
    let Some(SourceConfig::Kafka(input)) = aggregator.sources.values().next() else {
        panic!("the aggregator consumes Kafka")
    };
    assert_eq!(out.topic, input.topic);
    assert!(agent.api.is_none(), "an agent serves no API unless asked");
    assert!(aggregator.api.is_some());
    // Asked (--listen), it serves one for /metrics and health; peers it cannot have.
    let listen = Overrides {
        listen: Some("127.0.0.1:8471".into()),
        ..Overrides::default()
    };
    let agent = PipelineConfig::load("agent", preset("agent").unwrap(), &listen).unwrap();
    assert!(agent.api.is_some());
    let peers = Overrides {
        peers: vec!["10.0.0.2:8470".into()],
        ..listen
    };
    let err = PipelineConfig::load("agent", preset("agent").unwrap(), &peers).unwrap_err();
    assert_eq!(err.problems.len(), 1, "{err}");
    assert_eq!(err.problems[0].key, "api.peers", "{err}");
}

#[test]
fn syntax_errors_point_at_the_line() {
    let err = load("[sources.x\ntype = 'files'").unwrap_err();
    assert_eq!(err.problems.len(), 1);
    assert!(err.to_string().starts_with("test.toml: 1 problem"), "{err}");
    assert!(err.problems[0].message.contains("line 1"), "{err}");
}

#[test]
fn a_value_of_the_wrong_kind_inside_a_component_is_named_by_its_key() {
    // serde keeps no path inside a `type = …` component: each was reported at the
    // component, with a hint about `type` and `inputs` that did not help.
    let err = load(
        r#"
        [sources.cluster]
        type = "kube"
        api_url = 8443
        [transforms.parse]
        type = "inference_logs"
        inputs = "cluster"
        [sinks.index]
        type = "index"
        inputs = ["parse"]
        commit_docs = "ten"
        retention_hours = -1
        "#,
    )
    .unwrap_err();
    let problems: Vec<(&str, &str)> = err
        .problems
        .iter()
        .map(|p| (p.key.as_str(), p.hint.as_str()))
        .collect();
    assert_eq!(
        problems,
        [
            (
                "sinks.index.commit_docs",
                "`sinks.index.commit_docs` takes a whole number, 0 or more, without quotes"
            ),
            (
                "sources.cluster.api_url",
                "`sources.cluster.api_url` takes a string in quotes"
            ),
            (
                "transforms.parse.inputs",
                "`transforms.parse.inputs` takes a list: [\"a\", \"b\"]"
            ),
        ],
        "{err}"
    );
}

#[test]
fn every_problem_is_reported_at_its_key_with_a_hint() {
    let text = r#"
        colour = "blue"
        [api]
        listen = "localhost"
        [sources.logs]
        type = "files"
        poll_interval_ms = 0
        logs_dri = "/x"
        [sources.unused]
        type = "files"
        [sources.bad]
        type = "fils"
        [transforms.parse]
        type = "inference_logs"
        inputs = ["logs", "nope", "index"]
        [sinks.index]
        type = "index"
        inputs = ["parse", "bad"]
        memory_budget_mb = 1
        segment_merge_max_docs = 0
        min_free_disk_percent = 95
    "#;
    // An unknown top-level key stops parsing early; check it alone first.
    let top = load(text).unwrap_err();
    assert_eq!(top.problems.len(), 1);
    assert!(top.problems[0].message.contains("colour"), "{top}");
    let keys = problem_keys(&text.replace("colour = \"blue\"", ""));
    assert_eq!(
        keys,
        [
            "api.listen",
            "sinks.index.memory_budget_mb",
            "sinks.index.min_free_disk_percent",
            "sinks.index.segment_merge_max_docs",
            "sources.bad.type",
            "sources.logs.logs_dri",
            "transforms.parse.inputs",
            "transforms.parse.inputs",
        ],
    );
    let fixed_field = text
        .replace("colour = \"blue\"", "")
        .replace("logs_dri", "logs_dir");
    let err = load(&fixed_field).unwrap_err();
    let rendered = err.to_string();
    for needle in [
        "sources.logs.poll_interval_ms: 0 is out of range",
        "no source or transform is called `nope`",
        "`index` is a sink and produces nothing",
        "api.listen: `localhost` is not an IP:PORT address",
        "hint: use 10 to 60000",
        "sinks.index.min_free_disk_percent: 95 is out of range",
        "unknown variant `fils`",
    ] {
        assert!(
            rendered.contains(needle),
            "missing {needle:?} in\n{rendered}"
        );
    }
    assert!(
        !rendered.contains("called `bad`"),
        "a broken component is not reported twice:\n{rendered}"
    );
}

#[test]
fn graph_mistakes_are_found() {
    let cycle = r#"
        [sources.s]
        type = "files"
        [transforms.a]
        type = "inference_logs"
        inputs = ["s", "b"]
        [transforms.b]
        type = "inference_logs"
        inputs = ["a"]
        [sinks.i]
        type = "index"
        inputs = ["b"]
    "#;
    assert!(load(cycle).unwrap_err().to_string().contains("cycle"));
    let duplicate = r#"
        [sources.x]
        type = "files"
        [sinks.x]
        type = "index"
        inputs = ["x"]
    "#;
    assert!(
        load(duplicate)
            .unwrap_err()
            .to_string()
            .contains("also used")
    );
    let empty = load("").unwrap_err();
    assert_eq!(
        empty
            .problems
            .iter()
            .map(|p| p.key.as_str())
            .collect::<Vec<_>>(),
        ["sinks", "sources"]
    );
    let missing_inputs = "[sources.s]\ntype='files'\n[sinks.i]\ntype='index'\n";
    assert!(
        load(missing_inputs)
            .unwrap_err()
            .to_string()
            .contains("sinks.i.inputs: missing field `inputs`")
    );
}

#[test]
fn kafka_sources_and_sinks_name_a_bad_broker_list_or_topic_and_the_flags_override_them() {
    let text = "[sources.k]\ntype = 'kafka'\nbrokers = 'b1:9092,b2'\ntopic = 'bad topic'\n[sinks.i]\ntype='index'\ninputs=['k']";
    let keys: Vec<String> = load(text)
        .unwrap_err()
        .problems
        .into_iter()
        .map(|p| p.key)
        .collect();
    assert_eq!(keys, ["sources.k.brokers", "sources.k.topic"]);
    let overrides = Overrides {
        kafka_brokers: Some("127.0.0.1:9092".into()),
        kafka_topic: Some("records".into()),
        ..Overrides::default()
    };
    let text = "[sources.a]\ntype='files'\n[sinks.k]\ntype = 'kafka'\ninputs = ['a']\nbrokers = 'x'\ntopic = 'y'";
    let config = PipelineConfig::load("agent.toml", text, &overrides).unwrap();
    let SinkConfig::Kafka(k) = &config.sinks["k"] else {
        panic!("a kafka sink")
    };
    assert_eq!(
        (k.brokers.as_str(), k.topic.as_str()),
        ("127.0.0.1:9092", "records")
    );
}

#[test]
fn a_dead_letter_topic_is_a_topic_name_other_than_the_one_read_and_the_flag_sets_it() {
    let source = |dead: &str| {
        format!(
            "[sources.k]\ntype = 'kafka'\nbrokers = 'b1:9092'\ntopic = 'records'\ndead_letter_topic = '{dead}'\n[sinks.i]\ntype='index'\ninputs=['k']"
        )
    };
    for bad in ["records", "dead letters", ""] {
        let problems = load(&source(bad)).unwrap_err().problems;
        assert_eq!(problems.len(), 1, "{bad:?}: {problems:?}");
        assert_eq!(problems[0].key, "sources.k.dead_letter_topic", "{bad:?}");
    }
    let config = load(&source("records-dead-letters")).unwrap();
    let SourceConfig::Kafka(k) = &config.sources["k"] else {
        panic!("a kafka source")
    };
    assert_eq!(k.dead_letter_topic.as_deref(), Some("records-dead-letters"));

    let overrides = Overrides {
        kafka_dead_letter_topic: Some("agg-dead".into()),
        insecure_no_auth: true,
        ..Overrides::default()
    };
    let c = PipelineConfig::load("aggregator", preset("aggregator").unwrap(), &overrides).unwrap();
    let Some(SourceConfig::Kafka(k)) = c.sources.values().next() else {
        panic!("the aggregator consumes Kafka")
    };
    assert_eq!(k.dead_letter_topic.as_deref(), Some("agg-dead"));
}

#[test]
fn a_kafka_sink_takes_its_key_and_encoding_and_a_bad_one_is_named() {
    let sink = |extra: &str| {
        format!(
            "[sources.a]\ntype='files'\n[sinks.k]\ntype='kafka'\ninputs=['a']\nbrokers='b:9092'\ntopic='t'\n{extra}"
        )
    };
    let kafka = |config: &PipelineConfig| match &config.sinks["k"] {
        SinkConfig::Kafka(k) => (k.key, k.encoding, k.max_message_bytes),
        _ => panic!("a kafka sink"),
    };
    let plain = load(&sink("")).expect("defaults");
    assert_eq!(
        kafka(&plain),
        (KafkaKeyConfig::Pod, KafkaEncodingConfig::Json, 256 * 1024),
        "one record a message, keyed by pod, unless asked"
    );
    let packed = load(&sink(
        "key='node'\nencoding='json_lines'\nmax_message_bytes=65536",
    ))
    .expect("packed");
    assert_eq!(
        kafka(&packed),
        (KafkaKeyConfig::Node, KafkaEncodingConfig::JsonLines, 65536)
    );
    let binary = load(&sink("encoding='binary'")).expect("binary");
    assert_eq!(kafka(&binary).1, KafkaEncodingConfig::Binary);
    let err = load(&sink("max_message_bytes=2000000")).unwrap_err();
    assert_eq!(err.problems[0].key, "sinks.k.max_message_bytes");
    assert!(err.problems[0].hint.contains("message.max.bytes"), "{err}");
    let err = load(&sink("encoding='avro'")).unwrap_err().to_string();
    assert!(
        err.contains("sinks.k") && err.contains("unknown variant `avro`"),
        "{err}"
    );
}

#[test]
fn gpu_and_scrape_sources_take_targets_and_the_flags_add_to_them() {
    let text = r#"
[sources.g]
type = "gpu"
interval_ms = 2000
[sources.m]
type = "scrape"
targets = ["http://10.0.0.7:9400/metrics", { url = "http://10.0.0.8:8000/metrics", namespace = "llm", pod = "vllm-0" }]
[sinks.i]
type = "index"
inputs = ["g", "m"]
"#;
    let overrides = Overrides {
        scrape: vec!["http://127.0.0.1:9000/metrics".into()],
        kube_node: Some("gpu-node-1".into()),
        ..Overrides::default()
    };
    let config = PipelineConfig::load("test.toml", text, &overrides).unwrap();
    let SourceConfig::Gpu(g) = &config.sources["g"] else {
        panic!("a gpu source")
    };
    assert_eq!(g.interval_ms, 2000);
    assert_eq!(g.node_name.as_deref(), Some("gpu-node-1"));
    let SourceConfig::Scrape(m) = &config.sources["m"] else {
        panic!("a scrape source")
    };
    let urls: Vec<&str> = m.targets.iter().map(|t| t.url()).collect();
    assert_eq!(
        urls,
        [
            "http://10.0.0.7:9400/metrics",
            "http://10.0.0.8:8000/metrics",
            "http://127.0.0.1:9000/metrics"
        ]
    );
    assert!(matches!(
        &m.targets[1],
        ScrapeTargetConfig::Pod { pod: Some(p), .. } if p == "vllm-0"
    ));
}

#[test]
fn a_scrape_target_that_is_not_an_http_url_is_named_with_its_index() {
    let err = load("[sources.m]\ntype='scrape'\ntargets=['http://ok:1/metrics', 'https://x/metrics', 'dcgm:9400']\n[sinks.i]\ntype='index'\ninputs=['m']").unwrap_err();
    let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        ["sources.m.targets[1]", "sources.m.targets[2]"],
        "{err}"
    );
    assert!(err.to_string().contains("9400/metrics"), "the fix: {err}");
}

#[test]
fn kube_sources_take_an_api_url_and_a_node_and_the_flag_overrides_the_url() {
    let text = "[sources.k]\ntype = 'kube'\napi_url = 'https://10.0.0.1:6443'\nnode_name = 'gpu-1'\n[sinks.i]\ntype='index'\ninputs=['k']";
    let config = load(text).unwrap();
    let SourceConfig::Kube(k) = &config.sources["k"] else {
        panic!("a kube source")
    };
    assert_eq!(k.api_url.as_deref(), Some("https://10.0.0.1:6443"));
    assert_eq!(k.node_name.as_deref(), Some("gpu-1"));
    let overrides = Overrides {
        kube_api: Some("http://127.0.0.1:8001".into()),
        kube_node: Some("gpu-7".into()),
        ..Overrides::default()
    };
    let config = PipelineConfig::load("t.toml", text, &overrides).unwrap();
    let SourceConfig::Kube(k) = &config.sources["k"] else {
        panic!("a kube source")
    };
    assert_eq!(k.api_url.as_deref(), Some("http://127.0.0.1:8001"));
    assert_eq!(k.node_name.as_deref(), Some("gpu-7"));

    let err = load("[sources.k]\ntype = 'kube'\napi_url = '10.0.0.1:6443'\nnamespace = 'x'\n[sinks.i]\ntype='index'\ninputs=['k']").unwrap_err();
    let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
    assert!(keys.iter().any(|k| k.starts_with("sources.k")), "{err}");
    assert!(
        err.to_string().contains("namespace"),
        "unknown key named: {err}"
    );
    let err = load("[sources.k]\ntype = 'kube'\napi_url = '10.0.0.1:6443'\n[sinks.i]\ntype='index'\ninputs=['k']").unwrap_err();
    assert_eq!(err.problems[0].key, "sources.k.api_url", "{err}");
    assert!(err.problems[0].hint.contains("https://"), "{err}");
}

#[test]
fn file_source_filters_and_multiline_settings_are_checked_at_their_keys() {
    let text = r#"
        [sources.logs]
        type = "files"
        include = ["llm-*/*/*", "llm-[*/*/*"]
        exclude = ["*/*/istio-proxy"]
        partial_timeout_ms = 0
        [sources.logs.multiline]
        max_lines = 1
        window_ms = 50
        exclude = ["*/*/{json"]
        [sinks.index]
        type = "index"
        inputs = ["logs"]
    "#;
    let err = load(text).unwrap_err();
    let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "sources.logs.include[1]",
            "sources.logs.multiline.exclude[0]",
            "sources.logs.multiline.max_lines",
            "sources.logs.partial_timeout_ms",
        ]
    );
    assert!(
        err.to_string().contains("`llm-[*/*/*` is not a valid glob"),
        "{err}"
    );
    let fixed = text
        .replace(", \"llm-[*/*/*\"", "")
        .replace("partial_timeout_ms = 0", "partial_timeout_ms = 2000")
        .replace("max_lines = 1", "max_lines = 50")
        .replace("{json", "json");
    let config = load(&fixed).unwrap();
    let SourceConfig::Files(f) = &config.sources["logs"] else {
        panic!("a files source")
    };
    assert_eq!((f.multiline.max_lines, f.multiline.window_ms), (50, 50));
    assert!(f.multiline.enabled);
    assert_eq!(f.include, ["llm-*/*/*"]);
}

#[test]
fn server_rules_are_checked_at_their_keys() {
    let text = r#"
        [sources.logs]
        type = "files"
        [transforms.llm]
        type = "inference_logs"
        inputs = ["logs"]
        [[transforms.llm.servers]]
        containers = "llm-serving/vllm-*/*"
        server = "vllm"
        [[transforms.llm.servers]]
        containers = "llm-serving/[x/*"
        server = "olama"
        [sinks.index]
        type = "index"
        inputs = ["llm"]
    "#;
    let err = load(text).unwrap_err();
    let keys: Vec<&str> = err.problems.iter().map(|p| p.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "transforms.llm.servers[1].containers",
            "transforms.llm.servers[1].server",
        ]
    );
    assert!(err.to_string().contains("use one of vllm, tgi"), "{err}");
    let fixed = text
        .replace("[x/*", "ollama-*/*")
        .replace("olama", "ollama");
    let config = load(&fixed).unwrap();
    let TransformConfig::InferenceLogs { servers, .. } = &config.transforms["llm"] else {
        panic!("an inference_logs transform")
    };
    assert_eq!(servers.len(), 2);
    assert_eq!(servers[1].server, "ollama");
}

#[test]
fn an_api_beyond_loopback_needs_a_token_or_an_explicit_opt_out() {
    let local = preset("local").unwrap();
    let with = |listen: &str, token: Option<&str>, insecure: bool| {
        PipelineConfig::load(
            "preset local",
            local,
            &Overrides {
                listen: Some(listen.into()),
                api_token: token.map(str::to_string),
                insecure_no_auth: insecure,
                ..Overrides::default()
            },
        )
    };
    let refused = with("0.0.0.0:8470", None, false).unwrap_err();
    let text = refused.to_string();
    assert!(
        text.contains("api.token") && text.contains("--insecure-no-auth"),
        "{text}"
    );
    assert!(
        with("127.0.0.1:8470", None, false).is_ok(),
        "loopback needs no token"
    );
    assert!(with("0.0.0.0:8470", None, true).is_ok());
    let token = "0123456789abcdef0123";
    let c = with("0.0.0.0:8470", Some(token), false).unwrap();
    assert_eq!(c.api.unwrap().token.as_deref(), Some(token));
    let short = with("0.0.0.0:8470", Some("secret"), false).unwrap_err();
    assert!(short.to_string().contains("16 characters"), "{short}");
}

#[test]
fn aggregator_peers_and_the_static_member_name_come_from_the_file_or_the_flags() {
    let overrides = Overrides {
        api_token: Some("0123456789abcdef0123".into()),
        peers: vec!["dns:infersight-aggregator-peers:8470".into()],
        kafka_group_instance_id: Some("infersight-aggregator-1".into()),
        ..Overrides::default()
    };
    let c = PipelineConfig::load("aggregator", preset("aggregator").unwrap(), &overrides).unwrap();
    let api = c.api.unwrap();
    assert_eq!(api.peers, ["dns:infersight-aggregator-peers:8470"]);
    assert_eq!(api.peer_timeout_ms, 3000);
    let Some(SourceConfig::Kafka(k)) = c.sources.values().next() else {
        panic!("the aggregator consumes Kafka")
    };
    assert_eq!(
        k.group_instance_id.as_deref(),
        Some("infersight-aggregator-1")
    );

    let keys = problem_keys(
        r#"
[api]
peers = ["agg-0:8470", "agg-1"]
peer_timeout_ms = 0
"#,
    );
    assert!(keys.contains(&"api.peers".to_string()), "{keys:?}");
    assert!(
        keys.contains(&"api.peer_timeout_ms".to_string()),
        "{keys:?}"
    );
    let text = load("[api]\npeers = [\"agg-1\"]\n")
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("test.toml") && text.contains("`agg-1`") && text.contains("no port"),
        "{text}"
    );
}
