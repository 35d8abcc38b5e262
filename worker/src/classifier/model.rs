//! The models: sparse linear classifiers over [`Row`]s, trained by plain SGD.
//!
//! Upstream trains four scikit-learn MLPs (one hidden layer of 100 units) on dense count
//! matrices, without a seed. We train, per field, a softmax regression over the field's AUTO
//! ids plus the "not AUTO" class `-1` (correspondent, document type, storage path), and one
//! logistic output per AUTO tag (tags; the single-tag case of upstream is the same thing with
//! one output). Weights are stored feature-major (`w[feature * classes + class]`), so a row
//! touches only its non-zero features: training costs O(non-zeros · classes) per epoch and
//! nothing is ever dense over documents. Classes are weighted inversely to their frequency
//! ("balanced"), and there is no intercept: a text without known features scores every class
//! equally, so it falls under the confidence threshold instead of getting the majority class
//! (upstream's main complaint, spec §3.7).

use serde::{Deserialize, Serialize};

use super::text::Row;

/// Training knobs; fixed per format version (part of what makes a model reproducible).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Train {
    pub seed: u64,
    /// Example updates the whole run may make (epochs = this / examples, within bounds).
    pub budget: usize,
    pub min_epochs: usize,
    pub max_epochs: usize,
    pub learning_rate: f32,
    /// L2 weight decay per epoch.
    pub decay: f32,
    /// Training stops early, after `min_epochs`, once an epoch lowers the mean training loss
    /// (measured on the fly, before each example's update) by less than this share.
    pub tolerance: f32,
}

/// The schedule: small archives get up to 60 epochs, large ones at least 6, and a flat loss
/// ends it earlier; the learning rate falls to a tenth over the planned epochs whatever their
/// number. An earlier schedule (3 M updates, up to 300 epochs) took 222 s for 6.8k bench
/// documents, this one 84 s, 1 and 7 points lower on correspondent and type (README).
pub const TRAIN: Train = Train {
    seed: 0x7061_7065_7262_6f79,
    budget: 500_000,
    min_epochs: 6,
    max_epochs: 60,
    learning_rate: 1.0,
    decay: 1e-4,
    tolerance: 0.001,
};

impl Train {
    fn epochs(&self, examples: usize) -> usize {
        (self.budget / examples.max(1)).clamp(self.min_epochs, self.max_epochs)
    }

    /// The learning rate of epoch `e` of `epochs`: from `learning_rate` down to a tenth of it.
    fn rate(&self, e: usize, epochs: usize) -> f32 {
        self.learning_rate / (1.0 + 9.0 * e as f32 / epochs.max(2).saturating_sub(1) as f32)
    }

    /// Whether training may stop after epoch `e` (0-based) whose mean loss was `loss`,
    /// the one before `prev`.
    fn converged(&self, e: usize, prev: f32, loss: f32) -> bool {
        e + 1 >= self.min_epochs && prev.is_finite() && prev - loss < self.tolerance * prev
    }
}

/// SplitMix64: a fixed, tiny generator so a model depends only on its data and seed, not on
/// the `rand` crate's version (whose `StdRng` stream may change between releases).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// One field with a single value per document: the class ids (`-1` = not an AUTO object)
/// and their weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SingleLabel {
    pub classes: Vec<i64>,
    pub features: usize,
    pub weights: Vec<f32>,
}

/// Balanced class weights `n / (k · n_c)`, clipped to [0.05, 20].
fn balanced(labels: &[usize], k: usize) -> Vec<f32> {
    let mut counts = vec![0usize; k];
    for &l in labels {
        counts[l] += 1;
    }
    counts
        .iter()
        .map(|&c| {
            if c == 0 {
                0.0
            } else {
                (labels.len() as f32 / (k as f32 * c as f32)).clamp(0.05, 20.0)
            }
        })
        .collect()
}

/// `z[c] = Σ w[f·k + c] · x` over the row's features (features beyond `features` are
/// ignored); entries of `z` past `k` are set to 0.
fn linear_scores(weights: &[f32], k: usize, features: usize, row: &Row, z: &mut [f32]) {
    z.iter_mut().for_each(|v| *v = 0.0);
    for &(f, x) in row {
        let f = f as usize;
        if f >= features {
            continue;
        }
        for (zc, wc) in z.iter_mut().zip(&weights[f * k..(f + 1) * k]) {
            *zc += wc * x;
        }
    }
}

