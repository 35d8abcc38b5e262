//! paperless-ngx's query language on top of Tantivy's: field aliases of v2 (`type`, `path`,
//! `note`, `custom_field`, …) and the date forms (`created:[2024-01-01 to 2024-06-30]`,
//! `added:yesterday`, `created:"last month"`, `added:[-1 week to now]`, `created:2024`),
//! rewritten into Tantivy ranges over RFC 3339 instants before the query parser sees them.

use std::sync::LazyLock;

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, TimeZone, Utc};
use regex::Regex;

/// v2 / saved-view field names → v3 fields.
const ALIASES: &[(&str, &str)] = &[
    ("type", "document_type"),
    ("type_id", "document_type_id"),
    ("path", "storage_path"),
    ("path_id", "storage_path_id"),
    ("tags", "tag"),
    ("note", "notes.note"),
    ("notes", "notes.note"),
    ("custom_field", "custom_fields.value"),
    ("asn", "asn"),
];

/// The date fields.
const DATE_FIELDS: &[&str] = &["created", "added", "modified"];

static FIELD_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?i)(^|[\s(+\-])([a-z_][a-z0-9_.]*):(\[[^\]]*\]|\{[^}]*\}|"[^"]*"|[^\s()]+)"#)
        .expect("valid regex")
});

/// An instant interval `[start, end)`; None = open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

fn day(d: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight exists"))
}

fn span(a: NaiveDate, b: NaiveDate) -> Span {
    Span {
        start: Some(day(a)),
        end: Some(day(b)),
    }
}

fn month_start(d: NaiveDate) -> NaiveDate {
    d.with_day(1).expect("day 1 exists")
}

/// One date expression (a side of a range, or a whole value) at `now`.
pub fn parse_date_expr(expr: &str, now: DateTime<Utc>) -> Option<Span> {
    let e = expr.trim().trim_matches('"').trim().to_ascii_lowercase();
    let e = e.replace('_', " ");
    let today = now.date_naive();
    let point = |t: DateTime<Utc>| Span {
        start: Some(t),
        end: Some(t),
    };
    match e.as_str() {
        "" | "*" => {
            return Some(Span {
                start: None,
                end: None,
            });
        }
        "now" => return Some(point(now)),
        "today" => return Some(span(today, today + Duration::days(1))),
        "yesterday" => return Some(span(today - Duration::days(1), today)),
        "tomorrow" => return Some(span(today + Duration::days(1), today + Duration::days(2))),
        _ => {}
    }
    // this/last/previous week|month|year
    if let Some((which, unit)) = e.split_once(' ') {
        let offset = match which {
            "this" => Some(0),
            "last" | "previous" | "past" => Some(1),
            _ => None,
        };
        if let Some(back) = offset {
            let unit = unit.trim().trim_end_matches('s');
            match unit {
                "week" => {
                    let monday =
                        today - Duration::days(today.weekday().num_days_from_monday() as i64);
                    let start = monday - Duration::weeks(back);
                    return Some(span(start, start + Duration::weeks(1)));
                }
                "month" => {
                    let start = month_start(today) - Months::new(back as u32);
                    return Some(span(start, start + Months::new(1)));
                }
                "year" => {
                    let y = today.year() - back as i32;
                    return Some(span(
                        NaiveDate::from_ymd_opt(y, 1, 1)?,
                        NaiveDate::from_ymd_opt(y + 1, 1, 1)?,
                    ));
                }
                _ => {}
            }
        }
    }
    // -N unit(s) ago / -N unit(s): a point in the past.
    static REL: LazyLock<Regex> = LazyLock::new(|| {
        Regex::new(r"^-?\s*(\d+)\s*(minute|min|hour|day|week|month|year)s?(\s+ago)?$")
            .expect("valid regex")
    });
    if let Some(c) = REL.captures(&e) {
        let n: i64 = c[1].parse().ok()?;
        let t = match &c[2] {
            "minute" | "min" => now - Duration::minutes(n),
            "hour" => now - Duration::hours(n),
            "day" => now - Duration::days(n),
            "week" => now - Duration::weeks(n),
            "month" => now.checked_sub_months(Months::new(n as u32))?,
            _ => now.checked_sub_months(Months::new(12 * n as u32))?,
        };
        return Some(point(t));
    }
    // Absolute: YYYY-MM-DD, YYYYMMDD, YYYY-MM, YYYY, or an RFC 3339 instant.
    if let Ok(t) = DateTime::parse_from_rfc3339(&e.to_ascii_uppercase()) {
        return Some(point(t.with_timezone(&Utc)));
    }
    if let Ok(d) = NaiveDate::parse_from_str(&e, "%Y-%m-%d") {
        return Some(span(d, d + Duration::days(1)));
    }
    if e.len() == 8
        && let Ok(d) = NaiveDate::parse_from_str(&e, "%Y%m%d")
    {
        return Some(span(d, d + Duration::days(1)));
    }
    if e.len() == 7
        && let Ok(d) = NaiveDate::parse_from_str(&format!("{e}-01"), "%Y-%m-%d")
    {
        return Some(span(d, d + Months::new(1)));
    }
    if e.len() == 4
        && let Ok(y) = e.parse::<i32>()
    {
        return Some(span(
            NaiveDate::from_ymd_opt(y, 1, 1)?,
            NaiveDate::from_ymd_opt(y + 1, 1, 1)?,
        ));
    }
    None
}

