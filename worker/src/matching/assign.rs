//! Who gets what: candidate selection (upstream `match_correspondents` & co., §1.10), the
//! consume-time assignment, and the retagger's per-document decision (§2). Pure: the callers
//! load the rows and write the result.

use std::collections::{BTreeSet, HashMap};

use super::{ObjectKind, Rule};

/// One tag beyond its rule: inbox flag and parent (ancestors are added with a tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TagInfo {
    pub is_inbox: bool,
    pub parent: Option<i64>,
}

/// Every matchable object, compiled, each list sorted by name (upstream's default ordering:
/// "first match" is the alphabetically first).
#[derive(Debug, Default)]
pub struct Objects {
    pub correspondents: Vec<Rule>,
    pub document_types: Vec<Rule>,
    pub storage_paths: Vec<Rule>,
    pub tags: Vec<Rule>,
    pub tag_info: HashMap<i64, TagInfo>,
    /// Users that see every object (superusers).
    pub superusers: BTreeSet<i64>,
}

impl Objects {
    /// Sorts each list by name (then id, for equal names of different owners).
    pub fn sorted(mut self) -> Objects {
        for list in [
            &mut self.correspondents,
            &mut self.document_types,
            &mut self.storage_paths,
            &mut self.tags,
        ] {
            list.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
        }
        self
    }

    fn list(&self, kind: ObjectKind) -> &[Rule] {
        match kind {
            ObjectKind::Correspondent => &self.correspondents,
            ObjectKind::DocumentType => &self.document_types,
            ObjectKind::StoragePath => &self.storage_paths,
            ObjectKind::Tag => &self.tags,
        }
    }

    /// Whether a document owned by `owner` may be given `rule`'s object: no owner sees all;
    /// an owner sees unowned objects and their own; superusers see all. (Object-level view
    /// permissions are not modelled in paperboy's schema.)
    fn visible(&self, rule: &Rule, owner: Option<i64>) -> bool {
        match owner {
            None => true,
            Some(o) => self.superusers.contains(&o) || rule.owner_id.is_none_or(|r| r == o),
        }
    }

    /// Every object of `kind` that matches `content` by rule or (AUTO objects only) by the
    /// classifier's prediction, in name order.
    pub fn candidates<'a>(
        &'a self,
        kind: ObjectKind,
        content: &str,
        owner: Option<i64>,
        predicted: &[i64],
    ) -> Vec<&'a Rule> {
        self.list(kind)
            .iter()
            .filter(|r| self.visible(r, owner))
            .filter(|r| r.matches(content) || (r.is_auto() && predicted.contains(&r.id)))
            .collect()
    }

    /// The name of object `id` of `kind` (for reports).
    pub fn name(&self, kind: ObjectKind, id: i64) -> Option<&str> {
        self.list(kind)
            .iter()
            .find(|r| r.id == id)
            .map(|r| r.name.as_str())
    }

    /// `tags` plus all their ancestors, ascending, no duplicates.
    pub fn with_ancestors(&self, tags: impl IntoIterator<Item = i64>) -> BTreeSet<i64> {
        let mut out = BTreeSet::new();
        for t in tags {
            let mut cur = Some(t);
            // The tree is at most 5 deep upstream; the bound also stops a cycle.
            for _ in 0..16 {
                let Some(id) = cur else { break };
                if !out.insert(id) {
                    break;
                }
                cur = self.tag_info.get(&id).and_then(|i| i.parent);
            }
        }
        out
    }

    /// Inbox tags the owner can see.
    pub fn inbox_tags(&self, owner: Option<i64>) -> Vec<i64> {
        self.tags
            .iter()
            .filter(|r| self.tag_info.get(&r.id).is_some_and(|i| i.is_inbox))
            .filter(|r| self.visible(r, owner))
            .map(|r| r.id)
            .collect()
    }

    fn is_inbox(&self, tag: i64) -> bool {
        self.tag_info.get(&tag).is_some_and(|i| i.is_inbox)
    }

    /// The retagger's `-f` removes a tag unless it is an inbox tag or a manual one (empty
    /// match and not AUTO). Unknown ids are left alone.
    fn removable_by_overwrite(&self, tag: i64) -> bool {
        if self.is_inbox(tag) {
            return false;
        }
        self.tags
            .iter()
            .find(|r| r.id == tag)
            .is_some_and(|r| !r.pattern.is_empty() || r.is_auto())
    }
}

