//! How to reach the bucket of an `s3://` store: the `[s3]` section of the configuration, read
//! by both builds (with and without the `s3` feature) so that the configuration is the same.

/// How to reach the bucket; empty fields fall back to the AWS variables. Its Debug output
/// hides the credentials.
#[derive(Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Settings {
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub allow_http: bool,
    /// The working copy's folder; empty: `~/.cache/mirato/s3/<bucket>/<prefix>`.
    pub cache_dir: String,
    /// How often a server takes in commits made by other machines.
    pub refresh_seconds: u64,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("allow_http", &self.allow_http)
            .field("cache_dir", &self.cache_dir)
            .field("refresh_seconds", &self.refresh_seconds)
            .finish_non_exhaustive()
    }
}
