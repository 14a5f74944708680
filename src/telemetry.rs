//! Logging set-up with tracing-subscriber (a target/level filter; text or JSON output), and the
//! one span every request runs in. Tests stay quiet unless `RUST_LOG` asks otherwise.
//!
//! The text format is tracing-subscriber's, made cheaper where a profile of the hot path showed
//! it (issue 9): at INFO, the request span and the audit line were a quarter of the time of an
//! authenticated call. Values are written bare unless they need quoting, the date part of the
//! timestamp is formatted once a second, and a filter without span directives is a static one.
//! Lines logged on the runtime's worker threads are written to stdout in batches (see
//! [`worker_idle`]).

use std::cell::RefCell;
use std::fmt::Write as _;
use std::future::Future;
use std::io::{self, IsTerminal};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use arrayvec::ArrayString;
use axum::http::{Request, Response};
use tracing::field::{Field, Visit};
use tracing::{Level, Span};
use tracing_log::NormalizeEvent;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{self, FmtContext, FormatEvent, FormatFields, FormattedFields, MakeWriter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::{LookupSpan, Registry};
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::{LogFormat, LogSettings};

/// Installs the global subscriber, writing to stdout, in batches on the runtime's worker threads
/// (see [`worker_idle`]). `RUST_LOG`, when set, replaces the configured filter. Calling it twice
/// is harmless (the second call is ignored), which keeps tests simple.
pub fn init(settings: &LogSettings) {
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| settings.filter.clone());
    // Colours only for a person at a terminal: in a file or a pipe, escape codes are noise, and
    // writing them was a third of the cost of each audit line.
    let ansi = io::stdout().is_terminal();
    let writer = StdoutLines { batch_bytes: settings.batch_bytes };
    let _ = subscriber(&directives, settings.format, writer, ansi).try_init();
}

/// Log lines to stdout, written in batches by the runtime's worker threads.
///
/// A line a worker thread logs while serving (the audit line of every call, above all) is held
/// back in a buffer of that thread and written, with the others held there, when the thread runs
/// out of work ([`worker_idle`], tokio's `on_thread_park`), when the buffer reaches
/// `log.batch_bytes`, and when the thread stops ([`flush_thread`], `on_thread_stop`). Writing each
/// line at once cost a `write(2)` per call: side by side on a 2-core AMD host, 2-4% of the CPU of
/// a cached `tools/call` with stdout on `/dev/null`, 9-17% with stdout on a pipe, where every
/// write also wakes the reader (a container runtime's log collector, journald). Under load a
/// batch is what one wake-up served; when idle, a line waits only for the end of the request
/// that logged it. What a crash (SIGKILL, an out-of-memory kill) can lose is what is held back:
/// at most `batch_bytes` per worker. `log.batch_bytes = 0` writes every line at once. Lines
/// logged outside the workers (start-up, shutdown, blocking threads) are written at once.
#[derive(Clone, Copy, Debug)]
struct StdoutLines {
    batch_bytes: usize,
}

impl<'a> MakeWriter<'a> for StdoutLines {
    type Writer = LineSink;
    fn make_writer(&'a self) -> LineSink {
        LineSink { batch_bytes: self.batch_bytes }
    }
}

/// The writer [`StdoutLines`] hands out for one line.
#[derive(Debug)]
struct LineSink {
    batch_bytes: usize,
}

