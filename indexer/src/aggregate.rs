//! Aggregations on the read path: a date histogram of matching records, and count, average
//! and percentiles of a numeric field per group (the API's LLM summary: p95 of `llm.e2e_ms`
//! by model), with the sums of other fields per group in the same pass (the buckets of the
//! servers' scraped histograms, [`sums`]). All read columns only, never stored documents.

use crate::schema::{
    EXACT_RESOURCE_FIELDS, GROUPED_ATTRIBUTE_FIELDS, NUMERIC_ATTRIBUTE_FIELDS, NUMERIC_FIGURES,
    RESOURCE,
};
use crate::{IndexError, LogSearcher, SearchRequest};
use model::Timestamp;
use std::collections::BTreeMap;
use std::time::Duration;
use tantivy::aggregation::agg_req::Aggregations;
use tantivy::aggregation::intermediate_agg_result::{
    IntermediateAggregationResult, IntermediateAggregationResults, IntermediateBucketResult,
    IntermediateKey, IntermediateTermBucketEntry,
};
use tantivy::aggregation::{
    AggContextParams, AggregationLimitsGuard, DistributedAggregationCollector,
};
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::Column;
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

mod sums;

use sums::{GroupSums, SparseSums, add_sums, merge_sums};

/// The most buckets a histogram may have; a finer interval is refused.
pub const MAX_BUCKETS: u64 = 10_000;
/// The most groups [`LogSearcher::field_stats`] returns (the largest first).
pub const MAX_GROUPS: u32 = 100;
/// The most resources (containers) a grouping by a resource field tells apart before they
/// are regrouped by the field's value; those past it are left out of the groups. A day of a
/// large fleet's containers, restarts and jobs included, is well below it.
const MAX_RESOURCES: u32 = 50_000;
/// The group of records without the grouping field (requests of a server that logs no
/// model name), so that grouping never drops records.
pub const MISSING_GROUP: &str = "(none)";

/// One bar of a date histogram.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct HistogramBucket {
    /// Start of the bucket (a multiple of the interval since the epoch).
    pub start: Timestamp,
    /// Matching records in it.
    pub count: u64,
}

/// Figures of a numeric field over one group of records.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupStats {
    /// The group's value of the grouping field; `None` when not grouped.
    pub group: Option<String>,
    /// Records in the group (with or without the field).
    pub count: u64,
    /// Average of the field where set.
    pub avg: Option<f64>,
    /// Sum of the field where set (0 when nowhere).
    pub sum: f64,
    /// (percent, value) for each asked percent, where the field is set: the nearest-rank
    /// percentile (the p99 of 20 values is the largest), estimated with a DDSketch within
    /// 1 % of the value.
    pub percentiles: Vec<(f64, f64)>,
    /// The sum of each of the question's [`StatsQuestion::sums`] fields, in its order.
    pub sums: Vec<f64>,
}

impl LogSearcher {
    /// Counts the records matching `request` per `interval`, oldest bucket first; buckets
    /// with no record are left out. `request.from`/`to` bound it; without them, the data
    /// does (and [`MAX_BUCKETS`] applies to the span found).
    pub fn histogram(
        &self,
        request: &SearchRequest,
        interval: Duration,
    ) -> Result<Vec<HistogramBucket>, IndexError> {
        let step = i64::try_from(interval.as_nanos())
            .unwrap_or(i64::MAX)
            .max(1);
        if let (Some(from), Some(to)) = (request.from, request.to) {
            let span = (to.unix_nanos() - from.unix_nanos()).max(0) as u64;
            if span / step as u64 > MAX_BUCKETS {
                return Err(IndexError::Query(format!(
                    "a {interval:?} interval makes more than {MAX_BUCKETS} buckets over this range; use a coarser one"
                )));
            }
        }
        let query = self.build_query(request)?;
        let collector = TimeHistogram { step };
        let mut per_split = Vec::new();
        for split in self.splits.overlapping(
            request.from.map(Timestamp::unix_nanos),
            request.to.map(Timestamp::unix_nanos),
        ) {
            let own = self.own_query(&split, |schema| self.query_for(schema, request));
            per_split.push(
                split
                    .reader
                    .searcher()
                    .search(own.as_deref().unwrap_or(&*query), &collector)?,
            );
        }
        let counts = collector.merge_fruits(per_split)?;
        if counts.len() as u64 > MAX_BUCKETS {
            return Err(IndexError::Query(format!(
                "a {interval:?} interval makes more than {MAX_BUCKETS} buckets; use a coarser one or a time range"
            )));
        }
        Ok(counts
            .into_iter()
            .map(|(bucket, count)| HistogramBucket {
                start: Timestamp::from_unix_nanos(bucket.saturating_mul(step)),
                count,
            })
            .collect())
    }

