//! The end of a broker run: what the run's queue still holds, read job by job.
//!
//! Counts alone cannot tell a job never run from one a node finished and reported but did not
//! live to acknowledge (killed, or the run ended between its report and its acknowledgement):
//! the broker holds both. So at the end, with every node done or lost, the controller has the
//! adapter read every message the queue still holds ([`Adapter::leftovers`]) and sorts them by
//! job id: finished somewhere (counted already), handed back by this process (counted already),
//! or neither (never run: abandoned). A job stored twice (a publish tried again after its
//! acknowledgement was lost) is one job.

use std::collections::HashSet;

use super::adapter::Adapter;
use super::wire::Wire;

/// The distinct jobs the run's queue holds that `counted` does not place.
pub async fn never_run(broker: &dyn Adapter, counted: impl Fn(u64) -> bool) -> Result<u64, String> {
    let messages = broker.leftovers().await?;
    Ok(distinct_uncounted(&messages, counted))
}

/// The distinct job ids among `messages` (what is not a job is left out) that `counted` does not
/// place.
fn distinct_uncounted(messages: &[Vec<u8>], counted: impl Fn(u64) -> bool) -> u64 {
    let ids: HashSet<u64> = messages.iter().filter_map(|m| Wire::decode(m).ok()).map(|w| w.id).collect();
    ids.into_iter().filter(|&id| !counted(id)).count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: u64) -> Vec<u8> {
        Wire { id, intended_ns: 0, enqueued_ns: 0, service_ns: 0, published_ns: 0 }.encode().to_vec()
    }

    #[test]
    fn a_job_stored_twice_is_one_and_counted_jobs_are_left_out() {
        let m = vec![job(1), job(2), job(2), job(3), b"not a job".to_vec()];
        assert_eq!(distinct_uncounted(&m, |id| id == 3), 2);
    }
}
