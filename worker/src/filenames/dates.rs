//! Dates in templates: the `datetime` filter (Python `strftime`) and `localize_date` (CLDR
//! patterns like Babel's `format_date`).
//!
//! `localize_date` carries the month and day names and the four standard formats of a few
//! locales (English, German, French, Spanish, Italian, Dutch, Portuguese) instead of the whole
//! CLDR; any other locale is an error (the template then falls back to the default name, and the
//! warning names the locale).

use chrono::format::{Item, StrftimeItems};
use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, Timelike};

/// A date or a date-time, as a template value may hold it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum When {
    Date(NaiveDate),
    DateTime(NaiveDateTime),
}

impl When {
    fn date(self) -> NaiveDate {
        match self {
            When::Date(d) => d,
            When::DateTime(dt) => dt.date(),
        }
    }
}

/// Parses `YYYY-MM-DD`, an ISO/RFC 3339 date-time (offset kept as local time) or
/// `YYYY-MM-DD HH:MM:SS[.f][+HH:MM]` (Python's `str(datetime)`).
pub fn parse_when(s: &str) -> Option<When> {
    let s = s.trim();
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(When::Date(d));
    }
    if let Ok(dt) = DateTime::<FixedOffset>::parse_from_rfc3339(s) {
        return Some(When::DateTime(dt.naive_local()));
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%:z"] {
        if let Ok(dt) = DateTime::<FixedOffset>::parse_from_str(s, fmt) {
            return Some(When::DateTime(dt.naive_local()));
        }
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(When::DateTime(dt));
        }
    }
    None
}

/// Python's `strftime` (through chrono; `%Y` of years below 1000 is zero-padded, Python's is
/// not). An unknown directive is an error.
pub fn strftime(when: When, format: &str) -> Result<String, String> {
    let items: Vec<Item> = StrftimeItems::new(format).collect();
    if items.iter().any(|i| matches!(i, Item::Error)) {
        return Err(format!("invalid date format {format:?}"));
    }
    let out = match when {
        When::Date(d) => {
            // chrono cannot format time fields of a bare date; Python gives midnight.
            d.and_hms_opt(0, 0, 0)
                .expect("midnight exists")
                .format_with_items(items.into_iter())
                .to_string()
        }
        When::DateTime(dt) => dt.format_with_items(items.into_iter()).to_string(),
    };
    Ok(out)
}

/// English month names (the C locale paperless runs in).
pub const MONTHS_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

