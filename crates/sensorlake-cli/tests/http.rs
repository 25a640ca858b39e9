//! `HostConnection` at the HTTP/1.1 level, against a scripted server on a
//! real socket: exact request bytes, response framings (Content-Length,
//! chunked, until close), interim responses, keep-alive, and failures.

use std::collections::VecDeque;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use embedded_svc::http::client::{Client, Connection as _};
use embedded_svc::http::{Headers as _, Method, Status as _};
use embedded_svc::io::{Error as _, ErrorKind, Read as _, Write as _};
use sensorlake_cli::http::{HostConnection, HttpConfig, HttpError, HttpErrorCategory};

/// What the scripted server does with the next request.
enum Action {
    /// Write these bytes and keep the connection open.
    Respond(&'static [u8]),
    /// Write these bytes and close the connection.
    RespondAndClose(&'static [u8]),
    /// Close the connection without answering.
    Close,
}

/// A request as the server received it.
#[derive(Debug)]
struct Received {
    head: String,
    body: Vec<u8>,
}

struct Scripted {
    addr: SocketAddr,
    accepted: Arc<AtomicUsize>,
    requests: Receiver<Received>,
}

impl Scripted {
    fn start(actions: Vec<Action>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let actions = Arc::new(Mutex::new(VecDeque::from(actions)));
        let (sender, requests) = channel();
        let counter = Arc::clone(&accepted);
        std::thread::spawn(move || {
            for socket in listener.incoming() {
                let Ok(socket) = socket else { return };
                counter.fetch_add(1, Ordering::SeqCst);
                let actions = Arc::clone(&actions);
                let sender = sender.clone();
                std::thread::spawn(move || serve_connection(socket, &actions, &sender));
            }
        });
        Self {
            addr,
            accepted,
            requests,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn received(&self) -> Received {
        self.requests.recv_timeout(Duration::from_secs(5)).unwrap()
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

fn serve_connection(
    socket: TcpStream,
    actions: &Mutex<VecDeque<Action>>,
    sender: &Sender<Received>,
) {
    let mut writer = socket.try_clone().unwrap();
    let mut reader = BufReader::new(socket);
    loop {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            head.push_str(&line);
            if line == "\r\n" {
                break;
            }
        }
        let length = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().unwrap())
            })
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let _ = sender.send(Received { head, body });
        let action = actions.lock().unwrap().pop_front();
        match action {
            Some(Action::Respond(bytes)) => {
                writer.write_all(bytes).unwrap();
            }
            Some(Action::RespondAndClose(bytes)) => {
                writer.write_all(bytes).unwrap();
                return;
            }
            Some(Action::Close) | None => return,
        }
    }
}

fn client() -> Client<HostConnection> {
    Client::wrap(HostConnection::new(HttpConfig::default()).unwrap())
}

/// Status, reason and body of one exchange.
fn exchange(
    client: &mut Client<HostConnection>,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<(u16, Option<String>, Vec<u8>), HttpError> {
    let mut request = client.request(method, url, headers)?;
    request.write_all(body)?;
    let mut response = request.submit()?;
    let status = response.status();
    let reason = response.status_message().map(str::to_owned);
    let mut out = Vec::new();
    let mut buf = [0_u8; 3]; // small on purpose: exercises partial reads
    loop {
        let n = response.read(&mut buf)?;
        if n == 0 {
            return Ok((status, reason, out));
        }
        out.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn sends_the_request_as_given_and_reads_a_content_length_response() {
    let server = Scripted::start(vec![
        Action::Respond(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Thing: v\r\n\r\nok"),
        Action::Respond(b"HTTP/1.1 204 No Content\r\n\r\n"),
        Action::Respond(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ]);
    let mut client = client();
    let url = server.url("/b/device_id%3Da%20b/k.parquet?X-Amz-Expires=60");

    let mut request = client
        .request(
            Method::Put,
            &url,
            &[
                ("content-length", "5"),
                ("content-md5", "XUFAKrxLKna5cZ2REBfFkg=="),
            ],
        )
        .unwrap();
    request.write_all(b"hel").unwrap();
    request.write_all(b"lo").unwrap();
    let mut response = request.submit().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.status_message(), Some("OK"));
    assert_eq!(response.header("x-THING"), Some("v"));
    assert_eq!(response.content_len(), Some(2));
    let (headers, body) = response.split();
    assert_eq!(headers.status(), 200);
    assert_eq!(headers.header("Content-Length"), Some("2"));
    let mut buf = [0_u8; 16];
    assert_eq!(body.read(&mut buf).unwrap(), 2);
    assert_eq!(&buf[..2], b"ok");
    assert_eq!(body.read(&mut buf).unwrap(), 0);

    let received = server.received();
    let port = server.addr.port();
    // The request line as given, and exactly these headers (in any order and
    // case: header names are case-insensitive).
    let (request_line, headers) = received.head.split_once("\r\n").unwrap();
    assert_eq!(
        request_line,
        "PUT /b/device_id%3Da%20b/k.parquet?X-Amz-Expires=60 HTTP/1.1"
    );
    let mut headers: Vec<String> = headers
        .lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            let (name, value) = line.split_once(':').unwrap();
            format!("{}: {}", name.to_ascii_lowercase(), value.trim())
        })
        .collect();
    headers.sort();
    assert_eq!(
        headers,
        [
            "content-length: 5".to_owned(),
            "content-md5: XUFAKrxLKna5cZ2REBfFkg==".to_owned(),
            format!("host: 127.0.0.1:{port}"),
            format!("user-agent: sensorlake-host/{}", env!("CARGO_PKG_VERSION")),
        ]
    );
    assert!(received.head.ends_with("\r\n\r\n"));
    assert_eq!(received.body, b"hello");

    // No Content-Length: a GET goes without one, a PUT says 0 (like ESP-IDF).
    let (status, reason, body) =
        exchange(&mut client, Method::Get, &server.url("/x"), &[], &[]).unwrap();
    assert_eq!(
        (status, reason.as_deref(), body.as_slice()),
        (204, Some("No Content"), &b""[..])
    );
    assert!(
        !server
            .received()
            .head
            .to_ascii_lowercase()
            .contains("content-length")
    );
    let (status, _, _) = exchange(&mut client, Method::Put, &server.url("/y"), &[], &[]).unwrap();
    assert_eq!(status, 200);
    assert!(
        server
            .received()
            .head
            .to_ascii_lowercase()
            .contains("\r\ncontent-length: 0\r\n")
    );
    assert_eq!(
        server.accepted(),
        1,
        "all three requests on one kept-alive socket"
    );
}

#[test]
fn reads_a_chunked_response_and_keeps_the_socket() {
    let chunked: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
        5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n";
    let server = Scripted::start(vec![Action::Respond(chunked), Action::Respond(chunked)]);
    let mut client = client();
    for _ in 0..2 {
        let (status, _, body) =
            exchange(&mut client, Method::Get, &server.url("/c"), &[], &[]).unwrap();
        assert_eq!(status, 200);
        assert_eq!(body, b"hello world");
    }
    assert_eq!(server.accepted(), 1);
}

#[test]
fn reads_a_body_delimited_by_close_then_reconnects() {
    let server = Scripted::start(vec![
        Action::RespondAndClose(b"HTTP/1.1 200 OK\r\n\r\nuntil the end"),
        Action::RespondAndClose(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n1",
        ),
        Action::Respond(b"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n2"),
    ]);
    let mut client = client();
    let (_, _, body) = exchange(&mut client, Method::Get, &server.url("/a"), &[], &[]).unwrap();
    assert_eq!(body, b"until the end");
    let (_, _, body) = exchange(&mut client, Method::Get, &server.url("/b"), &[], &[]).unwrap();
    assert_eq!(body, b"1");
    let (_, _, body) = exchange(&mut client, Method::Get, &server.url("/c"), &[], &[]).unwrap();
    assert_eq!(body, b"2");
    assert_eq!(server.accepted(), 3);
}

#[test]
fn skips_interim_responses_and_head_bodies() {
    let server = Scripted::start(vec![
        Action::Respond(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nnew",
        ),
        Action::Respond(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nETag: \"abc\"\r\n\r\n"),
        Action::Respond(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext"),
    ]);
    let mut client = client();
    let (status, _, body) = exchange(
        &mut client,
        Method::Put,
        &server.url("/a"),
        &[("Content-Length", "1")],
        b"x",
    )
    .unwrap();
    assert_eq!((status, body.as_slice()), (201, &b"new"[..]));
    let (status, _, body) =
        exchange(&mut client, Method::Head, &server.url("/a"), &[], &[]).unwrap();
    assert_eq!((status, body.as_slice()), (200, &b""[..]));
    let (_, _, body) = exchange(&mut client, Method::Get, &server.url("/b"), &[], &[]).unwrap();
    assert_eq!(body, b"next");
    assert_eq!(server.accepted(), 1);
}

#[test]
fn an_unread_response_is_drained_before_the_next_request() {
    let server = Scripted::start(vec![
        Action::Respond(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
        Action::Respond(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nworld"),
    ]);
    let mut client = client();
    let url_a = server.url("/a");
    let response = client.get(&url_a).unwrap().submit().unwrap();
    assert_eq!(response.status(), 200);
    // Not read: the next request discards it, like EspHttpConnection.
    let (_, _, body) = exchange(&mut client, Method::Get, &server.url("/b"), &[], &[]).unwrap();
    assert_eq!(body, b"world");
    assert_eq!(server.accepted(), 1);
}

#[test]
fn a_truncated_body_is_an_error_not_an_end() {
    let server = Scripted::start(vec![Action::RespondAndClose(
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
    )]);
    let mut client = client();
    let url_t = server.url("/t");
    let mut response = client.get(&url_t).unwrap().submit().unwrap();
    let mut buf = [0_u8; 64];
    assert_eq!(response.read(&mut buf).unwrap(), 3);
    let err = response.read(&mut buf).unwrap_err();
    assert_eq!(err.category(), HttpErrorCategory::ConnectionClosed, "{err}");
    assert!(
        err.to_string()
            .contains("after 3 of 10 response body bytes"),
        "{err}"
    );
    // Reading on does not pretend the body ended.
    assert!(response.read(&mut buf).is_err());
}

#[test]
fn no_response_and_garbage_are_errors() {
    let server = Scripted::start(vec![
        Action::Close,
        Action::RespondAndClose(b"SSH-2.0-OpenSSH\r\n\r\n"),
    ]);
    let mut client = client();
    let err = exchange(&mut client, Method::Get, &server.url("/a"), &[], &[]).unwrap_err();
    assert_eq!(err.category(), HttpErrorCategory::ConnectionClosed, "{err}");
    assert_eq!(err.kind(), ErrorKind::ConnectionAborted);
    assert!(
        err.to_string().contains("without sending a response"),
        "{err}"
    );

    // The connection recovers from a failure: the next request reconnects.
    let err = exchange(&mut client, Method::Get, &server.url("/b"), &[], &[]).unwrap_err();
    assert_eq!(
        err.category(),
        HttpErrorCategory::MalformedResponse,
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::InvalidData);
    assert!(
        err.to_string()
            .contains("malformed response from 127.0.0.1:"),
        "{err}"
    );
}

#[test]
fn request_bodies_must_match_the_declared_content_length() {
    let server = Scripted::start(vec![
        Action::Respond(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        Action::Respond(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ]);
    let mut client = client();

    // No Content-Length: no body (chunked request bodies are not supported).
    let url_p = server.url("/p");
    let mut request = client.post(&url_p, &[]).unwrap();
    let err = request.write(b"data").unwrap_err();
    assert_eq!(err.category(), HttpErrorCategory::InvalidRequest);
    assert!(
        err.to_string().contains("without a Content-Length"),
        "{err}"
    );
    let response = request.submit().unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(server.received().body, b"");

    // Fewer bytes than declared: submitting is refused, nothing is read.
    let url_q = server.url("/q");
    let mut request = client.put(&url_q, &[("Content-Length", "4")]).unwrap();
    request.write_all(b"da").unwrap();
    let err = request.submit().unwrap_err();
    assert_eq!(err.category(), HttpErrorCategory::InvalidRequest);
    assert!(err.to_string().contains("2 of the 4 bytes"), "{err}");
    assert!(!client.connection().is_request_initiated());

    // The connection is usable again.
    let (status, _, _) = exchange(
        &mut client,
        Method::Put,
        &server.url("/r"),
        &[("Content-Length", "1")],
        b"x",
    )
    .unwrap();
    assert_eq!(status, 200);
    assert_eq!(server.received().body, b"x");

    for headers in [
        &[("Content-Length", "x")][..],
        &[("Content-Length", "1"), ("content-length", "2")][..],
        &[("X-Injected", "a\r\nEvil: 1")][..],
        &[("Bad Name", "v")][..],
    ] {
        let err = client
            .request(Method::Put, &server.url("/s"), headers)
            .unwrap_err();
        assert_eq!(
            err.category(),
            HttpErrorCategory::InvalidRequest,
            "{headers:?}"
        );
    }
    let err = client
        .request(
            Method::Post,
            &server.url("/s"),
            &[("Transfer-Encoding", "chunked")],
        )
        .unwrap_err();
    assert_eq!(err.category(), HttpErrorCategory::Unsupported);
    let err = client.get("ftp://127.0.0.1/x").unwrap_err();
    assert_eq!(err.category(), HttpErrorCategory::InvalidRequest);
}

#[test]
fn a_refused_connection_names_the_address() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = exchange(
        &mut client(),
        Method::Get,
        &format!("http://{addr}/"),
        &[],
        &[],
    )
    .unwrap_err();
    assert_eq!(err.category(), HttpErrorCategory::Connect, "{err}");
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);
    assert!(
        err.to_string().starts_with(&format!("connect to {addr}")),
        "{err}"
    );
}

#[test]
fn a_kept_alive_socket_closed_without_answer_is_retried_only_when_safe() {
    let ok: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let server = Scripted::start(vec![
        Action::Respond(ok),
        // The reused socket dies without an answer: a body-less GET is resent.
        Action::Close,
        Action::Respond(ok),
        // A PUT with a body cannot be resent (its body was streamed).
        Action::Close,
    ]);
    let mut client = client();
    let (_, _, body) = exchange(&mut client, Method::Get, &server.url("/a"), &[], &[]).unwrap();
    assert_eq!(body, b"ok");
    let (_, _, body) = exchange(&mut client, Method::Get, &server.url("/b"), &[], &[]).unwrap();
    assert_eq!(body, b"ok");
    assert_eq!(server.accepted(), 2);
    let err = exchange(
        &mut client,
        Method::Put,
        &server.url("/c"),
        &[("Content-Length", "1")],
        b"x",
    )
    .unwrap_err();
    assert_eq!(err.category(), HttpErrorCategory::ConnectionClosed, "{err}");
    assert!(
        err.to_string().contains("closed the kept-alive connection"),
        "{err}"
    );
}
