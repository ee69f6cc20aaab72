//! Which containers a source reads: globs over `<namespace>/<pod>/<container>`.
//!
//! One pattern names all three parts, so `kube-system/*/*` drops a namespace,
//! `*/*/istio-proxy` a sidecar everywhere, and `llm-*/vllm-*/*` picks serving pods. `*`
//! stops at `/`. Files in docker's own layout have no namespace or pod: they are matched as
//! `//<container id>`.

use super::layout::LogFile;
use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};

/// A bad pattern, with what was wrong.
#[derive(Debug, thiserror::Error)]
#[error("`{pattern}` is not a valid glob: {reason}")]
pub struct FilterError {
    /// The pattern as given.
    pub pattern: String,
    /// What the glob parser said.
    pub reason: String,
}

/// Include and exclude globs over `<namespace>/<pod>/<container>`: a container is selected
/// when it matches an include pattern (or there are none) and no exclude pattern.
#[derive(Clone, Debug)]
pub struct ContainerFilter {
    include: Option<GlobSet>,
    exclude: Option<GlobSet>,
}

impl ContainerFilter {
    /// Selects every container.
    pub fn all() -> Self {
        ContainerFilter {
            include: None,
            exclude: None,
        }
    }

    /// A filter from pattern lists; an empty `include` means every container.
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self, FilterError> {
        Ok(ContainerFilter {
            include: build(include)?,
            exclude: build(exclude)?,
        })
    }

    /// Whether the container that wrote `file` is selected.
    pub fn selects(&self, file: &LogFile) -> bool {
        if self.include.is_none() && self.exclude.is_none() {
            return true;
        }
        let name = match file {
            LogFile::Pod(p) => format!("{}/{}/{}", p.namespace, p.pod_name, p.container),
            LogFile::Docker(d) => format!("//{}", d.container_id),
        };
        self.include.as_ref().is_none_or(|g| g.is_match(&name))
            && !self.exclude.as_ref().is_some_and(|g| g.is_match(&name))
    }
}

/// Checks one pattern (for configuration errors that name the key).
pub fn check_pattern(pattern: &str) -> Result<Glob, FilterError> {
    GlobBuilder::new(pattern)
        .literal_separator(true)
        .build()
        .map_err(|e| FilterError {
            pattern: pattern.to_string(),
            reason: e.kind().to_string(),
        })
}

fn build(patterns: &[String]) -> Result<Option<GlobSet>, FilterError> {
    if patterns.is_empty() {
        return Ok(None);
    }
    let mut set = GlobSetBuilder::new();
    for p in patterns {
        set.add(check_pattern(p)?);
    }
    set.build().map(Some).map_err(|e| FilterError {
        pattern: patterns.join(", "),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::files::{DockerLogFile, PodLogFile};
    use std::path::Path;

    fn pod(ns: &str, pod: &str, container: &str) -> LogFile {
        let root = Path::new("/r");
        LogFile::Pod(
            PodLogFile::from_path(
                root,
                &root.join(format!("{ns}_{pod}_uid/{container}/0.log")),
            )
            .unwrap(),
        )
    }

    #[test]
    fn include_then_exclude_by_namespace_pod_and_container() {
        let f = ContainerFilter::new(
            &["llm-*/*/*".into()],
            &["*/*/istio-proxy".into(), "llm-test/*/*".into()],
        )
        .unwrap();
        assert!(f.selects(&pod("llm-prod", "vllm-0", "vllm")));
        assert!(!f.selects(&pod("llm-prod", "vllm-0", "istio-proxy")));
        assert!(!f.selects(&pod("llm-test", "vllm-0", "vllm")));
        assert!(!f.selects(&pod("kube-system", "coredns-1", "coredns")));
        // `*` does not cross `/`: a pattern must name all three parts.
        let short = ContainerFilter::new(&["llm-*".into()], &[]).unwrap();
        assert!(!short.selects(&pod("llm-prod", "vllm-0", "vllm")));
    }

    #[test]
    fn no_patterns_select_everything_and_docker_files_match_by_id() {
        let docker = LogFile::Docker(DockerLogFile {
            container_id: "4b1c".into(),
            rotated: false,
        });
        assert!(ContainerFilter::all().selects(&docker));
        assert!(
            ContainerFilter::new(&["//4b*".into()], &[])
                .unwrap()
                .selects(&docker)
        );
        assert!(
            !ContainerFilter::new(&["llm-*/*/*".into()], &[])
                .unwrap()
                .selects(&docker)
        );
    }

    #[test]
    fn a_bad_pattern_is_named() {
        let e = ContainerFilter::new(&["llm-[*/*/*".into()], &[]).unwrap_err();
        assert_eq!(e.pattern, "llm-[*/*/*");
        assert!(!e.reason.is_empty());
    }
}
