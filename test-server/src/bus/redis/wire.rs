//! What the Redis bus stores and how: key names, the publish script, and decoding of
//! stream entries (`XRANGE` / `XREAD` replies) into [`Event`]s.
//!
//! Per stream `S` (a key like `channel/test`) the bus keeps, under a prefix `P`:
//! `P:n:S` the id counter (`INCR`), `P:s:S` the Redis stream holding the replay log with
//! entry ids `N-0` (field `d` = data, optional `e` = event name). `P:epoch` is a random
//! value set once per Redis dataset, so an instance notices when Redis lost its data.

use ::redis::Value;

use crate::event::Event;

/// Key of a stream's id counter.
pub(super) fn counter_key(prefix: &str, stream: &str) -> String {
    format!("{prefix}:n:{stream}")
}

/// Key of a stream's Redis stream (the replay log).
pub(super) fn log_key(prefix: &str, stream: &str) -> String {
    format!("{prefix}:s:{stream}")
}

/// Key of the dataset epoch.
pub(super) fn epoch_key(prefix: &str) -> String {
    format!("{prefix}:epoch")
}

/// Key marking that the `n`th publish of the keyed request `scope` stored an event (its
/// value is the id), so a re-run of that request after its answer was lost publishes
/// nothing again.
pub(super) fn published_key(prefix: &str, scope: &str, n: u32) -> String {
    format!("{prefix}:idem-ev:{scope}:{n}")
}

/// The publish script of one event made by a request with an `Idempotency-Key`:
/// `KEYS[1]` log, `KEYS[2]` counter, `KEYS[3]` its [`published_key`]; `ARGV[1]` MAXLEN,
/// `ARGV[2]` "1" if named, `ARGV[3]` name, `ARGV[4]` data, `ARGV[5]` how long to keep
/// the key (ms). When the key is there, returns its id and stores nothing; else stores
/// the event and the key together.
pub(super) const KEYED_PUBLISH_SCRIPT: &str = r"
local prev = redis.call('GET', KEYS[3])
if prev then return tonumber(prev) end
local id = redis.call('INCR', KEYS[2])
local sid = string.format('%d-0', id)
if ARGV[2] == '1' then
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], sid, 'd', ARGV[4], 'e', ARGV[3])
else
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], sid, 'd', ARGV[4])
end
redis.call('SET', KEYS[3], id, 'PX', ARGV[5])
return id
";

/// `KEYS[1]` log, `KEYS[2]` counter; `ARGV[1]` MAXLEN, then three arguments per event,
/// oldest first: "1" if named, the name, the data. Allocates the next ids (`INCRBY` the
/// number of events) and appends the entries with them, atomically: ids are global per
/// stream, consecutive within the call, and the log never holds a gap. Returns the first
/// id. Publishes that arrive together share one call (see [`super::group`]).
pub(super) const GROUP_PUBLISH_SCRIPT: &str = r"
local n = (#ARGV - 1) / 3
local last = redis.call('INCRBY', KEYS[2], n)
local first = last - n + 1
for i = 0, n - 1 do
  local a = 2 + 3 * i
  local sid = string.format('%d-0', first + i)
  if ARGV[a] == '1' then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], sid, 'd', ARGV[a + 2], 'e', ARGV[a + 1])
  else
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], sid, 'd', ARGV[a + 2])
  end
end
return first
";

/// A reply that does not have the shape the bus wrote.
#[derive(Debug, thiserror::Error)]
#[error("unexpected reply from Redis: {0}")]
pub(super) struct BadReply(pub(super) String);

fn bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        _ => None,
    }
}

fn text(v: &Value) -> Result<String, BadReply> {
    bytes(v)
        .and_then(|b| std::str::from_utf8(b).ok())
        .map(str::to_owned)
        .ok_or_else(|| BadReply(format!("expected a string, got {v:?}")))
}

/// Parses an entry id `N-0` into `N`.
pub(super) fn parse_entry_id(id: &str) -> Result<u64, BadReply> {
    id.split_once('-')
        .and_then(|(n, _)| n.parse().ok())
        .ok_or_else(|| BadReply(format!("entry id {id:?} is not N-0")))
}