impl io::Write for LineSink {
    fn write(&mut self, line: &[u8]) -> io::Result<usize> {
        let taken = PENDING.try_with(|pending| pending.borrow_mut().take(line, self.batch_bytes, &mut io::stdout()));
        // Only while this thread's buffer is being torn down (the thread's very end).
        taken.unwrap_or_else(|_| io::Write::write_all(&mut io::stdout(), line))?;
        Ok(line.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// For tokio's `on_thread_park`: this worker thread has run out of work. Its log lines are
/// batched from now on, and those held back are written now (the reasons, and when else a batch
/// is written, are on the writer, `StdoutLines`).
pub fn worker_idle() {
    let _ = PENDING.try_with(|pending| {
        let mut pending = pending.borrow_mut();
        pending.batching = true;
        pending.write_out(&mut io::stdout())
    });
}

/// For tokio's `on_thread_stop`: writes the lines this thread holds back.
pub fn flush_thread() {
    let _ = PENDING.try_with(|pending| pending.borrow_mut().write_out(&mut io::stdout()));
}

thread_local! {
    /// The lines this thread holds back (see [`StdoutLines`]).
    static PENDING: RefCell<Pending> = const { RefCell::new(Pending { batching: false, bytes: Vec::new() }) };
}

/// A thread's held-back lines.
struct Pending {
    /// Set once the thread has parked as a runtime worker: its lines are batched.
    batching: bool,
    bytes: Vec<u8>,
}

impl Pending {
    /// Holds `line` back while this thread batches and the batch stays under `limit` bytes;
    /// otherwise writes the batch and the line to `sink` now, in the order they were logged.
    fn take(&mut self, line: &[u8], limit: usize, sink: &mut impl io::Write) -> io::Result<()> {
        if !self.batching || limit == 0 {
            self.write_out(sink)?;
            return sink.write_all(line);
        }
        self.bytes.extend_from_slice(line);
        if self.bytes.len() >= limit {
            return self.write_out(sink);
        }
        Ok(())
    }

    /// Writes what is held back (one `write(2)` for stdout, whose line buffering passes complete
    /// lines through) and forgets it, written or not: a failing stdout must not grow the buffer.
    fn write_out(&mut self, sink: &mut impl io::Write) -> io::Result<()> {
        if self.bytes.is_empty() {
            return Ok(());
        }
        let written = sink.write_all(&self.bytes);
        self.bytes.clear();
        written
    }
}

impl Drop for Pending {
    /// A thread that ends without `on_thread_stop` (not a runtime thread) still writes its lines.
    fn drop(&mut self) {
        let _ = self.write_out(&mut io::stdout());
    }
}

/// The subscriber [`init`] installs: `directives` as the filter, lines in `format` to `writer`.
pub fn subscriber<W>(
    directives: &str,
    format: LogFormat,
    writer: W,
    ansi: bool,
) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let (targets, env_filter) = filter(directives);
    let (mut text, mut coloured, mut json) = (None, None, None);
    match format {
        LogFormat::Text if !ansi => {
            let layer = fmt::layer().with_writer(writer).with_ansi(false).fmt_fields(PlainFields);
            text = Some(layer.event_format(TextLine(Clock)));
        }
        LogFormat::Text => {
            coloured = Some(fmt::layer().with_writer(writer).with_ansi(true).fmt_fields(PlainFields).with_timer(Clock));
        }
        LogFormat::Json => json = Some(fmt::layer().with_writer(writer).json().flatten_event(true)),
    }
    Registry::default().with(targets).with(env_filter).with(text).with(coloured).with(json)
}

/// The text line of a file or a pipe: tracing-subscriber's full format without colours, byte for
/// byte (`2026-12-03T21:55:15.123456Z  INFO request{method=POST path=/mcp}: audit: subject=...`),
/// written piece by piece instead of through `write!` and the colour adapters, which were 2.4k
/// of the audit line's 6k instructions. At a terminal the coloured format stays tracing-subscriber's.
struct TextLine<T>(T);

impl<S, N, T> FormatEvent<S, N> for TextLine<T>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    T: FormatTime,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        // A `log` record (a dependency that logs through `log`) under its own target.
        let normalized = event.normalized_metadata();
        let meta = normalized.as_ref().unwrap_or_else(|| event.metadata());
        if self.0.format_time(&mut writer).is_err() {
            writer.write_str("<unknown time>")?;
        }
        writer.write_str(match *meta.level() {
            Level::TRACE => " TRACE ",
            Level::DEBUG => " DEBUG ",
            Level::INFO => "  INFO ",
            Level::WARN => "  WARN ",
            Level::ERROR => " ERROR ",
        })?;
        if let Some(scope) = ctx.event_scope() {
            let mut seen = false;
            for span in scope.from_root() {
                writer.write_str(span.metadata().name())?;
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    writer.write_char('{')?;
                    writer.write_str(fields)?;
                    writer.write_char('}')?;
                }
                writer.write_char(':')?;
                seen = true;
            }
            if seen {
                writer.write_char(' ')?;
            }
        }
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        ctx.format_fields(writer.by_ref(), event)?;
        writer.write_char('\n')
    }
}

