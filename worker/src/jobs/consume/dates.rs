//! The created date of a document from its file name and content (spec mail-archive-consume §3.3
//! step 6): the file name first, only if a file-name date order is set
//! (`PAPERBOY_FILENAME_DATE_ORDER` / `PAPERLESS_FILENAME_DATE_ORDER`), then the content with
//! `PAPERBOY_DATE_ORDER` (default DMY). A date counts only if its year is after 1900, it is not
//! in the future and not in the ignore list; the first one in reading order wins.
//!
//! paperless-ngx finds candidates with one regular expression and hands them to `dateparser`
//! (with "prefer the first day of the month"); we recognise the same shapes ourselves:
//! - numeric `13.02.2018`, `13/02/18`, `2024-07-02` (a 4-digit part is the year, the other two
//!   follow the date order; three short parts follow the date order; 2-digit years are 19xx or
//!   20xx, whichever is not in the future),
//! - `18. September 2024`, `22-MAR-2022`, `22.MAR 2022`, `21st MAR 2022`,
//! - `September 25, 2019`,
//! - `March 2019` (the 1st of the month),
//!
//! with month names in English, German and French (full or abbreviated, any case).

use std::sync::LazyLock;

use chrono::{Datelike, NaiveDate};
use regex::Regex;

/// Order of day, month and year in a numeric date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateOrder([Part; 3]);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    D,
    M,
    Y,
}

impl DateOrder {
    #[cfg_attr(not(test), allow(dead_code))]
    pub const DMY: DateOrder = DateOrder([Part::D, Part::M, Part::Y]);

    /// `DMY`, `MDY`, `YMD`, ... (any permutation, any case); None if it is not one.
    pub fn parse(s: &str) -> Option<DateOrder> {
        let s = s.trim().to_ascii_uppercase();
        let parts: Vec<Part> = s
            .chars()
            .map(|c| match c {
                'D' => Some(Part::D),
                'M' => Some(Part::M),
                'Y' => Some(Part::Y),
                _ => None,
            })
            .collect::<Option<_>>()?;
        let [a, b, c] = parts[..] else { return None };
        if a == b || b == c || a == c {
            return None;
        }
        Some(DateOrder([a, b, c]))
    }

    /// Day and month positions among the two non-year parts: true if the day comes first.
    fn day_before_month(self) -> bool {
        let d = self.0.iter().position(|p| *p == Part::D).unwrap_or(0);
        let m = self.0.iter().position(|p| *p == Part::M).unwrap_or(1);
        d < m
    }
}

/// What decides a created date besides the text itself.
#[derive(Debug, Clone)]
pub struct DateRules {
    pub order: DateOrder,
    pub filename_order: Option<DateOrder>,
    pub ignore: Vec<NaiveDate>,
    pub today: NaiveDate,
}

impl DateRules {
    /// The created date: from the file name (if a file-name order is set), else the content.
    pub fn created(&self, filename: &str, content: &str) -> Option<NaiveDate> {
        if let Some(order) = self.filename_order
            && let Some(d) = self.first(filename, order)
        {
            return Some(d);
        }
        self.first(content, self.order)
    }

    /// The first acceptable date in `text` read with `order`.
    pub fn first(&self, text: &str, order: DateOrder) -> Option<NaiveDate> {
        self.all(text, order).into_iter().next()
    }

    /// Every acceptable date in `text`, in reading order (duplicates kept).
    pub fn all(&self, text: &str, order: DateOrder) -> Vec<NaiveDate> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos <= text.len() {
            let Some(caps) = DATE_RE.captures_at(text, pos) else {
                break;
            };
            let m = caps.get(0).expect("group 0");
            if !boundaries_ok(text, m.start(), m.end()) {
                // Try again one character further (the match may start inside a longer word or
                // number, and a valid date may begin just after).
                pos = next_char(text, m.start());
                continue;
            }
            if let Some(d) = date_of(&caps, order, self.today)
                && self.acceptable(d)
            {
                out.push(d);
            }
            pos = m.end().max(next_char(text, m.start()));
        }
        out
    }

    fn acceptable(&self, d: NaiveDate) -> bool {
        d.year() > 1900 && d <= self.today && !self.ignore.contains(&d)
    }
}

fn next_char(text: &str, at: usize) -> usize {
    text[at..]
        .chars()
        .next()
        .map(|c| at + c.len_utf8())
        .unwrap_or(text.len() + 1)
}

/// A date must not start inside a word or number (`prepayments 2024`, `123.02.2018`) nor end
/// inside a number (`13.02.20181`).
fn boundaries_ok(text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    let after = text[end..].chars().next();
    let first = text[start..].chars().next();
    let before_ok = match (before, first) {
        (None, _) => true,
        (Some(b), Some(f)) if f.is_ascii_digit() => !b.is_ascii_digit(),
        (Some(b), _) => !b.is_alphanumeric(),
    };
    let after_ok = after.is_none_or(|a| !a.is_ascii_digit());
    before_ok && after_ok
}

