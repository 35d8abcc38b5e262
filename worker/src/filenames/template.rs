//! The Jinja side of file names: the environment (strict undefined, `trim_blocks`,
//! `lstrip_blocks`, loop controls, no autoescape, Python string methods), the context of §5.3,
//! paperless's filters (`get_cf_value`, `datetime`, `slugify`, `localize_date`) and the "none"
//! placeholder.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, LazyLock};

use minijinja::value::{DynObject, Object, ObjectRepr, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior};
use unicode_normalization::UnicodeNormalization;

use super::dates::{self, When};
use super::sanitize::{sanitize, slugify};
use super::{FieldValue, NameInfo};

/// What the placeholder renders as.
pub const NONE_TEXT: &str = "-none-";

/// The global that `'none'` / `'-none-'` literals next to `==`/`!=` are rewritten to.
const NONE_GLOBAL: &str = "__paperboy_none__";

/// paperless's placeholder for an empty value: renders as `-none-`, is false in conditions, and
/// compares equal to `"none"` and `"-none-"` (comparisons with those literals are rewritten to
/// compare with the placeholder, see [`rewrite_none_comparisons`]).
#[derive(Debug)]
pub struct NonePlaceholder;

impl Object for NonePlaceholder {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn is_true(self: &Arc<Self>) -> bool {
        false
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(NONE_TEXT)
    }

    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<std::cmp::Ordering> {
        other
            .downcast_ref::<NonePlaceholder>()
            .map(|_| std::cmp::Ordering::Equal)
    }
}

pub fn placeholder() -> Value {
    Value::from_object(NonePlaceholder)
}

fn is_placeholder(v: &Value) -> bool {
    v.downcast_object_ref::<NonePlaceholder>().is_some()
}

/// A related object that renders as its name (`document.correspondent`, `.document_type`,
/// `.storage_path`) and has `id`, `name` (and `path`) attributes.
#[derive(Debug)]
struct Named {
    id: i64,
    name: String,
    path: Option<String>,
}

impl Object for Named {
    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "id" | "pk" => Some(Value::from(self.id)),
            "name" => Some(Value::from(self.name.clone())),
            "path" => self.path.clone().map(Value::from),
            _ => None,
        }
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

fn nfc(s: &str) -> String {
    s.nfc().collect()
}

/// A string value, or the placeholder when empty.
fn or_placeholder(v: Option<String>) -> Value {
    match v {
        Some(s) if !s.is_empty() => Value::from(s),
        _ => placeholder(),
    }
}

/// Python's `str(datetime)` of a UTC instant: `2024-10-01 12:00:00+00:00`.
fn py_datetime(t: &chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%:z").to_string()
}

/// The template context of §5.3.
pub fn context(info: &NameInfo, tz: chrono_tz::Tz) -> Value {
    let created = info.created;
    let added_local = info.added.with_timezone(&tz).date_naive();
    let mut ctx: BTreeMap<String, Value> = BTreeMap::new();
    ctx.insert("title".into(), Value::from(sanitize(&nfc(&info.title))));
    ctx.insert(
        "correspondent".into(),
        or_placeholder(info.correspondent.as_ref().map(|c| sanitize(&nfc(&c.1)))),
    );
    ctx.insert(
        "document_type".into(),
        or_placeholder(info.document_type.as_ref().map(|c| sanitize(&nfc(&c.1)))),
    );
    ctx.insert(
        "asn".into(),
        or_placeholder(
            info.archive_serial_number
                .filter(|a| *a != 0)
                .map(|a| a.to_string()),
        ),
    );
    ctx.insert(
        "owner_username".into(),
        or_placeholder(info.owner.as_ref().map(|o| o.1.clone())),
    );
    ctx.insert(
        "original_name".into(),
        or_placeholder(
            info.original_filename
                .as_deref()
                .map(|n| nfc(&strip_ext(n))),
        ),
    );
    ctx.insert("doc_pk".into(), Value::from(format!("{:07}", info.id)));
    for (prefix, day) in [("created", created), ("added", added_local)] {
        let put = |ctx: &mut BTreeMap<String, Value>, suffix: &str, fmt: &str| {
            ctx.insert(
                format!("{prefix}{suffix}"),
                Value::from(day.format(fmt).to_string()),
            );
        };
        put(&mut ctx, "", "%Y-%m-%d");
        put(&mut ctx, "_year", "%Y");
        put(&mut ctx, "_year_short", "%y");
        put(&mut ctx, "_month", "%m");
        put(&mut ctx, "_month_name", "%B");
        put(&mut ctx, "_month_name_short", "%b");
        put(&mut ctx, "_day", "%d");
    }
    let mut names: Vec<String> = info.tags.iter().map(|t| nfc(&t.1)).collect();
    names.sort();
    ctx.insert("tag_list".into(), Value::from(sanitize(&names.join(","))));
    ctx.insert(
        "tag_name_list".into(),
        Value::from(names.iter().cloned().map(Value::from).collect::<Vec<_>>()),
    );
    ctx.insert("custom_fields".into(), custom_fields(&info.custom_fields));
    ctx.insert("document".into(), document(info));
    Value::from_iter(ctx)
}

