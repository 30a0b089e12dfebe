//! Where a source in a Schema Registry format (`'format' = 'avro-confluent'`) finds the
//! schemas its records were written with.

/// The registry URL that selects the registry embedded in `floe`.
pub const EMBEDDED_REGISTRY: &str = "embedded";

/// Which subject holds a source's schema (the registry's subject naming strategy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectName {
    /// `<topic>-value`, the registry clients' default.
    Topic,
    /// The fully qualified record name (`'avro-confluent.record-name'`).
    Record(String),
    /// `<topic>-<record name>`.
    TopicRecord(String),
    /// A subject named outright (`'avro-confluent.subject'`).
    Explicit(String),
}

impl SubjectName {
    /// The subject of the values of `topic`.
    pub fn subject(&self, topic: &str) -> String {
        match self {
            Self::Topic => format!("{topic}-value"),
            Self::Record(r) => r.clone(),
            Self::TopicRecord(r) => format!("{topic}-{r}"),
            Self::Explicit(s) => s.clone(),
        }
    }
}

/// Settings of the Schema Registry client.
#[derive(Clone, PartialEq, Eq)]
pub struct RegistryOptions {
    /// Base URL (`'avro-confluent.url'`), or `embedded`.
    pub url: String,
    /// `user:password` for HTTP basic authentication.
    pub basic_auth: Option<String>,
    /// A bearer token, sent as `Authorization: Bearer …`.
    pub bearer_token: Option<String>,
    /// A PEM file of CA certificates trusted for `https://` URLs, besides the system's.
    pub ca_location: Option<String>,
    /// Which subject holds the source's schema.
    pub subject: SubjectName,
}

impl RegistryOptions {
    /// True when the job uses the registry embedded in `floe`.
    pub fn is_embedded(&self) -> bool {
        self.url == EMBEDDED_REGISTRY
    }
}

impl std::fmt::Debug for RegistryOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |o: &Option<String>| o.as_ref().map(|_| "<redacted>");
        f.debug_struct("RegistryOptions")
            .field("url", &crate::redact::redact_uri(&self.url))
            .field("basic_auth", &hidden(&self.basic_auth))
            .field("bearer_token", &hidden(&self.bearer_token))
            .field("ca_location", &self.ca_location)
            .field("subject", &self.subject)
            .finish()
    }
}
