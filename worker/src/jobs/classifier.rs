//! `train_classifier` (paperless `document_create_classifier`, spec §3.1–3.3).
//!
//! 1. No object uses AUTO: the model file is removed, "No automatic matching items, not
//!    training".
//! 2. Pass 1 pages the training documents (live, not a version row, no inbox tag), building
//!    the label fingerprint, the newest `modified` and the document frequencies. Nothing to
//!    learn from: permanent error "No training data available.". Same fingerprint and nothing
//!    modified since the model was trained: "Training data unchanged".
//! 3. Pass 2 pages them again into sparse feature rows (the documents themselves are never
//!    held all at once; the rows are what training needs) and trains the four heads on a
//!    blocking thread; the model file is replaced atomically. Every worker's [`current`]
//!    notices the new file at its next use.
//!
//! [`current`]: crate::classifier::current

use std::collections::HashMap;
use std::time::Instant;

use paperboy_shared::db::classifier::{self as q, AutoObjects, TrainingDoc};
use serde_json::{Value, json};

use super::{JobContext, JobError};
use crate::classifier::model::{self, MultiLabel, SingleLabel};
use crate::classifier::text::{self, Row, Vocabulary};
use crate::classifier::{self, Classifier, FORMAT_VERSION, Fingerprint};

const PAGE: i64 = 500;

/// scikit-learn `min_df` of upstream's vectoriser.
pub const MIN_DF: f64 = 0.01;

/// Most vocabulary terms (the most frequent survive); bounds the model's size.
pub const MAX_TERMS: usize = 200_000;

pub const NO_AUTO: &str = "No automatic matching items, not training";
pub const NO_DATA: &str = "No training data available.";
pub const UNCHANGED: &str = "Training data unchanged";
pub const TRAINED: &str = "Training completed successfully";

/// The labels of one document (spec §3.2): an id if that object is AUTO, else -1; the AUTO tag
/// ids ascending.
pub struct Labels {
    pub correspondent: i64,
    pub document_type: i64,
    pub storage_path: i64,
    pub tags: Vec<i64>,
}

pub fn labels(doc: &TrainingDoc, auto: &AutoObjects) -> Labels {
    let one =
        |v: Option<i64>, list: &[i64]| v.filter(|v| list.binary_search(v).is_ok()).unwrap_or(-1);
    Labels {
        correspondent: one(doc.correspondent_id, &auto.correspondents),
        document_type: one(doc.document_type_id, &auto.document_types),
        storage_path: one(doc.storage_path_id, &auto.storage_paths),
        tags: doc
            .tags
            .iter()
            .copied()
            .filter(|t| auto.tags.binary_search(t).is_ok())
            .collect(),
    }
}

/// The training set in memory: feature rows and labels, nothing else.
#[derive(Default)]
pub struct TrainingSet {
    pub rows: Vec<Row>,
    pub correspondent: Vec<i64>,
    pub document_type: Vec<i64>,
    pub storage_path: Vec<i64>,
    pub tags: Vec<Vec<i64>>,
}

impl TrainingSet {
    pub fn push(&mut self, row: Row, l: Labels) {
        self.rows.push(row);
        self.correspondent.push(l.correspondent);
        self.document_type.push(l.document_type);
        self.storage_path.push(l.storage_path);
        self.tags.push(l.tags);
    }

    /// Trains every head that has an AUTO label.
    pub fn train(
        &self,
        vocabulary: Vocabulary,
        fingerprint: String,
        last_modified: String,
    ) -> Classifier {
        let n = vocabulary.len();
        let t = &model::TRAIN;
        let rows = &self.rows;
        // The four heads are independent: one thread each (they only read the rows).
        let (correspondent, document_type, storage_path, tags) = std::thread::scope(|s| {
            let c = s.spawn(|| SingleLabel::train(rows, &self.correspondent, n, t));
            let d = s.spawn(|| SingleLabel::train(rows, &self.document_type, n, t));
            let p = s.spawn(|| SingleLabel::train(rows, &self.storage_path, n, t));
            let tags = MultiLabel::train(rows, &self.tags, n, t);
            let join = |h: std::thread::ScopedJoinHandle<'_, Option<SingleLabel>>| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            };
            (join(c), join(d), join(p), tags)
        });
        Classifier {
            format_version: FORMAT_VERSION,
            last_modified,
            fingerprint,
            documents: self.rows.len(),
            correspondent,
            document_type,
            storage_path,
            tags,
            vocabulary,
        }
    }
}

fn model_error(e: classifier::ModelError) -> JobError {
    JobError::from_classified(e)
}