fn strip_ext(name: &str) -> String {
    // Python's os.path.splitext on the last component: a leading dot is not an extension.
    let base = name.rsplit('/').next().unwrap_or(name);
    match base.rfind('.') {
        Some(i) if base[..i].chars().any(|c| c != '.') => base[..i].to_string(),
        _ => base.to_string(),
    }
}

fn custom_fields(fields: &[FieldValue]) -> Value {
    let map: BTreeMap<String, Value> = fields
        .iter()
        .map(|f| {
            let value = match &f.value {
                serde_json::Value::Null => Value::from(()),
                serde_json::Value::String(s)
                    if matches!(
                        f.data_type.as_str(),
                        "string" | "url" | "longtext" | "monetary" | "select"
                    ) =>
                {
                    Value::from(sanitize(&nfc(s)))
                }
                other => Value::from_serialize(other),
            };
            let entry =
                Value::from_iter([("type", Value::from(f.data_type.clone())), ("value", value)]);
            (sanitize(&nfc(&f.name)), entry)
        })
        .collect();
    Value::from_iter(map)
}

fn named(n: &Option<(i64, String)>, path: Option<String>) -> Value {
    match n {
        Some((id, name)) => Value::from_object(Named {
            id: *id,
            name: nfc(name),
            path,
        }),
        None => Value::from(()),
    }
}

/// The limited `document` object (raw, unsanitised values).
fn document(info: &NameInfo) -> Value {
    let owner = match &info.owner {
        Some((id, username)) => Value::from_iter([
            ("id", Value::from(*id)),
            ("username", Value::from(username.clone())),
        ]),
        None => Value::from(()),
    };
    let tags: Vec<Value> = info
        .tags
        .iter()
        .map(|(id, name)| {
            Value::from_iter([("id", Value::from(*id)), ("name", Value::from(nfc(name)))])
        })
        .collect();
    let storage_path = match &info.storage_path {
        Some(sp) => named(&Some((sp.id, sp.name.clone())), Some(sp.path.clone())),
        None => Value::from(()),
    };
    let opt = |s: &Option<String>| s.clone().map(Value::from).unwrap_or(Value::from(()));
    Value::from_iter([
        ("id", Value::from(info.id)),
        ("pk", Value::from(info.id)),
        ("title", Value::from(nfc(&info.title))),
        ("content", Value::from(info.content.clone())),
        (
            "page_count",
            info.page_count.map(Value::from).unwrap_or(Value::from(())),
        ),
        (
            "created",
            Value::from(info.created.format("%Y-%m-%d").to_string()),
        ),
        ("added", Value::from(py_datetime(&info.added))),
        ("modified", Value::from(py_datetime(&info.modified))),
        (
            "archive_serial_number",
            info.archive_serial_number
                .map(Value::from)
                .unwrap_or(Value::from(())),
        ),
        ("mime_type", Value::from(info.mime_type.clone())),
        ("checksum", Value::from(info.checksum.clone())),
        ("archive_checksum", opt(&info.archive_checksum)),
        ("filename", opt(&info.filename)),
        ("archive_filename", opt(&info.archive_filename)),
        ("original_filename", opt(&info.original_filename)),
        ("owner", owner),
        ("tags", Value::from(tags)),
        ("correspondent", named(&info.correspondent, None)),
        ("document_type", named(&info.document_type, None)),
        ("storage_path", storage_path),
    ])
}

/// `{word}` → `{{ word }}` for every placeholder of word characters not next to another brace;
/// anything else (`{tags[type]}`) stays as it is and renders literally.
pub fn convert_legacy(format: &str) -> String {
    let chars: Vec<char> = format.chars().collect();
    let mut out = String::with_capacity(format.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '{' && (i == 0 || chars[i - 1] != '{') {
            let mut j = i + 1;
            while j < chars.len() && (chars[j].is_alphanumeric() || chars[j] == '_') {
                j += 1;
            }
            if j > i + 1 && j < chars.len() && chars[j] == '}' && chars.get(j + 1) != Some(&'}') {
                let word: String = chars[i + 1..j].iter().collect();
                out.push_str("{{ ");
                out.push_str(&word);
                out.push_str(" }}");
                i = j + 1;
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// True if `format` still uses single-brace placeholders (a startup warning upstream).
pub fn uses_legacy_syntax(format: &str) -> bool {
    convert_legacy(format) != format
}

static NONE_CMP_AFTER: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r#"(==|!=)\s*('none'|"none"|'-none-'|"-none-")"#).expect("valid regex")
});
static NONE_CMP_BEFORE: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r#"('none'|"none"|'-none-'|"-none-")\s*(==|!=)"#).expect("valid regex")
});

