//! Making a batch's tantivy documents, apart from adding and committing them: a
//! [`DocumentMaker`] can run on a thread of its own while the [`crate::IndexSink`] is in a
//! commit, which holds the index writer (and the sink's thread) for as long as tantivy's
//! indexing threads take to finish their segments.

use crate::IndexSchema;
use model::{Batch, Checkpoint, Finalizers, RecordId};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tantivy::TantivyDocument;

/// One record made into its document.
pub(crate) struct MadeDocument {
    pub(crate) id: RecordId,
    /// The record's timestamp (Unix nanoseconds).
    pub(crate) timestamp: i64,
    /// Whether an earlier run may hold this record already (it replaces that copy).
    pub(crate) redelivered: bool,
    pub(crate) document: TantivyDocument,
}

/// A batch made into documents, for [`crate::IndexSink::add_documents`]; it carries the
/// batch's checkpoints and acknowledgement handles, so that they go into the commit of the
/// documents they stand for and no other.
pub struct DocumentBatch {
    pub(crate) documents: Vec<MadeDocument>,
    pub(crate) checkpoints: Vec<Checkpoint>,
    pub(crate) finalizers: Finalizers,
}

impl DocumentBatch {
    /// How many documents it holds.
    pub fn len(&self) -> usize {
        self.documents.len()
    }

    /// Whether it holds no document (it may still carry checkpoints).
    pub fn is_empty(&self) -> bool {
        self.documents.is_empty()
    }
}

/// Makes batches into documents of one index's schema.
pub struct DocumentMaker {
    schema: Arc<IndexSchema>,
    /// Resources' JSON forms, made once per resource (records of one container share it).
    resource_json: model::ResourceJsons,
    /// The buffer each document's stored record is written into.
    content: Vec<u8>,
}

impl DocumentMaker {
    pub(crate) fn new(schema: Arc<IndexSchema>) -> Self {
        DocumentMaker {
            schema,
            resource_json: Default::default(),
            content: Vec::new(),
        }
    }

    /// The batch's documents, in its order. Of two copies of one redelivered record in the
    /// batch (two node agents' copies of one Kubernetes event), only the last is made.
    pub fn make(&mut self, batch: Batch) -> DocumentBatch {
        let redelivered: HashSet<RecordId> = batch.redelivered.iter().copied().collect();
        let mut last_copy: HashMap<RecordId, usize> = HashMap::new();
        if !redelivered.is_empty() {
            for (i, record) in batch.records.iter().enumerate() {
                if redelivered.contains(&record.id) {
                    last_copy.insert(record.id, i);
                }
            }
        }
        let documents = batch
            .records
            .iter()
            .enumerate()
            .filter(|(i, r)| last_copy.get(&r.id).is_none_or(|last| last == i))
            .map(|(_, record)| {
                let resource_json = self.resource_json.json(&record.resource).get();
                MadeDocument {
                    id: record.id,
                    timestamp: record.timestamp.unix_nanos(),
                    redelivered: !redelivered.is_empty() && redelivered.contains(&record.id),
                    document: self
                        .schema
                        .document(record, resource_json, &mut self.content),
                }
            })
            .collect();
        DocumentBatch {
            documents,
            checkpoints: batch.checkpoints,
            finalizers: batch.finalizers,
        }
    }
}
