//! The Lua scripts that make the run's stream behave as a bounded queue: each runs atomically on
//! the server, so a bound checked in one cannot be raced by another publisher, and a reading of
//! the stream is one instant.
//!
//! The server keeps scripts in a cache a restart empties: a call by hash that finds its script
//! gone (`NOSCRIPT`) loads it and is sent again (by [`redis::Script`] for one call, by the
//! publisher for its batches).

use std::sync::LazyLock;

use redis::Script;

/// One publish. `KEYS[1]`: the run's stream, `KEYS[2]`: the run's hash. `ARGV`: the job's
/// message, the bound, `1` for `drop-oldest` (else the bound refuses), the group.
///
/// Answers `-1` when the stream is gone (a server restarted without it: nothing is stored, and
/// the stream is not made here, so only the controller's recovery makes it, with its group),
/// `-2` when the stream holds the bound already (nothing stored), and otherwise `n ≥ 0`: stored,
/// and `n` entries the group had not delivered deleted to keep the stream at the bound.
///
/// `drop-oldest` deletes the oldest entries after the group's last-delivered id: delivered
/// entries (in service or prefetched at a node, not yet acknowledged) are never deleted, so a
/// node that dies still has its jobs claimed by another. When every entry the stream holds has
/// been delivered, the job just stored is the only undelivered one and is the one deleted: the
/// bound holds, and the count (`n`) is exact either way. The server keeps its own total of them
/// in the hash (`trimmed`).
pub const PUBLISH: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local bound = tonumber(ARGV[2])
local len = redis.call('XLEN', KEYS[1])
if ARGV[3] ~= '1' then
  if len >= bound then return -2 end
  redis.call('XADD', KEYS[1], '*', 'j', ARGV[1])
  return 0
end
redis.call('XADD', KEYS[1], '*', 'j', ARGV[1])
local over = len + 1 - bound
if over <= 0 then return 0 end
local last = '0-0'
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local f = {}
  for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
  if f['name'] == ARGV[4] then last = f['last-delivered-id'] end
end
local dropped = 0
while over > 0 do
  local batch = redis.call('XRANGE', KEYS[1], '(' .. last, '+', 'COUNT', math.min(over, 1000))
  if #batch == 0 then break end
  local ids = {}
  for i, e in ipairs(batch) do ids[i] = e[1] end
  dropped = dropped + redis.call('XDEL', KEYS[1], unpack(ids))
  over = over - #batch
  last = ids[#ids]
end
if dropped > 0 then redis.call('HINCRBY', KEYS[2], 'trimmed', dropped) end
return dropped
";

/// One reading of the stream: `{XLEN, the group's pending count, the hash's claimed and trimmed
/// totals}`, at one instant. Fails when the stream or its group is gone (`NOGROUP`), which sends
/// the controller to recover.
pub const HOLDING: &str = r"
local n = redis.call('XLEN', KEYS[1])
local p = redis.call('XPENDING', KEYS[1], ARGV[1])
local c = redis.call('HMGET', KEYS[2], 'claimed', 'trimmed')
return {n, p[1], tonumber(c[1]) or 0, tonumber(c[2]) or 0}
";

/// Claims for consumer `ARGV[2]` the group's entries idle (delivered and not acknowledged) for
/// at least the run's `ack_wait`, read from the run's hash (`KEYS[2]`, which the controller
/// writes), from cursor `ARGV[3]`, at most `ARGV[4]` of them: `XAUTOCLAIM`'s answer (the next
/// cursor, the entries, the ids of entries deleted meanwhile). The hash keeps the total claimed
/// (`claimed`), whoever claimed them.
pub const CLAIM: &str = r"
local wait = tonumber(redis.call('HGET', KEYS[2], 'ack_wait_ms') or '30000')
local r = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], wait, ARGV[3], 'COUNT', ARGV[4])
if #r[2] > 0 then redis.call('HINCRBY', KEYS[2], 'claimed', #r[2]) end
return r
";

pub static PUBLISH_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(PUBLISH));
pub static HOLDING_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(HOLDING));
pub static CLAIM_SCRIPT: LazyLock<Script> = LazyLock::new(|| Script::new(CLAIM));

/// What [`PUBLISH`] answered, as the core takes it.
pub fn published(answer: i64) -> crate::engine::broker::adapter::Published {
    use crate::engine::broker::adapter::Published;
    match answer {
        -1 => Published::Failed("the run's stream is gone (the server restarted without it)".into()),
        -2 => Published::Full,
        n => Published::Stored { dropped: u64::try_from(n).unwrap_or(0) },
    }
}
