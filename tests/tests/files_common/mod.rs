//! What the sanity, renamer and decrypt tests share: a private archive (database on either
//! engine, Redis prefix, media and data folders) with documents planted straight into the
//! database and the media folder, and workers serving it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use paperboy_shared::db::{Db, NewDocument, documents, migrate};
use paperboy_shared::job::Job;
use paperboy_shared::media::{Folder, Media};
use paperboy_shared::queue::{JobRecord, Queue};
use paperboy_tests::db::TestDb;
use paperboy_tests::redis::TestRedis;
use paperboy_tests::worker::{WorkerBuilder, WorkerProcess};
use sha2::Digest;

pub struct Archive {
    pub redis: TestRedis,
    pub queue: Queue,
    pub db: Db,
    pub db_url: String,
    pub dir: tempfile::TempDir,
    pub media: Media,
}

impl Archive {
    pub async fn new(tdb: &TestDb) -> Archive {
        migrate::migrate_latest(&tdb.db).await.expect("migrate");
        let redis = TestRedis::new();
        let queue = redis.queue().await;
        let dir = tempfile::tempdir().unwrap();
        let media = Media::new(dir.path().join("media"));
        media.ensure_dirs().unwrap();
        Archive {
            redis,
            queue,
            db: tdb.db.clone(),
            db_url: tdb.url.clone(),
            dir,
            media,
        }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A worker on this archive serving `queues`, with `env` on top.
    pub fn worker(&self, queues: &str, env: &[(&str, &str)]) -> WorkerProcess {
        let mut b = WorkerBuilder::new(&self.redis.url, &self.redis.prefix)
            .queues(queues)
            .concurrency(2)
            .env("PAPERBOY_DATABASE_URL", &self.db_url)
            .env("PAPERBOY_MEDIA_ROOT", self.media.root().to_str().unwrap())
            .env("PAPERBOY_DATA_DIR", self.data().to_str().unwrap());
        for (k, v) in env {
            b = b.env(k, v);
        }
        b.spawn()
    }

    /// Plants a document: its row, its original (and archive, and thumbnail) with matching
    /// SHA-256 checksums. Returns the id.
    pub async fn plant(&self, p: Plant<'_>) -> i64 {
        let sum = |b: &[u8]| hex::encode(sha2::Sha256::digest(b));
        let mut tx = self.db.begin().await.unwrap();
        let new = NewDocument {
            title: p.title.to_string(),
            content: p.content.to_string(),
            mime_type: p.mime.to_string(),
            checksum: sum(p.original),
            archive_checksum: p.archive.map(sum),
            created: "2020-06-25".into(),
            original_filename: Some(format!("{}.{}", p.title, p.ext)),
            correspondent_id: p.correspondent,
            ..Default::default()
        };
        let id = documents::insert(&mut tx, &new).await.unwrap();
        let filename = format!("{id:07}.{}", p.ext);
        let archive = p.archive.map(|_| format!("{id:07}.pdf"));
        documents::set_files(
            &mut tx,
            id,
            Some(&filename),
            archive.as_deref(),
            new.archive_checksum.as_deref(),
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        self.media
            .write(Folder::Originals, &filename, p.original)
            .unwrap();
        if let (Some(a), Some(bytes)) = (&archive, p.archive) {
            self.media.write(Folder::Archive, a, bytes).unwrap();
        }
        self.media.write_thumbnail(id, b"RIFF....WEBP").unwrap();
        id
    }

    /// Enqueues `job` and waits (≤ 60 s) for its end.
    pub async fn run(&self, job: &Job) -> JobRecord {
        let id = self.queue.enqueue(job).await.unwrap().id().to_string();
        self.wait(&id).await
    }

    pub async fn wait(&self, id: &str) -> JobRecord {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = self.queue.get(id).await.unwrap();
            if r.state.is_terminal() {
                return r;
            }
            assert!(Instant::now() < deadline, "job {id} did not end: {r:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every file under a media folder, relative to it, sorted.
    pub fn files(&self, folder: Folder) -> Vec<String> {
        let root = self.media.dir(folder);
        let mut v: Vec<String> = walkdir::WalkDir::new(&root)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_file())
            .map(|e| {
                e.path()
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        v.sort();
        v
    }
}

/// A document to plant.
#[derive(Clone, Copy)]
pub struct Plant<'a> {
    pub title: &'a str,
    pub content: &'a str,
    pub mime: &'a str,
    pub ext: &'a str,
    pub original: &'a [u8],
    pub archive: Option<&'a [u8]>,
    pub correspondent: Option<i64>,
}

impl<'a> Plant<'a> {
    /// A PDF with an archive version and text.
    pub fn pdf(title: &'a str, original: &'a [u8]) -> Plant<'a> {
        Plant {
            title,
            content: "some text",
            mime: "application/pdf",
            ext: "pdf",
            original,
            archive: Some(b"%PDF-archive"),
            correspondent: None,
        }
    }
}

/// SHA-256 hex of a file.
pub fn sha256_of(path: &Path) -> String {
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}
