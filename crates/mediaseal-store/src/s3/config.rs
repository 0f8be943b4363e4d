//! `s3://BUCKET[/PREFIX]?…` URLs: where and how to reach a bucket.

use std::fmt;

use crate::error::StoreError;
use crate::meta::StoreResult;
use crate::objects::validate_key;

/// Where and how to reach an S3 bucket. Parsed from
/// `s3://BUCKET[/PREFIX]?endpoint=URL&region=NAME&path_style=BOOL&part_size_mib=N&presign_endpoint=URL&sign_payload=BOOL`.
#[derive(Clone)]
pub struct S3Config {
    /// Bucket name.
    pub bucket: String,
    /// Key prefix inside the bucket (empty, or ending in `/`).
    pub prefix: String,
    /// Endpoint URL for S3-compatible stores (`http://127.0.0.1:3900`); AWS when absent.
    pub endpoint: Option<String>,
    /// Endpoint written into presigned URLs, when clients reach the store under another name
    /// than this server does.
    pub presign_endpoint: Option<String>,
    /// Signing region (`garage` for Garage's default).
    pub region: String,
    /// Path-style addressing (`endpoint/bucket/key`); the default with a custom endpoint.
    pub path_style: bool,
    /// Part size of multipart uploads, and the size under which an object is sent in one PUT.
    pub part_size: usize,
    /// Whether object bodies are covered by the SigV4 signature (`x-amz-content-sha256` set to
    /// the body's SHA-256) or sent as `UNSIGNED-PAYLOAD`. `None` (the default) decides by the
    /// endpoint: unsigned where the transport already protects the body (HTTPS, which AWS
    /// always is, or a loopback address), signed over plain HTTP to another host. See
    /// [`S3Config::signs_payload`].
    pub sign_payload: Option<bool>,
    /// Access key id; from `AWS_ACCESS_KEY_ID` when absent.
    pub access_key_id: Option<String>,
    /// Secret access key; from `AWS_SECRET_ACCESS_KEY` when absent. Never printed.
    pub secret_access_key: Option<String>,
    /// Session token for temporary credentials; from `AWS_SESSION_TOKEN` when absent.
    pub session_token: Option<String>,
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("endpoint", &self.endpoint)
            .field("presign_endpoint", &self.presign_endpoint)
            .field("region", &self.region)
            .field("path_style", &self.path_style)
            .field("part_size", &self.part_size)
            .field("sign_payload", &self.sign_payload)
            .field("access_key_id", &self.access_key_id)
            .field(
                "secret_access_key",
                &self.secret_access_key.as_ref().map(|_| "***"),
            )
            .field("session_token", &self.session_token.as_ref().map(|_| "***"))
            .finish()
    }
}

pub(super) fn config_error(msg: impl fmt::Display) -> StoreError {
    StoreError::Config(format!("object store URL: {msg}"))
}