/// The filter for `directives` (`info,mcp_auth_server::jwt=debug`, ...). EnvFilter keeps every
/// span in a hash map so that span-scoped directives (`[request{path=/mcp}]=debug`) work, at a
/// cost on each span entered; directives without them get a static filter that decides the same.
fn filter(directives: &str) -> (Option<Targets>, Option<EnvFilter>) {
    match directives.parse::<Targets>() {
        Ok(targets) if !directives.contains('[') => (Some(targets), None),
        _ => (None, Some(EnvFilter::new(directives))),
    }
}

/// Field formatting for the text format: `name=value`. A string value is quoted and escaped
/// (`{:?}`) only when it is empty or holds anything but printable ASCII other than `"`, `\` and
/// `=`, so no value (a token's subject, say) can forge a line or a field; tracing-subscriber's
/// default quotes every string through `Debug`, character by character, which showed in profiles.
#[derive(Clone, Copy, Debug, Default)]
pub struct PlainFields;

impl<'writer> FormatFields<'writer> for PlainFields {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> std::fmt::Result {
        let mut visitor = PlainVisitor { writer, separate: false, result: Ok(()) };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct PlainVisitor<'writer> {
    writer: Writer<'writer>,
    separate: bool,
    result: std::fmt::Result,
}

impl PlainVisitor<'_> {
    fn name(&mut self, field: &Field) -> std::fmt::Result {
        if std::mem::replace(&mut self.separate, true) {
            self.writer.write_char(' ')?;
        }
        if field.name() != "message" {
            self.writer.write_str(field.name())?;
            self.writer.write_char('=')?;
        }
        Ok(())
    }

