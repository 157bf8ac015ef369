"""The submit lock's keys in Redis, and the Lua scripts that queue for it, take it and let it go.

Plain text, no ``redis`` import: :mod:`~emoji_async._shared_lock` registers
the scripts. The keys are the account's (see
:mod:`~emoji_async._shared_scripts`); times are Redis's own (``TIME``).

``{ns}:submit:lock`` (a string: the holder's ``host:pid:nonce``)
    The submit lock, released (:data:`UNLOCK`) and renewed (:data:`RELOCK`)
    by its holder's token. Held across a submit and its settling; it expires
    ``lock_ttl`` after its holder stops renewing it, every third of that.
``{ns}:submit:waiting`` (a sorted set: token -> arrival), ``{ns}:submit:waiters`` (a hash)
    The submits of every process waiting for the lock, in the order they
    came, each with its lane, the interactive turns given while it waited,
    and when its lease ends (``"b 2 <ms>"``). :data:`TAKE` gives the lock
    only to the head: the oldest interactive waiter (or look at the task
    list), unless the oldest bulk waiter has let
    :data:`~emoji_async._lane_lock.MAX_OVERTAKEN` interactive turns by; then
    that bulk waiter. A waiter's lease is renewed each time its process looks
    (every tick) and lasts ``lock_ttl``: a process that stops leaves waiters
    that are dropped when it runs out, never a head that blocks the others.

The order is the in-process :class:`~emoji_async._lane_lock.LaneLock`'s, kept
for every process of the account at once: a person waiting in one process
goes ahead of a batch waiting in another, and a batch is never held back by
more than :data:`~emoji_async._lane_lock.MAX_OVERTAKEN` interactive submits.
"""

from __future__ import annotations

__all__ = ["LEAVE", "RELOCK", "TAKE", "UNLOCK"]

#: KEYS: the lock, the waiting order, the waiters; ARGV[1] the lock's life, ARGV[2] a
#: waiter's lease (both ms), ARGV[3] the interactive turns a bulk waiter lets by, ARGV[4]
#: '1' if this process may take the lock now ('0': it only renews its waiters), ARGV[5..]
#: this process's waiters: token, lane ('i' interactive, 'b' bulk, 'l' a look), ...
#: New waiters join at the back and every one's lease is renewed; waiters whose lease ran
#: out are dropped. Returns the token the lock was given to, if the head is one of these.
TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[2])
local mine = {}
for i = 5, #ARGV, 2 do
    local token = ARGV[i]
    mine[token] = ARGV[i + 1]
    local passed = 0
    local entry = redis.call('HGET', KEYS[3], token)
    if entry then
        passed = tonumber(string.match(entry, '^%a (%d+)'))
    else
        local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
        local arrival = 1
        if #last > 0 then
            arrival = tonumber(last[2]) + 1
        end
        redis.call('ZADD', KEYS[2], arrival, token)
    end
    redis.call('HSET', KEYS[3], token, string.format('%s %d %d', ARGV[i + 1], passed, now + lease))
end
local first, bulk, bulk_passed = nil, nil, 0
local waiting = redis.call('ZRANGE', KEYS[2], 0, -1)
for _, token in ipairs(waiting) do
    local entry = redis.call('HGET', KEYS[3], token)
    local lane, passed, ends = nil, nil, nil
    if entry then
        lane, passed, ends = string.match(entry, '^(%a) (%d+) (%d+)$')
    end
    if not lane or tonumber(ends) <= now then
        redis.call('ZREM', KEYS[2], token)
        redis.call('HDEL', KEYS[3], token)
    elseif lane == 'b' then
        if not bulk then
            bulk, bulk_passed = token, tonumber(passed)
        end
    elseif not first then
        first = token
    end
end
for i = 2, 3 do
    if redis.call('EXISTS', KEYS[i]) == 1 then
        redis.call('PEXPIRE', KEYS[i], 2 * lease)
    end
end
if ARGV[4] ~= '1' or redis.call('EXISTS', KEYS[1]) == 1 then
    return ''
end
local head = first
if bulk and (not first or bulk_passed >= tonumber(ARGV[3])) then
    head = bulk
end
if not head or not mine[head] then
    return ''
end
redis.call('SET', KEYS[1], head, 'PX', ARGV[1])
redis.call('ZREM', KEYS[2], head)
redis.call('HDEL', KEYS[3], head)
if mine[head] == 'i' then
    for _, token in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
        local entry = redis.call('HGET', KEYS[3], token)
        local lane, passed, ends = string.match(entry or '', '^(%a) (%d+) (%d+)$')
        if lane == 'b' then
            redis.call('HSET', KEYS[3], token, string.format('b %d %s', passed + 1, ends))
        end
    end
end
return head
"""

#: KEYS[1] the lock; ARGV[1] its holder's token. Lets it go (1), if still the holder's (else 0).
UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
"""

#: KEYS[1] the lock; ARGV[1] its holder's token, ARGV[2] its life (ms). Renews it (1), if
#: still the holder's (else 0).
RELOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

#: KEYS: the waiting order, the waiters; ARGV[1] a token. It stopped waiting.
LEAVE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 0
"""
