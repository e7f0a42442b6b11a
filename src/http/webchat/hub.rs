//! The [`ChatHub`]: every open socket by contact address, so a reply reaches
//! each tab the visitor has open, and a socket's `Subscription` (leaving it
//! removes the socket).

use super::{
    ServerFrame, WebchatConfig, APP_CSS, APP_JS, MAX_SOCKETS_PER_VISITOR, SOCKET_BUFFER,
    VERSION_PLACEHOLDER, WIDGET_JS,
};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Each open socket of one contact: its id in the hub and the way to reach it.
type Sockets = Vec<(u64, mpsc::Sender<ServerFrame>)>;

/// The open sockets, by contact address, so the delivery worker can push a
/// reply to every tab the visitor has open. Also holds the web chat settings
/// and the widget's files with their version stamped in.
pub struct ChatHub {
    pub(in crate::http) config: WebchatConfig,
    sockets: Mutex<HashMap<String, Sockets>>,
    next_socket: AtomicU64,
    /// The loader with the chat files' version filled in.
    pub(super) widget_js: String,
    /// A hash of app.js and app.css: their URLs change when they do.
    pub(super) asset_version: String,
}

impl ChatHub {
    pub fn new(config: WebchatConfig) -> ChatHub {
        let digest = Sha256::new()
            .chain_update(APP_JS)
            .chain_update(APP_CSS)
            .finalize();
        let asset_version = hex::encode(&digest[..6]);
        ChatHub {
            config,
            sockets: Mutex::new(HashMap::new()),
            next_socket: AtomicU64::new(1),
            widget_js: WIDGET_JS.replace(VERSION_PLACEHOLDER, &asset_version),
            asset_version,
        }
    }

    /// Sends `frame` to every open socket of `address`; returns how many took it.
    pub fn push(&self, address: &str, frame: &ServerFrame) -> usize {
        self.push_except(address, 0, frame)
    }

    /// How many sockets `address` has open.
    pub fn online(&self, address: &str) -> usize {
        self.lock().get(address).map_or(0, Vec::len)
    }

    pub(super) fn push_except(&self, address: &str, except: u64, frame: &ServerFrame) -> usize {
        let mut sockets = self.lock();
        let Some(senders) = sockets.get_mut(address) else {
            return 0;
        };
        let mut delivered = 0;
        // A socket that is full or gone is dropped from the hub: its task sees
        // the channel close, closes the socket, and the widget reconnects and replays.
        senders.retain(|(id, sender)| {
            if *id == except {
                return true;
            }
            let taken = sender.try_send(frame.clone()).is_ok();
            delivered += usize::from(taken);
            taken
        });
        if senders.is_empty() {
            sockets.remove(address);
        }
        delivered
    }

    pub(super) fn subscribe(self: &Arc<Self>, address: &str) -> Subscription {
        let id = self.next_socket.fetch_add(1, Ordering::Relaxed);
        let (sender, frames) = mpsc::channel(SOCKET_BUFFER);
        let mut sockets = self.lock();
        let senders = sockets.entry(address.to_string()).or_default();
        if senders.len() >= MAX_SOCKETS_PER_VISITOR {
            senders.remove(0);
        }
        senders.push((id, sender));
        Subscription {
            hub: Arc::clone(self),
            address: address.to_string(),
            id,
            frames,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Sockets>> {
        self.sockets.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One socket's place in the hub; leaving it (drop) removes the socket.
pub(super) struct Subscription {
    hub: Arc<ChatHub>,
    address: String,
    pub(super) id: u64,
    pub(super) frames: mpsc::Receiver<ServerFrame>,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut sockets = self.hub.lock();
        if let Some(senders) = sockets.get_mut(&self.address) {
            senders.retain(|(id, _)| *id != self.id);
            if senders.is_empty() {
                sockets.remove(&self.address);
            }
        }
    }
}
