"""The keys shared pacing keeps in Redis, and the Lua scripts that read and change them.

Plain text, no ``redis`` import: :mod:`~emoji_async._shared` registers the
scripts. Every key starts with the account's namespace (``{prefix}:{account}``,
both names the user chose: no key material ever goes to Redis, in a key or a
value). Times are Redis's own (``TIME``): the processes' clocks may disagree,
the server's is the one all of them are measured on. Each script does its
reading and writing in one step, which no other process's can come between.

``{ns}:pace:{group}`` (a hash: ``next``, ``held``, ``last``, ``late``, in microseconds)
    One endpoint group's schedule: the in-process
    :class:`~emoji_async._pacer.Pacer`'s arithmetic (its window ``spread``
    longer: two machines' requests take different paths), turns handed out
    in the order they are asked for and spaced by when requests really start.
    :data:`PACE` reserves the next turn, ``interval`` after the previous one,
    and answers how long to wait for it; a turn free at once starts there
    (``last``, the latest start). A turn that waited is claimed when it is
    due (:data:`CLAIM`): an event loop that stalled past several turns would
    otherwise send them together, and the provider counts requests as they
    arrive. A turn claimed late starts then and moves every later turn by as
    much (``late``, the lateness of all turns so far); one whose later turns
    already started (its process stalled while others' went) starts
    ``interval`` after the latest start and moves every later turn by as
    much. A 429 sets ``held`` (:data:`HOLD`): no turn of the group starts
    before it, for any process; a turn waiting for it is taken again.
``{ns}:submit:lock``, ``{ns}:submit:waiting``, ``{ns}:submit:waiters``
    The submit lock and the submits of every process waiting for it, by
    lane: see :mod:`~emoji_async._shared_lock_scripts`.
``{ns}:submit:known`` (a sorted set: task id -> when created, ms)
    Every task a submit of the account created, for 25 hours (the task list
    shows the last 24): settling never adopts another process's task.
``{ns}:submit:unsettled`` (a sorted set: ``digest:nonce`` -> when sent, ms)
    A submit on the wire, by a digest of its inputs; removed once settled.
    One left behind is a process that stopped mid-submit: its task may still
    appear, so for the reconcile window no other submit adopts a task alone.
``{ns}:inflight`` (a sorted set: task id -> lease end, ms)
    The account's tasks in flight. A lease lasts ``lease_ttl`` and is renewed
    every third of that while its task is followed here; a process that stops
    leaves leases that simply run out.
``{ns}:queue`` (a sorted set: task id -> place), ``{ns}:queue:seq``, ``{ns}:queue:last_end``
    The same tasks in the account's submit order (submits are serialized by
    the lock, so the order of the places is the provider's queue), and the
    latest end any process saw (the provider's clock, ms). Each process
    reads them every submit interval while it follows tasks: another
    process's task submitted earlier is ahead of ours on the
    :class:`~emoji_async._task_board.TaskBoard`, so a task that cannot have
    started is not polled, and the start of one that has is known.
``{ns}:queue:interactive`` (a sorted set: task id -> place)
    The interactive tasks in flight (:data:`ANNOUNCE`), with their places in
    the queue. Each process reads them with the queue and moves aside its
    own movable bulk tasks placed before each one it has not seen yet: only
    the process that owns a batch can journal and resubmit its jobs.
"""

from __future__ import annotations

__all__ = [
    "ANNOUNCE",
    "CLAIM",
    "COUNT",
    "HOLD",
    "IDLE_MS",
    "KNOWN_MS",
    "OCCUPY",
    "OTHERS",
    "PACE",
    "RENEW",
    "SETTLE",
    "STAMP",
    "VACATE",
    "VIEW",
]

#: Tasks created are remembered this long (ms): the task list shows the last 24 h.
KNOWN_MS = 25 * 3600 * 1000
#: A pacing key outlives its last turn by this much (ms), then goes.
IDLE_MS = 60_000