fn rfc(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A date field's value (`[a to b]`, `"last week"`, `2024`, …) as a Tantivy range; None when it
/// is not a date expression (left to Tantivy, which reports it).
pub fn date_range(field: &str, value: &str, now: DateTime<Utc>) -> Option<String> {
    let v = value.trim();
    let (start, end) = if (v.starts_with('[') || v.starts_with('{')) && v.len() >= 2 {
        let inner = &v[1..v.len() - 1];
        static TO: LazyLock<Regex> =
            LazyLock::new(|| Regex::new(r"(?i)\s+to\s+|^to\s+|\s+to$").expect("valid regex"));
        let mut parts = TO.splitn(inner, 2);
        let a = parts.next().unwrap_or("");
        let b = parts.next().unwrap_or("");
        let sa = parse_date_expr(a, now)?;
        let sb = parse_date_expr(b, now)?;
        (sa.start, sb.end)
    } else {
        let s = parse_date_expr(v, now)?;
        if s.start.is_some() && s.start == s.end {
            // A point ("now", "-1 week"): from then on.
            (s.start, None)
        } else {
            (s.start, s.end)
        }
    };
    let a = start.map(rfc).unwrap_or_else(|| "*".into());
    let b = end.map(rfc).unwrap_or_else(|| "*".into());
    // `[a TO b}`: the end is exclusive (the spans above are half-open).
    let close = if end.is_some() { "}" } else { "]" };
    Some(format!("{field}:[{a} TO {b}{close}"))
}

/// `AND NOT x` / `NOT x` as `-x`: Tantivy's parser turns `a AND NOT b` into a required
/// clause that is purely negative, which matches nothing (Whoosh and users read it as "a
/// without b").
fn negations(query: &str) -> String {
    static AND_NOT: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"\bAND\s+NOT\s+").expect("valid regex"));
    static NOT: LazyLock<Regex> =
        LazyLock::new(|| Regex::new(r"(^|[\s(])NOT\s+").expect("valid regex"));
    let q = AND_NOT.replace_all(query, "-");
    NOT.replace_all(&q, "${1}-").into_owned()
}

