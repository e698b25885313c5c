#![forbid(unsafe_code)]

pub mod client;

/// `--version`'s long form: the version, and which MD5 this process uses
/// (our x86-64 assembly, OpenSSL's loaded at run time, or the portable one).
pub fn long_version() -> &'static str {
    static LINE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    LINE.get_or_init(|| {
        format!(
            "{} (MD5: {})",
            env!("CARGO_PKG_VERSION"),
            ftpsh_core::hashing::Md5::implementation()
        )
    })
}

pub mod server;
pub mod shell;
