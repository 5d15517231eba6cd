//! The first read on an open port: what a server-first protocol says
//! unprompted (SSH, SMTP, FTP, MySQL, ...). Bounded in bytes and in time, so a
//! silent or endless service costs at most `timeout` and `max_bytes`.

use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// How long to wait for a greeting on `port`: `full`, or less where the
/// port's usual service waits for the client and detection will ask it
/// right after (`by_port`).
pub fn greeting_wait(port: u16, full: Duration, by_port: bool) -> Duration {
    if by_port { vantage_detect::plan::listen_time(port, full) } else { full }
}

/// Reads until `max_bytes`, EOF, or `timeout` after the first byte is awaited.
pub async fn read_banner(stream: &mut TcpStream, timeout: Duration, max_bytes: usize) -> Vec<u8> {
    if max_bytes == 0 || timeout.is_zero() {
        return Vec::new();
    }
    let mut buf = vec![0u8; max_bytes];
    let mut filled = 0;
    let deadline = tokio::time::Instant::now() + timeout;
    // A banner often arrives in one segment; keep reading briefly after the
    // first one in case it was split, but never past the deadline.
    let mut wait_until = deadline;
    while filled < max_bytes {
        match tokio::time::timeout_at(wait_until, stream.read(&mut buf[filled..])).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => {
                filled += n;
                wait_until = deadline.min(tokio::time::Instant::now() + Duration::from_millis(50));
            }
        }
    }
    buf.truncate(filled);
    buf
}

/// Reads the banner, then leaves the connection to close with a RST when
/// the stream is dropped: no TIME_WAIT left behind on either side, however
/// many open ports a scan visits.
pub async fn read_banner_then_reset(stream: &mut TcpStream, timeout: Duration, max_bytes: usize) -> Vec<u8> {
    let banner = read_banner(stream, timeout, max_bytes).await;
    let _ = socket2::SockRef::from(&*stream).set_linger(Some(Duration::ZERO));
    banner
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    use super::*;

    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (server, _) = l.accept().await.unwrap();
        (client, server)
    }

    #[tokio::test]
    async fn reads_a_banner() {
        let (mut c, mut s) = pair().await;
        s.write_all(b"SSH-2.0-Test\r\n").await.unwrap();
        assert_eq!(read_banner(&mut c, Duration::from_secs(2), 1024).await, b"SSH-2.0-Test\r\n");
    }

    #[tokio::test]
    async fn caps_the_size() {
        let (mut c, mut s) = pair().await;
        s.write_all(&[b'A'; 5000]).await.unwrap();
        assert_eq!(read_banner(&mut c, Duration::from_secs(2), 100).await.len(), 100);
    }

    #[tokio::test(start_paused = true)]
    async fn silent_service_costs_the_timeout_only() {
        let (mut c, _s) = pair().await;
        let start = tokio::time::Instant::now();
        assert!(read_banner(&mut c, Duration::from_millis(300), 64).await.is_empty());
        assert!(start.elapsed() >= Duration::from_millis(300));
    }
}
