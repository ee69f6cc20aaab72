//! A fleet of pods writing numbered records the way the kubelet and the container runtime
//! do (CRI lines, rotation by rename with gzip of older files, logrotate's copytruncate,
//! container restarts), and the check that an index holds each record exactly once. Shared
//! by the crash, fault and end-to-end tests.

use indexer::{IndexStore, SearchRequest};
use std::collections::{BTreeMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::cri_now;

/// The first line of every traceback record.
pub const TRACEBACK_HEAD: &str = "Traceback (most recent call last):";
/// The last line of every traceback record.
pub const OOM: &str = "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 20.00 MiB";

/// A small xorshift generator (seeded, so a failing run can be replayed).
pub struct Rng(pub u64);
impl Rng {
    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// One pod's container, written the way the kubelet and runtime do.
pub struct PodWriter {
    pod: usize,
    dir: PathBuf,
    restart: u32,
    file: File,
    written_in_file: u64,
    /// Records written so far (the next record's number).
    pub next_seq: u64,
    /// Rotate the live file when it passes this size.
    rotate_bytes: u64,
    /// logrotate-style copytruncate instead of the kubelet's rename.
    copytruncate: bool,
    /// Uncompressed rotated files, oldest first; all but the newest get gzipped.
    rotated: VecDeque<PathBuf>,
    /// Rotations so far.
    pub rotations: u64,
    /// Rotated files compressed so far.
    pub gzipped: u64,
    /// Tracebacks whose lines a rotation split between two files.
    pub split_tracebacks: u64,
}

/// Unique rotation stamps across the tests of this process.
static STAMP: AtomicU64 = AtomicU64::new(0);

impl PodWriter {
    /// Pod `pod`'s container `server` under `root`, rotating its file at `rotate_bytes`.
    pub fn new(root: &Path, pod: usize, copytruncate: bool, rotate_bytes: u64) -> Self {
        let dir = root.join(format!("llm_pod-{pod:02}_uid-{pod:02}/server"));
        std::fs::create_dir_all(&dir).unwrap();
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("0.log"))
            .unwrap();
        PodWriter {
            pod,
            dir,
            restart: 0,
            file,
            written_in_file: 0,
            next_seq: 0,
            rotate_bytes,
            copytruncate,
            rotated: VecDeque::new(),
            rotations: 0,
            gzipped: 0,
            split_tracebacks: 0,
        }
    }

    fn live(&self) -> PathBuf {
        self.dir.join(format!("{}.log", self.restart))
    }

    /// Writes `n` numbered records. Most are one stdout line; every 7th (seq % 7 == 3) is a
    /// Python traceback on stderr (four lines, one runtime timestamp, as one write is
    /// stamped), and every 7th (seq % 7 == 5) a long line the runtime split into `P` + `F`.
    /// A traceback due to cross the rotation size is cut by the rotation (half in the
    /// rotated file, half in the new one); a `P`/`F` pair never is.
    pub fn write_lines(&mut self, n: u64) {
        for _ in 0..n {
            let (pod, seq, ts) = (self.pod, self.next_seq, cri_now());
            self.next_seq += 1;
            let lines: Vec<String> = match seq % 7 {
                3 => vec![
                    format!("{ts} stderr F ERROR pod={pod} seq={seq} {TRACEBACK_HEAD}"),
                    format!("{ts} stderr F   File \"/app/engine.py\", line 52, in step"),
                    format!("{ts} stderr F     out = self.model(x)"),
                    format!("{ts} stderr F {OOM}"),
                ],
                5 => vec![
                    format!("{ts} stdout P INFO pod={pod} seq={seq} part-one-"),
                    format!("{ts} stdout F part-two"),
                ],
                _ => vec![format!(
                    "{ts} stdout F INFO pod={pod} seq={seq} padding-to-make-lines-realistically-long-{}",
                    "x".repeat(60)
                )],
            };
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            let crosses = self.written_in_file + text.len() as u64 >= self.rotate_bytes;
            if crosses && lines.len() == 4 {
                let head: String = lines[..2].iter().map(|l| format!("{l}\n")).collect();
                self.write(&head);
                self.rotate();
                self.write(&text[head.len()..]);
                self.split_tracebacks += 1;
            } else {
                self.write(&text);
                if crosses {
                    self.rotate();
                }
            }
        }
    }

    fn write(&mut self, text: &str) {
        self.file.write_all(text.as_bytes()).unwrap();
        self.written_in_file += text.len() as u64;
    }

    fn rotate(&mut self) {
        let stamp = STAMP.fetch_add(1, Ordering::Relaxed);
        let rotated = self
            .dir
            .join(format!("{}.log.20260101-{stamp:06}", self.restart));
        if self.copytruncate {
            std::fs::copy(self.live(), &rotated).unwrap();
            self.file.set_len(0).unwrap(); // O_APPEND: the next write lands at the new end
        } else {
            std::fs::rename(self.live(), &rotated).unwrap();
            self.file = self.open_live();
        }
        self.written_in_file = 0;
        self.rotations += 1;
        self.rotated.push_back(rotated);
        while self.rotated.len() > 1 {
            let oldest = self.rotated.pop_front().unwrap();
            let status = std::process::Command::new("gzip")
                .arg("-f")
                .arg(&oldest)
                .status()
                .unwrap();
            assert!(status.success(), "gzip {}", oldest.display());
            self.gzipped += 1;
        }
    }

    /// Opens the live `N.log` for appending, as the runtime does after a rotation or restart.
    fn open_live(&self) -> File {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.live())
            .unwrap()
    }

    /// The container crashed and the kubelet started it again: `N+1.log`.
    pub fn restart(&mut self) {
        self.restart += 1;
        self.file = self.open_live();
        self.written_in_file = 0;
    }
}