_NOW_US = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
"""

#: KEYS[1] a group's hash; ARGV[1] its interval, ARGV[2] a hold known here (both us),
#: ARGV[3] the key's idle life (ms). Reserves the next turn; returns the wait for it,
#: the turn and the lateness so far (us): a turn that waits is claimed with the last two.
PACE = (
    _NOW_US
    + """
local f = redis.call('HMGET', KEYS[1], 'next', 'held', 'last', 'late')
local held = math.max(tonumber(f[2] or '0'), now + tonumber(ARGV[2]))
local start = math.max(now, tonumber(f[1] or '0'), held)
if f[3] then
    start = math.max(start, tonumber(f[3]) + tonumber(ARGV[1]))
end
local after = start + tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'next', string.format('%.0f', after))
if start <= now then
    redis.call('HSET', KEYS[1], 'last', string.format('%.0f', now))
end
redis.call('PEXPIRE', KEYS[1], math.ceil((math.max(after, held) - now) / 1000) + ARGV[3])
return {start - now, start, tonumber(f[4] or '0')}
"""
)

#: KEYS[1] a group's hash; ARGV[1] its interval, ARGV[2] a turn PACE reserved and
#: ARGV[3] the lateness it answered with, ARGV[4] how early a turn may be claimed (all
#: us), ARGV[5] the key's idle life (ms). Returns {1, wait}: the turn is this process's,
#: to start after ``wait`` (at most ARGV[4]); {0, wait}: not yet, claim again then;
#: {-1, wait}: a 429 holds the group back, take a new turn.
CLAIM = (
    _NOW_US
    + """
local f = redis.call('HMGET', KEYS[1], 'next', 'held', 'last', 'late')
local held = tonumber(f[2] or '0')
if held > now then
    return {-1, held - now}
end
local interval = tonumber(ARGV[1])
local late = tonumber(f[4] or '0')
local shifted = tonumber(ARGV[2]) + late - tonumber(ARGV[3])
local target = shifted
local ref = shifted
if f[3] then
    local last = tonumber(f[3])
    target = math.max(shifted, last + interval)
    if shifted <= last then
        ref = last  -- a later turn started first: this one comes in after it
    end
end
if target - now > tonumber(ARGV[4]) then
    return {0, target - now}
end
local start = math.max(target, now)
local moved = start - ref
local after = math.max(tonumber(f[1] or '0') + moved, start + interval)
redis.call('HSET', KEYS[1], 'next', string.format('%.0f', after),
           'last', string.format('%.0f', start), 'late', string.format('%.0f', late + moved))
redis.call('PEXPIRE', KEYS[1], math.ceil((after - now) / 1000) + ARGV[5])
return {1, start - now}
"""
)

#: KEYS[1] a group's hash; ARGV[1] the wait (us). No start of the group before then.
HOLD = (
    _NOW_US
    + """
local untill = now + tonumber(ARGV[1])
local held = tonumber(redis.call('HGET', KEYS[1], 'held') or '0')
if untill > held then
    redis.call('HSET', KEYS[1], 'held', string.format('%.0f', untill))
    local nxt = tonumber(redis.call('HGET', KEYS[1], 'next') or '0')
    redis.call('PEXPIRE', KEYS[1], math.ceil((math.max(untill, nxt) - now) / 1000) + ARGV[2])
end
return 0
"""
)

#: KEYS[1] a sorted set; ARGV[1] ms added to now for the score, ARGV[2] 'XX' or 'NX'
#: (renew only, or add), ARGV[3] the key's life (ms), ARGV[4] members scored more than
#: this many ms before now are dropped, ARGV[5..] members.
STAMP = (
    _NOW_US
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now / 1000 - ARGV[4]))
local score = string.format('%.0f', now / 1000 + tonumber(ARGV[1]))
for i = 5, #ARGV do
    if ARGV[2] == 'XX' then
        redis.call('ZADD', KEYS[1], 'XX', score, ARGV[i])
    else
        redis.call('ZADD', KEYS[1], score, ARGV[i])
    end
end
if redis.call('EXISTS', KEYS[1]) == 1 then
    redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 0
"""
)