/// Rewrites a paperless query for Tantivy's parser.
pub fn rewrite(query: &str, now: DateTime<Utc>) -> String {
    // Plain words and phrases need neither rewrite: skip compiling the regexes (a search is
    // one short process, and compiling them is a measurable part of it).
    if !query.contains(':') && !query.contains("NOT") {
        return query.to_string();
    }
    let query = if query.contains("NOT") {
        negations(query)
    } else {
        query.to_string()
    };
    FIELD_RE
        .replace_all(&query, |c: &regex::Captures| {
            let lead = &c[1];
            let field = c[2].to_ascii_lowercase();
            let value = &c[3];
            let field = ALIASES
                .iter()
                .find(|(a, _)| *a == field)
                .map(|(_, t)| t.to_string())
                .unwrap_or(field);
            if DATE_FIELDS.contains(&field.as_str())
                && let Some(r) = date_range(&field, value, now)
            {
                return format!("{lead}{r}");
            }
            format!("{lead}{field}:{value}")
        })
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        // A Wednesday.
        Utc.with_ymd_and_hms(2024, 7, 17, 15, 30, 0).unwrap()
    }

    #[test]
    fn absolute_date_ranges_become_half_open_instant_ranges() {
        assert_eq!(
            rewrite("created:[2024-01-01 to 2024-06-30]", now()),
            "created:[2024-01-01T00:00:00Z TO 2024-07-01T00:00:00Z}"
        );
        assert_eq!(
            rewrite("invoice AND added:[2024-01 TO 2024-02]", now()),
            "invoice AND added:[2024-01-01T00:00:00Z TO 2024-03-01T00:00:00Z}"
        );
        assert_eq!(
            rewrite("created:2023", now()),
            "created:[2023-01-01T00:00:00Z TO 2024-01-01T00:00:00Z}"
        );
        assert_eq!(
            rewrite("created:20240305", now()),
            "created:[2024-03-05T00:00:00Z TO 2024-03-06T00:00:00Z}"
        );
        assert_eq!(
            rewrite("created:[2024-01-01 to *]", now()),
            "created:[2024-01-01T00:00:00Z TO *]"
        );
    }

    #[test]
    fn relative_dates_and_keywords() {
        assert_eq!(
            rewrite("added:yesterday", now()),
            "added:[2024-07-16T00:00:00Z TO 2024-07-17T00:00:00Z}"
        );
        assert_eq!(
            rewrite("created:today", now()),
            "created:[2024-07-17T00:00:00Z TO 2024-07-18T00:00:00Z}"
        );
        assert_eq!(
            rewrite(r#"created:"last month""#, now()),
            "created:[2024-06-01T00:00:00Z TO 2024-07-01T00:00:00Z}"
        );
        assert_eq!(
            rewrite(r#"added:"this week""#, now()),
            "added:[2024-07-15T00:00:00Z TO 2024-07-22T00:00:00Z}"
        );
        assert_eq!(
            rewrite(r#"modified:"previous year""#, now()),
            "modified:[2023-01-01T00:00:00Z TO 2024-01-01T00:00:00Z}"
        );
        assert_eq!(
            rewrite("added:[-1 week to now]", now()),
            "added:[2024-07-10T15:30:00Z TO 2024-07-17T15:30:00Z}"
        );
        assert_eq!(
            rewrite("added:[-3 months to now]", now()),
            "added:[2024-04-17T15:30:00Z TO 2024-07-17T15:30:00Z}"
        );
    }

    #[test]
    fn v2_field_names_are_aliased_and_other_text_is_kept() {
        assert_eq!(rewrite("type:invoice", now()), "document_type:invoice");
        assert_eq!(
            rewrite("path:taxes OR tags:bank", now()),
            "storage_path:taxes OR tag:bank"
        );
        assert_eq!(rewrite("note:call", now()), "notes.note:call");
        assert_eq!(rewrite("custom_field:42", now()), "custom_fields.value:42");
        assert_eq!(
            rewrite(r#""acme corp" AND NOT title:draft"#, now()),
            r#""acme corp" -title:draft"#
        );
        assert_eq!(rewrite("NOT type:a", now()), "-document_type:a");
        assert_eq!(
            rewrite("(type:a OR type:b)", now()),
            "(document_type:a OR document_type:b)"
        );
        assert_eq!(rewrite("-type:a", now()), "-document_type:a");
        assert_eq!(
            rewrite(r#"monthly "late fee""#, now()),
            r#"monthly "late fee""#
        );
        assert_eq!(rewrite("rent NOT late", now()), "rent -late");
    }

    #[test]
    fn unknown_date_words_are_left_for_the_parser_to_reject() {
        assert_eq!(rewrite("created:someday", now()), "created:someday");
    }
}