struct Locale {
    months: [&'static str; 12],
    months_abbr: [&'static str; 12],
    /// Monday first.
    days: [&'static str; 7],
    days_abbr: [&'static str; 7],
    /// short, medium, long, full.
    formats: [&'static str; 4],
}

const EN_MONTHS_ABBR: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const EN_DAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const EN_DAYS_ABBR: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

fn locale(tag: &str) -> Option<Locale> {
    let norm = tag.replace('-', "_");
    let (lang, region) = match norm.split_once('_') {
        Some((l, r)) => (l.to_ascii_lowercase(), r.to_ascii_uppercase()),
        None => (norm.to_ascii_lowercase(), String::new()),
    };
    Some(match lang.as_str() {
        "en" => Locale {
            months: MONTHS_EN,
            months_abbr: EN_MONTHS_ABBR,
            days: EN_DAYS,
            days_abbr: EN_DAYS_ABBR,
            formats: match region.as_str() {
                "" | "US" => ["M/d/yy", "MMM d, y", "MMMM d, y", "EEEE, MMMM d, y"],
                _ => ["dd/MM/y", "d MMM y", "d MMMM y", "EEEE d MMMM y"],
            },
        },
        "de" => Locale {
            months: [
                "Januar",
                "Februar",
                "März",
                "April",
                "Mai",
                "Juni",
                "Juli",
                "August",
                "September",
                "Oktober",
                "November",
                "Dezember",
            ],
            months_abbr: [
                "Jan.", "Feb.", "März", "Apr.", "Mai", "Juni", "Juli", "Aug.", "Sept.", "Okt.",
                "Nov.", "Dez.",
            ],
            days: [
                "Montag",
                "Dienstag",
                "Mittwoch",
                "Donnerstag",
                "Freitag",
                "Samstag",
                "Sonntag",
            ],
            days_abbr: ["Mo.", "Di.", "Mi.", "Do.", "Fr.", "Sa.", "So."],
            formats: ["dd.MM.yy", "dd.MM.y", "d. MMMM y", "EEEE, d. MMMM y"],
        },
        "fr" => Locale {
            months: [
                "janvier",
                "février",
                "mars",
                "avril",
                "mai",
                "juin",
                "juillet",
                "août",
                "septembre",
                "octobre",
                "novembre",
                "décembre",
            ],
            months_abbr: [
                "janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.",
                "nov.", "déc.",
            ],
            days: [
                "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche",
            ],
            days_abbr: ["lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim."],
            formats: ["dd/MM/y", "d MMM y", "d MMMM y", "EEEE d MMMM y"],
        },
        "es" => Locale {
            months: [
                "enero",
                "febrero",
                "marzo",
                "abril",
                "mayo",
                "junio",
                "julio",
                "agosto",
                "septiembre",
                "octubre",
                "noviembre",
                "diciembre",
            ],
            months_abbr: [
                "ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic",
            ],
            days: [
                "lunes",
                "martes",
                "miércoles",
                "jueves",
                "viernes",
                "sábado",
                "domingo",
            ],
            days_abbr: ["lun", "mar", "mié", "jue", "vie", "sáb", "dom"],
            formats: [
                "d/M/yy",
                "d MMM y",
                "d 'de' MMMM 'de' y",
                "EEEE, d 'de' MMMM 'de' y",
            ],
        },
        "it" => Locale {
            months: [
                "gennaio",
                "febbraio",
                "marzo",
                "aprile",
                "maggio",
                "giugno",
                "luglio",
                "agosto",
                "settembre",
                "ottobre",
                "novembre",
                "dicembre",
            ],
            months_abbr: [
                "gen", "feb", "mar", "apr", "mag", "giu", "lug", "ago", "set", "ott", "nov", "dic",
            ],
            days: [
                "lunedì",
                "martedì",
                "mercoledì",
                "giovedì",
                "venerdì",
                "sabato",
                "domenica",
            ],
            days_abbr: ["lun", "mar", "mer", "gio", "ven", "sab", "dom"],
            formats: ["dd/MM/yy", "d MMM y", "d MMMM y", "EEEE d MMMM y"],
        },
        "nl" => Locale {
            months: [
                "januari",
                "februari",
                "maart",
                "april",
                "mei",
                "juni",
                "juli",
                "augustus",
                "september",
                "oktober",
                "november",
                "december",
            ],
            months_abbr: [
                "jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec",
            ],
            days: [
                "maandag",
                "dinsdag",
                "woensdag",
                "donderdag",
                "vrijdag",
                "zaterdag",
                "zondag",
            ],
            days_abbr: ["ma", "di", "wo", "do", "vr", "za", "zo"],
            formats: ["dd-MM-y", "d MMM y", "d MMMM y", "EEEE d MMMM y"],
        },
        "pt" => Locale {
            months: [
                "janeiro",
                "fevereiro",
                "março",
                "abril",
                "maio",
                "junho",
                "julho",
                "agosto",
                "setembro",
                "outubro",
                "novembro",
                "dezembro",
            ],
            months_abbr: [
                "jan.", "fev.", "mar.", "abr.", "mai.", "jun.", "jul.", "ago.", "set.", "out.",
                "nov.", "dez.",
            ],
            days: [
                "segunda-feira",
                "terça-feira",
                "quarta-feira",
                "quinta-feira",
                "sexta-feira",
                "sábado",
                "domingo",
            ],
            days_abbr: ["seg.", "ter.", "qua.", "qui.", "sex.", "sáb.", "dom."],
            formats: [
                "dd/MM/y",
                "d 'de' MMM 'de' y",
                "d 'de' MMMM 'de' y",
                "EEEE, d 'de' MMMM 'de' y",
            ],
        },
        _ => return None,
    })
}

/// Babel's `format_date(value, format, locale)`: `short`, `medium`, `long`, `full` or a CLDR
/// pattern (`y yy yyyy M MM MMM MMMM L… d dd E… EEEE`, time fields `H HH m mm s ss` for
/// date-times, `'quoted'` literals).
pub fn localize_date(when: When, format: &str, locale_tag: &str) -> Result<String, String> {
    let loc = locale(locale_tag).ok_or_else(|| {
        format!(
            "localize_date: locale {locale_tag:?} is not available (known: en, de, fr, es, it, \
             nl, pt)"
        )
    })?;
    let pattern = match format {
        "short" => loc.formats[0],
        "medium" => loc.formats[1],
        "long" => loc.formats[2],
        "full" => loc.formats[3],
        p => p,
    };
    let date = when.date();
    let (h, mi, s) = match when {
        When::DateTime(dt) => (dt.hour(), dt.minute(), dt.second()),
        When::Date(_) => (0, 0, 0),
    };
    let mut out = String::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            // 'literal', '' is a quote.
            if chars.get(i + 1) == Some(&'\'') {
                out.push('\'');
                i += 2;
                continue;
            }
            i += 1;
            while i < chars.len() {
                if chars[i] == '\'' {
                    if chars.get(i + 1) == Some(&'\'') {
                        out.push('\'');
                        i += 2;
                        continue;
                    }
                    break;
                }
                out.push(chars[i]);
                i += 1;
            }
            i += 1;
            continue;
        }
        if !c.is_ascii_alphabetic() {
            out.push(c);
            i += 1;
            continue;
        }
        let mut n = 1;
        while chars.get(i + n) == Some(&c) {
            n += 1;
        }
        i += n;
        let month = date.month0() as usize;
        let weekday = date.weekday().num_days_from_monday() as usize;
        match (c, n) {
            ('y', 2) => out.push_str(&format!("{:02}", date.year().rem_euclid(100))),
            ('y', n) => out.push_str(&format!("{:0n$}", date.year())),
            ('M' | 'L', 1) => out.push_str(&(month + 1).to_string()),
            ('M' | 'L', 2) => out.push_str(&format!("{:02}", month + 1)),
            ('M' | 'L', 3) => out.push_str(loc.months_abbr[month]),
            ('M' | 'L', 4) => out.push_str(loc.months[month]),
            ('M' | 'L', 5) => out.extend(loc.months[month].chars().next()),
            ('d', 1) => out.push_str(&date.day().to_string()),
            ('d', 2) => out.push_str(&format!("{:02}", date.day())),
            ('E', 1..=3) => out.push_str(loc.days_abbr[weekday]),
            ('E', 4) => out.push_str(loc.days[weekday]),
            ('E', 5) => out.extend(loc.days[weekday].chars().next()),
            ('H', 1) => out.push_str(&h.to_string()),
            ('H', 2) => out.push_str(&format!("{h:02}")),
            ('m', 1) => out.push_str(&mi.to_string()),
            ('m', 2) => out.push_str(&format!("{mi:02}")),
            ('s', 1) => out.push_str(&s.to_string()),
            ('s', 2) => out.push_str(&format!("{s:02}")),
            _ => {
                return Err(format!(
                    "localize_date: pattern field {:?} is not supported",
                    c.to_string().repeat(n)
                ));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> When {
        When::Date(NaiveDate::from_ymd_opt(y, m, day).unwrap())
    }

    #[test]
    fn localized_patterns_and_names() {
        let day = d(2023, 10, 26);
        assert_eq!(localize_date(day, "MMMM", "es_ES").unwrap(), "octubre");
        assert_eq!(localize_date(day, "EEEE", "fr_FR").unwrap(), "jeudi");
        assert_eq!(
            localize_date(day, "dd/MM/yyyy", "en_GB").unwrap(),
            "26/10/2023"
        );
        assert_eq!(
            localize_date(day, "long", "de_DE").unwrap(),
            "26. Oktober 2023"
        );
        assert_eq!(
            localize_date(day, "full", "es").unwrap(),
            "jueves, 26 de octubre de 2023"
        );
        assert_eq!(localize_date(day, "short", "en_US").unwrap(), "10/26/23");
        assert_eq!(localize_date(day, "medium", "en").unwrap(), "Oct 26, 2023");
        assert!(localize_date(day, "MMMM", "xx_YY").is_err());
        assert!(localize_date(day, "QQQ", "en").is_err());
    }

    #[test]
    fn strftime_and_parsing() {
        let w = parse_when("2020-06-25").unwrap();
        assert_eq!(strftime(w, "%Y").unwrap(), "2020");
        assert_eq!(strftime(w, "%Y-%m-%d").unwrap(), "2020-06-25");
        assert_eq!(strftime(w, "%B %b %y").unwrap(), "June Jun 20");
        let dt = parse_when("2021-03-04T23:30:00.000000Z").unwrap();
        assert_eq!(strftime(dt, "%H:%M").unwrap(), "23:30");
        let py = parse_when("2024-10-01 12:00:00+00:00").unwrap();
        assert_eq!(strftime(py, "%d.%m.%Y").unwrap(), "01.10.2024");
        assert!(strftime(w, "%Q").is_err());
        assert_eq!(parse_when("soon"), None);
    }
}
