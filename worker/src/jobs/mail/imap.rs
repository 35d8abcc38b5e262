//! The IMAP side of the mail fetcher: connect (implicit TLS, STARTTLS or plain) with
//! tokio-rustls, log in (LOGIN, AUTHENTICATE PLAIN for non-ASCII passwords, XOAUTH2 for
//! tokens), and the few commands the fetcher needs, each under a timeout. Errors say whether a
//! retry can help; none carries the password.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use async_imap::{Client, Session};
use futures::TryStreamExt;
use paperboy_shared::db::mail::{MailAccount, security};
use paperboy_shared::{Classify, ErrorClass};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

/// What went wrong talking to a server.
#[derive(Debug, Error)]
pub enum MailError {
    #[error("cannot connect to {host}:{port}: {source}")]
    Connect {
        host: String,
        port: u16,
        source: std::io::Error,
    },
    #[error("{what}: no answer within {secs} s")]
    Timeout { what: String, secs: u64 },
    #[error("TLS with {host}: {reason}")]
    Tls { host: String, reason: String },
    #[error("the CA file {path} (PAPERBOY_EMAIL_CERTIFICATE_LOCATION): {reason}")]
    CaFile { path: String, reason: String },
    #[error("Error while authenticating account {account}: {reason}")]
    Auth { account: String, reason: String },
    #[error("{what}: {source}")]
    Imap {
        what: String,
        source: async_imap::error::Error,
    },
    #[error("{0}")]
    Rule(String),
}

impl Classify for MailError {
    fn class(&self) -> ErrorClass {
        use async_imap::error::Error as E;
        match self {
            MailError::Connect { .. } | MailError::Timeout { .. } => ErrorClass::Transient,
            MailError::Imap { source, .. } => match source {
                E::Io(_) | E::ConnectionLost => ErrorClass::Transient,
                _ => ErrorClass::Permanent,
            },
            // A TLS failure is a certificate or protocol mismatch: a retry does not help.
            MailError::Tls { .. }
            | MailError::CaFile { .. }
            | MailError::Auth { .. }
            | MailError::Rule(_) => ErrorClass::Permanent,
        }
    }
}

impl MailError {
    /// The connection is gone (reconnect before the next command).
    pub fn is_connection(&self) -> bool {
        use async_imap::error::Error as E;
        match self {
            MailError::Connect { .. } | MailError::Timeout { .. } => true,
            MailError::Imap { source, .. } => matches!(source, E::Io(_) | E::ConnectionLost),
            _ => false,
        }
    }
}

/// The byte stream under the IMAP client: TCP, or TLS over TCP.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + std::fmt::Debug> Stream for T {}

/// Counts the bytes read from the server (the fetch reports them).
#[derive(Debug)]
struct Counting<S> {
    inner: S,
    read: Arc<AtomicU64>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Counting<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len() - before;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counting<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

type Boxed = Box<dyn Stream>;

struct Plain<'a> {
    user: &'a str,
    password: &'a str,
}

impl async_imap::Authenticator for Plain<'_> {
    type Response = Vec<u8>;
    fn process(&mut self, _challenge: &[u8]) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.user.len() + self.password.len() + 2);
        v.push(0);
        v.extend_from_slice(self.user.as_bytes());
        v.push(0);
        v.extend_from_slice(self.password.as_bytes());
        v
    }
}

struct XOAuth2<'a> {
    user: &'a str,
    token: &'a str,
}

impl async_imap::Authenticator for XOAuth2<'_> {
    type Response = String;
    fn process(&mut self, _challenge: &[u8]) -> String {
        format!("user={}\x01auth=Bearer {}\x01\x01", self.user, self.token)
    }
}

/// A logged-in IMAP session.
pub struct Imap {
    session: Session<Boxed>,
    timeout: Duration,
    read: Arc<AtomicU64>,
    capabilities: Vec<String>,
    /// The server refused `SEARCH CHARSET …` once: search without it from then on.
    no_charset: bool,
}

