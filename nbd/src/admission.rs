//! Which connections the server takes: at most `max_clients` at once, of
//! which at most `max_handshakes` still negotiating. A real client finishes
//! its handshake in milliseconds, so when the handshake slots are full (or
//! every slot is taken and some are still negotiating) the oldest
//! negotiation is closed to make room: idle or trickling connections cannot
//! lock well-behaved clients out for the handshake timeout. When every slot
//! holds a client in transmission, new connections are turned away.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

/// The limits and the slots taken.
#[derive(Debug)]
pub(crate) struct Admission {
    max_clients: usize,
    max_handshakes: usize,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Connections holding a slot (negotiating or transmitting).
    clients: usize,
    /// The negotiating ones, oldest first, each with its eviction signal.
    negotiating: VecDeque<(u64, oneshot::Sender<()>)>,
    next_id: u64,
}

/// What [`Admission::admit`] decided.
#[derive(Debug)]
pub(crate) enum Admitted {
    /// A slot, in its handshake; `evicted` is set when the oldest handshake
    /// had to go to make room for this one.
    Yes {
        ticket: Ticket,
        /// Fires when this connection is evicted in turn.
        evict: oneshot::Receiver<()>,
        evicted: bool,
    },
    /// Every slot holds a client in transmission.
    Full,
}

impl Admission {
    pub(crate) fn new(max_clients: usize, max_handshakes: usize) -> Arc<Self> {
        Arc::new(Admission {
            // Zero would refuse everyone, which no one means.
            max_clients: max_clients.max(1),
            max_handshakes: max_handshakes.max(1),
            state: Mutex::default(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // The state stays consistent at every step: a panic elsewhere while
        // holding the lock leaves nothing half done.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Connections holding a slot now.
    pub(crate) fn clients(&self) -> usize {
        self.lock().clients
    }

    /// Connections still in their handshake now.
    pub(crate) fn negotiating(&self) -> usize {
        self.lock().negotiating.len()
    }

    /// The limits: clients, handshakes.
    pub(crate) fn limits(&self) -> (usize, usize) {
        (self.max_clients, self.max_handshakes)
    }

    /// A slot for a new connection, evicting the oldest handshake when that
    /// makes room.
    pub(crate) fn admit(self: &Arc<Self>) -> Admitted {
        let mut state = self.lock();
        let crowded = state.negotiating.len() >= self.max_handshakes
            || (state.clients >= self.max_clients && !state.negotiating.is_empty());
        let mut evicted = false;
        if crowded && let Some((_, signal)) = state.negotiating.pop_front() {
            // Its slot is free from now on; its ticket knows, being no longer
            // listed, and does not release it again.
            let _ = signal.send(());
            state.clients -= 1;
            evicted = true;
        }
        if state.clients >= self.max_clients {
            return Admitted::Full;
        }
        let id = state.next_id;
        state.next_id += 1;
        let (signal, evict) = oneshot::channel();
        state.negotiating.push_back((id, signal));
        state.clients += 1;
        Admitted::Yes {
            ticket: Ticket {
                admission: self.clone(),
                id,
                negotiating: true,
            },
            evict,
            evicted,
        }
    }

    /// A slot for a connection whose handshake happened elsewhere (the
    /// kernel's): never refused, never evicted.
    pub(crate) fn admit_negotiated(self: &Arc<Self>) -> Ticket {
        let mut state = self.lock();
        state.clients += 1;
        let id = state.next_id;
        state.next_id += 1;
        Ticket {
            admission: self.clone(),
            id,
            negotiating: false,
        }
    }
}

/// One connection's slot, released on drop.
#[derive(Debug)]
pub(crate) struct Ticket {
    admission: Arc<Admission>,
    id: u64,
    negotiating: bool,
}

impl Ticket {
    /// The handshake is done: the connection leaves the handshake slots.
    /// False when it was evicted meanwhile (its slot is gone: it must close).
    pub(crate) fn negotiated(&mut self) -> bool {
        if !self.negotiating {
            return true;
        }
        let mut state = self.admission.lock();
        let Some(at) = state.negotiating.iter().position(|(id, _)| *id == self.id) else {
            return false;
        };
        state.negotiating.remove(at);
        self.negotiating = false;
        true
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut state = self.admission.lock();
        if self.negotiating {
            match state.negotiating.iter().position(|(id, _)| *id == self.id) {
                Some(at) => {
                    state.negotiating.remove(at);
                }
                // Evicted: the evicter released the slot already.
                None => return,
            }
        }
        state.clients -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yes(a: &Arc<Admission>) -> (Ticket, oneshot::Receiver<()>, bool) {
        match a.admit() {
            Admitted::Yes {
                ticket,
                evict,
                evicted,
            } => (ticket, evict, evicted),
            Admitted::Full => panic!("refused"),
        }
    }

    #[test]
    fn idle_handshakes_make_room_oldest_first() {
        let a = Admission::new(8, 2);
        let (_t1, mut e1, x1) = yes(&a);
        let (_t2, mut e2, x2) = yes(&a);
        assert!(!x1 && !x2);
        let (_t3, mut e3, x3) = yes(&a);
        assert!(x3, "the third handshake evicts one");
        assert!(e1.try_recv().is_ok(), "the oldest goes");
        assert!(e2.try_recv().is_err() && e3.try_recv().is_err());
        assert_eq!((a.clients(), a.negotiating()), (2, 2));
        drop(_t1);
        assert_eq!(a.clients(), 2, "an evicted ticket does not release twice");
    }

    #[test]
    fn full_of_transmitting_clients_refuses() {
        let a = Admission::new(2, 2);
        let (mut t1, _e1, _) = yes(&a);
        let (mut t2, _e2, _) = yes(&a);
        assert!(t1.negotiated() && t2.negotiated());
        assert!(matches!(a.admit(), Admitted::Full));
        assert_eq!(a.clients(), 2);
        drop(t1);
        let (_t3, _e3, evicted) = yes(&a);
        assert!(!evicted);
        drop(t2);
        assert_eq!((a.clients(), a.negotiating()), (1, 1));
    }

    #[test]
    fn every_slot_taken_with_a_handshake_left_evicts_it() {
        let a = Admission::new(2, 4);
        let (mut t1, _e1, _) = yes(&a);
        assert!(t1.negotiated());
        let (mut t2, mut e2, _) = yes(&a);
        let (_t3, _e3, evicted) = yes(&a);
        assert!(evicted && e2.try_recv().is_ok());
        assert!(
            !t2.negotiated(),
            "evicted before it finished: it must close"
        );
        drop(t2);
        assert_eq!((a.clients(), a.negotiating()), (2, 1));
    }

    #[test]
    fn negotiated_connections_do_not_count_as_handshakes() {
        let a = Admission::new(4, 1);
        let kernel = a.admit_negotiated();
        let (_t, _e, evicted) = yes(&a);
        assert!(!evicted);
        assert_eq!((a.clients(), a.negotiating()), (2, 1));
        drop(kernel);
        assert_eq!(a.clients(), 1);
    }
}