/// What the classifier predicted for one text (ids; empty/None when there is no model).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Predictions {
    pub correspondent: Option<i64>,
    pub document_type: Option<i64>,
    pub storage_path: Option<i64>,
    pub tags: Vec<i64>,
}

/// What consume gives a new document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    pub correspondent: Option<i64>,
    pub document_type: Option<i64>,
    pub storage_path: Option<i64>,
    /// Inbox tags, matched tags and their ancestors, ascending.
    pub tags: Vec<i64>,
}

/// Consume time (upstream signal handlers with use_first = true, replace = false): single-valued
/// fields take the first candidate, tags take all, inbox tags are added.
pub fn for_new_document(
    objects: &Objects,
    content: &str,
    owner: Option<i64>,
    predictions: &Predictions,
) -> Assignment {
    let first = |kind, p: Option<i64>| {
        let p: Vec<i64> = p.into_iter().collect();
        objects
            .candidates(kind, content, owner, &p)
            .first()
            .map(|r| r.id)
    };
    let matched = objects
        .candidates(ObjectKind::Tag, content, owner, &predictions.tags)
        .into_iter()
        .map(|r| r.id)
        .chain(objects.inbox_tags(owner));
    Assignment {
        correspondent: first(ObjectKind::Correspondent, predictions.correspondent),
        document_type: first(ObjectKind::DocumentType, predictions.document_type),
        storage_path: first(ObjectKind::StoragePath, predictions.storage_path),
        tags: objects.with_ancestors(matched).into_iter().collect(),
    }
}

/// What the retagger works on (`-c`, `-T`, `-t`, `-s` and the modifiers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetagOptions {
    pub correspondent: bool,
    pub tags: bool,
    pub document_type: bool,
    pub storage_path: bool,
    pub use_first: bool,
    pub overwrite: bool,
}

/// One document as the retagger sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocState {
    pub id: i64,
    pub owner: Option<i64>,
    pub correspondent: Option<i64>,
    pub document_type: Option<i64>,
    pub storage_path: Option<i64>,
    pub tags: Vec<i64>,
    /// Effective content (the newest version's for a root document with versions).
    pub content: String,
}

/// A single-valued field's new value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldChange {
    pub from: Option<i64>,
    pub to: Option<i64>,
}

/// What the retagger changes on one document; empty when nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    pub correspondent: Option<FieldChange>,
    pub document_type: Option<FieldChange>,
    pub storage_path: Option<FieldChange>,
    pub tags_added: Vec<i64>,
    pub tags_removed: Vec<i64>,
}

impl Change {
    pub fn is_empty(&self) -> bool {
        self.correspondent.is_none()
            && self.document_type.is_none()
            && self.storage_path.is_none()
            && self.tags_added.is_empty()
            && self.tags_removed.is_empty()
    }
}

/// The retagger's decision for one document (§2):
/// - a single-valued field already set is left alone without `-f`;
/// - several candidates without `--use-first` leave the field alone (even with `-f`);
/// - otherwise the field becomes the (first) candidate, or, with `-f` and no candidate, is
///   cleared;
/// - tags: matched tags (and their ancestors) are added; with `-f`, every tag that is neither an
///   inbox tag nor manual (empty match, not AUTO) is removed first, so only the still-matching
///   ones stay. Only real changes are reported (upstream's statistics count removed-and-re-added
///   tags both ways; ours do not).
pub fn retag(
    objects: &Objects,
    doc: &DocState,
    opts: &RetagOptions,
    predictions: &Predictions,
) -> Change {
    let single = |kind: ObjectKind, current: Option<i64>, predicted: Option<i64>| {
        if current.is_some() && !opts.overwrite {
            return None;
        }
        let p: Vec<i64> = predicted.into_iter().collect();
        let found = objects.candidates(kind, &doc.content, doc.owner, &p);
        if found.len() > 1 && !opts.use_first {
            tracing::debug!(
                document_id = doc.id,
                "detected {} potential {}s, not assigning any",
                found.len(),
                kind.label()
            );
            return None;
        }
        let to = found.first().map(|r| r.id);
        (to != current && (to.is_some() || opts.overwrite))
            .then_some(FieldChange { from: current, to })
    };
    let mut change = Change::default();
    if opts.correspondent {
        change.correspondent = single(
            ObjectKind::Correspondent,
            doc.correspondent,
            predictions.correspondent,
        );
    }
    if opts.document_type {
        change.document_type = single(
            ObjectKind::DocumentType,
            doc.document_type,
            predictions.document_type,
        );
    }
    if opts.tags {
        let old: BTreeSet<i64> = doc.tags.iter().copied().collect();
        let matched = objects
            .candidates(ObjectKind::Tag, &doc.content, doc.owner, &predictions.tags)
            .into_iter()
            .map(|r| r.id);
        let mut new: BTreeSet<i64> = if opts.overwrite {
            old.iter()
                .copied()
                .filter(|t| !objects.removable_by_overwrite(*t))
                .collect()
        } else {
            old.clone()
        };
        new.extend(objects.with_ancestors(matched));
        change.tags_added = new.difference(&old).copied().collect();
        change.tags_removed = old.difference(&new).copied().collect();
    }
    if opts.storage_path {
        change.storage_path = single(
            ObjectKind::StoragePath,
            doc.storage_path,
            predictions.storage_path,
        );
    }
    change
}