static DATE_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)
          (?P<y1>\d{4})[./-](?P<m1>\d{1,2})[./-](?P<d1>\d{1,2})
        | (?P<n1>\d{1,2})[./-](?P<n2>\d{1,2})[./-](?P<n3>\d{4}|\d{2})
        | (?P<d2>\d{1,2})(?:st|nd|rd|th)?\.?[\ \t./-]+(?P<mon2>\p{L}{3,9})\.?[\ \t./-]+(?P<y2>\d{4})
        | (?P<mon3>\p{L}{3,9})\.?[\ \t]+(?P<d3>\d{1,2})(?:st|nd|rd|th)?,?[\ \t]+(?P<y3>\d{4})
        | (?P<mon4>\p{L}{3,9})\.?[\ \t]+(?P<y4>\d{4})
        ",
    )
    .expect("the date regex compiles")
});

fn num(caps: &regex::Captures, name: &str) -> Option<u32> {
    caps.name(name)?.as_str().parse().ok()
}

fn date_of(caps: &regex::Captures, order: DateOrder, today: NaiveDate) -> Option<NaiveDate> {
    if caps.name("y1").is_some() {
        return NaiveDate::from_ymd_opt(
            num(caps, "y1")? as i32,
            num(caps, "m1")?,
            num(caps, "d1")?,
        );
    }
    if let Some(third) = caps.name("n3") {
        let (a, b, c) = (num(caps, "n1")?, num(caps, "n2")?, num(caps, "n3")?);
        let (d, m, y) = if third.as_str().len() == 4 {
            // The year is last: day and month in the order's relative order.
            if order.day_before_month() {
                (a, b, c as i32)
            } else {
                (b, a, c as i32)
            }
        } else {
            let parts = [a, b, c];
            let mut d = 0;
            let mut m = 0;
            let mut y = 0;
            for (p, v) in order.0.iter().zip(parts) {
                match p {
                    Part::D => d = v,
                    Part::M => m = v,
                    Part::Y => y = v,
                }
            }
            (d, m, two_digit_year(y, today))
        };
        return NaiveDate::from_ymd_opt(y, m, d);
    }
    if let Some(mon) = caps.name("mon2") {
        return NaiveDate::from_ymd_opt(
            num(caps, "y2")? as i32,
            month(mon.as_str())?,
            num(caps, "d2")?,
        );
    }
    if let Some(mon) = caps.name("mon3") {
        return NaiveDate::from_ymd_opt(
            num(caps, "y3")? as i32,
            month(mon.as_str())?,
            num(caps, "d3")?,
        );
    }
    if let Some(mon) = caps.name("mon4") {
        return NaiveDate::from_ymd_opt(num(caps, "y4")? as i32, month(mon.as_str())?, 1);
    }
    None
}

/// `yy` → 20yy unless that is in the future, then 19yy.
fn two_digit_year(yy: u32, today: NaiveDate) -> i32 {
    let y = 2000 + yy as i32;
    if y > today.year() { y - 100 } else { y }
}

