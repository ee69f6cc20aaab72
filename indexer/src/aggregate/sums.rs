//! Sums of many sparse numeric columns per group, in one pass over each column's values:
//! the counts a scraped server's histograms leave per interval (67 bucket columns, a few
//! set on each record). tantivy's `sum` aggregation looks at every matching document in
//! every column it sums, so 67 of them cost 67 column reads per record; here a column's
//! cost is the values it holds.

use super::MISSING_GROUP;
use std::collections::BTreeMap;
use tantivy::collector::{Collector, SegmentCollector};
use tantivy::columnar::{Column, ColumnIndex, StrColumn};
use tantivy::{DocId, Score, SegmentOrdinal, SegmentReader};

/// Per group key (the grouping column's value, [`MISSING_GROUP`] where it has none, or ""
/// when not grouped), the sum of each column in `columns`' order.
pub(crate) type GroupSums = BTreeMap<String, Vec<f64>>;

/// Adds each of `from`'s sums to `into`'s.
pub(crate) fn merge_sums(into: &mut GroupSums, from: GroupSums) {
    for (key, sums) in from {
        add_sums(into, key, &sums);
    }
}

/// Adds `sums` to those of group `key` in `into`.
pub(crate) fn add_sums(into: &mut GroupSums, key: String, sums: &[f64]) {
    let mine = into.entry(key).or_insert_with(|| vec![0.0; sums.len()]);
    if mine.len() < sums.len() {
        mine.resize(sums.len(), 0.0);
    }
    for (m, s) in mine.iter_mut().zip(sums) {
        *m += s;
    }
}

/// Sums `columns` of the matching documents per value of the string column `group` (or
/// overall).
#[derive(Clone)]
pub(crate) struct SparseSums {
    pub(crate) group: Option<String>,
    pub(crate) columns: Vec<String>,
}

/// One segment's part: the matching documents' groups, the sums made at harvest.
pub(crate) struct SegmentSparseSums {
    group: Option<StrColumn>,
    columns: Vec<Option<Column<f64>>>,
    /// The group ordinal of each matching document, by document ([`NOT_MATCHED`] for the
    /// others; [`NO_GROUP`] for a match without the grouping value).
    group_of: Vec<u32>,
    width: usize,
}

const NOT_MATCHED: u32 = u32::MAX;
const NO_GROUP: u32 = u32::MAX - 1;

impl Collector for SparseSums {
    type Fruit = GroupSums;
    type Child = SegmentSparseSums;

    fn for_segment(
        &self,
        _segment: SegmentOrdinal,
        reader: &SegmentReader,
    ) -> tantivy::Result<SegmentSparseSums> {
        let fast = reader.fast_fields();
        let group = match &self.group {
            Some(name) => fast.str(name)?,
            None => None,
        };
        let columns = self
            .columns
            .iter()
            .map(|name| fast.column_opt::<f64>(name))
            .collect::<tantivy::Result<_>>()?;
        Ok(SegmentSparseSums {
            group,
            columns,
            group_of: vec![NOT_MATCHED; reader.max_doc() as usize],
            width: self.columns.len(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<GroupSums>) -> tantivy::Result<GroupSums> {
        let mut all = GroupSums::new();
        for fruit in fruits {
            merge_sums(&mut all, fruit);
        }
        Ok(all)
    }
}

impl SegmentCollector for SegmentSparseSums {
    type Fruit = GroupSums;

    fn collect_block(&mut self, docs: &[DocId]) {
        // The group ordinals of a block at once.
        let mut ords = vec![None; docs.len()];
        if let Some(column) = &self.group {
            column.ords().first_vals(docs, &mut ords);
        }
        for (doc, ord) in docs.iter().zip(ords) {
            if let Some(slot) = self.group_of.get_mut(*doc as usize) {
                *slot = match &self.group {
                    None => 0,
                    // A dictionary of 2^32 - 2 values or more would be a group per record.
                    Some(_) => ord
                        .and_then(|o| u32::try_from(o).ok())
                        .filter(|o| *o < NO_GROUP)
                        .unwrap_or(NO_GROUP),
                };
            }
        }
    }

    fn collect(&mut self, doc: DocId, _score: Score) {
        self.collect_block(&[doc]);
    }

    fn harvest(self) -> GroupSums {
        // A row of sums per group ordinal, and one for the documents without a group: a
        // dictionary's ordinals are dense, and a map per value added was most of the time.
        let groups = self
            .group
            .as_ref()
            .map_or(0, |c| c.num_terms())
            .min(NO_GROUP as usize);
        let row = |group: u32| match group {
            NO_GROUP => groups,
            g => (g as usize).min(groups),
        };
        let mut flat = vec![0.0; (groups + 1) * self.width];
        let mut touched = vec![false; groups + 1];
        for (i, column) in self.columns.iter().enumerate() {
            let Some(column) = column else { continue };
            let mut add = |doc: DocId, value: f64| {
                let group = self
                    .group_of
                    .get(doc as usize)
                    .copied()
                    .unwrap_or(NOT_MATCHED);
                if group != NOT_MATCHED {
                    let r = row(group);
                    flat[r * self.width + i] += value;
                    touched[r] = true;
                }
            };
            // Only the documents that hold a value are visited: most hold few of the columns.
            // Values decoded all at once: one at a time was most of the cost left.
            let all = |rows: usize| {
                let mut values = vec![0.0; rows];
                column.values.get_range(0, &mut values);
                values
            };
            match &column.index {
                ColumnIndex::Empty { .. } => {}
                ColumnIndex::Full => {
                    for (doc, value) in all(self.group_of.len()).into_iter().enumerate() {
                        add(doc as DocId, value);
                    }
                }
                ColumnIndex::Optional(index) => {
                    let values = all(index.num_non_nulls() as usize);
                    for (doc, value) in index.iter_non_null_docs().zip(values) {
                        add(doc, value);
                    }
                }
                ColumnIndex::Multivalued(_) => {
                    for doc in 0..self.group_of.len() as DocId {
                        for value in column.values_for_doc(doc) {
                            add(doc, value);
                        }
                    }
                }
            }
        }
        let mut sums = GroupSums::new();
        for (r, values) in flat.chunks(self.width.max(1)).enumerate() {
            if !touched.get(r).copied().unwrap_or(false) {
                continue;
            }
            let key = match &self.group {
                None => String::new(),
                Some(_) if r == groups => MISSING_GROUP.to_string(),
                Some(column) => {
                    let mut key = String::new();
                    match column.ord_to_str(r as u64, &mut key) {
                        Ok(true) => key,
                        _ => MISSING_GROUP.to_string(),
                    }
                }
            };
            add_sums(&mut sums, key, values);
        }
        sums
    }
}