#: KEYS: the leases, the queue. Drops the leases that ran out, and their tasks from the queue.
_TRIM = """
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now / 1000))
for i = 1, #gone do
    redis.call('ZREM', KEYS[1], gone[i])
    redis.call('ZREM', KEYS[2], gone[i])
end
"""

#: KEYS: the leases, the queue, the sequence; ARGV[1] the lease (ms), ARGV[2] the task.
#: Counts the task in flight; returns its place in the account's submit order.
OCCUPY = (
    _NOW_US
    + _TRIM
    + """
local seq = redis.call('INCR', KEYS[3])
redis.call('ZADD', KEYS[1], string.format('%.0f', now / 1000 + ARGV[1]), ARGV[2])
redis.call('ZADD', KEYS[2], seq, ARGV[2])
for i = 1, 3 do
    redis.call('PEXPIRE', KEYS[i], 2 * ARGV[1])
end
return seq
"""
)

#: KEYS: the leases, the queue, the sequence; ARGV[1] the lease (ms), ARGV[2..] tasks.
#: Renews the leases still there (one that ran out stays out).
RENEW = (
    _NOW_US
    + """
local score = string.format('%.0f', now / 1000 + ARGV[1])
for i = 2, #ARGV do
    redis.call('ZADD', KEYS[1], 'XX', score, ARGV[i])
end
for i = 1, 3 do
    if redis.call('EXISTS', KEYS[i]) == 1 then
        redis.call('PEXPIRE', KEYS[i], 2 * ARGV[1])
    end
end
return 0
"""
)

#: KEYS: the leases, the queue, the latest end; ARGV[1] a task, ARGV[2] its end (ms) or ''.
VACATE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[2] ~= '' and tonumber(ARGV[2]) > tonumber(redis.call('GET', KEYS[3]) or '0') then
    redis.call('SET', KEYS[3], ARGV[2], 'PX', ARGV[3])
end
return 0
"""

#: KEYS: the leases, the queue. How many tasks are in flight.
COUNT = (
    _NOW_US
    + _TRIM
    + """
return redis.call('ZCARD', KEYS[1])
"""
)

#: KEYS: the leases, the queue, the latest end, the interactive tasks. The queue (task,
#: place, ...), the latest end, and the interactive tasks still in the queue (task, place, ...).
VIEW = (
    _NOW_US
    + _TRIM
    + """
for _, task in ipairs(redis.call('ZRANGE', KEYS[4], 0, -1)) do
    if not redis.call('ZSCORE', KEYS[2], task) then
        redis.call('ZREM', KEYS[4], task)
    end
end
return {redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES'), redis.call('GET', KEYS[3]) or '',
        redis.call('ZRANGE', KEYS[4], 0, -1, 'WITHSCORES')}
"""
)

#: KEYS: the queue, the interactive tasks; ARGV[1] the lease (ms), ARGV[2] an interactive
#: task. Tells every process of it, with its place; returns the place (0: not in the queue).
ANNOUNCE = """
local place = redis.call('ZSCORE', KEYS[1], ARGV[2])
if not place then
    return 0
end
redis.call('ZADD', KEYS[2], place, ARGV[2])
redis.call('PEXPIRE', KEYS[2], 2 * ARGV[1])
return tonumber(place)
"""

#: KEYS[1] the unsettled submits; ARGV[1] a record or a digest. Removes it, or all of the digest.
SETTLE = """
local name = ARGV[1]
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    if member == name or string.sub(member, 1, #name + 1) == name .. ':' then
        redis.call('ZREM', KEYS[1], member)
    end
end
return 0
"""

#: KEYS[1] the unsettled submits; ARGV[1] a digest, ARGV[2] the horizon (ms).
#: Drops records past the horizon; counts those of other inputs.
OTHERS = (
    _NOW_US
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now / 1000 - ARGV[2]))
local prefix = ARGV[1] .. ':'
local others = 0
for _, member in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
    if string.sub(member, 1, #prefix) ~= prefix then
        others = others + 1
    end
end
return others
"""
)
