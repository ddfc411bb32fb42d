package redis

import goredis "github.com/redis/go-redis/v9"

// scripts are the Lua scripts that move a message between a stream and its
// group's retry keys in one atomic step, so that a crash in between can
// neither lose the message nor leave it both pending and scheduled. They
// touch only keys of one topic (one hash slot) and use the server's clock.
type scripts struct {
	delay   *goredis.Script
	requeue *goredis.Script
	move    *goredis.Script
}

func newScripts() scripts {
	return scripts{
		delay:   goredis.NewScript(delayScript),
		requeue: goredis.NewScript(requeueScript),
		move:    goredis.NewScript(moveScript),
	}
}

// delayScript acknowledges an entry and schedules its message for later:
// KEYS[1] the entry's stream, KEYS[2] the group's delay set; ARGV[1] the
// group, ARGV[2] the entry ID, ARGV[3] the delay in milliseconds, ARGV[4]
// the encoded redelivery, ARGV[5] "1" to delete the entry (a redo entry,
// which only this group reads), ARGV[6] the consumer. It returns 0 when the
// entry is no longer pending for this consumer (another member took it
// over after AckWait): nothing is done then.
const delayScript = `
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #p == 0 or p[1][2] ~= ARGV[6] then return 0 end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if ARGV[5] == '1' then redis.call('XDEL', KEYS[1], ARGV[2]) end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[4])
return 1
`

// requeueScript acknowledges entries and appends their messages to the
// group's redo stream at once: KEYS[1] the entries' stream, KEYS[2] the redo
// stream; ARGV[1] the group, ARGV[2] "1" to delete the entries, ARGV[3] the
// consumer, then pairs of entry ID and encoded redelivery. Entries no longer
// pending for this consumer (another member took them over after AckWait)
// are skipped: that member handles them. It returns how many were requeued.
const requeueScript = `
local n = 0
for i = 4, #ARGV, 2 do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if #p == 1 and p[1][2] == ARGV[3] then
    redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
    if ARGV[2] == '1' then redis.call('XDEL', KEYS[1], ARGV[i]) end
    redis.call('XADD', KEYS[2], '*', 'm', ARGV[i+1])
    n = n + 1
  end
end
return n
`

// moveScript moves the messages of a delay set that are due to the redo
// stream: KEYS[1] the delay set, KEYS[2] the redo stream; ARGV[1] the most
// to move. It returns how many it moved and how many milliseconds until the
// next one is due (-1: none left).
const moveScript = `
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, m in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'm', m)
  redis.call('ZREM', KEYS[1], m)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #nxt == 0 then return {#due, -1} end
return {#due, math.max(0, tonumber(nxt[2]) - now)}
`
