//! What a rule takes from a message, as paperless-ngx 3.0.5 decides it (pure functions, unit
//! tested): the IMAP SEARCH criteria (§1.3), the attachments that pass the disposition, file
//! name and type filters (§1.4), titles and correspondent names (§1.5).

use chrono::NaiveDate;
use mail_parser::{Message, MimeHeaders};
use paperboy_shared::db::mail::{
    MailRule, action, attachment_type, correspondent_from, title_from,
};
use unicode_normalization::UnicodeNormalization;

use crate::jobs::consume::detect;

/// Apple Mail colours and the `$MailFlagBit0..2` bits each sets.
pub const APPLE_COLORS: &[(&str, &[u8])] = &[
    ("red", &[]),
    ("orange", &[0]),
    ("yellow", &[1]),
    ("blue", &[2]),
    ("green", &[0, 1]),
    ("violet", &[0, 2]),
    ("grey", &[1, 2]),
];

/// A text filter the server cannot be asked for (non-ASCII: sent as a quoted string it is not
/// valid IMAP), checked on the downloaded message instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientFilter {
    From(String),
    To(String),
    Subject(String),
    Body(String),
}

/// A SEARCH key, the rule's value for it, and its client-side form.
type TextFilter<'a> = (&'static str, &'a Option<String>, fn(String) -> ClientFilter);

/// The search of a rule: the server-side part (after `UID n:*`) and the client-side rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    pub server: String,
    pub client: Vec<ClientFilter>,
}

fn quoted(v: &str) -> Option<String> {
    if v.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        Some(format!(
            "\"{}\"",
            v.replace('\\', "\\\\").replace('"', "\\\"")
        ))
    } else {
        None
    }
}

/// An IMAP flag keyword is an atom: printable ASCII without specials.
pub fn valid_keyword(k: &str) -> bool {
    !k.is_empty()
        && k.bytes()
            .all(|b| (0x21..0x7f).contains(&b) && !b"(){%*\"\\]".contains(&b))
}

/// The Apple Mail colour of an `apple:<color>` parameter. `Err` for an unknown colour.
pub fn apple_color(param: &str) -> Option<Result<&'static [u8], String>> {
    let c = param.strip_prefix("apple:")?;
    Some(
        APPLE_COLORS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(c.trim()))
            .map(|(_, bits)| *bits)
            .ok_or_else(|| "Not a valid AppleMail tag color.".to_string()),
    )
}

/// IMAP date (`20-Jun-1925`).
pub fn imap_date(d: NaiveDate) -> String {
    d.format("%d-%b-%Y").to_string()
}

/// The SEARCH of a rule (§1.3): the action's part (UNSEEN / UNFLAGGED / UNKEYWORD), SINCE for
/// the maximum age, then FROM / TO / SUBJECT / BODY; `ALL` when nothing else.
pub fn search(rule: &MailRule, today: NaiveDate) -> Result<Search, String> {
    let mut parts = Vec::new();
    let mut client = Vec::new();
    match rule.action {
        action::MARK_READ => parts.push("UNSEEN".to_string()),
        action::FLAG => parts.push("UNFLAGGED".to_string()),
        action::TAG => {
            let p = rule.action_parameter.as_deref().unwrap_or("").trim();
            match apple_color(p) {
                Some(Ok(_)) => parts.push("UNFLAGGED".to_string()),
                Some(Err(e)) => return Err(e),
                None if valid_keyword(p) => parts.push(format!("UNKEYWORD {p}")),
                None => return Err(format!("{p:?} is not a valid IMAP keyword")),
            }
        }
        _ => {}
    }
    if rule.maximum_age > 0 {
        let since = today - chrono::Duration::days(rule.maximum_age);
        parts.push(format!("SINCE {}", imap_date(since)));
    }
    let filters: [TextFilter<'_>; 4] = [
        ("FROM", &rule.filter_from, ClientFilter::From),
        ("TO", &rule.filter_to, ClientFilter::To),
        ("SUBJECT", &rule.filter_subject, ClientFilter::Subject),
        ("BODY", &rule.filter_body, ClientFilter::Body),
    ];
    for (key, value, make) in filters {
        let Some(v) = value.as_deref().filter(|v| !v.is_empty()) else {
            continue;
        };
        match quoted(v) {
            Some(q) => parts.push(format!("{key} {q}")),
            None => client.push(make(v.to_string())),
        }
    }
    if parts.is_empty() {
        parts.push("ALL".into());
    }
    Ok(Search {
        server: parts.join(" "),
        client,
    })
}

