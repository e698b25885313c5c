//! What the server remembers about peers that fail: a backoff on wrong tokens
//! per address, and log lines about failures and refusals kept to a trickle.
//!
//! **Backoff.** Every attempt from an address with recent failures waits
//! before its token is even compared, whether it is right or wrong: a reply
//! that came at once for the right token would tell a guesser to stop waiting
//! for the others. The first [`FREE_FAILURES`] failures cost nothing (typos);
//! then the wait is [`FIRST_DELAY`], doubling with each failure up to
//! [`MAX_DELAY`]. Attempts from one address are also spaced by that wait when
//! they arrive together, so parallel connections guess no faster; one that
//! would have to queue longer than [`MAX_QUEUE`] is refused at once, without
//! its token being compared. An address that stays quiet for [`QUIET`] is
//! forgotten. IPv6 peers are counted per /64 (what one host usually holds);
//! a Unix socket's peers per user id.
//!
//! **Everyone.** Failures are also counted for all addresses together, with
//! [`FREE_FAILURES_ALL`] free in [`QUIET`]: past them every attempt, from
//! anywhere, waits as an address's would. A guesser with many addresses (all
//! of 127.0.0.0/8 on this machine, many IPv6 networks) gains nothing by
//! spreading its guesses; while it tries, other clients wait too, which is
//! the price of not being guessable.
//!
//! **Bounds.** A waiting attempt is a connection still in its handshake, so
//! it counts against `max_handshakes` and gives way to newer ones like any
//! other (the wait ends when it is evicted); the table holds at most
//! [`MAX_PEERS`] addresses, the quietest forgotten first.
//!
//! **Logging.** One line per address per [`LOG_EVERY`] at most, and at most
//! [`LOG_LINES`] such lines in all per [`LOG_EVERY`]; the next line said about
//! an address counts the ones left out.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ftpsh_core::net::Stream;

/// Failures from one address that cost no wait.
pub const FREE_FAILURES: u32 = 2;
/// The wait after the free failures; it doubles with each further one.
pub const FIRST_DELAY: Duration = Duration::from_millis(100);
/// The longest wait before an attempt is answered.
pub const MAX_DELAY: Duration = Duration::from_secs(5);
/// An attempt that would wait longer than this (attempts from one address
/// queue behind each other) is refused at once. Below the client's 10-second
/// wait for a handshake reply.
pub const MAX_QUEUE: Duration = Duration::from_secs(6);
/// An address without a failure for this long starts afresh.
pub const QUIET: Duration = Duration::from_secs(60);
/// At most one log line per address in this time...
pub const LOG_EVERY: Duration = Duration::from_secs(10);
/// ... and at most this many lines in all.
pub const LOG_LINES: u32 = 20;
/// Addresses remembered at once.
pub const MAX_PEERS: usize = 4096;
/// Failures from all addresses together that cost nobody a wait.
pub const FREE_FAILURES_ALL: u32 = 64;

/// Whom a failure is counted against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum PeerKey {
    Ip(IpAddr),
    /// The first 64 bits of an IPv6 address.
    Ipv6Net(u64),
    Uid(u32),
    Unknown,
}

impl PeerKey {
    pub fn of(stream: &Stream) -> PeerKey {
        if let Some(ip) = stream.peer_ip() {
            return PeerKey::from_ip(ip);
        }
        match stream.peer_uid() {
            Some(Ok(uid)) => PeerKey::Uid(uid),
            _ => PeerKey::Unknown,
        }
    }

    pub fn from_ip(ip: IpAddr) -> PeerKey {
        match ip.to_canonical() {
            IpAddr::V6(v6) => PeerKey::Ipv6Net((u128::from(v6) >> 64) as u64),
            v4 => PeerKey::Ip(v4),
        }
    }
}

impl fmt::Display for PeerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerKey::Ip(ip) => write!(f, "{ip}"),
            PeerKey::Ipv6Net(net) => {
                let v6 = std::net::Ipv6Addr::from(u128::from(*net) << 64);
                write!(f, "{v6}/64")
            }
            PeerKey::Uid(uid) => write!(f, "uid {uid}"),
            PeerKey::Unknown => f.write_str("an unknown peer"),
        }
    }
}