    /// Count, average, sum and percentiles of `field` over the records matching
    /// `request`, per value of `group_by` (the largest [`MAX_GROUPS`] groups) or overall.
    /// A field that is not numeric, or a grouping field that is not exact, is refused.
    pub fn field_stats(
        &self,
        request: &SearchRequest,
        field: &str,
        group_by: Option<&str>,
        percents: &[f64],
    ) -> Result<Vec<GroupStats>, IndexError> {
        self.field_stats_partial(request, &StatsQuestion::new(field, group_by, percents))?
            .finish()
    }

    /// [`LogSearcher::field_stats`] before its figures are computed: sketches and sums that
    /// merge exactly with those of other indexes (a peer aggregator's), so the percentiles
    /// of several indexes are those of all their records together.
    pub fn field_stats_partial(
        &self,
        request: &SearchRequest,
        question: &StatsQuestion,
    ) -> Result<FieldStatsPartial, IndexError> {
        let aggs = question.aggregations()?;
        let query = self.build_query(request)?;
        let context =
            AggContextParams::new(AggregationLimitsGuard::default(), self.tokenizers.clone());
        // Each split gives intermediate results (sketches, not percentiles), merged before
        // the figures are computed, so the percentiles are those of all splits together.
        let mut partial = FieldStatsPartial {
            question: question.clone(),
            results: IntermediateAggregationResults::default(),
            total: 0,
            layout: STATS_LAYOUT,
            sums: GroupSums::new(),
        };
        // The sums, by the same groups: by resource where the groups are made of resources.
        let sums = (!question.sums.is_empty()).then(|| SparseSums {
            group: question.group_by.as_deref().map(|g| {
                question
                    .resource_group()
                    .map_or(g, |_| RESOURCE)
                    .to_string()
            }),
            columns: question.sums.clone(),
        });
        for split in self.splits.overlapping(
            request.from.map(Timestamp::unix_nanos),
            request.to.map(Timestamp::unix_nanos),
        ) {
            let collector =
                DistributedAggregationCollector::from_aggs(aggs.clone(), context.clone());
            let own = self.own_query(&split, |schema| self.query_for(schema, request));
            let query = own.as_deref().unwrap_or(&*query);
            let searcher = split.reader.searcher();
            let (part, count) = match &sums {
                Some(sums) => {
                    let (part, count, summed) = searcher
                        .search(query, &(collector, tantivy::collector::Count, sums.clone()))?;
                    merge_sums(&mut partial.sums, summed);
                    (part, count)
                }
                None => searcher.search(query, &(collector, tantivy::collector::Count))?,
            };
            partial.total += count as u64;
            partial.results.merge_fruits(part)?;
        }
        Ok(partial)
    }
}

/// What [`LogSearcher::field_stats`] is asked: the numeric field, the grouping field and
/// the percents.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StatsQuestion {
    /// A numeric field (`llm.e2e_ms`).
    pub field: String,
    /// An exact field to group by (`llm.model`), or overall.
    pub group_by: Option<String>,
    /// The percentiles wanted (95.0 for p95); none spares the sketch where only count, sum
    /// and average are wanted.
    pub percents: Vec<f64>,
    /// Other numeric fields summed per group in the same pass (the buckets of a histogram).
    #[serde(default)]
    pub sums: Vec<String>,
}

impl StatsQuestion {
    /// `percents` of `field`, per value of `group_by` or overall.
    pub fn new(field: &str, group_by: Option<&str>, percents: &[f64]) -> Self {
        StatsQuestion {
            field: field.to_string(),
            group_by: group_by.map(str::to_string),
            percents: percents.to_vec(),
            sums: Vec::new(),
        }
    }

    /// The same question, with the sums of `fields` too.
    pub fn with_sums(mut self, fields: &[&str]) -> Self {
        self.sums = fields.iter().map(|f| f.to_string()).collect();
        self
    }

    /// The figures asked of each group (or of all records), as tantivy aggregations; a
    /// field (or summed field) that is not numeric is refused.
    fn metrics(&self) -> Result<serde_json::Value, IndexError> {
        let field = self.field.as_str();
        for field in std::iter::once(field).chain(self.sums.iter().map(String::as_str)) {
            if !NUMERIC_ATTRIBUTE_FIELDS.contains(&field) {
                return Err(IndexError::Query(format!(
                    "`{field}` is not a numeric field; use one of {}",
                    NUMERIC_FIGURES.join(", ")
                )));
            }
        }
        // One `stats` for count, sum and average (three aggregations read the column three
        // times), and a percentile sketch only where percents are asked.
        let mut metrics = serde_json::json!({ "stats": { "stats": { "field": field } } });
        if !self.percents.is_empty() {
            metrics["pct"] = serde_json::json!({
                "percentiles": { "field": field, "percents": self.percents, "keyed": false }
            });
        }
        Ok(metrics)
    }