fn addresses(a: Option<&mail_parser::Address<'_>>) -> String {
    let mut out = String::new();
    if let Some(a) = a {
        for addr in a.iter() {
            if let Some(n) = addr.name() {
                out.push_str(n);
                out.push(' ');
            }
            if let Some(e) = addr.address() {
                out.push_str(e);
                out.push(' ');
            }
        }
    }
    out
}

/// Whether a message passes the client-side filters (case-insensitive substrings).
pub fn client_match(filters: &[ClientFilter], msg: &Message<'_>) -> bool {
    let has = |hay: String, needle: &str| hay.to_lowercase().contains(&needle.to_lowercase());
    filters.iter().all(|f| match f {
        ClientFilter::From(v) => has(addresses(msg.from()), v),
        ClientFilter::To(v) => has(addresses(msg.to()), v),
        ClientFilter::Subject(v) => has(msg.subject().unwrap_or("").to_string(), v),
        ClientFilter::Body(v) => has(
            msg.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
            v,
        ),
    })
}

/// Comma-separated globs, matched against the whole lower-cased name.
pub fn glob_match(patterns: &str, name: &str) -> bool {
    let name = name.to_lowercase();
    patterns
        .split(',')
        .map(|p| p.trim().to_lowercase())
        .filter(|p| !p.is_empty())
        .any(|p| glob::Pattern::new(&p).is_ok_and(|g| g.matches(&name)))
}

/// A file name safe to stage: NFC, no path, no control characters; `no-name-attachment` when
/// nothing is left.
pub fn sanitize_filename(name: &str) -> String {
    let nfc: String = name.nfc().collect();
    let base = nfc.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .to_string();
    let clean: String = clean.chars().take(200).collect();
    if clean.is_empty() || clean == "." || clean == ".." {
        "no-name-attachment".into()
    } else {
        clean
    }
}

/// One document a message yields.
#[derive(Debug, Clone, PartialEq)]
pub struct MailDoc {
    /// File name to stage it under (sanitised).
    pub filename: String,
    pub bytes: Vec<u8>,
    /// The title the rule gives it (None: the consumer's default, the file name's stem).
    pub title: Option<String>,
    /// An attachment (false: the .eml).
    pub attachment: bool,
}

/// Why an attachment was left out (logged at debug).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub name: String,
    pub why: &'static str,
}

fn subject_of(msg: &Message<'_>) -> String {
    msg.subject().unwrap_or("").nfc().collect()
}