/// Month number of a month name or abbreviation (English, German, French).
pub fn month(name: &str) -> Option<u32> {
    let n = name.to_lowercase();
    const MONTHS: [&[&str]; 12] = [
        &["january", "jan", "januar", "jänner", "janvier", "janv"],
        &[
            "february", "feb", "februar", "février", "fevrier", "févr", "fevr",
        ],
        &["march", "mar", "märz", "maerz", "mär", "mars"],
        &["april", "apr", "avril", "avr"],
        &["may", "mai"],
        &["june", "jun", "juni", "juin"],
        &["july", "jul", "juli", "juillet", "juil"],
        &["august", "aug", "août", "aout"],
        &["september", "sep", "sept", "septembre"],
        &["october", "oct", "oktober", "okt", "octobre"],
        &["november", "nov", "novembre"],
        &[
            "december",
            "dec",
            "dezember",
            "dez",
            "décembre",
            "decembre",
            "déc",
        ],
    ];
    MONTHS
        .iter()
        .position(|names| names.contains(&n.as_str()))
        .map(|i| i as u32 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn rules() -> DateRules {
        DateRules {
            order: DateOrder::DMY,
            filename_order: None,
            ignore: vec![],
            today: d(2026, 12, 2),
        }
    }

    fn first(text: &str) -> Option<NaiveDate> {
        rules().first(text, DateOrder::DMY)
    }

    #[test]
    fn date_orders() {
        assert_eq!(DateOrder::parse("dmy"), Some(DateOrder::DMY));
        assert!(DateOrder::parse("YMD").is_some());
        assert!(DateOrder::parse("MDY").is_some());
        assert_eq!(DateOrder::parse("DDY"), None);
        assert_eq!(DateOrder::parse("DM"), None);
        assert_eq!(DateOrder::parse(""), None);
    }

    /// Spec §6 #91: a DMY date in the content; with FILENAME_DATE_ORDER=YMD the file name
    /// "Scan - 2022-02-01.pdf" wins; without it the content date is used.
    #[test]
    fn spec_91_filename_first_only_when_configured() {
        let content = "Some letter\nBerlin, 20.02.1996\nDear Sir, as of 20.02.1997 ...";
        let name = "Scan - 2022-02-01.pdf";
        let mut r = rules();
        assert_eq!(r.created(name, content), Some(d(1996, 2, 20)));
        r.filename_order = DateOrder::parse("YMD");
        assert_eq!(r.created(name, content), Some(d(2022, 2, 1)));
        // A file name without a date falls back to the content.
        assert_eq!(r.created("letter.pdf", content), Some(d(1996, 2, 20)));
    }

    /// Spec §6 #92: ignored dates are skipped, the next one is taken.
    #[test]
    fn spec_92_ignored_dates_are_skipped() {
        let content = "Some letter\nBerlin, 20.02.1996\nDear Sir, as of 20.02.1997 ...";
        let mut r = rules();
        r.ignore = vec![d(1996, 2, 20)];
        assert_eq!(r.created("x.pdf", content), Some(d(1997, 2, 20)));
        // A file-name date on the ignore list falls through to the content.
        r.filename_order = DateOrder::parse("YMD");
        r.ignore = vec![d(2022, 4, 1)];
        assert_eq!(
            r.created("Scan-2022-04-01.pdf", "The matching date is 24.03.2022"),
            Some(d(2022, 3, 24))
        );
    }

    /// paperless-ngx's date parser tests (test_date_parsing.py), English.
    #[test]
    fn upstream_shapes() {
        assert_eq!(first("lorem ipsum 130218 lorem ipsum"), None);
        assert_eq!(first("lorem ipsum 2018 lorem ipsum"), None);
        assert_eq!(first("lorem ipsum 20180213 lorem ipsum"), None);
        assert_eq!(
            first("lorem ipsum 13.02.2018 lorem ipsum"),
            Some(d(2018, 2, 13))
        );
        assert_eq!(
            first("lorem ipsum 130218, 2018, 20180213 and lorem 13.02.2018 lorem ipsum"),
            Some(d(2018, 2, 13))
        );
        for (text, want) in [
            (
                "Customer Number Currency 22-MAR-2022 Credit Card 1934829304",
                Some(d(2022, 3, 22)),
            ),
            (
                "Customer Number Currency 22 MAR 2022 Credit Card 1934829304",
                Some(d(2022, 3, 22)),
            ),
            (
                "Customer Number Currency 22/MAR/2022 Credit Card 1934829304",
                Some(d(2022, 3, 22)),
            ),
            (
                "Customer Number Currency 22.MAR.2022 Credit Card 1934829304",
                Some(d(2022, 3, 22)),
            ),
            (
                "Customer Number Currency 22.MAR 2022 Credit Card 1934829304",
                Some(d(2022, 3, 22)),
            ),
            (
                "Customer Number Currency 22.MAR.22 Credit Card 1934829304",
                None,
            ),
            (
                "Customer Number Currency 22.MAR,22 Credit Card 1934829304",
                None,
            ),
            (
                "Customer Number Currency 22,MAR,2022 Credit Card 1934829304",
                None,
            ),
            (
                "Customer Number Currency 22 MAR,2022 Credit Card 1934829304",
                None,
            ),
            (
                "Customer Number Currency 21st MAR 2022 Credit Card 1934829304",
                Some(d(2022, 3, 21)),
            ),
            (
                "Customer Number Currency 22nd March 2022 Credit Card 1934829304",
                Some(d(2022, 3, 22)),
            ),
            (
                "Customer Number Currency 2nd MAR 2022 Credit Card 1934829304",
                Some(d(2022, 3, 2)),
            ),
            (
                "Customer Number Currency 23rd MAR 2022 Credit Card 1934829304",
                Some(d(2022, 3, 23)),
            ),
            (
                "Customer Number Currency 25TH MAR 2022 Credit Card 1934829304",
                Some(d(2022, 3, 25)),
            ),
            (
                "CHASE 0 September 25, 2019 JPMorgan Chase",
                Some(d(2019, 9, 25)),
            ),
            ("01-07-0590 00:00:00", None),
            ("01-07-2350 00:00:00", None),
            ("20 408000l 2475", None),
        ] {
            assert_eq!(first(text), want, "{text:?}");
        }
    }

    #[test]
    fn multiple_dates_in_reading_order_future_skipped() {
        let text = "This text has multiple dates. For example 02.02.2018, 22 July 2022 and \
                    December 2021. But not 24-12-9999 because it's in the future...";
        assert_eq!(
            rules().all(text, DateOrder::DMY),
            vec![d(2018, 2, 2), d(2022, 7, 22), d(2021, 12, 1)]
        );
    }

    #[test]
    fn german_and_french_months() {
        assert_eq!(first("Datum: 18. September 2024"), Some(d(2024, 9, 18)));
        assert_eq!(
            first("lorem ipsum\nMärz 2019\nlorem ipsum"),
            Some(d(2019, 3, 1))
        );
        assert_eq!(first("1. MÄRZ 2020"), Some(d(2020, 3, 1)));
        assert_eq!(first("27. Nullmonth 2020\nMärz 2020"), Some(d(2020, 3, 1)));
        assert_eq!(first("13 décembre 2023"), Some(d(2023, 12, 13)));
        assert_eq!(first("13 août 2022"), Some(d(2022, 8, 13)));
        assert_eq!(first("6. Mai 2020"), Some(d(2020, 5, 6)));
    }

    #[test]
    fn numeric_orders_and_two_digit_years() {
        let r = rules();
        let mdy = DateOrder::parse("MDY").unwrap();
        assert_eq!(r.first("on 02/03/2024", mdy), Some(d(2024, 2, 3)));
        assert_eq!(
            r.first("on 02/03/2024", DateOrder::DMY),
            Some(d(2024, 3, 2))
        );
        assert_eq!(
            r.first("Date 21.06.2024 18:04", DateOrder::DMY),
            Some(d(2024, 6, 21))
        );
        assert_eq!(r.first("13/02/18", DateOrder::DMY), Some(d(2018, 2, 13)));
        assert_eq!(r.first("13/02/99", DateOrder::DMY), Some(d(1999, 2, 13)));
        let ymd = DateOrder::parse("YMD").unwrap();
        assert_eq!(r.first("18-02-13", ymd), Some(d(2018, 2, 13)));
        // ISO dates read as year-month-day whatever the order.
        assert_eq!(
            r.first("Date: 2024-07-02", DateOrder::DMY),
            Some(d(2024, 7, 2))
        );
        // Not a date: invoice numbers, amounts, an impossible day.
        assert_eq!(
            r.first("INV-2024-0117 total 1,234.56", DateOrder::DMY),
            None
        );
        assert_eq!(r.first("31.02.2024", DateOrder::DMY), None);
        assert_eq!(r.first("123.02.2018", DateOrder::DMY), None);
    }

    /// The text layers of the fixture PDFs (paperless-3.0.5/consume-input) and the created
    /// dates paperless gave them.
    #[test]
    fn fixture_contents() {
        for (text, want) in [
            (
                "Northwind Bank - Account statement 02/2024\nAccount holder: Jane Doe\nIBAN DE89 3704 0044 0532 0130 00\nStatement date: 29 February 2024",
                d(2024, 2, 29),
            ),
            (
                "City Electric Company\nElectricity bill for January 2024\nStatement date: 31 January 2024",
                d(2024, 1, 1),
            ),
            (
                "Springfield Revenue Office\nNotice of income tax prepayments 2024\nDate of notice: 20 February 2024",
                d(2024, 2, 20),
            ),
            (
                "Garage Miller - Car repair\nInvoice 77-2024\nDate: 10 May 2024",
                d(2024, 5, 10),
            ),
            (
                "ACME Corp - Invoice\nInvoice number: INV-2024-0117\nInvoice date: 12 March 2024",
                d(2024, 3, 12),
            ),
            (
                "Malerbetrieb Schulz GmbH - Rechnung\nRechnungsnummer 2024-155\nDatum: 18. September 2024",
                d(2024, 9, 18),
            ),
            (
                "Meeting notes - home renovation\nDate: 2024-07-02\nAttendees: Jane",
                d(2024, 7, 2),
            ),
            (
                "Safe Harbor Insurance\nHousehold insurance policy no. HH-558812\nIssued: 2 January 2024",
                d(2024, 1, 2),
            ),
            (
                "TelCo Mobile\n\nYour invoice for July 2024\nInvoice date: 1 August 2024",
                d(2024, 7, 1),
            ),
            (
                "Springfield High School\nCertificate of graduation\nAwarded to Jane Doe on 25 June 2010",
                d(2010, 6, 25),
            ),
        ] {
            assert_eq!(first(text), Some(want), "{text:?}");
        }
        assert_eq!(
            first("Family trip 1998\n\nLake Tahoe, summer vacation"),
            None
        );
    }

    #[test]
    fn month_names() {
        assert_eq!(month("SEPT"), Some(9));
        assert_eq!(month("Dezember"), Some(12));
        assert_eq!(month("number"), None);
        assert_eq!(month("year"), None);
    }
}
