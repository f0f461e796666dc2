//! One webhook POST, on a connection of its own to the one address that was checked: the host's
//! name is used for TLS (SNI, the certificate) and the `Host` header, never resolved again here.
//! No redirects are followed (a 3xx is an answer like any other), nothing is pooled, and the
//! answer's body is not read.
//!
//! hyper's own client connection, rather than a client with its resolver: pinning the address
//! is then the plain fact that we connect to it ourselves.

use std::{
    net::SocketAddr,
    sync::{Arc, OnceLock},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, header};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use url::Url;

/// Why no answer came.
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error("connecting to {0}: {1}")]
    Connect(SocketAddr, std::io::Error),
    #[error("TLS with {0}: {1}")]
    Tls(String, std::io::Error),
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Request(String),
}

/// POSTs `body` (JSON) with `headers` to `url` at `address`, within `timeout`; the answer's
/// status code.
pub async fn post(
    url: &Url,
    address: SocketAddr,
    headers: &[(&'static str, String)],
    body: Bytes,
    timeout: Duration,
) -> Result<u16, PostError> {
    tokio::time::timeout(timeout, post_unbounded(url, address, headers, body))
        .await
        .map_err(|_| PostError::Timeout(timeout))?
}

async fn post_unbounded(
    url: &Url,
    address: SocketAddr,
    headers: &[(&'static str, String)],
    body: Bytes,
) -> Result<u16, PostError> {
    let host = url.host_str().unwrap_or_default().to_owned();
    let authority = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.clone(),
    };
    let mut path = url.path().to_owned();
    if let Some(query) = url.query() {
        path.push('?');
        path.push_str(query);
    }
    let mut request = Request::post(path)
        .header(header::HOST, authority)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::USER_AGENT, "CallingCard-Webhooks/1")
        .header(header::CONNECTION, "close");
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let request = request
        .body(Full::new(body))
        .map_err(|e| PostError::Request(e.to_string()))?;
    let stream = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|e| PostError::Connect(address, e))?;
    let _ = stream.set_nodelay(true);
    if url.scheme() == "https" {
        // An IP literal in brackets is no DNS name: rustls takes it bare.
        let name = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let server_name = ServerName::try_from(name.clone())
            .map_err(|e| PostError::Request(format!("{name} is no TLS server name: {e}")))?;
        let tls = tokio_rustls::TlsConnector::from(tls_config())
            .connect(server_name, stream)
            .await
            .map_err(|e| PostError::Tls(name, e))?;
        send(tls, request).await
    } else {
        send(stream, request).await
    }
}

async fn send<S>(stream: S, request: Request<Full<Bytes>>) -> Result<u16, PostError>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    // Driven beside the request, and ended with it (the body of the answer is not wanted).
    let connection = tokio::spawn(connection);
    let status = sender
        .send_request(request)
        .await
        .map(|r| r.status().as_u16());
    connection.abort();
    Ok(status?)
}

/// The public roots (webpki-roots), TLS 1.2 and 1.3, made once.
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots =
                rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("ring supports the default TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tls_configuration_builds_with_the_public_roots() {
        let config = tls_config();
        assert!(Arc::ptr_eq(&config, &tls_config()), "made once");
    }

    #[tokio::test]
    async fn a_plain_http_server_is_no_tls_peer_and_nothing_is_followed() {
        // A server that answers anything with a redirect, in plain HTTP.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    use tokio::io::{AsyncReadExt, AsyncWriteExt};
                    let mut buffer = [0u8; 4096];
                    let _ = socket.read(&mut buffer).await;
                    let _ = socket
                        .write_all(b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\n\r\n")
                        .await;
                });
            }
        });
        let timeout = Duration::from_secs(10);
        let http: Url = format!("http://{address}/in").parse().unwrap();
        let status = post(&http, address, &[], Bytes::from_static(b"{}"), timeout).await;
        assert_eq!(status.unwrap(), 302);
        let https: Url = format!("https://{address}/in").parse().unwrap();
        let refused = post(&https, address, &[], Bytes::from_static(b"{}"), timeout).await;
        assert!(matches!(refused, Err(PostError::Tls(..))), "{refused:?}");
    }
}
