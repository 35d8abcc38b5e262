//! `paperboy-worker search`: the read-only search command. It lives in the worker binary because
//! it needs Tantivy, which the `paperboy` CLI must not link (it builds and starts fast);
//! `paperboy search` runs this binary.

use std::io::{IsTerminal, Write};

use clap::Args;
use paperboy_shared::config::Config;
use serde_json::json;

use crate::index::search::{self, Hit};
use crate::index::store::{self, IndexSettings, Opened};
use crate::index::{IndexError, schema};

#[derive(Debug, Args, Clone)]
pub struct SearchArgs {
    /// The query (paperless-ngx syntax); not with --like / --complete.
    #[arg(value_name = "QUERY", required_unless_present_any = ["like", "complete"], conflicts_with_all = ["like", "complete"])]
    pub query: Vec<String>,
    /// Documents like this one (more like this).
    #[arg(long, value_name = "ID", conflicts_with = "complete")]
    pub like: Option<u64>,
    /// Words starting with PREFIX, most frequent first (autocomplete).
    #[arg(long, value_name = "PREFIX")]
    pub complete: Option<String>,
    /// Most results shown.
    #[arg(long, default_value_t = 25, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=10000))]
    pub limit: u64,
    /// One JSON document on stdout.
    #[arg(long)]
    pub json: bool,
    /// paperless' search modes: `query` (the query language), `text` (every word a substring
    /// of the title or content), `title` (every word a substring of the title).
    #[arg(long, value_enum, default_value_t = search::Mode::Query)]
    pub mode: search::Mode,
}

/// Exit codes.
const OK: i32 = 0;
const FAILED: i32 = 1;
const USAGE: i32 = 2;

fn open(s: &IndexSettings) -> Result<Opened, IndexError> {
    // The pointer may move between reading it and opening the generation (a reindex swapped and
    // removed the old one): read it again once.
    for attempt in 0..2 {
        match store::open_live(s) {
            Ok(Some(o)) => return Ok(o),
            Ok(None) => return Err(IndexError::Missing),
            Err(e) if attempt == 0 => {
                tracing::debug!(error = %e, "opening the index failed; reading the pointer again")
            }
            Err(e) => return Err(e),
        }
    }
    Err(IndexError::Missing)
}

fn highlight(h: &Hit, tty: bool) -> String {
    let (on, off) = if tty {
        ("\x1b[1m", "\x1b[0m")
    } else {
        ("**", "**")
    };
    let mut out = String::new();
    let mut at = 0;
    for &(a, b) in &h.highlighted {
        if a < at || b > h.snippet.len() {
            continue;
        }
        out.push_str(&h.snippet[at..a]);
        out.push_str(on);
        out.push_str(&h.snippet[a..b]);
        out.push_str(off);
        at = b;
    }
    out.push_str(&h.snippet[at..]);
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

pub fn run(args: SearchArgs) -> i32 {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("paperboy-worker search: invalid settings: {e}");
            return FAILED;
        }
    };
    let s = match IndexSettings::from_config(&config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("paperboy-worker search: {e}");
            return FAILED;
        }
    };
    let o = match open(&s) {
        Ok(o) => o,
        Err(e) => {
            let why = store::needs_rebuild(&s).unwrap_or_default();
            eprintln!(
                "paperboy-worker search: {e}{}",
                if why.is_empty() {
                    String::new()
                } else {
                    format!(" ({why})")
                }
            );
            return FAILED;
        }
    };
    let limit = args.limit as usize;
    let out = std::io::stdout();
    let mut out = out.lock();
    let tty = out.is_terminal();
    let fail = |e: IndexError| {
        eprintln!("paperboy-worker search: {e}");
        match e {
            IndexError::Query(_) => USAGE,
            _ => FAILED,
        }
    };
    if let Some(prefix) = &args.complete {
        let words = match search::complete(&o, prefix, limit) {
            Ok(w) => w,
            Err(e) => return fail(e),
        };
        if args.json {
            let v: Vec<_> = words
                .iter()
                .map(|(w, n)| json!({"word": w, "documents": n}))
                .collect();
            let _ = writeln!(out, "{}", json!({"prefix": prefix, "words": v}));
        } else {
            for (w, _) in &words {
                let _ = writeln!(out, "{w}");
            }
        }
        return OK;
    }
    let (hits, query) = match args.like {
        Some(id) => (search::more_like(&o, id, limit), format!("like:{id}")),
        None => {
            let q = args.query.join(" ");
            let opts = search::Options {
                mode: args.mode,
                fuzzy: config.fuzzy_search_threshold,
            };
            (search::search_with(&o, &q, limit, opts), q)
        }
    };
    let hits = match hits {
        Ok(h) => h,
        Err(e) => return fail(e),
    };
    if args.json {
        let _ = writeln!(
            out,
            "{}",
            json!({
                "query": query,
                "generation": o.pointer.generation,
                "schema_version": schema::SCHEMA_VERSION,
                "count": hits.len(),
                "results": hits,
            })
        );
    } else if hits.is_empty() {
        let _ = writeln!(out, "no documents match {query:?}");
    } else {
        let _ = writeln!(out, "{:>7}  {:>7}  {:<10}  title", "id", "score", "created");
        for h in &hits {
            let _ = writeln!(
                out,
                "{:>7}  {:>7.3}  {:<10}  {}",
                h.id,
                h.score,
                h.created.as_deref().unwrap_or("-"),
                h.title
            );
            let snip = highlight(h, tty);
            if !snip.is_empty() {
                let _ = writeln!(out, "{:>28}{snip}", "");
            }
        }
    }
    let _ = out.flush();
    OK
}