/// The attachments a rule takes (§1.4 step 3): disposition (`attachment` only unless the rule
/// takes everything), include / exclude globs, and a type the consumer accepts (by content).
pub fn attachments(rule: &MailRule, msg: &Message<'_>) -> (Vec<MailDoc>, Vec<Skipped>) {
    let mut docs = Vec::new();
    let mut skipped = Vec::new();
    for part in msg.attachments() {
        let raw_name = part.attachment_name().unwrap_or("").to_string();
        let name = sanitize_filename(&raw_name);
        let is_attachment = part
            .content_disposition()
            .is_some_and(|d| d.ctype().eq_ignore_ascii_case("attachment"));
        let skip = |why| Skipped {
            name: name.clone(),
            why,
        };
        if rule.attachment_type == attachment_type::ATTACHMENTS_ONLY && !is_attachment {
            skipped.push(skip("not Content-Disposition: attachment"));
            continue;
        }
        if let Some(inc) = rule.filter_attachment_filename_include.as_deref()
            && !inc.trim().is_empty()
            && !glob_match(inc, &name)
        {
            skipped.push(skip("no include pattern matches"));
            continue;
        }
        if let Some(exc) = rule.filter_attachment_filename_exclude.as_deref()
            && !exc.trim().is_empty()
            && glob_match(exc, &name)
        {
            skipped.push(skip("an exclude pattern matches"));
            continue;
        }
        let bytes = part.contents().to_vec();
        if detect::detect(&bytes).is_none() {
            skipped.push(skip("not a type the consumer accepts"));
            continue;
        }
        let title = match rule.assign_title_from {
            title_from::SUBJECT => Some(subject_of(msg)),
            title_from::FILENAME => Some(crate::jobs::consume::title_from_filename(&name)),
            _ => None,
        }
        .filter(|t| !t.trim().is_empty());
        docs.push(MailDoc {
            filename: name,
            bytes,
            title,
            attachment: true,
        });
    }
    (docs, skipped)
}

/// The .eml document (§1.4 step 2): the raw message as `<subject>.eml`, titled by the
/// subject. Stored as the consumer stores a text file (no PDF rendition yet).
pub fn eml(msg: &Message<'_>, raw: &[u8]) -> MailDoc {
    let subject = subject_of(msg);
    let stem = if subject.trim().is_empty() {
        "message".to_string()
    } else {
        subject.clone()
    };
    MailDoc {
        filename: sanitize_filename(&format!("{stem}.eml")),
        bytes: raw.to_vec(),
        title: Some(subject).filter(|s| !s.trim().is_empty()),
        attachment: false,
    }
}

