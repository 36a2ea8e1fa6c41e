//! Master keys: wrapping and unwrapping a file's data key (or a Shamir share of
//! it) for one recipient. This layer knows nothing of documents or metadata
//! layout; it turns secrets into `enc` strings and back.

pub mod age;
pub mod kms;

/// Why a master key could not wrap or unwrap.
#[derive(Clone, Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0:?} is not an age recipient (expected age1… as printed by `age-keygen -y` or `git sops keygen`)")]
    BadAgeRecipient(String),
    #[error("age encryption failed: {0}")]
    AgeEncrypt(String),
    #[error(
        "the age identity in {source_name} is invalid on line {line}: expected AGE-SECRET-KEY-1…"
    )]
    BadIdentity { source_name: String, line: usize },
    #[error("could not read {source_name}: {message}")]
    Source {
        source_name: String,
        message: String,
    },
    #[error("none of the available age identities ({tried}) is a recipient of this key")]
    NoMatchingIdentity { tried: String },
    #[error("no age identity found: set SOPS_AGE_KEY_FILE, SOPS_AGE_KEY or SOPS_AGE_KEY_CMD, or create {default_file} with `git sops keygen`")]
    NoIdentities { default_file: String },
    #[error("the age-encrypted data key is damaged: {0}")]
    Damaged(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("not tried: this command uses local keys only")]
    NotTried,
    #[error("{arn:?} is not an AWS KMS key ARN: expected arn:aws:kms:REGION:ACCOUNT:key/KEY-ID (or …:alias/NAME); fix it in .sops.yaml or on the command line")]
    KmsBadArn { arn: String },
    #[error("{role:?} is not an IAM role ARN: expected arn:aws:iam::ACCOUNT:role/NAME (sops' syntax is KEY-ARN+ROLE-ARN)")]
    KmsBadRole { role: String },
    #[error("the KMS-wrapped data key (`enc`) is not valid base64 ({0}): the metadata was damaged or hand-edited; restore it from version control")]
    KmsBadEnc(String),
    #[error("AWS denied {action} (AccessDeniedException: {detail}); ask the key's administrators to allow {action} for your identity in the key policy or IAM, or use a profile or role that has it")]
    KmsAccessDenied {
        action: &'static str,
        detail: String,
    },
    #[error("no AWS credentials{} ({detail}); sign in (e.g. `aws sso login{}`), set AWS_PROFILE, or set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY",
        if profile.is_empty() { String::new() } else { format!(" for profile {profile:?}") },
        if profile.is_empty() { String::new() } else { format!(" --profile {profile}") })]
    KmsNoCredentials { profile: String, detail: String },
    #[error("AWS rejected the credentials ({code}: {detail}); they are invalid or expired: refresh them (e.g. `aws sso login`) or use another profile")]
    KmsBadCredentials { code: String, detail: String },
    #[error("could not assume role {role} ({detail}); check that your identity may call sts:AssumeRole on it and that the role's trust policy allows you")]
    KmsAssumeRole { role: String, detail: String },
    #[error("this build has no AWS KMS support (built without the `kms` feature); use a build with it, or a key group with an age key you hold")]
    KmsNotBuilt,
    #[error("KMS refused to decrypt the data key (InvalidCiphertextException): the encryption context {context} is not the one it was encrypted with, or `enc` is damaged; restore the key entry's `context` (and `enc`) from version control")]
    KmsWrongContext { context: String },
    #[error("the KMS key was not found in region {region} (NotFoundException: {detail}); check the ARN's account, region and key id")]
    KmsKeyNotFound { region: String, detail: String },
    #[error("the KMS key cannot be used ({code}: {detail}); it is disabled or pending deletion: ask its administrators to re-enable it, or use another key")]
    KmsKeyUnusable { code: String, detail: String },
    #[error("could not reach AWS KMS at {endpoint} ({detail}); check the network and proxy settings, and AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_KMS if set")]
    KmsUnreachable { endpoint: String, detail: String },
    #[error("AWS KMS at {endpoint} did not answer within {secs} s; check the network, or allow more time with GIT_SOPS_KMS_TIMEOUT=SECONDS")]
    KmsTimeout { endpoint: String, secs: f64 },
    #[error("AWS KMS call failed: {0}")]
    Kms(String),
}