fn tls_config(ca_file: Option<&std::path::Path>) -> Result<Arc<ClientConfig>, MailError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        use rustls_pki_types::CertificateDer;
        use rustls_pki_types::pem::PemObject;
        let bad = |reason: String| MailError::CaFile {
            path: path.display().to_string(),
            reason,
        };
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| bad(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(e.to_string()))?;
        if certs.is_empty() {
            return Err(bad("no certificate in it".into()));
        }
        for c in certs {
            roots.add(c).map_err(|e| bad(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| MailError::Tls {
            host: String::new(),
            reason: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

async fn within<T, E>(
    timeout: Duration,
    what: impl Into<String>,
    fut: impl Future<Output = Result<T, E>>,
    map: impl FnOnce(String, E) -> MailError,
) -> Result<T, MailError> {
    let what = what.into();
    match tokio::time::timeout(timeout, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(map(what, e)),
        Err(_) => Err(MailError::Timeout {
            what,
            secs: timeout.as_secs(),
        }),
    }
}

fn imap_err(what: String, source: async_imap::error::Error) -> MailError {
    MailError::Imap { what, source }
}

async fn tls_wrap(
    stream: Boxed,
    host: &str,
    ca_file: Option<&std::path::Path>,
    timeout: Duration,
) -> Result<Boxed, MailError> {
    let config = tls_config(ca_file)?;
    let name =
        rustls_pki_types::ServerName::try_from(host.to_string()).map_err(|e| MailError::Tls {
            host: host.into(),
            reason: e.to_string(),
        })?;
    let tls = within(
        timeout,
        format!("TLS handshake with {host}"),
        TlsConnector::from(config).connect(name, stream),
        |_, e| MailError::Tls {
            host: host.into(),
            reason: e.to_string(),
        },
    )
    .await?;
    Ok(Box::new(tls))
}

async fn greeting(
    client: &mut Client<Boxed>,
    host: &str,
    timeout: Duration,
) -> Result<(), MailError> {
    let resp = within(
        timeout,
        format!("greeting of {host}"),
        client.read_response(),
        |what, e| imap_err(what, e.into()),
    )
    .await?;
    match resp {
        Some(r) => match r.parsed() {
            async_imap::imap_proto::Response::Data {
                status: async_imap::imap_proto::Status::Ok,
                ..
            } => Ok(()),
            other => Err(imap_err(
                format!("greeting of {host}"),
                async_imap::error::Error::Bad(format!("{other:?}")),
            )),
        },
        None => Err(imap_err(
            format!("greeting of {host}"),
            async_imap::error::Error::ConnectionLost,
        )),
    }
}

impl Imap {
    /// Connects and logs in to the account's server.
    pub async fn connect(
        account: &MailAccount,
        timeout: Duration,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Imap, MailError> {
        let host = account.imap_server.trim().to_string();
        let port = account.port();
        let tcp = within(
            timeout,
            format!("connecting to {host}:{port}"),
            TcpStream::connect((host.as_str(), port)),
            |_, source| MailError::Connect {
                host: host.clone(),
                port,
                source,
            },
        )
        .await?;
        let read = Arc::new(AtomicU64::new(0));
        let counted: Boxed = Box::new(Counting {
            inner: tcp,
            read: read.clone(),
        });
        let client = match account.imap_security {
            security::SSL => {
                let tls = tls_wrap(counted, &host, ca_file, timeout).await?;
                let mut c = Client::new(tls);
                greeting(&mut c, &host, timeout).await?;
                c
            }
            security::STARTTLS => {
                let mut c = Client::new(counted);
                greeting(&mut c, &host, timeout).await?;
                within(
                    timeout,
                    format!("STARTTLS with {host}"),
                    c.run_command_and_check_ok("STARTTLS", None),
                    imap_err,
                )
                .await?;
                let tls = tls_wrap(c.into_inner(), &host, ca_file, timeout).await?;
                Client::new(tls)
            }
            _ => {
                let mut c = Client::new(counted);
                greeting(&mut c, &host, timeout).await?;
                c
            }
        };
        let auth_err = |reason: String| MailError::Auth {
            account: account.name.clone(),
            reason,
        };
        let login = async {
            let user = account.username.as_str();
            let pw = account.password.as_str();
            if account.is_token {
                client
                    .authenticate("XOAUTH2", XOAuth2 { user, token: pw })
                    .await
            } else if pw.is_ascii() {
                client.login(user, pw).await
            } else {
                client
                    .authenticate("PLAIN", Plain { user, password: pw })
                    .await
            }
        };
        let mut session = match tokio::time::timeout(timeout, login).await {
            Ok(Ok(s)) => s,
            Ok(Err((e, _client))) => return Err(auth_err(e.to_string())),
            Err(_) => {
                return Err(MailError::Timeout {
                    what: format!("login to {host}"),
                    secs: timeout.as_secs(),
                });
            }
        };
        let caps = within(timeout, "CAPABILITY", session.capabilities(), imap_err).await?;
        let capabilities = caps
            .iter()
            .map(|c| match c {
                async_imap::types::Capability::Atom(a) => a.to_ascii_uppercase(),
                async_imap::types::Capability::Auth(a) => {
                    format!("AUTH={}", a.to_ascii_uppercase())
                }
                async_imap::types::Capability::Imap4rev1 => "IMAP4REV1".into(),
            })
            .collect();
        Ok(Imap {
            session,
            timeout,
            read,
            capabilities,
            no_charset: false,
        })
    }

    /// Runs one command and reads up to its tagged answer; `Err` unless that answer is OK.
    /// (async-imap 0.12's `uid_search` / `uid_store` end at the tagged answer without looking
    /// at it, so a server's NO or BAD — e.g. `NO [BADCHARSET]` — would read as "nothing".)
    /// `on` sees every untagged response.
    async fn command(
        &mut self,
        what: String,
        cmd: String,
        mut on: impl FnMut(&async_imap::imap_proto::Response<'_>) + Send,
    ) -> Result<(), MailError> {
        use async_imap::error::Error as E;
        use async_imap::imap_proto::{Response, Status};
        let t = self.timeout;
        let session = &mut self.session;
        within(
            t,
            what,
            async move {
                let tag = session.run_command(&cmd).await?;
                loop {
                    let Some(resp) = session.read_response().await? else {
                        return Err(E::ConnectionLost);
                    };
                    if let Response::Done {
                        tag: done,
                        status,
                        outcome,
                    } = resp.parsed()
                        && *done == tag
                    {
                        let info = outcome
                            .information
                            .as_deref()
                            .unwrap_or_default()
                            .to_string();
                        let code = outcome
                            .code
                            .as_ref()
                            .map(|c| format!("[{c:?}] "))
                            .unwrap_or_default();
                        return match status {
                            Status::Ok => Ok(()),
                            Status::No => Err(E::No(format!("{code}{info}"))),
                            _ => Err(E::Bad(format!("{code}{info}"))),
                        };
                    }
                    on(resp.parsed());
                }
            },
            imap_err,
        )
        .await
    }

    async fn search_once(&mut self, query: String) -> Result<Vec<u32>, MailError> {
        use async_imap::imap_proto::{MailboxDatum, Response};
        let mut uids: Vec<u32> = Vec::new();
        self.command("UID SEARCH".into(), format!("UID SEARCH {query}"), |r| {
            if let Response::MailboxData(MailboxDatum::Search(ids)) = r {
                uids.extend(ids.iter().copied());
            }
        })
        .await?;
        uids.sort_unstable();
        uids.dedup();
        Ok(uids)
    }

    /// Bytes received from the server so far.
    pub fn bytes_read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    pub fn has_capability(&self, cap: &str) -> bool {
        self.capabilities
            .iter()
            .any(|c| c.eq_ignore_ascii_case(cap))
    }

    /// Selects a folder; its UIDVALIDITY (None if the server does not say).
    pub async fn select(&mut self, folder: &str) -> Result<Option<u32>, MailError> {
        let t = self.timeout;
        let mbox = within(
            t,
            format!("selecting folder {folder:?}"),
            self.session.select(folder),
            imap_err,
        )
        .await?;
        Ok(mbox.uid_validity)
    }

    /// Whether a folder exists (STATUS answers).
    pub async fn folder_exists(&mut self, folder: &str) -> Result<bool, MailError> {
        let t = self.timeout;
        match within(
            t,
            format!("STATUS of {folder:?}"),
            self.session.status(folder, "(UIDVALIDITY)"),
            imap_err,
        )
        .await
        {
            Ok(_) => Ok(true),
            Err(MailError::Imap {
                source: async_imap::error::Error::No(_),
                ..
            }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The names of every folder (to help a user find the right one after a typo).
    pub async fn folder_names(&mut self) -> Result<Vec<String>, MailError> {
        let t = self.timeout;
        let session = &mut self.session;
        within(
            t,
            "LIST",
            async move {
                let names: Vec<_> = session
                    .list(Some(""), Some("*"))
                    .await?
                    .try_collect()
                    .await?;
                Ok::<_, async_imap::error::Error>(
                    names.iter().map(|n| n.name().to_string()).collect(),
                )
            },
            imap_err,
        )
        .await
    }

    /// `UID SEARCH [CHARSET cs] <query>`, ascending. A server that refuses the CHARSET (e.g.
    /// Exchange's `NO [BADCHARSET]`) is asked again without it, and from then on without it.
    pub async fn uid_search(&mut self, charset: &str, query: &str) -> Result<Vec<u32>, MailError> {
        let charset_ok = !charset.is_empty()
            && charset
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
        if !self.no_charset && charset_ok {
            match self.search_once(format!("CHARSET {charset} {query}")).await {
                Ok(uids) => return Ok(uids),
                Err(MailError::Imap {
                    source: async_imap::error::Error::No(m) | async_imap::error::Error::Bad(m),
                    ..
                }) => {
                    tracing::warn!(
                        charset,
                        answer = %m,
                        "the server refused SEARCH CHARSET; searching without it"
                    );
                    self.no_charset = true;
                }
                Err(e) => return Err(e),
            }
        }
        self.search_once(query.to_string()).await
    }

    /// The full messages (`BODY.PEEK[]`: never sets \Seen) of some UIDs, with their UIDs.
    pub async fn fetch_bodies(&mut self, uids: &[u32]) -> Result<Vec<(u32, Vec<u8>)>, MailError> {
        if uids.is_empty() {
            return Ok(Vec::new());
        }
        let set = uid_set(uids);
        let t = self.timeout;
        let session = &mut self.session;
        within(
            t,
            format!("UID FETCH of {} message(s)", uids.len()),
            async move {
                let fetches: Vec<_> = session
                    .uid_fetch(&set, "(UID BODY.PEEK[])")
                    .await?
                    .try_collect()
                    .await?;
                Ok::<_, async_imap::error::Error>(
                    fetches
                        .iter()
                        .filter_map(|f| Some((f.uid?, f.body()?.to_vec())))
                        .collect(),
                )
            },
            imap_err,
        )
        .await
    }

    /// `UID STORE <uid> <op>.SILENT (<flags>)`, its answer checked.
    pub async fn store(&mut self, uid: u32, op: &str, flags: &str) -> Result<(), MailError> {
        let cmd = format!("UID STORE {uid} {op}.SILENT ({flags})");
        self.command(cmd.clone(), cmd, |_| {}).await
    }

    /// Deletes a message: `\Deleted`, then `UID EXPUNGE` (UIDPLUS) or `EXPUNGE`.
    pub async fn delete(&mut self, uid: u32) -> Result<(), MailError> {
        self.store(uid, "+FLAGS", "\\Deleted").await?;
        let cmd = if self.has_capability("UIDPLUS") {
            format!("UID EXPUNGE {uid}")
        } else {
            "EXPUNGE".to_string()
        };
        self.command(cmd.clone(), cmd, |_| {}).await
    }

    /// Moves a message: `UID MOVE` (RFC 6851), else copy and delete.
    pub async fn move_to(&mut self, uid: u32, folder: &str) -> Result<(), MailError> {
        let t = self.timeout;
        if self.has_capability("MOVE") {
            return within(
                t,
                format!("UID MOVE {uid} to {folder:?}"),
                self.session.uid_mv(uid.to_string(), folder),
                imap_err,
            )
            .await;
        }
        within(
            t,
            format!("UID COPY {uid} to {folder:?}"),
            self.session.uid_copy(uid.to_string(), folder),
            imap_err,
        )
        .await?;
        self.delete(uid).await
    }

    pub async fn logout(mut self) {
        let t = self.timeout.min(Duration::from_secs(5));
        let _ = tokio::time::timeout(t, self.session.logout()).await;
    }
}

/// `1,2,3` → `1:3`; runs collapsed.
pub fn uid_set(uids: &[u32]) -> String {
    let mut v = uids.to_vec();
    v.sort_unstable();
    v.dedup();
    let mut out = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let start = v[i];
        let mut end = start;
        while i + 1 < v.len() && v[i + 1] == end + 1 {
            i += 1;
            end = v[i];
        }
        out.push(if start == end {
            start.to_string()
        } else {
            format!("{start}:{end}")
        });
        i += 1;
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_sets_collapse_runs() {
        assert_eq!(uid_set(&[5, 1, 2, 3, 9, 10]), "1:3,5,9:10");
        assert_eq!(uid_set(&[7]), "7");
    }

    #[test]
    fn errors_are_classified() {
        let t = MailError::Timeout {
            what: "x".into(),
            secs: 1,
        };
        assert_eq!(t.class(), ErrorClass::Transient);
        let a = MailError::Auth {
            account: "a".into(),
            reason: "no".into(),
        };
        assert_eq!(a.class(), ErrorClass::Permanent);
    }
}