/// Gradients smaller than this are not applied: after the first epochs most classes of
/// most examples are already near 0 or 1, and skipping them makes a step cost
/// O(non-zeros · classes still wrong) instead of O(non-zeros · classes).
const MIN_GRADIENT: f32 = 1e-4;

/// `w[f·k + c] -= step · g[c] · x` over the row's features, for the classes whose gradient
/// is at least [`MIN_GRADIENT`] (`active` is scratch space).
fn linear_step(
    weights: &mut [f32],
    k: usize,
    row: &Row,
    step: f32,
    g: &[f32],
    active: &mut Vec<(usize, f32)>,
) {
    active.clear();
    active.extend(
        g.iter()
            .enumerate()
            .filter(|(_, gc)| gc.abs() >= MIN_GRADIENT)
            .map(|(c, gc)| (c, step * gc)),
    );
    if active.is_empty() {
        return;
    }
    for &(f, x) in row {
        let w = &mut weights[f as usize * k..(f as usize + 1) * k];
        for &(c, sg) in active.iter() {
            w[c] -= sg * x;
        }
    }
}

fn softmax(z: &mut [f32]) {
    let max = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for v in z.iter_mut() {
        *v = (*v - max).exp();
        sum += *v;
    }
    for v in z.iter_mut() {
        *v /= sum;
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

impl SingleLabel {
    /// Trains on `rows` with `labels` (ids, `-1` for none). None if no label is an AUTO id.
    pub fn train(rows: &[Row], labels: &[i64], features: usize, t: &Train) -> Option<Self> {
        let mut classes: Vec<i64> = labels.to_vec();
        classes.sort_unstable();
        classes.dedup();
        if classes.iter().all(|&c| c == -1) {
            return None;
        }
        let k = classes.len();
        let mut model = SingleLabel {
            classes,
            features,
            weights: vec![0.0; features * k],
        };
        if k == 1 {
            // One class only: nothing to separate; every text with a known feature gets it.
            return Some(model);
        }
        let y: Vec<usize> = labels
            .iter()
            .map(|l| model.classes.binary_search(l).expect("label is a class"))
            .collect();
        let cw = balanced(&y, k);
        let mut order: Vec<usize> = (0..rows.len()).collect();
        let mut rng = SplitMix(t.seed);
        // k real classes and the fixed "none of these" logit 0 (see [`SingleLabel::best`]).
        let mut z = vec![0.0f32; k + 1];
        let mut active = Vec::with_capacity(k);
        let mut prev = f32::INFINITY;
        let epochs = t.epochs(rows.len());
        for e in 0..epochs {
            rng.shuffle(&mut order);
            let lr = t.rate(e, epochs);
            let mut loss = 0.0f64;
            for &i in &order {
                model.scores(&rows[i], &mut z);
                softmax(&mut z);
                loss += f64::from(-cw[y[i]] * z[y[i]].max(1e-12).ln());
                z[y[i]] -= 1.0;
                linear_step(
                    &mut model.weights,
                    k,
                    &rows[i],
                    lr * cw[y[i]],
                    &z[..k],
                    &mut active,
                );
            }
            let keep = 1.0 - t.decay * lr;
            model.weights.iter_mut().for_each(|w| *w *= keep);
            let loss = (loss / rows.len() as f64) as f32;
            let done = t.converged(e, prev, loss) || e + 1 == epochs;
            if done {
                tracing::debug!(classes = k, epochs = e + 1, loss, "softmax head trained");
                break;
            }
            prev = loss;
        }
        Some(model)
    }

    /// The class logits into `z[..k]`; `z[k]`, if there, stays 0 (the "none of these" logit).
    fn scores(&self, row: &Row, z: &mut [f32]) {
        linear_scores(&self.weights, self.classes.len(), self.features, row, z);
    }

    /// The most probable class and its probability; None for a row without known features.
    ///
    /// The softmax runs over the classes plus a fixed logit 0 that stands for "none of these"
    /// (also during training). With no intercept, a text without evidence scores 0 everywhere
    /// and every class gets `1 / (k + 1)`; a class needs evidence clearly above that to reach
    /// the threshold, even when there are only two classes.
    pub fn best(&self, row: &Row) -> Option<(i64, f32)> {
        if row.is_empty() {
            return None;
        }
        if self.classes.len() == 1 {
            return Some((self.classes[0], 1.0));
        }
        let k = self.classes.len();
        let mut z = vec![0.0; k + 1];
        self.scores(row, &mut z);
        softmax(&mut z);
        let (i, p) = z[..k]
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))?;
        Some((self.classes[i], *p))
    }

    /// The predicted AUTO id: the best class if it is not `-1` and its probability reaches
    /// `threshold`.
    pub fn predict(&self, row: &Row, threshold: f32) -> Option<i64> {
        self.best(row)
            .filter(|&(c, p)| c != -1 && p >= threshold)
            .map(|(c, _)| c)
    }
}

