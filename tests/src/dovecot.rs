//! Harness: a private Dovecot (Debian `dovecot-imapd`) per test, on free loopback ports, with
//! its own config, maildir store, password file and a CA + server certificate made with
//! `openssl` (so TLS is verified for real: the fetcher trusts the CA through
//! `PAPERBOY_EMAIL_CERTIFICATE_LOCATION`). Started as `dovecot -c <conf> -F`, stopped on drop.
//! Run as root it gives the mail processes the `dovecot` user (Dovecot refuses uid 0 for mail).
//!
//! [`Mailbox`] is a small IMAP client for the tests: APPEND, search, flags, folders.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::TryStreamExt;

pub struct Dovecot {
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Plain IMAP (and STARTTLS).
    pub port: u16,
    /// Implicit TLS.
    pub tls_port: u16,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn id(args: &[&str]) -> String {
    let out = Command::new("id").args(args).output().expect("id");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn make_certs(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(
        Command::new("openssl")
            .current_dir(dir)
            .args(["req", "-x509"])
            .args(ec)
            .args(["-keyout", "ca.key", "-out", "ca.pem", "-days", "2"])
            .args(["-subj", "/CN=paperboy-test-ca"]),
        "openssl CA",
    );
    run(
        Command::new("openssl")
            .current_dir(dir)
            .arg("req")
            .args(ec)
            .args(["-keyout", "server.key", "-out", "server.csr"])
            .args(["-subj", "/CN=localhost"]),
        "openssl server key",
    );
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n\
         extendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(
        Command::new("openssl")
            .current_dir(dir)
            .args(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem"])
            .args(["-CAkey", "ca.key", "-CAcreateserial", "-out", "server.pem"])
            .args(["-days", "2", "-extfile", "ext.cnf"]),
        "openssl sign",
    );
}

impl Dovecot {
    /// Starts a Dovecot with these users (name, password) and waits until it answers.
    pub fn start(users: &[(&str, &str)]) -> Dovecot {
        let bin = which("dovecot").unwrap_or_else(|| {
            panic!("dovecot is not installed: apt-get install dovecot-imapd (scripts/services.sh)")
        });
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        for sub in ["run", "state", "mail"] {
            std::fs::create_dir(d.join(sub)).unwrap();
        }
        std::fs::set_permissions(d.join("mail"), std::fs::Permissions::from_mode(0o777)).unwrap();
        make_certs(d);
        let passwd: String = users
            .iter()
            .map(|(u, p)| format!("{u}:{{PLAIN}}{p}\n"))
            .collect();
        std::fs::write(d.join("passwd"), passwd).unwrap();
        let root = id(&["-u"]) == "0";
        let (uid, gid, internal, login) = if root {
            (
                id(&["-u", "dovecot"]),
                id(&["-g", "dovecot"]),
                "dovecot".to_string(),
                "dovenull".to_string(),
            )
        } else {
            let me = id(&["-un"]);
            (id(&["-u"]), id(&["-g"]), me.clone(), me)
        };
        let (port, tls_port) = (free_port(), free_port());
        let p = d.display();
        let conf = format!(
            r#"protocols = imap
listen = 127.0.0.1
base_dir = {p}/run
state_dir = {p}/state
log_path = {p}/dovecot.log
ssl = yes
ssl_cert = <{p}/server.pem
ssl_key = <{p}/server.key
disable_plaintext_auth = no
auth_mechanisms = plain login
first_valid_uid = 1
mail_location = maildir:{p}/mail/%u
default_internal_user = {internal}
default_login_user = {login}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {p}/passwd
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={p}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {tls_port}
    ssl = yes
  }}
}}
service stats {{
  unix_listener stats-reader {{
    mode = 0666
  }}
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox spam {{
    auto = create
  }}
}}
"#
        );
        std::fs::write(d.join("dovecot.conf"), conf).unwrap();
        let child = Command::new(bin)
            .args(["-c"])
            .arg(d.join("dovecot.conf"))
            .arg("-F")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join("stderr.log")).unwrap())
            .spawn()
            .expect("start dovecot");
        let dv = Dovecot {
            dir,
            child: Some(child),
            port,
            tls_port,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "dovecot did not listen: {}",
                dv.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        dv
    }

    /// The CA certificate (PEM) the server's certificate is signed by.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    pub fn log(&self) -> String {
        let d = self.dir.path();
        format!(
            "{}{}",
            std::fs::read_to_string(d.join("stderr.log")).unwrap_or_default(),
            std::fs::read_to_string(d.join("dovecot.log")).unwrap_or_default()
        )
    }

    /// A logged-in test client on the plain port.
    pub async fn mailbox(&self, user: &str, password: &str) -> Mailbox {
        Mailbox::connect(self.port, user, password).await
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .chain([PathBuf::from("/usr/sbin")])
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// A test's IMAP client (plain TCP).
pub struct Mailbox {
    session: async_imap::Session<tokio::net::TcpStream>,
}

impl Mailbox {
    pub async fn connect(port: u16, user: &str, password: &str) -> Mailbox {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect to dovecot");
        let mut client = async_imap::Client::new(tcp);
        client.read_response().await.expect("greeting");
        let session = client
            .login(user, password)
            .await
            .map_err(|(e, _)| e)
            .expect("test login");
        Mailbox { session }
    }

    /// Appends a message to a folder, with flags like `(\Seen)` or none.
    pub async fn append(&mut self, folder: &str, flags: Option<&str>, message: &[u8]) {
        self.session
            .append(folder, flags, None, message)
            .await
            .expect("APPEND");
    }

    /// Appends with an internal date (`"01-Jan-2020 10:00:00 +0000"`, quoted).
    pub async fn append_with_date(&mut self, folder: &str, message: &[u8], date: &str) {
        self.session
            .append(folder, None, Some(date), message)
            .await
            .expect("APPEND");
    }

    /// `UID SEARCH <query>` in a folder (sorted UIDs).
    pub async fn search(&mut self, folder: &str, query: &str) -> Vec<u32> {
        self.session.select(folder).await.expect("SELECT");
        let mut v: Vec<u32> = self
            .session
            .uid_search(query)
            .await
            .expect("SEARCH")
            .into_iter()
            .collect();
        v.sort_unstable();
        v
    }

    /// Messages in a folder.
    pub async fn count(&mut self, folder: &str) -> usize {
        self.search(folder, "ALL").await.len()
    }

    /// The flags of one message (`\Seen`, keywords …) as text.
    pub async fn flags(&mut self, folder: &str, uid: u32) -> Vec<String> {
        self.session.select(folder).await.expect("SELECT");
        let fetches: Vec<_> = self
            .session
            .uid_fetch(uid.to_string(), "FLAGS")
            .await
            .expect("FETCH")
            .try_collect()
            .await
            .expect("FETCH");
        fetches
            .iter()
            .flat_map(|f| f.flags().map(|fl| format!("{fl:?}")).collect::<Vec<_>>())
            .collect()
    }

    /// Sets flags on a message (`+FLAGS (\Seen)`).
    pub async fn store(&mut self, folder: &str, uid: u32, query: &str) {
        self.session.select(folder).await.expect("SELECT");
        let _: Vec<_> = self
            .session
            .uid_store(uid.to_string(), query)
            .await
            .expect("STORE")
            .try_collect()
            .await
            .expect("STORE");
    }
}

/// A MIME message: From / To / Subject, a text body, and attachments (file name, disposition
/// `attachment` or `inline`, bytes).
pub fn message(
    from: &str,
    to: &str,
    subject: &str,
    body: &str,
    attachments: &[(&str, &str, &[u8])],
) -> Vec<u8> {
    use base64::Engine;
    let mut m = format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {}\r\n\
         Message-ID: <{}@paperboy.test>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"BOUNDARY\"\r\n\r\n\
         --BOUNDARY\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{body}\r\n",
        chrono::Utc::now().to_rfc2822(),
        ulid::Ulid::new()
    );
    for (name, disposition, bytes) in attachments {
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        m.push_str(&format!(
            "--BOUNDARY\r\nContent-Type: application/octet-stream; name=\"{name}\"\r\n\
             Content-Disposition: {disposition}; filename=\"{name}\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n{}\r\n",
            lines.join("\r\n")
        ));
    }
    m.push_str("--BOUNDARY--\r\n");
    m.into_bytes()
}

