//! The exact text of every error reply, as Redis 7 words it, so that replies can be compared
//! with a real Redis and tests can assert on them.

/// A command used a key that holds another type. No state changes.
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
/// `INCRBY` on a string that is not a canonical `i64` decimal.
pub const NOT_AN_INTEGER: &str = "ERR value is not an integer or out of range";
/// `INCRBY` whose result does not fit in an `i64`.
pub const INCR_OVERFLOW: &str = "ERR increment or decrement would overflow";
/// `ZADD` with a NaN score.
pub const NOT_A_FLOAT: &str = "ERR value is not a valid float";
/// `HSET` with no field-value pairs.
pub const ARITY_HSET: &str = "ERR wrong number of arguments for 'hset' command";
/// `HDEL` with no fields.
pub const ARITY_HDEL: &str = "ERR wrong number of arguments for 'hdel' command";
/// `ZADD` with no score-member pairs.
pub const ARITY_ZADD: &str = "ERR wrong number of arguments for 'zadd' command";
/// `ZREM` with no members.
pub const ARITY_ZREM: &str = "ERR wrong number of arguments for 'zrem' command";
/// `XADD` with no field-value pairs.
pub const ARITY_XADD: &str = "ERR wrong number of arguments for 'xadd' command";
/// `XADD` with the explicit id `0-0`.
pub const XADD_ID_ZERO: &str = "ERR The ID specified in XADD must be greater than 0-0";
/// `XADD` with an explicit id that is not above the stream's last id.
pub const XADD_ID_TOO_SMALL: &str =
    "ERR The ID specified in XADD is equal or smaller than the target stream top item";
/// `XADD` with an automatic id when the last id is `u64::MAX-u64::MAX`.
pub const XADD_ID_EXHAUSTED: &str =
    "ERR The stream has exhausted the last possible ID, unable to add more items";
/// A transaction (`Command::Multi`) containing a transaction: Redis's reply to `MULTI` inside
/// `MULTI`.
pub const MULTI_NESTED: &str = "ERR MULTI calls can not be nested";
/// `HINCRBY` on a field whose value is not a canonical `i64` decimal.
pub const HASH_NOT_AN_INTEGER: &str = "ERR hash value is not an integer";
/// `XACK` with no ids.
pub const ARITY_XACK: &str = "ERR wrong number of arguments for 'xack' command";
/// `XDEL` with no ids.
pub const ARITY_XDEL: &str = "ERR wrong number of arguments for 'xdel' command";
/// `XAUTOCLAIM` with `COUNT 0`.
pub const XAUTOCLAIM_COUNT: &str = "ERR COUNT must be > 0";
/// `XGROUP` on a missing key (without `MKSTREAM`).
pub const XGROUP_NO_KEY: &str = "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want to use the MKSTREAM option to create an empty stream automatically.";
/// `XGROUP CREATE` of a group that exists.
pub const BUSYGROUP: &str = "BUSYGROUP Consumer Group name already exists";
/// `XINFO` on a missing key.
pub const NO_SUCH_KEY: &str = "ERR no such key";