/// Decodes one stream entry `[id, [field, value, …]]`.
fn entry(v: &Value) -> Result<Event, BadReply> {
    let Value::Array(parts) = v else {
        return Err(BadReply(format!("entry {v:?}")));
    };
    let [id, fields] = parts.as_slice() else {
        return Err(BadReply(format!("entry {v:?}")));
    };
    let id = parse_entry_id(&text(id)?)?;
    let mut event = Event {
        id,
        event: None,
        data: String::new(),
    };
    let pairs: Vec<(&Value, &Value)> = match fields {
        Value::Array(f) => f.chunks_exact(2).map(|c| (&c[0], &c[1])).collect(),
        Value::Map(m) => m.iter().map(|(k, v)| (k, v)).collect(),
        other => return Err(BadReply(format!("entry fields {other:?}"))),
    };
    for (k, v) in pairs {
        match bytes(k) {
            Some(b"d") => event.data = text(v)?,
            Some(b"e") => event.event = Some(text(v)?),
            _ => {}
        }
    }
    Ok(event)
}

/// Decodes an `XRANGE` reply (oldest first).
pub(super) fn range(v: &Value) -> Result<Vec<Event>, BadReply> {
    match v {
        Value::Nil => Ok(Vec::new()),
        Value::Array(entries) => entries.iter().map(entry).collect(),
        other => Err(BadReply(format!("XRANGE {other:?}"))),
    }
}

/// Decodes an `XREAD` reply into `(log key, events)` pairs; `Nil` (timeout) is empty.
pub(super) fn read(v: &Value) -> Result<Vec<(String, Vec<Event>)>, BadReply> {
    let pairs: Vec<(&Value, &Value)> = match v {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(streams) => streams
            .iter()
            .map(|s| match s {
                Value::Array(kv) if kv.len() == 2 => Ok((&kv[0], &kv[1])),
                other => Err(BadReply(format!("XREAD stream {other:?}"))),
            })
            .collect::<Result<_, _>>()?,
        Value::Map(m) => m.iter().map(|(k, v)| (k, v)).collect(),
        other => return Err(BadReply(format!("XREAD {other:?}"))),
    };
    pairs
        .into_iter()
        .map(|(k, entries)| Ok((text(k)?, range(entries)?)))
        .collect()
}

/// Decodes a counter (`GET`): `Nil` is 0.
pub(super) fn counter(v: &Value) -> Result<u64, BadReply> {
    match v {
        Value::Nil => Ok(0),
        Value::Int(n) => u64::try_from(*n).map_err(|_| BadReply(format!("counter {n}"))),
        other => text(other)?
            .parse()
            .map_err(|_| BadReply(format!("counter {other:?}"))),
    }
}

/// Decodes a string reply.
pub(super) fn string(v: &Value) -> Result<String, BadReply> {
    text(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn decodes_entries_and_reads() {
        let e1 = Value::Array(vec![
            bulk("3-0"),
            Value::Array(vec![bulk("d"), bulk("{}"), bulk("e"), bulk("x")]),
        ]);
        let e2 = Value::Array(vec![bulk("4-0"), Value::Array(vec![bulk("d"), bulk("hi")])]);
        let got = range(&Value::Array(vec![e1.clone(), e2])).unwrap();
        assert_eq!(
            got[0],
            Event {
                id: 3,
                event: Some("x".into()),
                data: "{}".into()
            }
        );
        assert_eq!(
            got[1],
            Event {
                id: 4,
                event: None,
                data: "hi".into()
            }
        );
        let r = read(&Value::Array(vec![Value::Array(vec![
            bulk("P:s:a"),
            Value::Array(vec![e1]),
        ])]))
        .unwrap();
        assert_eq!(r[0].0, "P:s:a");
        assert_eq!(r[0].1[0].id, 3);
        assert!(read(&Value::Nil).unwrap().is_empty());
        assert!(range(&Value::Int(3)).is_err());
        assert!(parse_entry_id("x-0").is_err());
    }
}