    /// The resource field it groups by, if it does: such groups are made from the
    /// `resource` column's terms ([`regrouped_by_resource`]).
    fn resource_group(&self) -> Option<&str> {
        self.group_by
            .as_deref()
            .filter(|g| EXACT_RESOURCE_FIELDS.contains(g))
    }

    /// The tantivy aggregations that answer it; a field that cannot be used is refused.
    fn aggregations(&self) -> Result<Aggregations, IndexError> {
        let metrics = self.metrics()?;
        let aggs = match self.group_by.as_deref() {
            Some(group) => {
                let groupable: Vec<&str> = EXACT_RESOURCE_FIELDS
                    .iter()
                    .chain(&GROUPED_ATTRIBUTE_FIELDS)
                    .copied()
                    .collect();
                if !groupable.contains(&group) {
                    return Err(IndexError::Query(format!(
                        "cannot group by `{group}`; use one of {}",
                        groupable.join(", ")
                    )));
                }
                // A resource field has no column: the containers' resources are counted,
                // and regrouped by the field's value once merged.
                let (field, size) = match self.resource_group() {
                    Some(_) => (RESOURCE, MAX_RESOURCES),
                    None => (group, MAX_GROUPS),
                };
                serde_json::json!({ "groups": {
                    "terms": { "field": field, "size": size, "missing": MISSING_GROUP },
                    "aggs": metrics,
                }})
            }
            None => metrics,
        };
        serde_json::from_value(aggs).map_err(|e| IndexError::Query(format!("aggregation: {e}")))
    }
}

/// Field statistics not yet computed: mergeable with those of other indexes for the same
/// request and question. Travels between aggregators as [`FieldStatsPartial::to_bytes`]
/// (CBOR: tantivy's intermediate results have map keys JSON cannot carry).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct FieldStatsPartial {
    question: StatsQuestion,
    results: IntermediateAggregationResults,
    total: u64,
    /// Which aggregations `results` holds ([`STATS_LAYOUT`]); absent (0) from aggregators
    /// of before `stats`.
    #[serde(default)]
    layout: u32,
    /// The question's sums, by group key (by resource where the groups are made of them).
    #[serde(default)]
    sums: GroupSums,
}

/// The layout of [`StatsQuestion::aggregations`]' results. 1: one `stats` (count, sum,
/// average) and an optional `pct`, per group of `groups` when grouped. 2: a grouping by a
/// resource field holds the resources' groups, keyed by their JSON form, and the partial
/// carries the asked sums by group (a peer of layout 1 would ignore the sums it was asked). Results
/// of another layout do not merge (a peer of another version during an upgrade): its
/// answer is left out and named, not mixed in wrong.
const STATS_LAYOUT: u32 = 2;

impl FieldStatsPartial {
    /// Adds `other`'s records; both must answer the same question.
    pub fn merge(&mut self, other: FieldStatsPartial) -> Result<(), IndexError> {
        if other.layout != self.layout {
            return Err(IndexError::Query(format!(
                "field statistics of another version (layout {}, this one's {}) cannot be merged: upgrade every aggregator",
                other.layout, self.layout
            )));
        }
        if other.question != self.question {
            return Err(IndexError::Query(format!(
                "field statistics of different questions cannot be merged: {:?} and {:?}",
                self.question, other.question
            )));
        }
        self.total += other.total;
        self.results.merge_fruits(other.results)?;
        merge_sums(&mut self.sums, other.sums);
        Ok(())
    }

    /// The encoded form another process reads with [`FieldStatsPartial::from_bytes`].
    pub fn to_bytes(&self) -> Result<Vec<u8>, IndexError> {
        let mut out = Vec::new();
        ciborium::into_writer(self, &mut out)
            .map_err(|e| IndexError::Encoding(format!("field statistics: {e}")))?;
        Ok(out)
    }