/// The name of the correspondent a rule assigns from the sender (modes 2 and 3); None for
/// modes 1 and 4 (4 is the rule's fixed id) or a message without a sender.
pub fn correspondent_name(rule: &MailRule, msg: &Message<'_>) -> Option<String> {
    let from = msg.from()?.first()?;
    let address = from.address().map(str::trim).filter(|a| !a.is_empty());
    match rule.assign_correspondent_from {
        correspondent_from::EMAIL => address.map(str::to_string),
        correspondent_from::NAME => from
            .name()
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .or(address)
            .map(str::to_string),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MessageParser;
    use paperboy_shared::db::mail::NewMailRule;

    fn rule(f: impl FnOnce(&mut NewMailRule)) -> MailRule {
        let mut n = NewMailRule {
            name: "r".into(),
            account_id: 1,
            ..Default::default()
        };
        f(&mut n);
        MailRule {
            id: 1,
            owner_id: None,
            name: n.name,
            account_id: 1,
            order: n.order,
            enabled: n.enabled,
            folder: n.folder,
            filter_from: n.filter_from,
            filter_to: n.filter_to,
            filter_subject: n.filter_subject,
            filter_body: n.filter_body,
            filter_attachment_filename_include: n.filter_attachment_filename_include,
            filter_attachment_filename_exclude: n.filter_attachment_filename_exclude,
            maximum_age: n.maximum_age,
            attachment_type: n.attachment_type,
            consumption_scope: n.consumption_scope,
            pdf_layout: n.pdf_layout,
            action: n.action,
            action_parameter: n.action_parameter,
            assign_title_from: n.assign_title_from,
            assign_tags: n.assign_tags,
            assign_document_type_id: n.assign_document_type_id,
            assign_correspondent_from: n.assign_correspondent_from,
            assign_correspondent_id: n.assign_correspondent_id,
            assign_owner_from_rule: n.assign_owner_from_rule,
            stop_processing: n.stop_processing,
        }
    }

    #[test]
    fn search_criteria_as_upstream() {
        let today = NaiveDate::from_ymd_opt(2025, 6, 20).unwrap();
        let r = rule(|r| {
            r.action = action::TAG;
            r.action_parameter = Some("paperless".into());
            r.maximum_age = 36500 - 3718; // any positive age
        });
        let s = search(&r, today).unwrap();
        assert!(
            s.server.starts_with("UNKEYWORD paperless SINCE "),
            "{}",
            s.server
        );
        let r = rule(|r| {
            r.action = action::DELETE;
            r.maximum_age = 0;
        });
        assert_eq!(search(&r, today).unwrap().server, "ALL");
        let r = rule(|r| {
            r.maximum_age = 0;
            r.filter_from = Some("amazon".into());
            r.filter_subject = Some("Rechnung \"März\"".into());
            r.filter_body = Some("a\"b".into());
        });
        let s = search(&r, today).unwrap();
        assert_eq!(s.server, "UNSEEN FROM \"amazon\" BODY \"a\\\"b\"");
        assert_eq!(
            s.client,
            vec![ClientFilter::Subject("Rechnung \"März\"".into())]
        );
        let r = rule(|r| {
            r.action = action::FLAG;
            r.maximum_age = 1;
        });
        assert_eq!(
            search(&r, today).unwrap().server,
            "UNFLAGGED SINCE 19-Jun-2025"
        );
    }

    #[test]
    fn apple_colors_and_bad_keywords() {
        let today = NaiveDate::from_ymd_opt(2025, 6, 20).unwrap();
        let r = rule(|r| {
            r.action = action::TAG;
            r.action_parameter = Some("apple:black".into());
        });
        assert_eq!(
            search(&r, today).unwrap_err(),
            "Not a valid AppleMail tag color."
        );
        assert_eq!(apple_color("apple:green"), Some(Ok(&[0u8, 1][..])));
        let r = rule(|r| {
            r.action = action::TAG;
            r.action_parameter = Some("apple:green".into());
            r.maximum_age = 0;
        });
        assert_eq!(search(&r, today).unwrap().server, "UNFLAGGED");
        assert!(!valid_keyword("two words"));
        assert!(valid_keyword("$Processed"));
    }

    #[test]
    fn filename_globs_as_spec_rows_15_to_20() {
        let files = ["f1.pdf", "f2.pdf", "f3.pdf", "f2.png", "file.PDf", "f1.Pdf"];
        let pick = |inc: &str, exc: Option<&str>| -> Vec<&str> {
            files
                .iter()
                .copied()
                .filter(|f| glob_match(inc, f) && !exc.is_some_and(|e| glob_match(e, f)))
                .collect()
        };
        assert_eq!(
            pick("*.pdf", None),
            ["f1.pdf", "f2.pdf", "f3.pdf", "file.PDf", "f1.Pdf"]
        );
        assert_eq!(pick("f1.pdf", None), ["f1.pdf", "f1.Pdf"]);
        assert_eq!(pick("*", None).len(), 6);
        assert_eq!(pick("*.png", None), ["f2.png"]);
        assert_eq!(pick("f2.pdf,f3*", None), ["f2.pdf", "f3.pdf"]);
        assert_eq!(pick("*.pdf", Some("f1*")), ["f2.pdf", "f3.pdf", "file.PDf"]);
        assert_eq!(pick("*.pdf", Some("f1*,f2*")), ["f3.pdf", "file.PDf"]);
        assert_eq!(pick("*.pdf", Some("f1*,f2*,f3*")), ["file.PDf"]);
        assert_eq!(pick("*", Some("*.png")).len(), 5);
    }

    #[test]
    fn filenames_are_nfc_and_confined() {
        assert_eq!(
            sanitize_filename("Rechnung Ma\u{0308}rz.pdf"),
            "Rechnung März.pdf"
        );
        assert_eq!(sanitize_filename("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_filename(""), "no-name-attachment");
    }

    const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n";

    fn message(parts: &[(&str, &str, &[u8])]) -> Vec<u8> {
        use std::fmt::Write;
        let mut m = String::from(
            "From: \"Someone!\" <someone@somewhere.com>\r\nTo: me@example.com\r\n\
             Subject: the message title\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/mixed; boundary=XX\r\n\r\n--XX\r\n\
             Content-Type: text/plain\r\n\r\nhello\r\n",
        );
        for (name, disp, bytes) in parts {
            let b64 = base64_encode(bytes);
            write!(
                m,
                "--XX\r\nContent-Type: application/octet-stream; name=\"{name}\"\r\n\
                 {disp}Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n"
            )
            .unwrap();
        }
        m.push_str("--XX--\r\n");
        m.into_bytes()
    }

    fn base64_encode(b: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(b)
    }

    #[test]
    fn disposition_type_and_title_rules() {
        let raw = message(&[
            (
                "f1.pdf",
                "Content-Disposition: inline; filename=\"f1.pdf\"\r\n",
                PDF,
            ),
            (
                "f2.pdf",
                "Content-Disposition: attachment; filename=\"f2.pdf\"\r\n",
                PDF,
            ),
            (
                "f3.json",
                "Content-Disposition: attachment; filename=\"f3.json\"\r\n",
                b"\x00\x01{}",
            ),
        ]);
        let msg = MessageParser::default().parse(&raw).unwrap();
        let r = rule(|r| r.assign_title_from = title_from::FILENAME);
        let (docs, skipped) = attachments(&r, &msg);
        let names: Vec<_> = docs.iter().map(|d| d.filename.as_str()).collect();
        assert_eq!(names, ["f2.pdf"]);
        assert_eq!(docs[0].title.as_deref(), Some("f2"));
        assert_eq!(skipped.len(), 2);
        let r = rule(|r| r.attachment_type = attachment_type::EVERYTHING);
        let (docs, _) = attachments(&r, &msg);
        let names: Vec<_> = docs.iter().map(|d| d.filename.as_str()).collect();
        assert_eq!(names, ["f1.pdf", "f2.pdf"]);
        assert_eq!(docs[0].title.as_deref(), Some("the message title"));
        let r = rule(|r| r.assign_title_from = title_from::NONE);
        assert_eq!(attachments(&r, &msg).0[0].title, None);
    }

    #[test]
    fn correspondent_modes() {
        let raw = message(&[]);
        let msg = MessageParser::default().parse(&raw).unwrap();
        let by = |mode| correspondent_name(&rule(|r| r.assign_correspondent_from = mode), &msg);
        assert_eq!(by(correspondent_from::NOTHING), None);
        assert_eq!(
            by(correspondent_from::EMAIL).as_deref(),
            Some("someone@somewhere.com")
        );
        assert_eq!(by(correspondent_from::NAME).as_deref(), Some("Someone!"));
        let raw2 = String::from_utf8(raw).unwrap().replace(
            "\"Someone!\" <someone@somewhere.com>",
            "someone@somewhere.com",
        );
        let msg2 = MessageParser::default().parse(raw2.as_bytes()).unwrap();
        let r = rule(|r| r.assign_correspondent_from = correspondent_from::NAME);
        assert_eq!(
            correspondent_name(&r, &msg2).as_deref(),
            Some("someone@somewhere.com")
        );
    }

    #[test]
    fn client_filters_are_case_insensitive_substrings() {
        let raw = message(&[]);
        let msg = MessageParser::default().parse(&raw).unwrap();
        assert!(client_match(
            &[ClientFilter::Subject("MESSAGE".into())],
            &msg
        ));
        assert!(client_match(
            &[ClientFilter::From("somewhere".into())],
            &msg
        ));
        assert!(!client_match(&[ClientFilter::Body("nope".into())], &msg));
    }
}
