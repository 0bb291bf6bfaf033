//! Logs in Go receptor's format: `LEVEL YYYY/MM/DD HH:MM:SS message`, with Go's level names.
//!
//! Packet traces (the `trace` entity, [`receptor_core::PACKET_TRACE`]) print as Go's do:
//! `TRACE <configured level> YYYY/MM/DD HH:MM:SS --- Sending data length ...`, whatever the
//! log level (Go writes them at the configured level, so they always show).

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

use crate::config::LogLevel;

struct GoFormat {
    /// Go's name of the configured level, which Go's packet traces carry.
    configured: &'static str,
}

impl<S, N> FormatEvent<S, N> for GoFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut w: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if event.metadata().target() == receptor_core::PACKET_TRACE {
            write!(w, "TRACE {} ", self.configured)?;
        } else {
            let level = match *event.metadata().level() {
                Level::ERROR => "ERROR",
                Level::WARN => "WARNING",
                Level::INFO => "INFO",
                Level::DEBUG | Level::TRACE => "DEBUG",
            };
            write!(w, "{level} ")?;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        // RFC 3339 gives "YYYY-MM-DDTHH:MM:SS...", Go's log prints "YYYY/MM/DD HH:MM:SS".
        let t = receptor_core::wire::format_rfc3339_nano(now.as_secs() as i128 * 1_000_000_000);
        let date = t.get(..10).unwrap_or_default().replace('-', "/");
        let time = t.get(11..19).unwrap_or_default();
        write!(w, "{date} {time} ")?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// Installs the global logger at `level` (stderr), with packet traces if `trace`.
pub fn init(level: LogLevel, trace: bool) {
    let (max, configured) = match level {
        LogLevel::Error => (Level::ERROR, "ERROR"),
        LogLevel::Warning => (Level::WARN, "WARNING"),
        LogLevel::Info => (Level::INFO, "INFO"),
        LogLevel::Debug => (Level::DEBUG, "DEBUG"),
    };
    let packets = if trace {
        LevelFilter::TRACE
    } else {
        LevelFilter::OFF
    };
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    // quinn-proto narrates every connection at debug level; Go's logs say nothing of QUIC.
    let targets = tracing_subscriber::filter::Targets::new()
        .with_default(max)
        .with_target("quinn_proto", Level::WARN)
        .with_target(receptor_core::PACKET_TRACE, packets);
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .event_format(GoFormat { configured });
    let _ = tracing_subscriber::registry()
        .with(layer)
        .with(targets)
        .try_init();
}
