//! How many executors a scheduler has: its `/readyz` probe, read over plain HTTP/1.1 on
//! the scheduler's own port (Ballista serves gRPC and HTTP there).
//!
//! A query sent to a scheduler that has no executor waits in its queue for ever, and
//! executors register a few seconds after they start: [`wait_for_executors`] is what
//! `quiver cluster wait` and every distributed query call first, so a script never needs
//! a `sleep` and a query with nothing to run it fails with a message instead of hanging.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{parse_address, ClusterError, DEFAULT_SCHEDULER_PORT};

/// Longest answer of the probe read (its body is one short line).
const MAX_ANSWER: u64 = 16 * 1024;

/// Executors registered with the scheduler at `scheduler` now, as its `/readyz` says.
pub async fn registered_executors(scheduler: &str) -> Result<usize, ClusterError> {
    let (host, port) = parse_address(scheduler, DEFAULT_SCHEDULER_PORT)?;
    let unreachable = |reason: String| ClusterError::Unreachable {
        addr: scheduler.to_string(),
        reason,
    };
    let probe = async {
        let mut conn = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let request =
            format!("GET /readyz HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n");
        conn.write_all(request.as_bytes())
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let mut answer = Vec::new();
        conn.take(MAX_ANSWER)
            .read_to_end(&mut answer)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        Ok::<_, ClusterError>(answer)
    };
    let answer = tokio::time::timeout(Duration::from_secs(10), probe)
        .await
        .map_err(|_| unreachable("no answer in 10 s".into()))??;
    parse_readyz(&String::from_utf8_lossy(&answer)).ok_or_else(|| {
        unreachable("it does not answer like a Ballista scheduler (GET /readyz)".into())
    })
}

/// The executor count in a `/readyz` answer (status line, headers, body): the body is
/// `ready: N executors registered` or `not ready: N/M executors registered`.
fn parse_readyz(answer: &str) -> Option<usize> {
    let (head, body) = answer.split_once("\r\n\r\n")?;
    let status = head.lines().next()?;
    if !(status.starts_with("HTTP/1.1 200") || status.starts_with("HTTP/1.1 503")) {
        return None;
    }
    let count = body
        .trim_start()
        .strip_prefix("not ready: ")
        .or_else(|| body.trim_start().strip_prefix("ready: "))?;
    let digits: String = count.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Wait until at least `executors` executors are registered with `scheduler`, polling
/// its probe; `Ok(count)` then. An address where nothing listens is retried too until
/// `timeout` (the scheduler may still be starting); then the error names the scheduler,
/// what it had, and how to start an executor.
pub async fn wait_for_executors(
    scheduler: &str,
    executors: usize,
    timeout: Duration,
) -> Result<usize, ClusterError> {
    let start = Instant::now();
    loop {
        let last = registered_executors(scheduler).await;
        match &last {
            Ok(n) if *n >= executors => return Ok(*n),
            Err(ClusterError::InvalidAddress { .. }) => return last,
            _ => {}
        }
        if start.elapsed() >= timeout {
            return Err(match last {
                Ok(n) => ClusterError::NoExecutors {
                    addr: scheduler.to_string(),
                    have: n,
                    want: executors,
                    waited: timeout.as_secs_f64(),
                },
                Err(e) => e,
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readyz_answers_parse() {
        let ok =
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\nready: 2 executors registered\n";
        assert_eq!(parse_readyz(ok), Some(2));
        let not =
            "HTTP/1.1 503 Service Unavailable\r\nx: y\r\n\r\nnot ready: 0/1 executors registered\n";
        assert_eq!(parse_readyz(not), Some(0));
        for bad in [
            "",
            "HTTP/1.1 404 Not Found\r\n\r\n{}",
            "HTTP/1.1 200 OK\r\n\r\nhello",
            "HTTP/1.1 200 OK\r\n\r\nready: many",
            "SSH-2.0-OpenSSH\r\n",
        ] {
            assert_eq!(parse_readyz(bad), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn nothing_listening_is_named_after_the_timeout() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(1);
        let addr = format!("127.0.0.1:{port}");
        let err = wait_for_executors(&addr, 1, Duration::from_millis(300))
            .await
            .expect_err("nothing listens there")
            .to_string();
        assert!(err.contains(&addr), "{err}");
    }
}