    fn record(&mut self, field: &Field, write: impl FnOnce(&mut Writer<'_>) -> std::fmt::Result) {
        if self.result.is_ok() {
            self.result = self.name(field).and_then(|()| write(&mut self.writer));
        }
    }

    /// Writes a field whose value needs no quoting. The usual short one (` subject=alice`) is
    /// put together on the stack and written at once: every write through the formatter's
    /// `dyn Write` costs about a hundred instructions, and a field took four of them.
    fn record_plain(&mut self, field: &Field, value: &str) {
        let mut piece = ArrayString::<96>::new();
        let name = if field.name() == "message" { "" } else { field.name() };
        let fits = (!self.separate || piece.try_push_str(" ").is_ok())
            && (name.is_empty() || (piece.try_push_str(name).is_ok() && piece.try_push_str("=").is_ok()))
            && piece.try_push_str(value).is_ok();
        if fits && self.result.is_ok() {
            self.separate = true;
            self.result = self.writer.write_str(&piece);
        } else {
            self.record(field, |w| w.write_str(value));
        }
    }
}

/// Whether a string can be written without quotes.
fn bare(value: &str) -> bool {
    !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\\' | b'='))
}

impl Visit for PlainVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        // The message is the line's text, written as it is unless it would break the line; every
        // other string is a value.
        let raw = if field.name() == "message" { !value.chars().any(char::is_control) } else { bare(value) };
        if raw {
            self.record_plain(field, value);
        } else {
            self.record(field, |w| write!(w, "{value:?}"));
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // `%value` (Display) and `?value` (Debug) are written as they format, as
        // tracing-subscriber does, unless they hold a line break or another control character.
        let mut text = String::new();
        let _ = write!(text, "{value:?}");
        let raw = !text.chars().any(char::is_control);
        self.record(field, |w| if raw { w.write_str(&text) } else { write!(w, "{text:?}") });
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_plain(field, itoa::Buffer::new().format(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.record_plain(field, itoa::Buffer::new().format(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.record(field, |w| write!(w, "{value}"));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.record(field, |w| write!(w, "{value}"));
    }
}

/// RFC 3339 UTC timestamps with microseconds, like tracing-subscriber's `SystemTime`, but
/// formatting the date and time of day once per second.
#[derive(Clone, Copy, Debug, Default)]
pub struct Clock;

thread_local! {
    /// The second last formatted on this thread, and its `YYYY-MM-DDTHH:MM:SS`.
    static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

impl FormatTime for Clock {
    fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
        let Ok(since_epoch) = SystemTime::now().duration_since(UNIX_EPOCH) else {
            return fmt::time::SystemTime.format_time(w);
        };
        let (second, micros) = (since_epoch.as_secs(), since_epoch.subsec_micros());
        SECOND.with_borrow_mut(|(cached, prefix)| {
            if *cached != second {
                // From this very second, not from a second reading of the clock, which could
                // already be in the next one.
                prefix.clear();
                write_date_time(prefix, second)?;
                *cached = second;
            }
            match timestamp(prefix, micros) {
                Some(stamp) => w.write_str(&stamp),
                None => write!(w, "{prefix}.{micros:06}Z"), // a year past 9999
            }
        })
    }
}

/// `{date_time}.{micros:06}Z` put together for one write: `write!` and its zero padding cost
/// some 500 instructions a line. `None` if it does not fit (a year past 9999).
fn timestamp(date_time: &str, micros: u32) -> Option<ArrayString<32>> {
    let mut stamp = ArrayString::<32>::new();
    if date_time.len() + ".000000Z".len() > stamp.capacity() {
        return None;
    }
    stamp.push_str(date_time);
    stamp.push('.');
    for place in [100_000, 10_000, 1_000, 100, 10, 1] {
        stamp.push(char::from(b'0' + (micros / place % 10) as u8));
    }
    stamp.push('Z');
    Some(stamp)
}

/// `YYYY-MM-DDTHH:MM:SS` (UTC) of `unix_seconds`: the proleptic Gregorian calendar, from the
/// day count by Howard Hinnant's `civil_from_days`.
fn write_date_time(out: &mut String, unix_seconds: u64) -> std::fmt::Result {
    let (days, time) = (unix_seconds / 86_400, unix_seconds % 86_400);
    // Days since 0000-03-01, so that leap days end each 400-year era's years.
    let z = days + 719_468;
    let (era, day_of_era) = (z / 146_097, z % 146_097);
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153; // March = 0
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    let (hour, minute, second) = (time / 3_600, time / 60 % 60, time % 60);
    write!(out, "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}")
}

/// Runs every request in an INFO span `request{method=.. path=..}`, so what is logged while
/// serving it (the audit trail, refusals) can be told apart; logs each response at DEBUG (status,
/// milliseconds) and a 5xx at ERROR.
///
/// tower-http's `TraceLayer` does this too, but formats the whole URI and the HTTP version into
/// the span and enters it again for every poll of the response body (measured side by side,
/// this layer was 2.5% faster per call). This one enters the span while the request is handled
/// only: what is logged while a body is written (the end of an SSE stream, say) is outside it.
#[derive(Clone, Copy, Debug, Default)]
pub struct RequestSpanLayer;

impl<S> tower::Layer<S> for RequestSpanLayer {
    type Service = RequestSpan<S>;
    fn layer(&self, inner: S) -> RequestSpan<S> {
        RequestSpan { inner }
    }
}

/// See [`RequestSpanLayer`].
#[derive(Clone, Debug)]
pub struct RequestSpan<S> {
    inner: S,
}

impl<S, B, R> tower::Service<Request<B>> for RequestSpan<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Logged<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let span = tracing::info_span!("request", method = request.method().as_str(), path = request.uri().path());
        // Much of a request is decided in `call` itself (authentication, limits): in the span too.
        let inner = span.in_scope(|| self.inner.call(request));
        Logged { inner, span, started: Instant::now() }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`RequestSpan`].
    pub struct Logged<F> {
        #[pin]
        inner: F,
        span: Span,
        started: Instant,
    }
}

impl<F, R, E> Future for Logged<F>
where
    F: Future<Output = Result<Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let output = std::task::ready!(this.inner.poll(cx));
        if let Ok(response) = &output {
            // Field values are only evaluated when the event is enabled: no clock read otherwise.
            let (status, started) = (response.status(), *this.started);
            if status.is_server_error() {
                tracing::error!(status = status.as_u16(), ms = started.elapsed().as_secs_f64() * 1000.0, "response");
            } else {
                tracing::debug!(status = status.as_u16(), ms = started.elapsed().as_secs_f64() * 1000.0, "response");
            }
        }
        Poll::Ready(output)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// Captured output of a subscriber.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Lines;
        fn make_writer(&'a self) -> Lines {
            self.clone()
        }
    }