/// A small valid PDF whose text (and so checksum) is `text`: distinct texts make distinct
/// documents (consume refuses a duplicate checksum).
pub fn pdf(text: &str) -> Vec<u8> {
    pdf_of_size(text, 0)
}

/// [`pdf`], padded to at least `min_bytes` (and less than 100 more) with an unreferenced stream
/// object of incompressible bytes (as a real PDF's compressed streams are), derived from `text`.
pub fn pdf_of_size(text: &str, min_bytes: usize) -> Vec<u8> {
    let mut pad_len = 0;
    loop {
        let out = padded_pdf(text, pad_len);
        if out.len() >= min_bytes {
            return out;
        }
        // The padding object's own framing comes on top the first time.
        pad_len += min_bytes - out.len();
    }
}

fn padded_pdf(text: &str, pad_len: usize) -> Vec<u8> {
    let content = format!("BT /F1 12 Tf 72 720 Td ({text}) Tj ET");
    let mut pad = Vec::with_capacity(pad_len);
    let mut x = text.bytes().fold(0x9E37_79B9_7F4A_7C15_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01B3)
    }) | 1;
    while pad.len() < pad_len {
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        pad.extend_from_slice(&x.to_le_bytes());
    }
    pad.truncate(pad_len);
    let mut objs = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_string(),
        format!(
            "<< /Length {} >>\nstream\n{content}\nendstream",
            content.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_string(),
    ];
    if pad_len > 0 {
        objs.push(format!("<< /Length {pad_len} >>\nstream\n"));
    }
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objs.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}", i + 1).as_bytes());
        if i == 5 {
            out.extend_from_slice(&pad);
            out.extend_from_slice(b"\nendstream");
        }
        out.extend_from_slice(b"\nendobj\n");
    }
    let xref = out.len();
    out.extend_from_slice(format!("xref\n0 {}\n0000000000 65535 f \n", objs.len() + 1).as_bytes());
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objs.len() + 1
        )
        .as_bytes(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_pdfs_reach_their_size() {
        assert_eq!(pdf("x"), pdf_of_size("x", 0));
        for min in [100, 5_000, 16_384] {
            let p = pdf_of_size("some text", min);
            assert!(
                p.len() >= min && p.len() < min.max(900) + 100,
                "{min}: {}",
                p.len()
            );
            assert!(p.starts_with(b"%PDF-1.4\n") && p.ends_with(b"%%EOF\n"));
        }
    }
}
