//! Text to features, as paperless-ngx 3.0.5's classifier sees it
//! (`../shared/specs/matching-index-files.md` §3.4, §3.5): lowercase word runs, then
//! scikit-learn `CountVectorizer`'s terms (tokens of ≥ 2 word characters, 1- and 2-grams).
//!
//! Differences, on purpose: no NLTK stop words or Snowball stemming (upstream skips them too
//! when NLTK data is missing); counts are turned into `ln(1 + n)` and the row L2-normalised,
//! which linear models train on far better than raw counts.

use std::collections::HashMap;

/// Python's `\w` (Unicode letters, digits, underscore).
fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// §3.4 step 1: every maximal run of word characters, lowercased, joined by single spaces.
pub fn preprocess(content: &str) -> String {
    let mut out = String::with_capacity(content.len());
    for run in content
        .split(|c: char| !is_word(c))
        .filter(|r| !r.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(run.chars().flat_map(char::to_lowercase));
    }
    out
}

/// Calls `f` with every term of a preprocessed text: each token of ≥ 2 characters, then each
/// pair of consecutive such tokens joined by a space (scikit-learn builds its n-grams after
/// dropping the short tokens).
pub fn terms(pre: &str, mut f: impl FnMut(&str)) {
    let mut prev: Option<&str> = None;
    let mut pair = String::new();
    for tok in pre.split(' ').filter(|t| t.chars().count() >= 2) {
        f(tok);
        if let Some(p) = prev {
            pair.clear();
            pair.push_str(p);
            pair.push(' ');
            pair.push_str(tok);
            f(&pair);
        }
        prev = Some(tok);
    }
}

/// A sparse feature row: (vocabulary index, value), ascending by index, L2 norm ≤ 1.
pub type Row = Vec<(u32, f32)>;

/// The vectoriser's frozen vocabulary: term → column.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Vocabulary {
    pub terms: HashMap<String, u32>,
}

impl Vocabulary {
    /// Keeps the terms found in at least `min_df` of `docs` documents (scikit-learn's float
    /// `min_df`: `df >= min_df · docs`), at most `max_terms` of them (the most frequent; ties
    /// by term, so the result is deterministic). Columns are given in term order.
    pub fn from_df(df: HashMap<String, u32>, docs: usize, min_df: f64, max_terms: usize) -> Self {
        let floor = min_df * docs as f64;
        let mut kept: Vec<(String, u32)> =
            df.into_iter().filter(|(_, n)| *n as f64 >= floor).collect();
        if kept.len() > max_terms {
            kept.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            kept.truncate(max_terms);
        }
        kept.sort_by(|a, b| a.0.cmp(&b.0));
        Vocabulary {
            terms: kept
                .into_iter()
                .enumerate()
                .map(|(i, (t, _))| (t, i as u32))
                .collect(),
        }
    }

    pub fn len(&self) -> usize {
        self.terms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The feature row of a (raw) text. The norm is taken over every term of the text,
    /// known or not: a text that is mostly words the model never saw gets small values, so
    /// little evidence, instead of its few known words blown up to a full-weight row.
    pub fn row(&self, content: &str) -> Row {
        let pre = preprocess(content);
        let mut counts: HashMap<u32, u32> = HashMap::new();
        let mut unknown: HashMap<String, u32> = HashMap::new();
        terms(&pre, |t| match self.terms.get(t) {
            Some(&i) => *counts.entry(i).or_default() += 1,
            None => *unknown.entry(t.to_string()).or_default() += 1,
        });
        let weight = |n: u32| (1.0 + n as f32).ln();
        let mut row: Row = counts.into_iter().map(|(i, n)| (i, weight(n))).collect();
        row.sort_by_key(|(i, _)| *i);
        let norm = (row.iter().map(|(_, v)| v * v).sum::<f32>()
            + unknown
                .values()
                .map(|&n| weight(n) * weight(n))
                .sum::<f32>())
        .sqrt();
        if norm > 0.0 {
            for (_, v) in &mut row {
                *v /= norm;
            }
        }
        row
    }
}

/// Adds each distinct term of `content` once to the document frequencies.
pub fn count_df(content: &str, df: &mut HashMap<String, u32>) {
    let pre = preprocess(content);
    let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
    terms(&pre, |t| {
        if !seen.contains(t) {
            seen.insert(t.to_string());
        }
    });
    for t in seen {
        *df.entry(t).or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preprocessing_matches_the_upstream_fixture() {
        let input = "Some text to check the classifier's vectorization. \
                     Hey 00, this is \"a\" test0707 content.";
        assert_eq!(
            preprocess(input),
            "some text to check the classifier s vectorization hey 00 this is a test0707 content"
        );
        assert_eq!(preprocess("ÄRGER über Öl!"), "ärger über öl");
        assert_eq!(preprocess("  ,;  "), "");
    }

    #[test]
    fn terms_drop_one_character_tokens_before_pairing() {
        let mut got = Vec::new();
        terms("this is a test s 00", |t| got.push(t.to_string()));
        assert_eq!(
            got,
            ["this", "is", "this is", "test", "is test", "00", "test 00"]
        );
    }

    #[test]
    fn min_df_keeps_terms_in_enough_documents_and_rows_are_unit_length() {
        let mut df = HashMap::new();
        for text in ["invoice acme", "invoice bolt", "invoice acme acme"] {
            count_df(text, &mut df);
        }
        assert_eq!(df["invoice"], 3);
        assert_eq!(df["acme"], 2);
        // 0.5 of 3 documents: df ≥ 1.5.
        let v = Vocabulary::from_df(df.clone(), 3, 0.5, 100);
        let mut kept: Vec<_> = v.terms.keys().cloned().collect();
        kept.sort();
        assert_eq!(kept, ["acme", "invoice", "invoice acme"]);
        let r = v.row("Invoice ACME");
        let norm: f32 = r.iter().map(|(_, x)| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-5, "{r:?}");
        // Unknown words take their share of the norm.
        let diluted = v.row("invoice from somebody else entirely");
        assert_eq!(diluted.len(), 1);
        assert!(diluted[0].1 < 0.5, "{diluted:?}");
        // The most frequent terms survive a cap.
        let capped = Vocabulary::from_df(df, 3, 0.0, 1);
        assert_eq!(capped.terms.keys().collect::<Vec<_>>(), ["invoice"]);
        assert!(v.row("nothing known").is_empty());
    }
}