/// Checks that the index in `index_dir` holds every record the pods wrote (`written[pod]`
/// records each) exactly once, whole, and per pod in timestamp order. Returns the number
/// of records in the index, or what is wrong.
pub fn check_exactly_once(index_dir: &Path, written: &[u64]) -> Result<usize, Vec<String>> {
    check(index_dir, written, false)
}

/// [`check_exactly_once`], except that a traceback may be several records: its head with
/// the first lines, and records of the rest. That happens when a rotation cut it and the new
/// file could not be seen for longer than the multi-line timeout (its directory could not
/// be listed): the head is let go alone. Per pod, the lines missing from heads must be
/// exactly the lines of such tails: none lost, none twice.
pub fn check_exactly_once_allowing_split_tracebacks(
    index_dir: &Path,
    written: &[u64],
) -> Result<usize, Vec<String>> {
    check(index_dir, written, true)
}

/// The continuation lines of a traceback record, after its head.
const TRACEBACK_REST: [&str; 3] = [
    "  File \"/app/engine.py\", line 52, in step",
    "    out = self.model(x)",
    OOM,
];

fn check(index_dir: &Path, written: &[u64], split_allowed: bool) -> Result<usize, Vec<String>> {
    // Every (pod, seq) exactly once, in timestamp order per pod.
    let store = IndexStore::open_existing(index_dir).unwrap();
    let mut per_pod: BTreeMap<usize, Vec<(i64, u64)>> = BTreeMap::new();
    // (pod, seq) → (id, body) of every record, to show what a failure looks like.
    let mut seen_records: BTreeMap<(usize, u64), Vec<String>> = BTreeMap::new();
    let mut misshapen = Vec::new();
    // Per pod: continuation lines missing from traceback heads, and lines of lone tails.
    let mut missing_from_heads: BTreeMap<usize, usize> = BTreeMap::new();
    let mut in_tails: BTreeMap<usize, usize> = BTreeMap::new();
    let mut tails = 0usize;
    let scanned = store
        .searcher()
        .scan(&SearchRequest::default(), |r| {
            if split_allowed && !r.body.contains("seq=") {
                let pod = r
                    .resource
                    .get_str(model::names::K8S_POD_NAME)
                    .and_then(|name| name.strip_prefix("pod-")?.parse::<usize>().ok());
                let lines: Vec<&str> = r.body.lines().collect();
                let rest_of_traceback = !lines.is_empty()
                    && TRACEBACK_REST
                        .windows(lines.len())
                        .any(|w| w == lines.as_slice());
                match pod {
                    Some(pod) if rest_of_traceback => {
                        *in_tails.entry(pod).or_default() += lines.len();
                        tails += 1;
                    }
                    _ => misshapen.push(format!("a record of no traceback: {:?}", r.body)),
                }
                return;
            }
            let field = |name: &str| -> u64 {
                r.body
                    .split(' ')
                    .find_map(|w| w.strip_prefix(name))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or_else(|| panic!("no {name} in {:?}", r.body))
            };
            let seq = field("seq=");
            // A traceback is one record of four lines; a P+F pair one line.
            let lines = r.body.lines().count();
            if split_allowed && seq % 7 == 3 && lines < 4 {
                *missing_from_heads
                    .entry(field("pod=") as usize)
                    .or_default() += 4 - lines;
            }
            let whole = match seq % 7 {
                3 if split_allowed => {
                    let rest: Vec<&str> = r.body.lines().skip(1).collect();
                    r.body.contains(TRACEBACK_HEAD) && TRACEBACK_REST.starts_with(&rest)
                }
                3 => lines == 4 && r.body.ends_with(OOM),
                5 => r.body.ends_with("part-one-part-two"),
                _ => !r.body.contains('\n'),
            };
            if !whole {
                misshapen.push(format!("seq {seq}: {:?}", r.body));
            }
            seen_records
                .entry((field("pod=") as usize, seq))
                .or_default()
                .push(format!("{} {:?}", r.id, r.body));
            per_pod
                .entry(field("pod=") as usize)
                .or_default()
                .push((r.timestamp.unix_nanos(), seq));
        })
        .unwrap();
    let mut problems = Vec::new();
    for (pod, &written_by_pod) in written.iter().enumerate() {
        let mut seen = per_pod.remove(&pod).unwrap_or_default();
        seen.sort();
        let seqs: Vec<u64> = seen.iter().map(|(_, s)| *s).collect();
        if seqs.iter().copied().eq(0..written_by_pod) {
            println!("pod {pod:02}: {} lines, each once, in order", seqs.len());
            continue;
        }
        let mut sorted = seqs.clone();
        sorted.sort();
        let dups = sorted.windows(2).filter(|w| w[0] == w[1]).count();
        sorted.dedup();
        let mut missing = Vec::new();
        let mut next = 0u64;
        for &s in sorted.iter().chain(std::iter::once(&written_by_pod)) {
            if s > next {
                missing.push(format!("{next}..{s}"));
            }
            next = s + 1;
        }
        problems.push(format!(
            "pod {pod}: {} indexed of {}, {dups} duplicated, missing {missing:?}, in timestamp order: {}",
            seqs.len(),
            written_by_pod,
            seqs.windows(2).all(|w| w[0] < w[1])
        ));
        // The neighbourhood of each duplicate, for the failure message.
        for w in sorted_with_dups(&seqs).windows(2).filter(|w| w[0] == w[1]) {
            for s in w[0].saturating_sub(3)..w[0] + 4 {
                let found = seen_records.get(&(pod, s)).cloned().unwrap_or_default();
                problems.push(format!("  seq {s}: {found:?}"));
            }
        }
    }
    problems.extend(misshapen.into_iter().map(|m| format!("not whole: {m}")));
    if missing_from_heads != in_tails {
        problems.push(format!(
            "traceback lines missing from heads per pod {missing_from_heads:?}, in lone tails {in_tails:?}"
        ));
    }
    let expected = written.iter().sum::<u64>() + tails as u64;
    if scanned as u64 != expected {
        problems.push(format!(
            "{scanned} records in the index, {expected} written"
        ));
    }
    match problems.is_empty() {
        true => Ok(scanned),
        false => Err(problems),
    }
}

fn sorted_with_dups(seqs: &[u64]) -> Vec<u64> {
    let mut v = seqs.to_vec();
    v.sort_unstable();
    v
}
