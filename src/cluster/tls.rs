//! Mutual TLS between nodes, derived from the cluster secret.
//!
//! Every node turns `TOLLGATE_CLUSTER_SECRET` into the same Ed25519 key (the
//! seed is a SHA-256 of the secret under a fixed label) and from it the same
//! cluster CA: same subject, same key, so every node's copy is the same trust
//! anchor. At start a node makes a fresh leaf key and has its own CA copy sign
//! it. Both ends of every QUIC connection present their leaf and require the
//! other's to chain to the CA, so a process without the secret can neither
//! connect to a node nor accept a node's connection. TLS 1.3 only, with the
//! `ring` provider (the one quinn is built with here).

use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose,
    PKCS_ECDSA_P256_SHA256, PKCS_ED25519,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::state::NodeId;

/// The name every leaf certificate carries and every client checks.
pub const SERVER_NAME: &str = "tollgate-node";

/// Label mixed into the secret so the CA key is useless for anything else.
const CA_LABEL: &str = "tollgate cluster CA v2";

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cluster secret must be at least 32 characters")]
    WeakSecret,
    #[error("certificate: {0}")]
    Cert(#[from] rcgen::Error),
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("tls verifier: {0}")]
    Verifier(String),
    #[error("quic crypto: {0}")]
    Quic(String),
}

/// The two halves of a node's QUIC configuration.
pub struct NodeTls {
    pub server: quinn::ServerConfig,
    pub client: quinn::ClientConfig,
}

/// The PKCS#8 (v1) document of the Ed25519 key whose seed is `seed`.
fn ed25519_pkcs8(seed: &[u8; 32]) -> Vec<u8> {
    // SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING { OCTET STRING seed } }
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(seed);
    der
}

fn ca_params() -> Result<CertificateParams, rcgen::Error> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "Tollgate cluster CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = rcgen::date_time_ymd(2024, 1, 1);
    params.not_after = rcgen::date_time_ymd(2124, 1, 1);
    Ok(params)
}

/// The cluster CA's key: Ed25519 with a seed derived from the secret.
fn ca_key(secret: &str) -> Result<KeyPair, rcgen::Error> {
    let seed = crate::config::derive_key(secret.as_bytes(), CA_LABEL);
    KeyPair::from_pkcs8_der_and_sign_algo(
        &PrivatePkcs8KeyDer::from(ed25519_pkcs8(&seed)),
        &PKCS_ED25519,
    )
}

/// The DNS name a node's certificate carries for its id, beside
/// [`SERVER_NAME`]: what binds the id a peer claims in its envelopes to the
/// certificate it connected with.
pub fn node_name(node: NodeId) -> String {
    format!("n{node:016x}.{SERVER_NAME}")
}

/// Whether the certificate `conn`'s peer presented (already verified
/// against the cluster CA in the handshake) was issued for `node`.
pub fn certified_as(conn: &quinn::Connection, node: NodeId) -> bool {
    let Some(identity) = conn.peer_identity() else {
        return false;
    };
    let Ok(certs) = identity.downcast::<Vec<CertificateDer<'static>>>() else {
        return false;
    };
    let Some(leaf) = certs.first() else {
        return false;
    };
    let Ok(parsed) = rustls::server::ParsedCertificate::try_from(leaf) else {
        return false;
    };
    let Ok(name) = rustls::pki_types::ServerName::try_from(node_name(node)) else {
        return false;
    };
    rustls::client::verify_server_name(&parsed, &name).is_ok()
}

/// The node a connection's certificate proves its peer to be, learned from
/// the first envelope that claims an id the certificate carries: every
/// envelope on the connection must then come from that node.
pub struct PeerIdentity {
    conn: quinn::Connection,
    proven: std::sync::OnceLock<NodeId>,
}

impl PeerIdentity {
    pub fn new(conn: quinn::Connection) -> PeerIdentity {
        PeerIdentity {
            conn,
            proven: std::sync::OnceLock::new(),
        }
    }

    /// Whether an envelope claiming to come from `from` may be believed.
    pub fn admits(&self, from: NodeId) -> bool {
        if let Some(p) = self.proven.get() {
            return *p == from;
        }
        if certified_as(&self.conn, from) {
            return *self.proven.get_or_init(|| from) == from;
        }
        false
    }
}