#[cfg(test)]
mod tests {
    use paperboy_shared::db::matching as alg;

    use super::*;

    fn r(kind: ObjectKind, id: i64, name: &str, alg: i64, pattern: &str) -> Rule {
        Rule::new(kind, id, name, None, pattern, alg, true)
    }

    fn ambiguous() -> Objects {
        Objects {
            correspondents: vec![
                r(ObjectKind::Correspondent, 2, "b", alg::ANY, "ambiguous"),
                r(ObjectKind::Correspondent, 1, "a", alg::ANY, "ambiguous"),
            ],
            document_types: vec![
                r(ObjectKind::DocumentType, 4, "second", alg::ANY, "ambiguous"),
                r(ObjectKind::DocumentType, 3, "first", alg::ANY, "ambiguous"),
            ],
            storage_paths: vec![
                r(ObjectKind::StoragePath, 6, "y", alg::ANY, "ambiguous"),
                r(ObjectKind::StoragePath, 5, "x", alg::ANY, "ambiguous"),
            ],
            ..Default::default()
        }
        .sorted()
    }

    #[test]
    fn m94_several_candidates_need_use_first_which_takes_the_first_by_name() {
        let o = ambiguous();
        let doc = DocState {
            id: 1,
            content: "ambiguous content".into(),
            ..Default::default()
        };
        let all = RetagOptions {
            correspondent: true,
            document_type: true,
            storage_path: true,
            ..Default::default()
        };
        assert!(retag(&o, &doc, &all, &Predictions::default()).is_empty());
        let forced = RetagOptions {
            overwrite: true,
            ..all
        };
        assert!(
            retag(&o, &doc, &forced, &Predictions::default()).is_empty(),
            "several matches leave the field alone even with -f"
        );
        let first = RetagOptions {
            use_first: true,
            ..all
        };
        let c = retag(&o, &doc, &first, &Predictions::default());
        let to = |f: Option<FieldChange>| f.and_then(|f| f.to);
        assert_eq!(to(c.correspondent), Some(1));
        assert_eq!(to(c.document_type), Some(3));
        assert_eq!(to(c.storage_path), Some(5));
        // Consume takes the first as well.
        let a = for_new_document(&o, "ambiguous content", None, &Predictions::default());
        assert_eq!(
            (a.correspondent, a.document_type, a.storage_path),
            (Some(1), Some(3), Some(5))
        );
    }

    fn tagged() -> Objects {
        let mut o = Objects {
            correspondents: vec![r(ObjectKind::Correspondent, 1, "X", alg::ANY, "xcorp")],
            tags: vec![
                r(ObjectKind::Tag, 1, "first", alg::ANY, "first"),
                r(ObjectKind::Tag, 2, "inbox", alg::NONE, ""),
                r(ObjectKind::Tag, 3, "manual", alg::ANY, ""),
                r(ObjectKind::Tag, 4, "auto", alg::AUTO, ""),
                r(ObjectKind::Tag, 5, "none-with-match", alg::NONE, "zzz"),
                r(ObjectKind::Tag, 6, "parent", alg::NONE, ""),
                r(ObjectKind::Tag, 7, "child", alg::ANY, "child"),
            ],
            ..Default::default()
        };
        o.tag_info.insert(
            2,
            TagInfo {
                is_inbox: true,
                parent: None,
            },
        );
        o.tag_info.insert(
            7,
            TagInfo {
                is_inbox: false,
                parent: Some(6),
            },
        );
        o.sorted()
    }