impl S3Config {
    /// Parses an `s3://` URL. Credentials are never taken from the URL (it ends up in process
    /// listings and logs); they come from the environment or the config file.
    pub fn from_url(url: &str) -> StoreResult<Self> {
        let parsed = url::Url::parse(url).map_err(|e| config_error(format!("not a URL ({e})")))?;
        if parsed.scheme() != "s3" {
            return Err(config_error("expected s3://BUCKET[/PREFIX]?endpoint=…"));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(config_error(
                "credentials do not belong in the URL; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
                 (or s3_access_key_id / s3_secret_access_key in the config file)",
            ));
        }
        let bucket = parsed.host_str().unwrap_or_default().to_owned();
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b));
        if !bucket_ok {
            return Err(config_error(format!(
                "'{bucket}' is not an S3 bucket name (3-63 of a-z 0-9 . -)"
            )));
        }
        let prefix = parsed.path().trim_matches('/');
        let prefix = if prefix.is_empty() {
            String::new()
        } else {
            validate_key(prefix)
                .map_err(|_| config_error(format!("'{prefix}' is not a usable key prefix")))?;
            format!("{prefix}/")
        };
        let mut cfg = Self {
            bucket,
            prefix,
            endpoint: None,
            presign_endpoint: None,
            region: std::env::var("AWS_REGION")
                .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|_| "us-east-1".to_owned()),
            path_style: false,
            part_size: 8 << 20,
            sign_payload: None,
            access_key_id: None,
            secret_access_key: None,
            session_token: None,
        };
        let mut path_style = None;
        for (name, value) in parsed.query_pairs() {
            match &*name {
                "endpoint" => cfg.endpoint = Some(endpoint_url("endpoint", &value)?),
                "presign_endpoint" => {
                    cfg.presign_endpoint = Some(endpoint_url("presign_endpoint", &value)?)
                }
                "region" if !value.is_empty() => cfg.region = value.into_owned(),
                "path_style" => path_style = Some(parse_bool("path_style", &value)?),
                "sign_payload" => cfg.sign_payload = Some(parse_bool("sign_payload", &value)?),
                "part_size_mib" => {
                    let mib: usize = value
                        .parse()
                        .ok()
                        .filter(|m| (5..=1024).contains(m))
                        .ok_or_else(|| {
                            config_error(format!(
                                "part_size_mib='{value}' is not a number from 5 to 1024"
                            ))
                        })?;
                    cfg.part_size = mib << 20;
                }
                other => {
                    return Err(config_error(format!(
                        "unknown parameter '{other}' (known: endpoint, region, path_style, part_size_mib, presign_endpoint, sign_payload)"
                    )));
                }
            }
        }
        // Garage, MinIO and Ceph are usually reached by IP or one host name: path style.
        cfg.path_style = path_style.unwrap_or(cfg.endpoint.is_some());
        Ok(cfg)
    }

    /// Fills missing credentials from `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and
    /// `AWS_SESSION_TOKEN`.
    pub fn with_env_credentials(mut self) -> Self {
        if self.access_key_id.is_none() && self.secret_access_key.is_none() {
            self.access_key_id = std::env::var("AWS_ACCESS_KEY_ID")
                .ok()
                .filter(|v| !v.is_empty());
            self.secret_access_key = std::env::var("AWS_SECRET_ACCESS_KEY")
                .ok()
                .filter(|v| !v.is_empty());
            if self.session_token.is_none() {
                self.session_token = std::env::var("AWS_SESSION_TOKEN")
                    .ok()
                    .filter(|v| !v.is_empty());
            }
        }
        self
    }

    /// Whether object bodies are signed (their SHA-256 computed and sent in
    /// `x-amz-content-sha256`), after [`S3Config::sign_payload`] or its default.
    ///
    /// Why unsigned is safe where it is the default: the payload hash protects the body in
    /// transit, and nothing else. Every body this store writes is ciphertext whose own integrity
    /// is checked when it is read (the AEAD tag of `rsa-aes`, `s3-gcm` and the native format),
    /// and the request line and headers (key, metadata, length) stay signed either way. What is
    /// left, tampering on the wire, is what TLS stops, and on loopback there is no wire. Over
    /// plain HTTP to another host the body is signed, since `s3-cbc` has no integrity of its own.
    /// Skipping the hash saves a full pass over every object on the ingest path.
    pub fn signs_payload(&self) -> bool {
        if let Some(sign) = self.sign_payload {
            return sign;
        }
        let Some(endpoint) = &self.endpoint else {
            // AWS itself: HTTPS only.
            return false;
        };
        let Ok(url) = url::Url::parse(endpoint) else {
            return true;
        };
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
            None => false,
        };
        !(url.scheme() == "https" || loopback)
    }

    /// `s3://bucket/prefix` at the endpoint, for messages.
    pub fn describe(&self) -> String {
        let at = self
            .endpoint
            .as_deref()
            .map(|e| format!(" at {e}"))
            .unwrap_or_default();
        format!("s3://{}/{}{at}", self.bucket, self.prefix)
    }
}