/// Pages every training document in id order, calling `f` with it and its labels; returns
/// how many there were, the label fingerprint and the newest `modified`. `total` (0: unknown)
/// is for the progress report.
async fn each_training_doc(
    ctx: &JobContext,
    auto: &AutoObjects,
    total: usize,
    mut f: impl FnMut(&TrainingDoc, Labels),
) -> Result<(usize, String, String), JobError> {
    let mut fp = Fingerprint::default();
    let mut last_modified = String::new();
    let mut seen = 0usize;
    let mut after = i64::MIN;
    loop {
        ctx.check_cancelled()?;
        let page = q::training_page(ctx.db(), after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for d in &page {
            let l = labels(d, auto);
            fp.add(l.document_type, l.correspondent, &l.tags, l.storage_path);
            if d.modified > last_modified {
                last_modified = d.modified.clone();
            }
            f(d, l);
        }
        seen += page.len();
        let what = if total == 0 {
            "reading the training documents"
        } else {
            "vectorising"
        };
        ctx.progress(seen as u64, total as u64, what);
    }
    Ok((seen, fp.hex(), last_modified))
}

pub async fn run(ctx: &JobContext) -> Result<Value, JobError> {
    let started = Instant::now();
    let config = ctx.config();
    let auto = q::auto_objects(ctx.db()).await?;
    if auto.is_empty() {
        let removed = classifier::remove(config).map_err(model_error)?;
        tracing::info!(removed, "{NO_AUTO}");
        return Ok(json!({"message": NO_AUTO, "trained": false, "model_removed": removed}));
    }
    let existing = match classifier::load(config) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "training a new classifier");
            None
        }
    };

    // Pass 1: fingerprint, newest modification, document frequencies.
    let mut df: HashMap<String, u32> = HashMap::new();
    let (docs, fingerprint, last_modified) =
        each_training_doc(ctx, &auto, 0, |d, _| text::count_df(&d.content, &mut df)).await?;
    if docs == 0 {
        return Err(JobError::Permanent(format!(
            "{NO_DATA} Every live document carries an inbox tag, or the archive is empty: \
             remove the inbox tag from documents whose fields are right."
        )));
    }
    if let Some(old) = &existing
        && old.fingerprint == fingerprint
        && old.last_modified >= last_modified
    {
        tracing::info!(documents = docs, "{UNCHANGED}");
        return Ok(json!({"message": UNCHANGED, "trained": false, "documents": docs}));
    }
    let vocabulary = Vocabulary::from_df(df, docs, MIN_DF, MAX_TERMS);
    if vocabulary.is_empty() {
        return Err(JobError::Permanent(format!(
            "{NO_DATA} The {docs} training documents have no words to learn from (empty \
             content: run OCR on them, e.g. consume again with PAPERBOY_OCR_MODE=force)."
        )));
    }

    // Pass 2: the feature rows (the documents may have changed in between: the fingerprint
    // stored is the one of what was actually trained on).
    let mut set = TrainingSet::default();
    let (_, fingerprint, last_modified) = each_training_doc(ctx, &auto, docs, |d, l| {
        set.push(vocabulary.row(&d.content), l)
    })
    .await?;
    let vocab_len = vocabulary.len();
    let c = tokio::task::spawn_blocking(move || set.train(vocabulary, fingerprint, last_modified))
        .await
        .map_err(|e| JobError::Permanent(format!("classifier training crashed: {e}")))?;
    ctx.check_cancelled()?;
    let path = classifier::save(config, &c).map_err(model_error)?;
    let classes = |m: &Option<SingleLabel>| m.as_ref().map_or(0, |m| m.classes.len());
    let result = json!({
        "message": TRAINED,
        "trained": true,
        "documents": c.documents,
        "vocabulary": vocab_len,
        "classes": {
            "correspondent": classes(&c.correspondent),
            "document_type": classes(&c.document_type),
            "storage_path": classes(&c.storage_path),
            "tags": c.tags.as_ref().map_or(0, |m| m.tags.len()),
        },
        "model_file": path.display().to_string(),
        "seconds": (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    });
    tracing::info!(documents = c.documents, vocabulary = vocab_len, "{TRAINED}");
    Ok(result)
}

#[cfg(test)]
mod tests {
    //! Spec §8.5, on the in-memory training set (the job's database passes are covered by
    //! tests/tests/matching.rs).
    use super::*;

    fn doc(id: i64, content: &str, c: Option<i64>, t: Option<i64>, tags: &[i64]) -> TrainingDoc {
        TrainingDoc {
            id,
            content: content.into(),
            correspondent_id: c,
            document_type_id: t,
            storage_path_id: None,
            tags: tags.to_vec(),
            modified: "2026-01-01T00:00:00Z".into(),
        }
    }

    fn train(docs: &[TrainingDoc], auto: &AutoObjects) -> Classifier {
        let mut df = HashMap::new();
        for d in docs {
            text::count_df(&d.content, &mut df);
        }
        let vocabulary = Vocabulary::from_df(df, docs.len(), MIN_DF, MAX_TERMS);
        let mut set = TrainingSet::default();
        for d in docs {
            set.push(vocabulary.row(&d.content), labels(d, auto));
        }
        set.train(vocabulary, String::new(), String::new())
    }