/// What an attempt must do before its token is compared.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Compare now.
    Now,
    /// Wait this long first.
    After(Duration),
    /// Refuse without comparing: too many attempts queued from this address.
    /// The duration is about how long until one would be taken.
    Refuse(Duration),
}

#[derive(Default)]
pub(crate) struct Guard {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    peers: HashMap<PeerKey, Record>,
    /// Failures from every address together (see "Everyone" above).
    everyone: Option<Record>,
    /// The start of the current logging window, and the lines logged in it.
    window: Option<Instant>,
    lines: u32,
}

struct Record {
    failures: u32,
    /// The last failure or refusal: what [`QUIET`] is measured from.
    last: Instant,
    /// The earliest moment the next waiting attempt may be answered.
    not_before: Instant,
    logged_at: Option<Instant>,
    /// Events not logged since the last line about this address.
    unlogged: u64,
}

/// What to say about a failure in the log, when it is said at all.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Note {
    /// Failures from this address lately, this one included.
    pub failures: u32,
    /// Events about this address left out of the log since its last line.
    pub unlogged: u64,
    /// How long the address's next attempt will wait.
    pub next_wait: Duration,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "failure {}", self.failures)?;
        if self.unlogged > 0 {
            write!(f, ", {} not logged since the last line", self.unlogged)?;
        }
        if !self.next_wait.is_zero() {
            write!(
                f,
                "; its next attempt waits {:.1} s",
                self.next_wait.as_secs_f64()
            )?;
        }
        Ok(())
    }
}

/// The wait owed after `failures` recent failures.
pub fn delay(failures: u32) -> Duration {
    if failures < FREE_FAILURES {
        return Duration::ZERO;
    }
    let doublings = (failures - FREE_FAILURES).min(16);
    (FIRST_DELAY * 2u32.pow(doublings)).min(MAX_DELAY)
}

impl Guard {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Decides when an attempt from `key` may have its token compared: the
    /// later of what its address owes and what everyone owes.
    pub fn admit(&self, key: &PeerKey, now: Instant) -> Admission {
        let mut state = self.lock();
        let own = match state.peers.get_mut(key) {
            Some(rec) if now.saturating_duration_since(rec.last) >= QUIET => {
                state.peers.remove(key);
                Admission::Now
            }
            Some(rec) => queue(rec, delay(rec.failures), now),
            None => Admission::Now,
        };
        let all = match &mut state.everyone {
            Some(rec) if now.saturating_duration_since(rec.last) >= QUIET => {
                state.everyone = None;
                Admission::Now
            }
            Some(rec) => queue(
                rec,
                delay(
                    rec.failures
                        .saturating_sub(FREE_FAILURES_ALL - FREE_FAILURES),
                ),
                now,
            ),
            None => Admission::Now,
        };
        match (own, all) {
            (Admission::Refuse(d), _) | (_, Admission::Refuse(d)) => Admission::Refuse(d),
            (Admission::After(a), Admission::After(b)) => Admission::After(a.max(b)),
            (Admission::After(d), Admission::Now) | (Admission::Now, Admission::After(d)) => {
                Admission::After(d)
            }
            (Admission::Now, Admission::Now) => Admission::Now,
        }
    }

    /// Counts a wrong token from `key`; returns what to log, if anything.
    pub fn failed(&self, key: &PeerKey, now: Instant) -> Option<Note> {
        let mut state = self.lock();
        let all = state.everyone.get_or_insert(Record {
            failures: 0,
            last: now,
            not_before: now,
            logged_at: None,
            unlogged: 0,
        });
        if now.saturating_duration_since(all.last) >= QUIET {
            all.failures = 0;
        }
        all.failures = all.failures.saturating_add(1);
        all.last = now;
        let rec = state.record(key, now);
        if now.saturating_duration_since(rec.last) >= QUIET {
            rec.failures = 0;
        }
        rec.failures = rec.failures.saturating_add(1);
        rec.last = now;
        let (failures, next_wait) = (rec.failures, delay(rec.failures));
        state.permit(key, now).map(|unlogged| Note {
            failures,
            unlogged,
            next_wait,
        })
    }

