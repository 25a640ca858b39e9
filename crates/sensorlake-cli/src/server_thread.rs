//! Running a tokio HTTP server from blocking code — the embedded S3 server and the
//! presign broker share this: a runtime of their own, the accept loop with a graceful
//! shutdown, and either a background thread (tests, the demo) stopped on drop, or the
//! foreground until Ctrl-C / SIGTERM (`sensorlake serve`, `sensorlake broker serve`).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// How long in-flight requests may take to finish after a stop.
pub const GRACEFUL_SHUTDOWN: Duration = Duration::from_secs(5);

/// A future that completes when the server must stop.
pub type StopSignal = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A two-thread tokio runtime whose threads are named `name`.
pub fn runtime(name: &str) -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        .enable_all()
        .build()
        .with_context(|| format!("start the {name} tokio runtime"))
}

/// How often a persisting accept error (such as EMFILE) is logged at most.
const ACCEPT_ERROR_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Accepts connections until `stop` completes, at most `max_connections` at once (more
/// wait in the listen backlog), handing each one (with TCP_NODELAY set) and its permit
/// to `on_connection`, which spawns its task, drops the permit when the connection ends
/// and registers it with the graceful shutdown; then lets in-flight requests finish for
/// up to [`GRACEFUL_SHUTDOWN`]. Accept errors back off (up to 1 s) and are logged at
/// most once per [`ACCEPT_ERROR_LOG_INTERVAL`], with how many there were.
pub async fn accept_until<F>(
    name: &str,
    listener: TcpListener,
    max_connections: usize,
    stop: StopSignal,
    mut on_connection: F,
) where
    F: FnMut(TcpStream, SocketAddr, OwnedSemaphorePermit, &GracefulShutdown),
{
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(max_connections.max(1)));
    let mut stop = stop;
    let mut backoff = Duration::from_millis(50);
    let mut errors_since_log = 0u64;
    let mut last_log: Option<Instant> = None;
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = stop.as_mut() => break,
        };
        let (socket, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    errors_since_log += 1;
                    if last_log.is_none_or(|t| t.elapsed() >= ACCEPT_ERROR_LOG_INTERVAL) {
                        tracing::warn!(
                            "{name}: accept failed: {err} ({errors_since_log} time(s) since the last message)"
                        );
                        errors_since_log = 0;
                        last_log = Some(Instant::now());
                    }
                    // Do not spin on persistent errors such as EMFILE.
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
            () = stop.as_mut() => break,
        };
        backoff = Duration::from_millis(50);
        // Responses are written as head then body: without TCP_NODELAY, Nagle's
        // algorithm holds the body until the client's delayed ACK (~40 ms a request).
        if let Err(err) = socket.set_nodelay(true) {
            tracing::debug!("{name}: cannot set TCP_NODELAY: {err}");
        }
        on_connection(socket, remote, permit, &graceful);
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::debug!("{name}: all connections closed"),
        () = tokio::time::sleep(GRACEFUL_SHUTDOWN) => {
            tracing::warn!("{name}: connections still open after {GRACEFUL_SHUTDOWN:?}, closing them");
        }
    }
}

/// A server running on its own runtime in a background thread; stopped by
/// [`BackgroundServer::stop`] or when dropped.
#[derive(Debug)]
pub struct BackgroundServer {
    name: &'static str,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BackgroundServer {
    /// Registers `listener` with a new runtime and runs `serve(listener, stop)` on a
    /// thread named `name`; returns once that is set up (the listener already listens).
    pub fn spawn<F, Fut>(
        name: &'static str,
        listener: std::net::TcpListener,
        serve: F,
    ) -> Result<Self>
    where
        F: FnOnce(TcpListener, StopSignal) -> Fut + Send + 'static,
        Fut: Future<Output = ()>,
    {
        let runtime = runtime(name)?;
        let listener = {
            let _guard = runtime.enter();
            TcpListener::from_std(listener).context("register the listener with tokio")?
        };
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                // A dropped sender also stops the server.
                let stop: StopSignal = Box::pin(async {
                    let _ = stopped.await;
                });
                runtime.block_on(serve(listener, stop));
                runtime.shutdown_timeout(GRACEFUL_SHUTDOWN);
            })
            .with_context(|| format!("spawn the {name} thread"))?;
        Ok(Self {
            name,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Stops accepting, lets in-flight requests finish (up to [`GRACEFUL_SHUTDOWN`]) and
    /// waits for the thread. Idempotent.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the {} thread panicked", self.name);
        }
    }
}

impl Drop for BackgroundServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `serve(listener, stop)` in the foreground until Ctrl-C or SIGTERM.
pub fn run_until_signal<F, Fut>(name: &str, listener: std::net::TcpListener, serve: F) -> Result<()>
where
    F: FnOnce(TcpListener, StopSignal) -> Fut,
    Fut: Future<Output = ()>,
{
    let runtime = runtime(name)?;
    runtime.block_on(async move {
        let listener =
            TcpListener::from_std(listener).context("register the listener with tokio")?;
        serve(listener, shutdown_signal()?).await;
        anyhow::Ok(())
    })?;
    runtime.shutdown_timeout(GRACEFUL_SHUTDOWN);
    Ok(())
}

/// Completes on Ctrl-C, or on SIGTERM on Unix.
fn shutdown_signal() -> Result<StopSignal> {
    #[cfg(unix)]
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("install the SIGTERM handler")?;
    Ok(Box::pin(async move {
        #[cfg(unix)]
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }))
}
