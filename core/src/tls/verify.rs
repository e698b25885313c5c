//! The client's check of the server's certificate.
//!
//! First normal WebPKI validation for the server name under the system's
//! trusted CAs (`rustls-native-certs`, which honours `SSL_CERT_FILE` and
//! `SSL_CERT_DIR`); failing that, the certificate's SPKI fingerprint must equal
//! the pin. With no pin the handshake fails, but the fingerprint seen is
//! recorded so that the caller can show it and ask (trust on first use).
//! Handshake signatures are always verified.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error, RootCertStore, SignatureScheme};

use super::identity::{fingerprint_of_cert, parse_fingerprint};

/// What the client concluded about the server's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// The certificate is valid for the server name under a trusted CA.
    CaValid { fingerprint: String },
    /// The certificate's key has the pinned fingerprint.
    Pinned { fingerprint: String },
    /// Neither: no pin was given. Show `fingerprint` and ask the user.
    Unknown { fingerprint: String },
    /// The pinned fingerprint differs from the one presented.
    Mismatch { expected: String, got: String },
}

impl Trust {
    /// Whether the connection may go on.
    pub fn is_trusted(&self) -> bool {
        matches!(self, Trust::CaValid { .. } | Trust::Pinned { .. })
    }
    /// The fingerprint the server presented.
    pub fn fingerprint(&self) -> &str {
        match self {
            Trust::CaValid { fingerprint }
            | Trust::Pinned { fingerprint }
            | Trust::Unknown { fingerprint } => fingerprint,
            Trust::Mismatch { got, .. } => got,
        }
    }
}

impl fmt::Display for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Trust::CaValid { .. } => f.write_str("certificate valid under a trusted CA"),
            Trust::Pinned { fingerprint } => write!(f, "pinned identity {fingerprint}"),
            Trust::Unknown { fingerprint } => {
                write!(f, "unknown server identity {fingerprint}")
            }
            Trust::Mismatch { expected, got } => {
                write!(f, "server identity changed: expected {expected}, got {got}")
            }
        }
    }
}

/// What the verifier saw during one handshake.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    /// The conclusion; `None` until the certificate was checked.
    pub trust: Option<Trust>,
    /// Why CA validation failed, when it was tried and failed (for messages:
    /// "not valid for name", "expired", "unknown issuer").
    pub ca_error: Option<String>,
}

/// The client-side trust settings: CA roots (loaded once), the pin for this
/// connection, and the handshake deadline. Cheap to clone.
#[derive(Clone)]
pub struct ClientTrust {
    ca: Option<Arc<WebPkiServerVerifier>>,
    roots: usize,
    root_errors: Vec<String>,
    /// The expected fingerprint (canonical form), if any.
    pub pin: Option<String>,
    /// The whole handshake must finish within this.
    pub handshake_timeout: Duration,
}

impl fmt::Debug for ClientTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTrust")
            .field("roots", &self.roots)
            .field("pin", &self.pin)
            .field("handshake_timeout", &self.handshake_timeout)
            .finish()
    }
}

impl ClientTrust {
    /// Trusts the system's CAs as `rustls-native-certs` finds them.
    /// `SSL_CERT_FILE` / `SSL_CERT_DIR`, when set, *replace* the system store.
    /// The variables are read now, on every call: load once per process.
    /// Unreadable files are not fatal (see [`ClientTrust::root_errors`]):
    /// pinning still works with no roots at all.
    pub fn system() -> ClientTrust {
        let found = rustls_native_certs::load_native_certs();
        let mut roots = RootCertStore::empty();
        let (_added, _ignored) = roots.add_parsable_certificates(found.certs);
        let mut t = Self::with_roots(roots);
        t.root_errors = found.errors.iter().map(|e| e.to_string()).collect();
        t
    }