fn parse_bool(name: &str, value: &str) -> StoreResult<bool> {
    match value {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        other => Err(config_error(format!(
            "{name}='{other}' is not true or false"
        ))),
    }
}

fn endpoint_url(name: &str, value: &str) -> StoreResult<String> {
    let u = url::Url::parse(value)
        .map_err(|e| config_error(format!("{name}='{value}' is not a URL ({e})")))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(config_error(format!(
            "{name}='{value}' must be an http:// or https:// URL"
        )));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(config_error(format!("{name} must not carry credentials")));
    }
    Ok(value.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_bad_ones_name_the_setting() {
        let c = S3Config::from_url("s3://media-bucket/tenant-a?endpoint=http://127.0.0.1:3900&region=garage&part_size_mib=16")
            .unwrap();
        assert_eq!(c.bucket, "media-bucket");
        assert_eq!(c.prefix, "tenant-a/");
        assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:3900"));
        assert_eq!(c.region, "garage");
        assert!(c.path_style, "custom endpoints default to path style");
        assert_eq!(c.part_size, 16 << 20);
        assert!(!c.signs_payload(), "loopback: the body travels unsigned");
        let aws = S3Config::from_url("s3://media-bucket?region=eu-west-1").unwrap();
        assert!(!aws.path_style && aws.endpoint.is_none() && aws.prefix.is_empty());

        for (url, needle) in [
            (
                "s3://AKIA:topsecret@bucket?endpoint=http://x",
                "credentials",
            ),
            ("s3://b?endpoint=http://x", "bucket name"),
            ("s3://bucket?endpoint=ftp://x", "endpoint"),
            ("s3://bucket?endpoint=http://u:pw@x", "endpoint"),
            ("s3://bucket?part_size_mib=1", "part_size_mib"),
            ("s3://bucket?path_style=maybe", "path_style"),
            ("s3://bucket?sign_payload=sometimes", "sign_payload"),
            ("s3://bucket?secret=x", "unknown parameter 'secret'"),
            ("s3://bucket/a%20b", "prefix"),
        ] {
            let e = S3Config::from_url(url).unwrap_err().to_string();
            assert!(e.contains(needle), "{url}: {e}");
            assert!(
                !e.contains("topsecret") && !e.contains(":pw@"),
                "{url} leaked a secret: {e}"
            );
        }
    }

    #[test]
    fn debug_hides_secrets() {
        let mut c = S3Config::from_url("s3://bucket").unwrap();
        c.access_key_id = Some("GKexample".into());
        c.secret_access_key = Some("supersecretvalue".into());
        let shown = format!("{c:?}");
        assert!(shown.contains("GKexample") && !shown.contains("supersecretvalue"));
    }

    #[test]
    fn payload_signing_follows_the_transport() {
        let signs = |url: &str| S3Config::from_url(url).unwrap().signs_payload();
        assert!(!signs("s3://bucket?region=eu-west-1"), "AWS is HTTPS");
        assert!(!signs("s3://bucket?endpoint=https://s3.example.net"));
        assert!(!signs("s3://bucket?endpoint=http://127.0.0.1:3900"));
        assert!(!signs("s3://bucket?endpoint=http://[::1]:3900"));
        assert!(!signs("s3://bucket?endpoint=http://localhost:3900"));
        assert!(
            signs("s3://bucket?endpoint=http://10.1.2.3:3900"),
            "plain HTTP on a network"
        );
        assert!(signs("s3://bucket?endpoint=http://garage.internal:3900"));
        assert!(signs(
            "s3://bucket?endpoint=http://127.0.0.1:3900&sign_payload=true"
        ));
        assert!(!signs(
            "s3://bucket?endpoint=http://10.1.2.3:3900&sign_payload=0"
        ));
    }
}