    /// Reads [`FieldStatsPartial::to_bytes`]'s form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IndexError> {
        ciborium::from_reader(bytes)
            .map_err(|e| IndexError::Encoding(format!("field statistics: {e}")))
    }

    /// The figures: one [`GroupStats`] overall, or one per group, largest first.
    pub fn finish(self) -> Result<Vec<GroupStats>, IndexError> {
        let mut stats = finished(&self.question, self.results.clone(), self.total, &self.sums)?;
        // tantivy's sketch answers percent q with the value of rank ⌊q·(n−1)⌋, which over
        // few values is not the tail an SRE asks for: the p99 of 20 latencies was the 19th,
        // hiding the one slow request. Groups of fewer values are asked again for the
        // percents whose rank is the nearest rank's: every group's, in one pass.
        let small = |n: &Option<u64>| n.filter(|n| (2..NEAREST_RANK_BELOW).contains(n));
        let mut wanted: Vec<f64> = stats
            .iter()
            .filter_map(|(_, n)| small(n))
            .flat_map(|n| {
                self.question
                    .percents
                    .iter()
                    .map(move |p| nearest_rank_percent(*p, n))
            })
            .collect();
        if wanted.is_empty() {
            return Ok(stats.into_iter().map(|(group, _)| group).collect());
        }
        wanted.sort_by(f64::total_cmp);
        wanted.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
        let mut question = self.question.clone();
        question.percents = wanted;
        let again = finished(&question, self.results.clone(), self.total, &self.sums)?;
        for ((group, count), (asked, _)) in stats.iter_mut().zip(again) {
            let Some(n) = small(count) else { continue };
            for (percent, value) in &mut group.percentiles {
                let wanted = nearest_rank_percent(*percent, n);
                if let Some((_, exact)) = asked
                    .percentiles
                    .iter()
                    .find(|(p, _)| (p - wanted).abs() < 1e-9)
                {
                    *value = *exact;
                }
            }
        }
        Ok(stats.into_iter().map(|(group, _)| group).collect())
    }
}

/// Below this many values a group's percentiles are asked again for the nearest rank (above
/// it the two ranks are less than a hundredth of a percent apart).
const NEAREST_RANK_BELOW: u64 = 10_000;

/// The percent whose rank in tantivy's sketch (⌊q·(n−1)⌋ of n values) is the nearest rank
/// of `percent` (⌈p·n⌉, counted from 1): half a rank above it, so rounding cannot miss.
fn nearest_rank_percent(percent: f64, n: u64) -> f64 {
    let n = n as f64;
    let rank = (percent / 100.0 * n).ceil().clamp(1.0, n);
    (100.0 * (rank - 0.5) / (n - 1.0)).min(100.0)
}

