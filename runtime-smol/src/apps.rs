//! The requests handles send to the node task, and the channels the core's [`Apps`]
//! answers applications through.
//!
//! [`Apps`]: receptor_core::Apps

use async_channel::Sender;
use receptor_core::{AppCommand, Channels};

use crate::stream::StreamCommand;

/// smol's side of [`Channels`]: bounded `async_channel`s; a reply channel has room for its
/// one answer, so `try_send` never waits.
pub(crate) struct SmolChannels;

impl Channels for SmolChannels {
    type Reply<T> = Sender<T>;
    type Feed<T> = Sender<T>;

    fn reply<T>(tx: Sender<T>, value: T) {
        let _ = tx.try_send(value);
    }

    fn feed<T>(tx: &Sender<T>, value: T) {
        let _ = tx.try_send(value);
    }
}

/// A request from a handle to the node task.
pub(crate) enum Command {
    /// For the core's application bookkeeping.
    App(AppCommand<SmolChannels>),
    /// Close every link; the node keeps running.
    DisconnectAll,
    Shutdown,
    /// For the stream side of the node task.
    Stream(StreamCommand),
}