    /// A refusal that is no failure of the token (a user the socket does not
    /// admit, an attempt turned away unheard): `Some(events left out since
    /// the last line)` if it may be logged.
    pub fn refused(&self, key: &PeerKey, now: Instant) -> Option<u64> {
        let mut state = self.lock();
        state.record(key, now).last = now;
        state.permit(key, now)
    }
}

/// Places an attempt in `rec`'s queue when it owes `wait`.
fn queue(rec: &mut Record, wait: Duration, now: Instant) -> Admission {
    if wait.is_zero() {
        return Admission::Now;
    }
    let ready = rec.not_before.max(now) + wait;
    let queued = ready - now;
    if queued > MAX_QUEUE {
        return Admission::Refuse(queued - wait);
    }
    rec.not_before = ready;
    Admission::After(queued)
}

impl State {
    /// The record for `key`, made room for if the table is full.
    fn record(&mut self, key: &PeerKey, now: Instant) -> &mut Record {
        if !self.peers.contains_key(key) && self.peers.len() >= MAX_PEERS {
            self.peers
                .retain(|_, r| now.saturating_duration_since(r.last) < QUIET);
            if self.peers.len() >= MAX_PEERS {
                // Forget the quietest eighth at once, so that a stream of new
                // addresses costs one sort per MAX_PEERS / 8 of them.
                let mut by_age: Vec<(Instant, PeerKey)> =
                    self.peers.iter().map(|(k, r)| (r.last, *k)).collect();
                let cut = MAX_PEERS / 8;
                by_age.select_nth_unstable_by_key(cut, |(last, _)| *last);
                for (_, k) in &by_age[..cut] {
                    self.peers.remove(k);
                }
            }
        }
        self.peers.entry(*key).or_insert(Record {
            failures: 0,
            last: now,
            not_before: now,
            logged_at: None,
            unlogged: 0,
        })
    }