/// `x == 'none'` → `x == <placeholder>` (and `'-none-'`, `!=`, either side), so that a
/// placeholder compares equal to both spellings as in paperless.
pub fn rewrite_none_comparisons(template: &str) -> String {
    let a = NONE_CMP_AFTER.replace_all(template, format!("$1 {NONE_GLOBAL}"));
    NONE_CMP_BEFORE
        .replace_all(&a, format!("{NONE_GLOBAL} $2"))
        .into_owned()
}

fn stringify(v: &Value) -> String {
    if v.is_none() {
        "None".to_string()
    } else {
        v.to_string()
    }
}

fn when_of(v: &Value) -> Result<When, Error> {
    let s = stringify(v);
    dates::parse_when(&s).ok_or_else(|| {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("{s:?} is not a date or date-time"),
        )
    })
}

fn get_cf_value(map: Value, name: String, default: Option<Value>) -> Result<Value, Error> {
    let entry = map.get_attr(&name).unwrap_or(Value::UNDEFINED);
    let value = if entry.is_undefined() || entry.is_none() {
        Value::UNDEFINED
    } else {
        entry.get_attr("value").unwrap_or(Value::UNDEFINED)
    };
    if !value.is_undefined() && !value.is_none() {
        return Ok(value);
    }
    Ok(default.unwrap_or(Value::from(())))
}

fn string_filter(f: fn(&str) -> String) -> impl Fn(Value) -> Value + Send + Sync + 'static {
    move |v: Value| {
        if is_placeholder(&v) {
            // Still "empty" after lower/upper/…: keep the placeholder (renders `-none-`).
            return Value::from(f(NONE_TEXT));
        }
        Value::from(f(&stringify(&v)))
    }
}

fn title_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if c.is_alphanumeric() {
            if start {
                out.extend(c.to_uppercase());
            } else {
                out.extend(c.to_lowercase());
            }
            start = false;
        } else {
            out.push(c);
            start = true;
        }
    }
    out
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first
            .to_uppercase()
            .chain(c.flat_map(char::to_lowercase))
            .collect(),
        None => String::new(),
    }
}

/// The environment every file name is rendered in.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
    // Python renders None as `None` and booleans as `True`/`False`.
    env.set_formatter(|out, state, value| {
        if value.is_none() {
            out.write_str("None")?;
            Ok(())
        } else if value.kind() == ValueKind::Bool {
            out.write_str(if value.is_true() { "True" } else { "False" })?;
            Ok(())
        } else {
            minijinja::escape_formatter(out, state, value)
        }
    });
    env.add_global(NONE_GLOBAL, placeholder());
    env.add_filter("get_cf_value", get_cf_value);
    env.add_filter(
        "datetime",
        |v: Value, fmt: String| -> Result<String, Error> {
            dates::strftime(when_of(&v)?, &fmt)
                .map_err(|e| Error::new(ErrorKind::InvalidOperation, e))
        },
    );
    env.add_filter(
        "localize_date",
        |v: Value, fmt: String, locale: String| -> Result<String, Error> {
            dates::localize_date(when_of(&v)?, &fmt, &locale)
                .map_err(|e| Error::new(ErrorKind::InvalidOperation, e))
        },
    );
    env.add_filter("slugify", string_filter(slugify));
    // Jinja's string filters, taking any value (names of related objects, the placeholder).
    env.add_filter("lower", string_filter(|s| s.to_lowercase()));
    env.add_filter("upper", string_filter(|s| s.to_uppercase()));
    env.add_filter("title", string_filter(title_case));
    env.add_filter("capitalize", string_filter(capitalize));
    env.add_filter("replace", |v: Value, from: String, to: String| {
        Value::from(stringify(&v).replace(&from, &to))
    });
    env
}

/// Renders `template` with `ctx`. The error text is what paperless logs: `Template variable
/// warning: '<name>' is undefined` for the first undefined variable, `Template variable error:
/// …` for anything else.
pub fn render(env: &Environment<'static>, template: &str, ctx: &Value) -> Result<String, String> {
    let source = rewrite_none_comparisons(template);
    let tmpl = env
        .template_from_str(&source)
        .map_err(|e| format!("Template syntax error: {e}"))?;
    match tmpl.render(ctx) {
        Ok(s) => Ok(s),
        Err(e) if e.kind() == ErrorKind::UndefinedError => {
            // Name the first undefined variable (by position in the template).
            let declared = tmpl.undeclared_variables(false);
            let first = declared
                .iter()
                .filter(|n| ctx.get_attr(n).map(|v| v.is_undefined()).unwrap_or(true))
                .filter(|n| n.as_str() != NONE_GLOBAL)
                .filter_map(|n| source.find(n.as_str()).map(|pos| (pos, n.clone())))
                .min();
            match first {
                Some((_, name)) => Err(format!("Template variable warning: '{name}' is undefined")),
                None => Err(format!("Template variable error: {e}")),
            }
        }
        Err(e) => Err(format!("Template variable error: {e}")),
    }
}
