//! Where and how the CLI writes: stdout for results, stderr for messages, JSON or aligned text.

use std::io::{self, IsTerminal, Write};

use serde::Serialize;

/// The output channel of one command run.
pub struct Output {
    /// `--json`: machine-readable stdout.
    pub json: bool,
    /// stdout is a terminal: a human is watching (actions confirm, ids are printed).
    pub stdout_tty: bool,
    /// stderr is a terminal: progress bars may be drawn.
    pub stderr_tty: bool,
    out: io::Stdout,
}

impl Output {
    pub fn new(json: bool) -> Self {
        Output {
            json,
            stdout_tty: io::stdout().is_terminal(),
            stderr_tty: io::stderr().is_terminal(),
            out: io::stdout(),
        }
    }

    /// One line on stdout.
    pub fn line(&self, text: impl std::fmt::Display) -> io::Result<()> {
        let mut out = self.out.lock();
        writeln!(out, "{text}")?;
        out.flush()
    }

    /// One JSON value on one line of stdout.
    pub fn json_line<T: Serialize + ?Sized>(&self, value: &T) -> io::Result<()> {
        let text = serde_json::to_string(value).map_err(io::Error::other)?;
        self.line(text)
    }

    /// Pretty JSON on stdout (a single document: `show`, `list`, `status`).
    pub fn json_doc<T: Serialize + ?Sized>(&self, value: &T) -> io::Result<()> {
        let text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
        self.line(text)
    }

    /// A confirmation for a human: printed only when stdout is a terminal (silent in cron).
    pub fn note(&self, text: impl std::fmt::Display) -> io::Result<()> {
        if self.stdout_tty {
            self.line(text)?;
        }
        Ok(())
    }

    /// A message on stderr.
    pub fn warn(&self, text: impl std::fmt::Display) {
        eprintln!("paperboy: {text}");
    }

    pub fn table(&self, table: &Table) -> io::Result<()> {
        let mut out = self.out.lock();
        table.write(&mut out)?;
        out.flush()
    }
}

/// A text table with left-aligned columns separated by two spaces.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub fn write(&self, out: &mut impl Write) -> io::Result<()> {
        let n = self.header.len();
        let mut width = vec![0usize; n];
        for row in std::iter::once(&self.header).chain(&self.rows) {
            for (i, c) in row.iter().enumerate().take(n) {
                width[i] = width[i].max(c.chars().count());
            }
        }
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, c) in row.iter().enumerate().take(n) {
                if i + 1 == n {
                    line.push_str(c);
                } else {
                    line.push_str(c);
                    let pad = width[i] - c.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// A URL with its password (or a bare user-info, which redis-rs may read as a password)
/// replaced by `***`, for messages and listings.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.to_string();
    };
    let userinfo = &authority[..at];
    let redacted = match userinfo.find(':') {
        Some(colon) => format!("{}:***", &userinfo[..colon]),
        None => "***".to_string(),
    };
    format!(
        "{}{}{}",
        &url[..scheme_end + 3],
        redacted,
        &rest[at..] // from the '@' on
    )
}

/// Local date and time of a Unix time in milliseconds.
pub fn fmt_time(ms: i64) -> String {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => t
            .with_timezone(&chrono::Local)
            .format("%Y-%m-%d %H:%M:%S%.3f")
            .to_string(),
        None => format!("{ms} ms"),
    }
}

pub use paperboy_shared::human::duration_ms as fmt_duration_ms;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_show() {
        assert_eq!(
            redact_url("redis://:s3cret@host:6379/0"),
            "redis://:***@host:6379/0"
        );
        assert_eq!(
            redact_url("rediss://user:s3cret@host:6379"),
            "rediss://user:***@host:6379"
        );
        assert_eq!(redact_url("redis://s3cret@host"), "redis://***@host");
        assert_eq!(
            redact_url("postgres://pb:p@ss@db/paperboy"),
            "postgres://pb:***@db/paperboy"
        );
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(
            redact_url("redis://h/0?x=a@b"),
            "redis://h/0?x=a@b",
            "an @ after the host is not user-info"
        );
        assert_eq!(
            redact_url("sqlite://./data/x.sqlite3"),
            "sqlite://./data/x.sqlite3"
        );
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(fmt_duration_ms(850), "850ms");
        assert_eq!(fmt_duration_ms(12_345), "12.3s");
        assert_eq!(fmt_duration_ms(245_000), "4m05s");
        assert_eq!(fmt_duration_ms(3 * 3_600_000 + 7 * 60_000), "3h07m");
        assert_eq!(fmt_duration_ms(2 * 86_400_000 + 4 * 3_600_000), "2d04h");
        assert_eq!(fmt_duration_ms(-5), "0ms");
    }

    #[test]
    fn tables_align_columns() {
        let mut t = Table::new(&["ID", "STATE", "NOTE"]);
        t.row(vec!["1".into(), "waiting".into(), "".into()]);
        t.row(vec!["200".into(), "dead".into(), "x".into()]);
        let mut buf = Vec::new();
        t.write(&mut buf).unwrap();
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "ID   STATE    NOTE\n1    waiting\n200  dead     x\n"
        );
    }
}