    /// Trusts exactly these roots.
    pub fn with_roots(roots: RootCertStore) -> ClientTrust {
        let n = roots.len();
        let ca = if n == 0 {
            None
        } else {
            WebPkiServerVerifier::builder_with_provider(Arc::new(roots), super::provider())
                .build()
                .ok()
        };
        ClientTrust {
            ca,
            roots: n,
            root_errors: Vec::new(),
            pin: None,
            handshake_timeout: super::DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }

    /// Trusts no CA: pins only.
    pub fn pins_only() -> ClientTrust {
        Self::with_roots(RootCertStore::empty())
    }

    /// Sets (or clears) the pin; the text is checked and made canonical.
    pub fn with_pin(mut self, pin: Option<&str>) -> Result<ClientTrust, String> {
        self.pin = pin.map(parse_fingerprint).transpose()?;
        Ok(self)
    }

    pub fn with_timeout(mut self, d: Duration) -> ClientTrust {
        self.handshake_timeout = d;
        self
    }

    /// How many CA roots were loaded.
    pub fn root_count(&self) -> usize {
        self.roots
    }

    /// Problems met while loading the system roots (files named by
    /// `SSL_CERT_FILE` that are missing, unreadable PEM, ...).
    pub fn root_errors(&self) -> &[String] {
        &self.root_errors
    }

    /// A fresh verifier for one connection (its record is per connection).
    pub fn verifier(&self) -> Arc<PinningVerifier> {
        let provider = super::provider();
        Arc::new(PinningVerifier {
            ca: self.ca.clone(),
            pin: self.pin.clone(),
            algs: provider.signature_verification_algorithms,
            seen: Arc::new(Mutex::new(Seen::default())),
        })
    }

    /// A TLS 1.3-only client configuration around `verifier`. Resumption is
    /// off, so the verifier runs on every connection.
    pub fn client_config(&self, verifier: Arc<PinningVerifier>) -> Arc<rustls::ClientConfig> {
        let mut c = rustls::ClientConfig::builder_with_provider(super::provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("ring supports TLS 1.3")
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        c.alpn_protocols = vec![super::ALPN.to_vec()];
        c.resumption = rustls::client::Resumption::disabled();
        c.enable_early_data = false;
        Arc::new(c)
    }
}

/// CA validation, then the pin. One per connection: it records what it saw.
#[derive(Debug)]
pub struct PinningVerifier {
    ca: Option<Arc<WebPkiServerVerifier>>,
    pin: Option<String>,
    algs: WebPkiSupportedAlgorithms,
    seen: Arc<Mutex<Seen>>,
}

impl PinningVerifier {
    /// What the last certificate check concluded.
    pub fn seen(&self) -> Seen {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The slot itself, for a caller that keeps it past the verifier.
    pub fn slot(&self) -> Arc<Mutex<Seen>> {
        Arc::clone(&self.seen)
    }

    fn record(&self, trust: Trust, ca_error: Option<String>) {
        let mut s = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        s.trust = Some(trust);
        s.ca_error = ca_error;
    }
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, Error> {
        let fingerprint = fingerprint_of_cert(end_entity)
            .map_err(|_| Error::InvalidCertificate(CertificateError::BadEncoding))?;
        let mut ca_error = None;
        if let Some(ca) = &self.ca {
            match ca.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            {
                Ok(v) => {
                    self.record(Trust::CaValid { fingerprint }, None);
                    return Ok(v);
                }
                Err(e) => ca_error = Some(e.to_string()),
            }
        }
        match &self.pin {
            Some(pin) if *pin == fingerprint => {
                self.record(Trust::Pinned { fingerprint }, ca_error);
                Ok(ServerCertVerified::assertion())
            }
            Some(pin) => {
                self.record(
                    Trust::Mismatch {
                        expected: pin.clone(),
                        got: fingerprint,
                    },
                    ca_error,
                );
                Err(Error::InvalidCertificate(
                    CertificateError::ApplicationVerificationFailure,
                ))
            }
            None => {
                self.record(Trust::Unknown { fingerprint }, ca_error);
                Err(Error::InvalidCertificate(CertificateError::UnknownIssuer))
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}