/// Builds node `node`'s QUIC client and server configs from the cluster
/// secret: its certificate, signed by the CA every holder of `secret`
/// derives, names [`SERVER_NAME`] and [`node_name`]`(node)`.
pub fn node_tls(secret: &str, idle_timeout: Duration, node: NodeId) -> Result<NodeTls, TlsError> {
    if secret.len() < 32 {
        return Err(TlsError::WeakSecret);
    }
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params()?, ca_key(secret)?)?;

    let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut leaf_params = CertificateParams::new(vec![SERVER_NAME.to_string(), node_name(node)])?;
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, SERVER_NAME);
    let now = time_now();
    leaf_params.not_before = now - time::Duration::days(1);
    leaf_params.not_after = now + time::Duration::days(3650);
    let leaf = leaf_params.signed_by(&leaf_key, &ca)?;
    let chain = vec![leaf.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));

    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca.der().to_vec()))?;
    let roots = Arc::new(roots);
    let provider = Arc::new(rustls::crypto::ring::default_provider());

    let client_verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        roots.clone(),
        provider.clone(),
    )
    .build()
    .map_err(|e| TlsError::Verifier(e.to_string()))?;
    let server_crypto = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(chain.clone(), key.clone_key())?;
    let client_crypto = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;

    let mut transport = quinn::TransportConfig::default();
    transport.max_idle_timeout(Some(
        idle_timeout
            .try_into()
            .map_err(|e: quinn::VarIntBoundsExceeded| TlsError::Quic(e.to_string()))?,
    ));
    transport.keep_alive_interval(Some(idle_timeout / 3));
    let transport = Arc::new(transport);

    let server_quic = quinn::crypto::rustls::QuicServerConfig::try_from(server_crypto)
        .map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(server_quic));
    server.transport_config(transport.clone());
    let client_quic = quinn::crypto::rustls::QuicClientConfig::try_from(client_crypto)
        .map_err(|e| TlsError::Quic(e.to_string()))?;
    let mut client = quinn::ClientConfig::new(Arc::new(client_quic));
    client.transport_config(transport);
    Ok(NodeTls { server, client })
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_secret_gives_the_same_ca_everywhere() {
        let der = |secret: &str| ca_key(secret).unwrap().public_key_raw().to_vec();
        assert_eq!(der("a long cluster secret"), der("a long cluster secret"));
        assert_ne!(der("a long cluster secret"), der("another cluster secret"));
        assert!(matches!(
            node_tls("short", Duration::from_secs(10), 1),
            Err(TlsError::WeakSecret)
        ));
        assert!(
            node_tls(
                "a long cluster secret of 32 characters",
                Duration::from_secs(10),
                1
            )
            .is_ok()
        );
    }

    #[tokio::test]
    async fn a_connection_proves_the_id_its_certificate_names_and_no_other() {
        let secret = "a long cluster secret of 32 characters";
        let tls = |node| node_tls(secret, Duration::from_secs(10), node).unwrap();
        let (a, b) = (tls(0xa), tls(0xb));
        let local: std::net::SocketAddr = "127.0.0.1:0".parse().unwrap();
        let server = quinn::Endpoint::server(b.server, local).unwrap();
        let addr = server.local_addr().unwrap();
        let mut client = quinn::Endpoint::client(local).unwrap();
        client.set_default_client_config(a.client);
        let (outbound, inbound) = tokio::join!(
            async { client.connect(addr, SERVER_NAME).unwrap().await.unwrap() },
            async { server.accept().await.unwrap().await.unwrap() }
        );
        // Each side sees the other's certificate.
        assert!(certified_as(&inbound, 0xa));
        assert!(!certified_as(&inbound, 0xb));
        assert!(certified_as(&outbound, 0xb));
        let id = PeerIdentity::new(inbound);
        assert!(!id.admits(0xc), "an id the certificate does not carry");
        assert!(id.admits(0xa));
        assert!(!id.admits(0xb), "a second id on a proven connection");
        assert!(id.admits(0xa));
    }
}
