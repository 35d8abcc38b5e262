//! Rows ↔ manifest records (`{"model", "pk", "fields"}`), per the column map in
//! `paperboy_shared::db::transfer`.

use paperboy_shared::db::transfer::{Kind, M2m, Model, RowData, Val};
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

/// A manifest record serialized straight from its row, with no `serde_json::Value` tree in
/// between (a 10,000-document export no longer copies every document's content into one): keys
/// in paperless-ngx 3.0.5's order, `model`, `pk`, `fields` (the columns in model order, then
/// the many-to-many lists), then the `__exported_*` names.
pub struct RecordOut<'a> {
    pub model: &'a Model,
    pub row: &'a RowData,
    /// One list of ids per [`Model::m2m`] entry, in that order (missing: empty).
    pub links: &'a [&'a [i64]],
    /// Fields whose value is replaced (the encrypted sensitive ones).
    pub replaced: &'a [(&'static str, String)],
    /// `__exported_file_name__` and the like, after `fields`.
    pub exported: &'a [(&'static str, String)],
}

impl Serialize for RecordOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(3 + self.exported.len()))?;
        map.serialize_entry("model", self.model.label)?;
        map.serialize_entry("pk", &self.row.pk)?;
        map.serialize_entry("fields", &Fields(self))?;
        for (k, v) in self.exported {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

struct Fields<'a>(&'a RecordOut<'a>);

impl Serialize for Fields<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let r = self.0;
        let mut map = s.serialize_map(Some(r.model.cols.len() + r.model.m2m.len()))?;
        for (c, v) in r.model.cols.iter().zip(&r.row.vals) {
            if let Some((_, x)) = r.replaced.iter().find(|(f, _)| *f == c.field) {
                map.serialize_entry(c.field, x)?;
                continue;
            }
            match (c.kind, v) {
                (_, Val::Null) => map.serialize_entry(c.field, &())?,
                (_, Val::Int(i)) => map.serialize_entry(c.field, i)?,
                (_, Val::Bool(b)) => map.serialize_entry(c.field, b)?,
                (_, Val::Real(f)) => map.serialize_entry(c.field, f)?,
                // A JSON column (rare, small) is written as the JSON it holds.
                (Kind::Json, Val::Text(t)) => match serde_json::from_str::<Value>(t) {
                    Ok(j) => map.serialize_entry(c.field, &j)?,
                    Err(_) => map.serialize_entry(c.field, t)?,
                },
                (_, Val::Text(t)) => map.serialize_entry(c.field, t)?,
            }
        }
        for (i, l) in r.model.m2m.iter().enumerate() {
            map.serialize_entry(l.field, r.links.get(i).copied().unwrap_or(&[]))?;
        }
        map.end()
    }
}

/// What [`from_record`] made of a record.
#[derive(Debug, Default)]
pub struct Decoded {
    pub row: Option<RowData>,
    pub links: Vec<(&'static M2m, Vec<i64>)>,
    /// Fields of the record paperboy does not know (reported, not stored).
    pub unknown: Vec<String>,
    /// Upgrades applied (older export versions), e.g. "created datetime -> date".
    pub translated: Vec<&'static str>,
}

/// Field defaults for exports older than the field (model defaults of paperless).
fn default_for(field: &str, kind: Kind) -> Val {
    match field {
        "is_active" | "is_insensitive" | "enabled" | "assign_owner_from_rule" => Val::Bool(true),
        "account_type"
        | "consumption_scope"
        | "attachment_type"
        | "assign_title_from"
        | "assign_correspondent_from"
        | "imap_security" => Val::Int(1),
        "maximum_age" => Val::Int(30),
        "action" => Val::Int(3),
        "folder" => Val::Text("INBOX".into()),
        "character_set" => Val::Text("UTF-8".into()),
        "color" => Val::Text("#a6cee3".into()),
        "matching_algorithm" => Val::Int(1),
        _ => match kind {
            Kind::Bool => Val::Bool(false),
            Kind::Int => Val::Int(0),
            _ => Val::Text(String::new()),
        },
    }
}

fn normalize_datetime(s: &str) -> Option<String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| paperboy_shared::db::to_rfc3339(t.with_timezone(&chrono::Utc)))
}