    fn logged(directives: &str, emit: impl FnOnce()) -> String {
        let lines = Lines::default();
        tracing::subscriber::with_default(subscriber(directives, LogFormat::Text, lines.clone(), false), emit);
        String::from_utf8(lines.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn plain_values_are_bare_and_the_rest_quoted_so_no_value_forges_a_line_or_a_field() {
        // Longer than the stack buffer `record_plain` puts a short field together in.
        let long = "x".repeat(150);
        let out = logged("info", || {
            tracing::info!(
                subject = "alice@example.com",
                long = long.as_str(),
                negative = -3i64,
                largest = u64::MAX,
                forged = "x\nINFO audit: subject=root",
                spaced = "two words",
                equals = "a=b",
                empty = "",
                count = 3u64,
                ms = 0.5,
                shown = %"line one\nline two",
                listed = ?["a"],
                "call done"
            )
        });
        assert_eq!(out.lines().count(), 1, "{out}");
        let message = logged("info", || tracing::info!(message = "two\nlines"));
        assert_eq!(message.lines().count(), 1, "{message}");
        for expected in [
            "call done subject=alice@example.com ",
            &format!(" long={long} negative=-3 largest=18446744073709551615 forged="),
            r#"forged="x\nINFO audit: subject=root""#,
            r#"spaced="two words""#,
            r#"equals="a=b""#,
            r#"empty="""#,
            "count=3 ms=0.5",
            r#"shown="line one\nline two""#,
            r#"listed=["a"]"#,
        ] {
            assert!(out.contains(expected), "{expected} in {out}");
        }
    }

    /// A sink that records each `write` call, or fails every one.
    #[derive(Default)]
    struct Writes {
        calls: Vec<Vec<u8>>,
        failing: bool,
    }

    impl std::io::Write for Writes {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            if self.failing {
                return Err(std::io::Error::other("disk full"));
            }
            self.calls.push(data.to_vec());
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_thread_that_never_parked_as_a_worker_writes_each_line_at_once() {
        let (mut pending, mut sink) = (Pending { batching: false, bytes: Vec::new() }, Writes::default());
        pending.take(b"one\n", 64, &mut sink).unwrap();
        pending.take(b"two\n", 64, &mut sink).unwrap();
        assert_eq!(sink.calls, [b"one\n".to_vec(), b"two\n".to_vec()]);
    }

    #[test]
    fn a_worker_holds_lines_back_until_it_is_idle_or_the_batch_is_full_and_keeps_their_order() {
        let (mut pending, mut sink) = (Pending { batching: true, bytes: Vec::new() }, Writes::default());
        pending.take(b"one\n", 12, &mut sink).unwrap();
        pending.take(b"two\n", 12, &mut sink).unwrap();
        assert!(sink.calls.is_empty(), "held back");
        pending.write_out(&mut sink).unwrap();
        assert_eq!(sink.calls, [b"one\ntwo\n".to_vec()], "one write for the batch");
        pending.write_out(&mut sink).unwrap();
        assert_eq!(sink.calls.len(), 1, "nothing left to write");
        // The line that fills the batch goes out with it.
        for line in [b"aaaa\n", b"bbbb\n", b"cccc\n"] {
            pending.take(line, 12, &mut sink).unwrap();
        }
        assert_eq!(sink.calls[1], b"aaaa\nbbbb\ncccc\n".to_vec());
        // Batching off by configuration: anything held back goes first, then the line.
        pending.take(b"held\n", 64, &mut sink).unwrap();
        pending.take(b"now\n", 0, &mut sink).unwrap();
        assert_eq!(sink.calls[2..], [b"held\n".to_vec(), b"now\n".to_vec()]);
    }

    #[test]
    fn a_failing_stdout_does_not_grow_the_batch() {
        let (mut pending, mut sink) = (Pending { batching: true, bytes: Vec::new() }, Writes::default());
        sink.failing = true;
        for _ in 0..100 {
            let _ = pending.take(b"a line that cannot be written\n", 64, &mut sink);
        }
        assert!(pending.bytes.len() < 64, "{} bytes held", pending.bytes.len());
        assert!(pending.write_out(&mut sink).is_err());
        assert!(pending.bytes.is_empty());
    }

    #[test]
    fn only_threads_that_parked_as_runtime_workers_batch() {
        // The binary's hook, on a runtime of one worker: once that worker has been idle, what it
        // logs is batched; the thread in `block_on` (the binary's main thread) never batches.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_time()
            .on_thread_park(worker_idle)
            .build()
            .unwrap();
        let on_worker = runtime.block_on(async {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            tokio::spawn(async { PENDING.with_borrow(|p| p.batching) }).await.unwrap()
        });
        assert!(on_worker, "the worker parked while the main thread slept");
        assert!(!PENDING.with_borrow(|p| p.batching));
    }

    #[test]
    fn the_text_line_is_tracing_subscribers_full_format_without_colours_byte_for_byte() {
        struct Fixed;
        impl FormatTime for Fixed {
            fn format_time(&self, w: &mut Writer<'_>) -> std::fmt::Result {
                w.write_str("2026-12-03T21:55:15.123456Z")
            }
        }
        let emit = || {
            tracing::info!("outside any span");
            let request = tracing::info_span!("request", method = "POST", path = "/mcp");
            let _request = request.enter();
            tracing::info!(target: "audit", subject = "alice", operation = "tools/call", duration_us = 17u64);
            let bare = tracing::info_span!("bare");
            let _bare = bare.enter();
            tracing::trace!(ms = 0.5, "trace");
            tracing::debug!(spaced = "two words", "debug");
            tracing::warn!(shown = %"a=b", "warn");
            tracing::error!(listed = ?["x"], "error");
        };
        let layer = || fmt::layer().with_ansi(false).fmt_fields(PlainFields);
        let (ours, theirs) = (Lines::default(), Lines::default());
        let subscriber = Registry::default().with(layer().with_writer(ours.clone()).event_format(TextLine(Fixed)));
        tracing::subscriber::with_default(subscriber, emit);
        let subscriber = Registry::default().with(layer().with_writer(theirs.clone()).with_timer(Fixed));
        tracing::subscriber::with_default(subscriber, emit);
        let (ours, theirs) = (ours.0.lock().unwrap().clone(), theirs.0.lock().unwrap().clone());
        let ours = String::from_utf8(ours).unwrap();
        assert_eq!(ours, String::from_utf8(theirs).unwrap());
        assert_eq!(ours.lines().count(), 6, "{ours}");
        assert!(ours.contains("Z  INFO request{method=POST path=/mcp}: audit: subject=alice "), "{ours}");
        assert!(ours.contains("Z ERROR request{method=POST path=/mcp}:bare: "), "{ours}");
    }

    #[test]
    fn dates_and_times_of_day_follow_the_gregorian_calendar() {
        for (seconds, expected) in [
            (0, "1970-01-01T00:00:00"),
            (951_782_400, "2000-02-29T00:00:00"),
            (1_780_000_000, "2026-05-28T20:26:40"),
            (4_102_444_799, "2099-12-31T23:59:59"),
        ] {
            let mut out = String::new();
            write_date_time(&mut out, seconds).unwrap();
            assert_eq!(out, expected, "{seconds}");
        }
    }

    #[test]
    fn microseconds_are_six_digits_zero_padded() {
        let at = "2026-12-04T17:05:30";
        assert_eq!(timestamp(at, 5).as_deref(), Some("2026-12-04T17:05:30.000005Z"));
        assert_eq!(timestamp(at, 0).as_deref(), Some("2026-12-04T17:05:30.000000Z"));
        assert_eq!(timestamp(at, 999_999).as_deref(), Some("2026-12-04T17:05:30.999999Z"));
        assert_eq!(timestamp(at, 120_450).as_deref(), Some("2026-12-04T17:05:30.120450Z"));
        let far = "+123456789-01-01T00:00:00";
        assert_eq!(timestamp(far, 1), None, "too long for the stack: written as before");
        assert_eq!(timestamp(&far[1..], 1).as_deref(), Some("123456789-01-01T00:00:00.000001Z"), "just fits");
    }

    #[test]
    fn timestamps_are_rfc3339_utc_with_microseconds() {
        let out = logged("info", || {
            tracing::info!("first");
            tracing::info!("second");
        });
        for line in out.lines() {
            let stamp = line.split_whitespace().next().unwrap();
            let (date_time, fraction) = stamp.split_once('.').unwrap();
            assert_eq!(date_time.len(), "2026-12-03T05:58:37".len(), "{line}");
            assert!(date_time.as_bytes()[10] == b'T' && fraction.len() == 7 && fraction.ends_with('Z'), "{line}");
            let now = fmt::time::SystemTime;
            let mut reference = String::new();
            now.format_time(&mut Writer::new(&mut reference)).unwrap();
            assert_eq!(&reference[..10], &date_time[..10], "same date as tracing-subscriber's clock");
        }
    }

    #[test]
    fn directives_without_span_filters_get_the_static_filter_and_decide_the_same() {
        assert!(matches!(filter("info,mcp_auth_server::jwt=debug"), (Some(_), None)));
        assert!(matches!(filter("warn"), (Some(_), None)));
        assert!(matches!(filter("info,[request{path=/mcp}]=debug"), (None, Some(_))));
        let out = logged("warn,chatty=debug", || {
            tracing::info!("dropped");
            tracing::warn!("kept");
            tracing::debug!(target: "chatty", "kept too");
            tracing::trace!(target: "chatty", "dropped too");
        });
        assert!(out.contains("kept") && out.contains("kept too"), "{out}");
        assert!(!out.contains("dropped"), "{out}");
    }

    #[test]
    fn each_request_runs_in_its_span_and_a_5xx_is_logged_as_an_error() {
        use tower::{Layer, ServiceExt};
        let handler = tower::service_fn(|request: Request<()>| async move {
            tracing::info!("handling");
            let status = if request.uri().path() == "/broken" { 500 } else { 200 };
            Ok::<_, std::convert::Infallible>(Response::builder().status(status).body(()).unwrap())
        });
        let out = logged("info", || {
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            runtime.block_on(async {
                for path in ["/fine", "/broken"] {
                    let request = Request::post(path).body(()).unwrap();
                    RequestSpanLayer.layer(handler).oneshot(request).await.unwrap();
                }
            });
        });
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(
            lines[0].contains(" INFO request{method=POST path=/fine}: ") && lines[0].ends_with("handling"),
            "{out}"
        );
        assert!(lines[1].contains("request{method=POST path=/broken}: ") && lines[1].ends_with("handling"), "{out}");
        assert!(
            lines[2].contains(" ERROR request{method=POST path=/broken}: ") && lines[2].contains("status=500"),
            "{out}"
        );
    }
}