/// `question`'s figures from `results` and its `sums`, each group with how many values of
/// the field it has.
fn finished(
    question: &StatsQuestion,
    results: IntermediateAggregationResults,
    total: u64,
    sums: &GroupSums,
) -> Result<Vec<(GroupStats, Option<u64>)>, IndexError> {
    if let Some(field) = question.resource_group() {
        return regrouped_by_resource(question, results, field, sums);
    }
    let results =
        results.into_final_result(question.aggregations()?, AggregationLimitsGuard::default())?;
    let json = serde_json::to_value(results)
        .map_err(|e| IndexError::Query(format!("aggregation result: {e}")))?;
    Ok(match question.group_by {
        None => vec![group_stats(question, None, total, &json, sums)],
        Some(_) => json["groups"]["buckets"]
            .as_array()
            .map(|buckets| {
                buckets
                    .iter()
                    .map(|b| {
                        let key = match &b["key"] {
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        let count = b["doc_count"].as_u64().unwrap_or(0);
                        group_stats(question, Some(key), count, b, sums)
                    })
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// A group's figures from its final aggregation results `v` for `question` and the sums by
/// group key, with how many values of the field it has.
fn group_stats(
    question: &StatsQuestion,
    group: Option<String>,
    count: u64,
    v: &serde_json::Value,
    sums: &GroupSums,
) -> (GroupStats, Option<u64>) {
    let mut summed = sums
        .get(group.as_deref().unwrap_or_default())
        .cloned()
        .unwrap_or_default();
    summed.resize(question.sums.len(), 0.0);
    let stats = GroupStats {
        group,
        count,
        avg: v["stats"]["avg"].as_f64(),
        sum: v["stats"]["sum"].as_f64().unwrap_or(0.0),
        percentiles: v["pct"]["values"]
            .as_array()
            .map(|values| {
                values
                    .iter()
                    .filter_map(|p| Some((p["key"].as_f64()?, p["value"].as_f64()?)))
                    .collect()
            })
            .unwrap_or_default(),
        sums: summed,
    };
    (stats, v["stats"]["count"].as_u64())
}

/// `question`'s figures per value of the resource field `field`, from `results` grouped by
/// resource: the sketches and sums of the resources (containers) that share the value are
/// merged, then computed. The largest [`MAX_GROUPS`] groups, largest first.
fn regrouped_by_resource(
    question: &StatsQuestion,
    mut results: IntermediateAggregationResults,
    field: &str,
    sums: &GroupSums,
) -> Result<Vec<(GroupStats, Option<u64>)>, IndexError> {
    let group_of =
        |key: &str| resource_value(key, field).unwrap_or_else(|| MISSING_GROUP.to_string());
    let mut regrouped_sums = GroupSums::new();
    for (key, values) in sums {
        add_sums(&mut regrouped_sums, group_of(key), values);
    }
    let metrics: Aggregations = serde_json::from_value(question.metrics()?)
        .map_err(|e| IndexError::Query(format!("aggregation: {e}")))?;
    let mut groups: std::collections::HashMap<String, IntermediateTermBucketEntry> =
        Default::default();
    if let Some(IntermediateAggregationResult::Bucket(IntermediateBucketResult::Terms {
        buckets,
    })) = results.remove("groups")
    {
        for (key, entry) in buckets.entries() {
            let value = match key {
                IntermediateKey::Str(json) => group_of(json),
                _ => MISSING_GROUP.to_string(),
            };
            let group = groups.entry(value).or_default();
            group.doc_count += entry.doc_count;
            group
                .sub_aggregation
                .merge_fruits(entry.sub_aggregation.clone())?;
        }
    }
    let mut stats = groups
        .into_iter()
        .map(|(value, entry)| {
            let results = entry
                .sub_aggregation
                .into_final_result(metrics.clone(), AggregationLimitsGuard::default())?;
            let json = serde_json::to_value(results)
                .map_err(|e| IndexError::Query(format!("aggregation result: {e}")))?;
            Ok(group_stats(
                question,
                Some(value),
                entry.doc_count,
                &json,
                &regrouped_sums,
            ))
        })
        .collect::<Result<Vec<_>, IndexError>>()?;
    stats.sort_by(|(a, _), (b, _)| b.count.cmp(&a.count).then_with(|| a.group.cmp(&b.group)));
    stats.truncate(MAX_GROUPS as usize);
    Ok(stats)
}

/// The string value of `field` in a resource's JSON form, if it has one.
fn resource_value(json: &str, field: &str) -> Option<String> {
    let resource: serde_json::Map<String, serde_json::Value> = serde_json::from_str(json).ok()?;
    match resource.get(field)? {
        serde_json::Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// Counts matching documents per `timestamp / step` from the timestamp column.
struct TimeHistogram {
    step: i64,
}

struct SegmentTimeHistogram {
    column: Column<i64>,
    step: i64,
    counts: BTreeMap<i64, u64>,
    /// The bucket being counted: a segment's documents are mostly in time order, so runs of
    /// one bucket are counted without touching the map.
    run: Option<(i64, u64)>,
    values: Vec<Option<i64>>,
}

impl SegmentTimeHistogram {
    fn add(&mut self, ts: i64) {
        let bucket = ts.div_euclid(self.step);
        match &mut self.run {
            Some((b, n)) if *b == bucket => *n += 1,
            run => {
                if let Some((b, n)) = run.replace((bucket, 1)) {
                    *self.counts.entry(b).or_insert(0) += n;
                }
            }
        }
    }
}

impl Collector for TimeHistogram {
    type Fruit = BTreeMap<i64, u64>;
    type Child = SegmentTimeHistogram;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentTimeHistogram> {
        Ok(SegmentTimeHistogram {
            column: reader.fast_fields().i64(crate::schema::TIMESTAMP)?,
            step: self.step,
            counts: BTreeMap::new(),
            run: None,
            values: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<BTreeMap<i64, u64>>) -> tantivy::Result<Self::Fruit> {
        let mut all = BTreeMap::new();
        for fruit in fruits {
            for (k, v) in fruit {
                *all.entry(k).or_insert(0) += v;
            }
        }
        Ok(all)
    }
}

impl SegmentCollector for SegmentTimeHistogram {
    type Fruit = BTreeMap<i64, u64>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        if let Some(ts) = self.column.first(doc) {
            self.add(ts);
        }
    }

    fn collect_block(&mut self, docs: &[DocId]) {
        let mut values = std::mem::take(&mut self.values);
        values.clear();
        values.resize(docs.len(), None);
        self.column.first_vals(docs, &mut values);
        for ts in values.iter().flatten() {
            self.add(*ts);
        }
        self.values = values;
    }

    fn harvest(mut self) -> Self::Fruit {
        if let Some((b, n)) = self.run.take() {
            *self.counts.entry(b).or_insert(0) += n;
        }
        self.counts
    }
}