    #[test]
    fn overwrite_removes_rule_managed_tags_only_and_keeps_matching_ones() {
        let o = tagged();
        let doc = DocState {
            id: 1,
            tags: vec![1, 2, 3, 4, 5],
            content: "the first child".into(),
            ..Default::default()
        };
        let tags = RetagOptions {
            tags: true,
            ..Default::default()
        };
        let c = retag(&o, &doc, &tags, &Predictions::default());
        assert_eq!(c.tags_added, vec![6, 7], "child and its parent");
        assert!(c.tags_removed.is_empty());
        let c = retag(
            &o,
            &doc,
            &RetagOptions {
                overwrite: true,
                ..tags
            },
            &Predictions::default(),
        );
        // auto (not predicted) and none-with-match go; inbox, manual and the matching first stay.
        assert_eq!(c.tags_removed, vec![4, 5]);
        assert_eq!(c.tags_added, vec![6, 7]);
        // A predicted AUTO tag stays.
        let p = Predictions {
            tags: vec![4],
            ..Default::default()
        };
        let c = retag(
            &o,
            &doc,
            &RetagOptions {
                overwrite: true,
                ..tags
            },
            &p,
        );
        assert_eq!(c.tags_removed, vec![5]);
    }

    #[test]
    fn r13_overwrite_clears_a_field_nothing_matches_and_keeps_a_set_one_otherwise() {
        let o = tagged();
        let doc = DocState {
            id: 1,
            correspondent: Some(9),
            content: "nothing here".into(),
            ..Default::default()
        };
        let c = RetagOptions {
            correspondent: true,
            ..Default::default()
        };
        assert!(retag(&o, &doc, &c, &Predictions::default()).is_empty());
        let f = retag(
            &o,
            &doc,
            &RetagOptions {
                overwrite: true,
                ..c
            },
            &Predictions::default(),
        );
        assert_eq!(
            f.correspondent,
            Some(FieldChange {
                from: Some(9),
                to: None
            })
        );
        // Already right: no change reported.
        let right = DocState {
            correspondent: Some(1),
            content: "xcorp".into(),
            ..doc
        };
        assert!(
            retag(
                &o,
                &right,
                &RetagOptions {
                    overwrite: true,
                    ..c
                },
                &Predictions::default()
            )
            .is_empty()
        );
    }

    #[test]
    fn auto_objects_come_only_from_predictions() {
        let o = Objects {
            correspondents: vec![r(ObjectKind::Correspondent, 1, "auto", alg::AUTO, "")],
            tags: vec![r(ObjectKind::Tag, 2, "any", alg::ANY, "x")],
            ..Default::default()
        }
        .sorted();
        let none = for_new_document(&o, "x", None, &Predictions::default());
        assert_eq!(none.correspondent, None);
        let p = Predictions {
            correspondent: Some(1),
            // A stale prediction of a non-AUTO object is ignored.
            tags: vec![2, 99],
            ..Default::default()
        };
        let a = for_new_document(&o, "nothing", None, &p);
        assert_eq!(a.correspondent, Some(1));
        assert!(a.tags.is_empty());
    }

    #[test]
    fn owners_see_their_own_and_unowned_objects_superusers_all() {
        let mut o = Objects {
            correspondents: vec![
                Rule::new(
                    ObjectKind::Correspondent,
                    1,
                    "alice's",
                    Some(10),
                    "acme",
                    alg::ANY,
                    true,
                ),
                Rule::new(
                    ObjectKind::Correspondent,
                    2,
                    "shared",
                    None,
                    "acme",
                    alg::ANY,
                    true,
                ),
            ],
            ..Default::default()
        }
        .sorted();
        o.superusers.insert(30);
        let ids = |owner| {
            o.candidates(ObjectKind::Correspondent, "acme", owner, &[])
                .iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(None), vec![1, 2]);
        assert_eq!(ids(Some(10)), vec![1, 2]);
        assert_eq!(ids(Some(20)), vec![2]);
        assert_eq!(ids(Some(30)), vec![1, 2]);
    }

    #[test]
    fn consume_adds_inbox_tags_and_ancestors() {
        let o = tagged();
        let a = for_new_document(&o, "a child of the first", None, &Predictions::default());
        assert_eq!(a.tags, vec![1, 2, 6, 7]);
    }
}