/// Tags: one logistic output per AUTO tag id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MultiLabel {
    pub tags: Vec<i64>,
    pub features: usize,
    pub weights: Vec<f32>,
}

impl MultiLabel {
    /// Trains on `rows` with each document's AUTO tag ids. None if no document has one.
    pub fn train(rows: &[Row], labels: &[Vec<i64>], features: usize, t: &Train) -> Option<Self> {
        let mut tags: Vec<i64> = labels.iter().flatten().copied().collect();
        tags.sort_unstable();
        tags.dedup();
        if tags.is_empty() {
            return None;
        }
        let k = tags.len();
        let mut model = MultiLabel {
            tags,
            features,
            weights: vec![0.0; features * k],
        };
        // Per tag: weight of positives and negatives so each side counts half.
        let n = rows.len() as f32;
        let pos: Vec<f32> = model
            .tags
            .iter()
            .map(|t| labels.iter().filter(|l| l.contains(t)).count() as f32)
            .collect();
        let wpos: Vec<f32> = pos
            .iter()
            .map(|&p| (n / (2.0 * p)).clamp(0.05, 20.0))
            .collect();
        let wneg: Vec<f32> = pos
            .iter()
            .map(|&p| {
                if p < n {
                    (n / (2.0 * (n - p))).clamp(0.05, 20.0)
                } else {
                    0.0
                }
            })
            .collect();
        let mut order: Vec<usize> = (0..rows.len()).collect();
        let mut rng = SplitMix(t.seed ^ 0x7461_6773);
        let mut z = vec![0.0f32; k];
        let mut active = Vec::with_capacity(k);
        let mut prev = f32::INFINITY;
        let epochs = t.epochs(rows.len());
        for e in 0..epochs {
            rng.shuffle(&mut order);
            let lr = t.rate(e, epochs);
            let mut loss = 0.0f64;
            for &i in &order {
                model.scores(&rows[i], &mut z);
                for (c, zc) in z.iter_mut().enumerate() {
                    let y = labels[i].contains(&model.tags[c]);
                    let p = sigmoid(*zc);
                    let (w, py) = if y { (wpos[c], p) } else { (wneg[c], 1.0 - p) };
                    loss += f64::from(-w * py.max(1e-12).ln());
                    *zc = w * (p - if y { 1.0 } else { 0.0 });
                }
                linear_step(&mut model.weights, k, &rows[i], lr, &z, &mut active);
            }
            let keep = 1.0 - t.decay * lr;
            model.weights.iter_mut().for_each(|w| *w *= keep);
            let loss = (loss / (rows.len() * k) as f64) as f32;
            let done = t.converged(e, prev, loss) || e + 1 == epochs;
            if done {
                tracing::debug!(tags = k, epochs = e + 1, loss, "tag head trained");
                break;
            }
            prev = loss;
        }
        Some(model)
    }

    fn scores(&self, row: &Row, z: &mut [f32]) {
        linear_scores(&self.weights, self.tags.len(), self.features, row, z);
    }