    /// Whether a line about `key` may be logged now (it has a record):
    /// `Some(lines left out before it)`, or `None` after counting it as left out.
    fn permit(&mut self, key: &PeerKey, now: Instant) -> Option<u64> {
        if self
            .window
            .is_none_or(|w| now.saturating_duration_since(w) >= LOG_EVERY)
        {
            self.window = Some(now);
            self.lines = 0;
        }
        let room = self.lines < LOG_LINES;
        let rec = self.peers.get_mut(key)?;
        let due = rec
            .logged_at
            .is_none_or(|t| now.saturating_duration_since(t) >= LOG_EVERY);
        if room && due {
            self.lines += 1;
            rec.logged_at = Some(now);
            Some(std::mem::take(&mut rec.unlogged))
        } else {
            rec.unlogged += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(s: &str) -> PeerKey {
        PeerKey::from_ip(s.parse().unwrap())
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_wait_starts_after_the_free_failures_doubles_and_is_capped() {
        let waits: Vec<u64> = (0..10).map(|n| delay(n).as_millis() as u64).collect();
        assert_eq!(waits, [0, 0, 100, 200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(delay(u32::MAX), MAX_DELAY);
    }

    #[test]
    fn failures_slow_down_only_their_own_address_and_are_forgotten() {
        let g = Guard::default();
        let t = Instant::now();
        let (a, b) = (ip("127.0.0.1"), ip("127.0.0.2"));
        for n in 0..6 {
            let now = t + ms(n * 10_000);
            let expected = delay(n as u32);
            let got = g.admit(&a, now);
            if expected.is_zero() {
                assert_eq!(got, Admission::Now, "attempt {n}");
            } else {
                assert_eq!(got, Admission::After(expected), "attempt {n}");
            }
            g.failed(&a, now + expected);
        }
        assert_eq!(g.admit(&b, t + ms(60_000)), Admission::Now);
        // Quiet for a minute: a fresh start.
        let later = t + ms(60_000) + QUIET;
        assert_eq!(g.admit(&a, later), Admission::Now);
        g.failed(&a, later);
        assert_eq!(g.admit(&a, later), Admission::Now, "one failure is free");
    }

    #[test]
    fn guesses_spread_over_many_addresses_slow_everyone_down() {
        let g = Guard::default();
        let t = Instant::now();
        // One wrong guess from each of many loopback addresses: each address
        // alone is owed nothing, but everyone together is.
        for n in 0..FREE_FAILURES_ALL {
            let key = PeerKey::from_ip(std::net::IpAddr::V4(Ipv4Addr::from(0x7f00_0100 + n)));
            assert_eq!(g.admit(&key, t), Admission::Now, "guess {n}");
            g.failed(&key, t);
        }
        let fresh = ip("127.9.9.9");
        assert!(
            matches!(g.admit(&fresh, t), Admission::After(_)),
            "the {}th guess from a new address must wait",
            FREE_FAILURES_ALL + 1
        );
        // Guessing on, the queue fills and further guesses are refused unheard.
        for n in 0..20 {
            let key = PeerKey::from_ip(std::net::IpAddr::V4(Ipv4Addr::from(0x7f00_0200 + n)));
            g.failed(&key, t);
        }
        let waits: Vec<_> = (0..3).map(|_| g.admit(&ip("127.8.8.8"), t)).collect();
        assert!(
            matches!(waits[0], Admission::After(d) if d >= ms(5000)),
            "{waits:?}"
        );
        assert!(matches!(waits[2], Admission::Refuse(_)), "{waits:?}");
        // A quiet while later, everyone starts afresh.
        assert_eq!(g.admit(&fresh, t + QUIET), Admission::Now);
    }

    #[test]
    fn attempts_arriving_together_are_spaced_and_a_long_queue_is_refused() {
        let g = Guard::default();
        let t = Instant::now();
        let a = ip("192.0.2.1");
        for _ in 0..7 {
            g.failed(&a, t);
        }
        // delay(7) = 3.2 s: the first waits 3.2 s, the second would wait 6.4 s.
        assert_eq!(g.admit(&a, t), Admission::After(ms(3200)));
        assert!(matches!(g.admit(&a, t), Admission::Refuse(_)));
        // Once the first is answered, the next one waits its own turn only.
        assert_eq!(g.admit(&a, t + ms(3200)), Admission::After(ms(3200)));
    }

    #[test]
    fn ipv6_peers_count_per_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(ip("2001:db8::1"), ip("2001:db8::ffff:2"));
        assert_ne!(ip("2001:db8::1"), ip("2001:db8:0:1::1"));
        assert_eq!(ip("::ffff:192.0.2.7"), ip("192.0.2.7"));
        assert_eq!(ip("2001:db8::1").to_string(), "2001:db8::/64");
    }

    #[test]
    fn logging_is_one_line_per_address_per_window_with_a_count_of_the_rest() {
        let g = Guard::default();
        let t = Instant::now();
        let a = ip("192.0.2.1");
        let first = g.failed(&a, t).expect("the first failure is logged");
        assert_eq!((first.failures, first.unlogged), (1, 0));
        for n in 1..50 {
            assert_eq!(g.failed(&a, t + ms(n * 100)), None, "failure {n}");
        }
        let next = g
            .failed(&a, t + LOG_EVERY + ms(1))
            .expect("a line per window");
        assert_eq!((next.failures, next.unlogged), (51, 49));
        assert!(next.to_string().contains("49 not logged"), "{next}");
    }

    #[test]
    fn many_addresses_share_a_cap_on_lines_and_on_memory() {
        let g = Guard::default();
        let t = Instant::now();
        let logged = (0..1000u32)
            .filter(|n| {
                let key = PeerKey::Ip(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n)));
                g.failed(&key, t).is_some()
            })
            .count();
        assert_eq!(logged, LOG_LINES as usize);
        for n in 0..(2 * MAX_PEERS as u32) {
            g.refused(&PeerKey::Uid(n), t + ms(u64::from(n)));
        }
        assert!(g.lock().peers.len() <= MAX_PEERS);
    }
}
