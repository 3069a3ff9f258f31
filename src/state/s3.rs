//! State in S3: `s3://bucket/key`, the previous version in `key.backup`, the lock in `key.lock`.
//! The lock is taken with a conditional write (`If-None-Match: *`), so two runners cannot both
//! hold it; each save is conditional on the version this run last read or wrote (`If-Match`),
//! so even a run whose lock was force-released cannot overwrite a newer state.

use std::sync::Mutex;

use aws_sdk_s3::error::ProvideErrorMetadata;
use aws_sdk_s3::primitives::ByteStream;

use super::{LockInfo, State, StateError, parse};

/// Puts of the lock tried while its holder keeps releasing it between our put and our read.
const LOCK_TRIES: usize = 3;

#[derive(Debug)]
pub struct S3Backend {
    client: aws_sdk_s3::Client,
    pub bucket: String,
    pub key: String,
    stack: String,
    /// ETag of the state object as this run last saw it; None when there was none.
    etag: Mutex<Option<String>>,
}

type SdkError<E> = aws_sdk_s3::error::SdkError<E, aws_smithy_runtime_api::http::Response>;

fn s3_error<E>(what: String) -> impl FnOnce(SdkError<E>) -> StateError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    move |e| {
        let detail = match (e.code(), e.message()) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c.to_string(),
            _ => crate::cloud::plain_error(&e),
        };
        StateError::Remote { what, detail }
    }
}

impl S3Backend {
    pub fn new(client: aws_sdk_s3::Client, bucket: &str, key: &str, stack: &str) -> Self {
        S3Backend {
            client,
            bucket: bucket.to_string(),
            key: key.to_string(),
            stack: stack.to_string(),
            etag: Mutex::new(None),
        }
    }

    pub fn describe(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }

    fn lock_key(&self) -> String {
        format!("{}.lock", self.key)
    }

    async fn get(&self, key: &str) -> Result<Option<(String, Option<String>)>, StateError> {
        let what = format!("s3:GetObject s3://{}/{key}", self.bucket);
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => {
                let etag = out.e_tag().map(str::to_string);
                let bytes = out.body.collect().await.map_err(|e| StateError::Remote {
                    what,
                    detail: e.to_string(),
                })?;
                Ok(Some((
                    String::from_utf8_lossy(&bytes.into_bytes()).into_owned(),
                    etag,
                )))
            }
            Err(e) if e.code() == Some("NoSuchKey") => Ok(None),
            Err(e) => Err(s3_error(what)(e)),
        }
    }

    pub async fn load(&self) -> Result<Option<State>, StateError> {
        let Some((text, etag)) = self.get(&self.key).await? else {
            *self.etag.lock().expect("not poisoned") = None;
            return Ok(None);
        };
        let state = parse(
            &text,
            &self.describe(),
            &format!("s3://{}/{}.backup", self.bucket, self.key),
            &self.stack,
        )?;
        *self.etag.lock().expect("not poisoned") = etag;
        Ok(Some(state))
    }

    pub async fn save(&self, state: &mut State) -> Result<(), StateError> {
        state.serial += 1;
        let text = serde_json::to_string_pretty(state).expect("state serializes") + "\n";
        let expected = self.etag.lock().expect("not poisoned").clone();
        if let Some(etag) = &expected {
            // Keep the version being replaced.
            let source = format!("{}/{}", self.bucket, self.key);
            self.client
                .copy_object()
                .bucket(&self.bucket)
                .key(format!("{}.backup", self.key))
                .copy_source(source)
                .copy_source_if_match(etag)
                .send()
                .await
                .map_err(s3_error(format!(
                    "s3:CopyObject to {}.backup",
                    self.describe()
                )))?;
        }
        let put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&self.key)
            .content_type("application/json");
        let put = match &expected {
            Some(etag) => put.if_match(etag),
            None => put.if_none_match("*"),
        };
        match put.body(ByteStream::from(text.into_bytes())).send().await {
            Ok(out) => {
                *self.etag.lock().expect("not poisoned") = out.e_tag().map(str::to_string);
                Ok(())
            }
            Err(e) if e.code() == Some("PreconditionFailed") => Err(StateError::Conflict {
                location: self.describe(),
            }),
            Err(e) => Err(s3_error(format!("s3:PutObject {}", self.describe()))(e)),
        }
    }

    /// Takes the lock, or reports who holds it. A holder that releases the lock between the
    /// refused put and the read of its lock has freed it: the put is tried again.
    pub async fn try_lock(&self, info: &LockInfo) -> Result<(), StateError> {
        let body = serde_json::to_vec_pretty(info).expect("serializes");
        for _ in 0..LOCK_TRIES {
            let r = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(self.lock_key())
                .if_none_match("*")
                .body(ByteStream::from(body.clone()))
                .send()
                .await;
            match r {
                Ok(_) => return Ok(()),
                Err(e) if e.code() == Some("PreconditionFailed") => {
                    if let Some(holder) = self.holder().await? {
                        return Err(StateError::Locked(Box::new(holder)));
                    }
                }
                Err(e) => {
                    return Err(s3_error(format!("s3:PutObject {}.lock", self.describe()))(
                        e,
                    ));
                }
            }
        }
        Err(StateError::Remote {
            what: format!("s3:GetObject {}.lock", self.describe()),
            detail: "the lock vanished while being read, each time; try again".into(),
        })
    }

    /// Who holds the lock; None if it was released meanwhile.
    async fn holder(&self) -> Result<Option<LockInfo>, StateError> {
        let Some((text, _)) = self.get(&self.lock_key()).await? else {
            return Ok(None);
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| StateError::Remote {
                what: format!("{}.lock", self.describe()),
                detail: e.to_string(),
            })
    }

    pub async fn unlock(&self, id: &str) -> Result<LockInfo, StateError> {
        let holder = match self.get(&self.lock_key()).await? {
            Some((text, _)) => serde_json::from_str::<LockInfo>(&text).ok(),
            None => None,
        };
        let Some(holder) = holder.filter(|h| h.id == id) else {
            return Err(StateError::NoSuchLock(id.to_string()));
        };
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.lock_key())
            .send()
            .await
            .map_err(s3_error(format!(
                "s3:DeleteObject {}.lock",
                self.describe()
            )))?;
        Ok(holder)
    }

    /// Whether the bucket keeps every version of the state (S3 versioning).
    pub async fn versioning_enabled(&self) -> bool {
        let out = self
            .client
            .get_bucket_versioning()
            .bucket(&self.bucket)
            .send()
            .await;
        out.ok()
            .and_then(|o| o.status)
            .is_some_and(|s| s.as_str() == "Enabled")
    }
}
