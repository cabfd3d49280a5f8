//! A job as it travels through the broker: a fixed 41-byte message.
//!
//! | bytes | field |
//! |---|---|
//! | 0 | format version ([`VERSION`]) |
//! | 1–8 | job id |
//! | 9–16 | intended arrival, ns after the run's epoch |
//! | 17–24 | enqueued (handed to the publisher), ns after the epoch |
//! | 25–32 | service demand, ns |
//! | 33–40 | published, ns after the epoch |
//!
//! All little-endian. Times are offsets from the run's epoch on the controller's clock, so a
//! message never carries a wall-clock reading that another machine would have to trust.

use std::time::{Duration, Instant};

/// The message format this build writes and reads. A message of another version is refused,
/// not guessed at.
pub const VERSION: u8 = 1;

/// The encoded length.
pub const LEN: usize = 41;

/// What the broker carries of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wire {
    pub id: u64,
    pub intended_ns: u64,
    pub enqueued_ns: u64,
    pub service_ns: u64,
    pub published_ns: u64,
}

/// Why a message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("a job message of {0} bytes; expected {LEN}")]
    Length(usize),
    #[error(
        "a job message in format {0}; this pooltune reads format {VERSION} (run the same pooltune version everywhere)"
    )]
    Version(u8),
}

/// Nanoseconds from `epoch` to `t` (0 before it; saturating far after it).
#[must_use]
pub fn offset(epoch: Instant, t: Instant) -> u64 {
    u64::try_from(t.saturating_duration_since(epoch).as_nanos()).unwrap_or(u64::MAX)
}

/// The instant `ns` after `epoch`.
#[must_use]
pub fn at(epoch: Instant, ns: u64) -> Instant {
    epoch + Duration::from_nanos(ns)
}

impl Wire {
    #[must_use]
    pub fn encode(&self) -> [u8; LEN] {
        let mut b = [0u8; LEN];
        b[0] = VERSION;
        for (i, v) in
            [self.id, self.intended_ns, self.enqueued_ns, self.service_ns, self.published_ns].into_iter().enumerate()
        {
            b[1 + 8 * i..9 + 8 * i].copy_from_slice(&v.to_le_bytes());
        }
        b
    }

    /// Reads a message.
    ///
    /// # Errors
    /// A message of the wrong length or of another format version.
    pub fn decode(b: &[u8]) -> Result<Wire, WireError> {
        if b.len() != LEN {
            // A different length from another version is a version error if its first byte says so.
            return Err(match b.first() {
                Some(&v) if v != VERSION => WireError::Version(v),
                _ => WireError::Length(b.len()),
            });
        }
        if b[0] != VERSION {
            return Err(WireError::Version(b[0]));
        }
        let field = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[1 + 8 * i..9 + 8 * i]);
            u64::from_le_bytes(w)
        };
        Ok(Wire {
            id: field(0),
            intended_ns: field(1),
            enqueued_ns: field(2),
            service_ns: field(3),
            published_ns: field(4),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_survives_the_trip_in_its_place() {
        let w = Wire { id: 1, intended_ns: 2, enqueued_ns: 3, service_ns: 4, published_ns: u64::MAX };
        assert_eq!(Wire::decode(&w.encode()), Ok(w));
        let mut b = w.encode();
        assert_eq!(&b[1..9], &1u64.to_le_bytes());
        assert_eq!(&b[25..33], &4u64.to_le_bytes());
        b[0] = 2;
        assert_eq!(Wire::decode(&b), Err(WireError::Version(2)));
        assert_eq!(Wire::decode(&b[..5]), Err(WireError::Version(2)));
        assert_eq!(Wire::decode(&w.encode()[..40]), Err(WireError::Length(40)));
        assert_eq!(Wire::decode(&[]), Err(WireError::Length(0)));
    }

    #[test]
    fn offsets_map_back_to_the_same_instant() {
        let epoch = Instant::now();
        let t = epoch + Duration::from_nanos(123_456_789);
        assert_eq!(at(epoch, offset(epoch, t)), t);
        assert_eq!(offset(t, epoch), 0);
    }
}
