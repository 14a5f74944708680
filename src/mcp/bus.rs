//! Change notifications: the feature layer publishes, open streams subscribe. Legacy sessions
//! receive them on their GET stream; modern clients on `subscriptions/listen` streams.

use std::sync::Arc;

use tokio::sync::broadcast;

/// Something clients may want to hear about (serialised to reach other instances).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ChangeEvent {
    ToolsListChanged,
    PromptsListChanged,
    ResourcesListChanged,
    ResourceUpdated(Arc<str>),
}

impl ChangeEvent {
    /// The notification method that announces this change.
    pub fn method(&self) -> &'static str {
        match self {
            ChangeEvent::ToolsListChanged => "notifications/tools/list_changed",
            ChangeEvent::PromptsListChanged => "notifications/prompts/list_changed",
            ChangeEvent::ResourcesListChanged => "notifications/resources/list_changed",
            ChangeEvent::ResourceUpdated(_) => "notifications/resources/updated",
        }
    }
}

/// A bounded broadcast channel of [`ChangeEvent`]s. A subscriber that falls more than its
/// capacity behind skips the oldest events rather than slowing publishers down.
#[derive(Debug, Clone)]
pub struct ChangeBus {
    sender: broadcast::Sender<ChangeEvent>,
}

impl Default for ChangeBus {
    fn default() -> Self {
        ChangeBus { sender: broadcast::channel(256).0 }
    }
}

impl ChangeBus {
    /// Announces a change to every open stream (no-op when none is open).
    pub fn publish(&self, event: ChangeEvent) {
        let _ = self.sender.send(event);
    }

    /// A receiver for one stream.
    pub fn subscribe(&self) -> broadcast::Receiver<ChangeEvent> {
        self.sender.subscribe()
    }
}