    #[test]
    fn c3_no_auto_objects_train_no_heads() {
        let c = train(
            &[doc(1, "some text", Some(1), None, &[])],
            &AutoObjects::default(),
        );
        assert!(c.correspondent.is_none() && c.tags.is_none() && c.document_type.is_none());
        assert_eq!(c.predict("some text", 0.5), Default::default());
    }

    #[test]
    fn c4_c5_classes_and_predictions() {
        // c1 (1) AUTO, c2 (2) not; tags 12, 45 AUTO, 46 ANY; type 7 AUTO. The inbox document
        // is not a training document (the query leaves it out).
        let auto = AutoObjects {
            correspondents: vec![1, 3],
            document_types: vec![7],
            storage_paths: vec![],
            tags: vec![12, 45],
        };
        let docs = [
            doc(1, "this is a document from c1", Some(1), Some(7), &[12]),
            doc(
                2,
                "this is another document, but from c2",
                Some(2),
                None,
                &[12, 45],
            ),
        ];
        let c = train(&docs, &auto);
        assert_eq!(c.correspondent.as_ref().unwrap().classes, [-1, 1]);
        assert_eq!(c.tags.as_ref().unwrap().tags, [12, 45]);
        let p1 = c.predict(&docs[0].content, 0.5);
        assert_eq!(
            (p1.correspondent, p1.document_type, p1.tags),
            (Some(1), Some(7), vec![12])
        );
        let p2 = c.predict(&docs[1].content, 0.5);
        assert_eq!(
            (p2.correspondent, p2.document_type, p2.tags),
            (None, None, vec![12, 45])
        );
    }

    #[test]
    fn c11_single_auto_correspondent() {
        let auto = AutoObjects {
            correspondents: vec![1],
            ..Default::default()
        };
        let only = train(
            &[doc(1, "this is a document from c1", Some(1), None, &[])],
            &auto,
        );
        assert_eq!(
            only.predict("this is a document from c1", 0.5)
                .correspondent,
            Some(1)
        );
        let two = train(
            &[
                doc(1, "this is a document from c1", Some(1), None, &[]),
                doc(2, "this is a document from no one", None, None, &[]),
            ],
            &auto,
        );
        assert_eq!(
            two.predict("this is a document from c1", 0.5).correspondent,
            Some(1)
        );
        assert_eq!(
            two.predict("this is a document from no one", 0.5)
                .correspondent,
            None
        );
    }

    #[test]
    fn c12_c13_tags() {
        let auto = AutoObjects {
            tags: vec![1, 2],
            ..Default::default()
        };
        let one = train(&[doc(1, "alpha beta", None, None, &[1])], &auto);
        assert_eq!(one.predict("alpha beta", 0.5).tags, [1]);
        let none = train(&[doc(1, "alpha beta", None, None, &[])], &auto);
        assert!(none.tags.is_none());
        let docs = [
            doc(1, "first document alpha", None, None, &[1]),
            doc(2, "second document bravo", None, None, &[2]),
            doc(3, "third document charlie", None, None, &[]),
            doc(4, "fourth document alpha bravo", None, None, &[1, 2]),
        ];
        let c = train(&docs, &auto);
        let got: Vec<Vec<i64>> = docs
            .iter()
            .map(|d| c.predict(&d.content, 0.5).tags)
            .collect();
        assert_eq!(got, [vec![1], vec![2], vec![], vec![1, 2]]);
    }

    #[test]
    fn an_unknown_sender_gets_no_correspondent() {
        // Upstream's complaint (§3.7): the majority class for everything unknown.
        let auto = AutoObjects {
            correspondents: vec![1, 2, 3],
            ..Default::default()
        };
        let mut docs = Vec::new();
        for i in 0..30 {
            docs.push(doc(
                i,
                &format!("invoice {i} from acme gmbh total amount"),
                Some(1),
                None,
                &[],
            ));
        }
        for i in 30..35 {
            docs.push(doc(
                i,
                &format!("invoice {i} from bolt ltd total amount"),
                Some(2),
                None,
                &[],
            ));
        }
        for i in 35..40 {
            docs.push(doc(
                i,
                &format!("statement {i} city bank balance"),
                Some(3),
                None,
                &[],
            ));
        }
        let c = train(&docs, &auto);
        assert_eq!(
            c.predict("invoice from bolt ltd", 0.5).correspondent,
            Some(2)
        );
        assert_eq!(c.predict("statement city bank", 0.5).correspondent, Some(3));
        assert_eq!(
            c.predict("letter from the tax office", 0.5).correspondent,
            None
        );
    }
}