    /// The tag ids whose probability exceeds `threshold` (upstream: 0.5), ascending.
    pub fn predict(&self, row: &Row, threshold: f32) -> Vec<i64> {
        if row.is_empty() {
            return Vec::new();
        }
        let mut z = vec![0.0; self.tags.len()];
        self.scores(row, &mut z);
        self.tags
            .iter()
            .zip(&z)
            .filter(|(_, s)| sigmoid(**s) > threshold)
            .map(|(t, _)| *t)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(u32, f32)]) -> Row {
        let norm = pairs.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
        pairs.iter().map(|&(i, v)| (i, v / norm)).collect()
    }

    #[test]
    fn softmax_regression_separates_and_abstains_without_evidence() {
        // Features 0/1 mark class 10, 2/3 class 20, 4 is shared, 5 marks "not auto".
        let rows = vec![
            row(&[(0, 1.0), (4, 1.0)]),
            row(&[(1, 1.0), (4, 1.0)]),
            row(&[(2, 1.0), (4, 1.0)]),
            row(&[(3, 1.0), (4, 1.0)]),
            row(&[(5, 1.0), (4, 1.0)]),
        ];
        let labels = [10, 10, 20, 20, -1];
        let m = SingleLabel::train(&rows, &labels, 6, &TRAIN).unwrap();
        assert_eq!(m.classes, [-1, 10, 20]);
        assert_eq!(m.predict(&row(&[(0, 1.0)]), 0.5), Some(10));
        assert_eq!(m.predict(&row(&[(3, 1.0)]), 0.5), Some(20));
        assert_eq!(
            m.predict(&row(&[(5, 1.0)]), 0.5),
            None,
            "-1 is no prediction"
        );
        assert_eq!(m.predict(&Vec::new(), 0.0), None, "no known feature");
        // Only the shared feature: no class is confident.
        assert_eq!(m.predict(&row(&[(4, 1.0)]), 0.5), None);
    }

    #[test]
    fn the_schedule_bounds_epochs_decays_the_rate_and_stops_on_a_flat_loss() {
        assert_eq!(TRAIN.epochs(5), TRAIN.max_epochs);
        assert_eq!(TRAIN.epochs(1_000_000), TRAIN.min_epochs);
        assert_eq!(TRAIN.rate(0, 10), TRAIN.learning_rate);
        assert!((TRAIN.rate(9, 10) - TRAIN.learning_rate / 10.0).abs() < 1e-6);
        assert!(
            !TRAIN.converged(TRAIN.min_epochs - 2, 1.0, 1.0),
            "not before min_epochs"
        );
        assert!(!TRAIN.converged(TRAIN.min_epochs, f32::INFINITY, 1.0));
        assert!(
            !TRAIN.converged(TRAIN.min_epochs, 1.0, 0.9),
            "still falling"
        );
        assert!(TRAIN.converged(TRAIN.min_epochs, 1.0, 0.9995), "flat");
    }

    #[test]
    fn training_is_deterministic_for_a_seed() {
        let rows = vec![
            row(&[(0, 1.0)]),
            row(&[(1, 1.0)]),
            row(&[(0, 1.0), (1, 0.5)]),
        ];
        let a = SingleLabel::train(&rows, &[1, 2, 1], 2, &TRAIN).unwrap();
        let b = SingleLabel::train(&rows, &[1, 2, 1], 2, &TRAIN).unwrap();
        assert_eq!(a, b);
        let other = Train { seed: 1, ..TRAIN };
        let c = SingleLabel::train(&rows, &[1, 2, 1], 2, &other).unwrap();
        assert_ne!(a.weights, c.weights, "the seed orders the examples");
    }

    #[test]
    fn no_auto_label_trains_nothing_and_one_class_predicts_it() {
        let rows = vec![row(&[(0, 1.0)])];
        assert!(SingleLabel::train(&rows, &[-1], 1, &TRAIN).is_none());
        let one = SingleLabel::train(&rows, &[7], 1, &TRAIN).unwrap();
        assert_eq!(one.predict(&rows[0], 0.5), Some(7));
        assert!(MultiLabel::train(&rows, &[vec![]], 1, &TRAIN).is_none());
    }

    #[test]
    fn multi_label_learns_each_tag_on_its_own() {
        // Spec §8.5 C13: doc1 t1, doc2 t2, doc3 none, doc4 both.
        let rows = vec![
            row(&[(0, 1.0)]),
            row(&[(1, 1.0)]),
            row(&[(2, 1.0)]),
            row(&[(0, 1.0), (1, 1.0)]),
        ];
        let labels = vec![vec![1], vec![2], vec![], vec![1, 2]];
        let m = MultiLabel::train(&rows, &labels, 3, &TRAIN).unwrap();
        let got: Vec<Vec<i64>> = rows.iter().map(|r| m.predict(r, 0.5)).collect();
        assert_eq!(got, labels);
    }
}