/// Decodes the `fields` of a record of a stored model. Errors name the field and value. `tz`
/// (PAPERBOY_TIME_ZONE) turns a ≤ 2.15 `created` datetime into its local date, as paperless's
/// migration did.
pub fn from_record(
    m: &'static Model,
    pk: i64,
    fields: &Map<String, Value>,
    tz: chrono_tz::Tz,
) -> Result<Decoded, String> {
    let mut d = Decoded::default();
    let coerce = |f: &str, v: &Value| format!("Could not coerce {f}={v} for {}(pk={pk})", m.label);
    let mut vals = Vec::with_capacity(m.cols.len());
    for c in m.cols {
        let mut v = fields.get(c.field);
        if v.is_none() && c.field == "filter_attachment_filename_include" {
            v = fields.get("filter_attachment_filename");
            if v.is_some() {
                d.translated
                    .push("mail rule filter_attachment_filename -> _include");
            }
        }
        let val = match v {
            None | Some(Value::Null) if c.nullable => Val::Null,
            None => {
                d.translated.push("missing field (older export) -> default");
                default_for(c.field, c.kind)
            }
            Some(Value::Null) => {
                return Err(format!(
                    "{} must not be null for {}(pk={pk})",
                    c.field, m.label
                ));
            }
            Some(v) => match c.kind {
                Kind::Int | Kind::Fk(_) => Val::Int(
                    v.as_i64()
                        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
                        .ok_or_else(|| coerce(c.field, v))?,
                ),
                Kind::Bool => Val::Bool(v.as_bool().ok_or_else(|| coerce(c.field, v))?),
                Kind::Real => Val::Real(v.as_f64().ok_or_else(|| coerce(c.field, v))?),
                Kind::Json => Val::Text(v.to_string()),
                Kind::Text => Val::Text(match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => return Err(coerce(c.field, v)),
                }),
                Kind::Date => {
                    let s = v.as_str().ok_or_else(|| coerce(c.field, v))?;
                    if s.len() == 10 && chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() {
                        Val::Text(s.to_string())
                    } else if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
                        // ≤ 2.15: created was a datetime; its date in the time zone.
                        d.translated.push("created datetime -> date");
                        Val::Text(t.with_timezone(&tz).format("%Y-%m-%d").to_string())
                    } else {
                        return Err(coerce(c.field, v));
                    }
                }
                Kind::DateTime => {
                    let s = v.as_str().ok_or_else(|| coerce(c.field, v))?;
                    Val::Text(normalize_datetime(s).ok_or_else(|| coerce(c.field, v))?)
                }
            },
        };
        vals.push(val);
    }
    for l in m.m2m {
        let ids = match fields.get(l.field) {
            None | Some(Value::Null) => vec![],
            Some(Value::Array(a)) => a
                .iter()
                .map(|x| x.as_i64().ok_or_else(|| coerce(l.field, x)))
                .collect::<Result<_, _>>()?,
            Some(v) => return Err(coerce(l.field, v)),
        };
        d.links.push((l, ids));
    }
    for k in fields.keys() {
        let known = m.col(k).is_some()
            || m.m2m(k).is_some()
            || m.ignored.contains(&k.as_str())
            || k == "filter_attachment_filename";
        if !known {
            d.unknown.push(format!("{}.{k}", m.label));
        }
    }
    d.row = Some(RowData { pk, vals });
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use paperboy_shared::db::transfer::model;
    use serde_json::json;

    #[test]
    fn a_record_decodes_and_encodes_back() {
        let m = model("documents.correspondent").unwrap();
        let rec = json!({"owner": 2, "name": "ACME", "match": "acme", "matching_algorithm": 1, "is_insensitive": true});
        let d = from_record(m, 42, rec.as_object().unwrap(), chrono_tz::UTC).unwrap();
        let row = d.row.unwrap();
        assert_eq!(row.pk, 42);
        let out = RecordOut {
            model: m,
            row: &row,
            links: &[],
            replaced: &[],
            exported: &[("__exported_file_name__", "x.pdf".into())],
        };
        assert_eq!(serde_json::to_value(&out).unwrap()["fields"], rec);
        // Upstream's key order, the fields in model order.
        let text = serde_json::to_string(&out).unwrap();
        assert!(
            text.starts_with(
                r#"{"model":"documents.correspondent","pk":42,"fields":{"owner":2,"name":"ACME""#
            ),
            "{text}"
        );
        assert!(
            text.ends_with(r#""__exported_file_name__":"x.pdf"}"#),
            "{text}"
        );
    }

    #[test]
    fn foreign_keys_lists_and_nulls() {
        let m = model("documents.document").unwrap();
        let rec = json!({"correspondent": null, "owner": 42, "title": "t", "content": "", "mime_type": "application/pdf",
            "checksum": "x", "created": "2021-03-01T23:30:00Z", "modified": "2024-03-01T10:15:30.123Z",
            "added": "2024-03-01T10:15:30Z", "tags": [1, 3, 7], "storage_type": "unencrypted", "new_field": 1});
        let d = from_record(m, 1, rec.as_object().unwrap(), chrono_tz::UTC).unwrap();
        let row = d.row.unwrap();
        let get = |f: &str| row.vals[m.cols.iter().position(|c| c.field == f).unwrap()].clone();
        assert_eq!(get("owner"), Val::Int(42));
        assert_eq!(get("correspondent"), Val::Null);
        assert_eq!(get("created"), Val::Text("2021-03-01".into()));
        assert_eq!(
            get("modified"),
            Val::Text("2024-03-01T10:15:30.123000Z".into())
        );
        assert_eq!(d.links[0].1, vec![1, 3, 7]);
        assert_eq!(d.unknown, vec!["documents.document.new_field"]);
        assert!(d.translated.contains(&"created datetime -> date"));
    }

    #[test]
    fn uncoercible_values_are_named() {
        let m = model("documents.correspondent").unwrap();
        let rec = json!({"name": "x", "matching_algorithm": "not-an-int"});
        let e = from_record(m, 1, rec.as_object().unwrap(), chrono_tz::UTC).unwrap_err();
        assert!(e.contains("Could not coerce matching_algorithm="), "{e}");
    }

    /// Spec §8 case 44: a ≤ 2.15 `created` datetime becomes the date in PAPERBOY_TIME_ZONE.
    #[test]
    fn created_datetime_becomes_the_local_date() {
        let m = model("documents.document").unwrap();
        let rec = json!({"title": "t", "content": "", "mime_type": "application/pdf", "checksum": "x",
            "created": "2021-03-01T23:30:00Z", "modified": "2021-03-01T23:30:00Z", "added": "2021-03-01T23:30:00Z"});
        let created = |tz: chrono_tz::Tz| {
            let row = from_record(m, 1, rec.as_object().unwrap(), tz)
                .unwrap()
                .row
                .unwrap();
            row.vals[m.cols.iter().position(|c| c.field == "created").unwrap()].clone()
        };
        assert_eq!(
            created(chrono_tz::Europe::Berlin),
            Val::Text("2021-03-02".into())
        );
        assert_eq!(created(chrono_tz::UTC), Val::Text("2021-03-01".into()));
    }
}
