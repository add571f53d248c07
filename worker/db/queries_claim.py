"""The claim: one literal per statement, fair between owners (issue 18).

CLAIM_JOB leases one job to one slot (an idle worker after a NOTIFY); COMPLETE_AND_CLAIM is a
whole queue round, completions and claims for several slots. Both take expired leases first, then
due pending jobs in the fair order: priority first; among due jobs of one priority, the owner
(user_id; jobs without one are one group, keyed by the nil UUID) with the fewest jobs processing
now; then the oldest job, so that one owner's jobs keep their order. `cap`
(WORKER_MAX_RUNNING_PER_USER, null: none) passes over owners already running that many jobs,
through the migration's media_jobs_owner_slots, so that concurrent claimers never exceed it.
worker.db.queries re-exports these: the lifecycle's statements are one namespace.
"""

# Claim one job for one slot: an idle worker's claim after a NOTIFY, the path from insert to start.
CLAIM_JOB = """
update public.media_jobs j
set status = 'processing',
    locked_by = %(slot)s::text,
    locked_until = now() + make_interval(secs => %(lease_seconds)s),
    attempts = j.attempts + 1,
    started_at = coalesce(j.started_at, now()),
    attempt_started_at = now(),
    progress = 0,
    stage = 'claimed',
    stage_history = j.stage_history || jsonb_build_object(
                      'stage', 'claimed', 'at', now(), 'attempt', j.attempts + 1, 'worker', %(slot)s::text),
    -- A job still 'processing' here is a take-back: its worker died. Say so in its history.
    errors = case when j.status = 'processing'
                  then j.errors || jsonb_build_object(
                         'attempt', j.attempts, 'at', now(), 'worker', j.locked_by,
                         'started', j.attempt_started_at,
                         'error', 'worker lost (lease expired): ' || coalesce(j.locked_by, '?'))
                  else j.errors end,
    error = case when j.status = 'processing'
                 then 'worker lost (lease expired) while running attempt ' || j.attempts
                 else j.error end
-- Commit without waiting for the WAL flush (a third of a claim's time here, more on network
-- disks). A claim is the one write that may be lost: after a server crash the job is simply
-- pending again, and the slot that thought it held it finds its lease gone and writes nothing.
from (select set_config('synchronous_commit', 'off', true)) as claim_commits_asynchronously
where j.id = coalesce(
  -- First choice: a job whose lease expired (its worker died). These are few, and would
  -- otherwise wait behind a busy queue forever. It is counted as running already: no cap.
  (select id from public.media_jobs
   where status = 'processing' and locked_until < now()
     and (%(types)s::text[] is null or type = any(%(types)s::text[]))
   order by locked_until
   limit 1
   for update skip locked),
  -- Then the most urgent due job, when it is the fair choice too: its owner runs nothing now
  -- (the fewest running jobs, and the oldest job in plain order), or no other owner has jobs
  -- pending at all (two probes of the owner index, either side of this owner). The common cases:
  -- an idle worker woken by an insert, and one owner's backlog.
  (select f.id from (
     select id, coalesce(user_id, '00000000-0000-0000-0000-000000000000'::uuid) as owner from public.media_jobs
     where status = 'pending' and run_at <= now()
       and (%(types)s::text[] is null or type = any(%(types)s::text[]))
     order by priority desc, run_at, created_at
     limit 1
     for update skip locked) f
   where (not exists (
            select from public.media_jobs r
            where r.status = 'processing' and coalesce(r.user_id, '00000000-0000-0000-0000-000000000000'::uuid) = f.owner)
          and (%(cap)s::int is null or public.media_jobs_owner_slots(f.owner, %(cap)s::int, null) > 0))
      or (%(cap)s::int is null
          and (select coalesce(o.user_id, '00000000-0000-0000-0000-000000000000'::uuid) from public.media_jobs o
               where o.status = 'pending' and coalesce(o.user_id, '00000000-0000-0000-0000-000000000000'::uuid) > f.owner
               order by 1 limit 1) is null
          and (select coalesce(o.user_id, '00000000-0000-0000-0000-000000000000'::uuid) from public.media_jobs o
               where o.status = 'pending' and coalesce(o.user_id, '00000000-0000-0000-0000-000000000000'::uuid) < f.owner
               order by 1 desc limit 1) is null)),
  -- Otherwise the fair choice among due pending jobs (the migration's media_jobs_fair_claim: the
  -- owner scan, the per-owner cap's gate and the jobs it holds back; with every owner's next job
  -- locked by other claimers and no cap, the next unlocked one in plain order), called only here.
  (select id from public.media_jobs_fair_claim(%(types)s::text[], %(cap)s::int, 1, null) as fair(id)))
returning %(slot)s::text as claimed_by, j.id, j.user_id, j.type, j.priority, j.payload, j.attempts,
          j.max_attempts,
          -- Only a take-back appends to `errors` here, stamped with this statement's now(): the
          -- slot counts it (media_worker_jobs_taken_back{reason="lease_expired"}).
          coalesce(j.errors -> -1 -> 'at' = to_jsonb(now()), false) as taken_back
"""

# One round of the queue for a whole worker process: complete the jobs its slots finished and
# lease a job to each slot that wants one, in one statement and one commit, as the faster
# Postgres queues batch claims and completions. Slots hold leases under their own names, so a
# write from one slot can never touch another's job. The input is two jsonb parameters, `done`
# ([{id, slot, result}]) and `claimers` ([slot]): psycopg dumps one json document for a fifth of
# the cost of four typed arrays. Claims follow CLAIM_JOB's fair order, for several slots at once.
COMPLETE_AND_CLAIM = """
with finished as (
  select * from jsonb_to_recordset(%(done)s::jsonb) as d(id uuid, slot text, result jsonb)),
-- A round that only claims commits without waiting for the WAL flush, as CLAIM_JOB does; one
-- that completes a job waits for it.
commit_mode as (
  select set_config('synchronous_commit',
                    case when jsonb_array_length(%(done)s::jsonb) = 0 then 'off' else 'on' end, true)),
-- A completion counts only if the job is still leased to the slot that finished it.
done as (
  update public.media_jobs j
  set status = 'completed', result = d.result, progress = 100, stage = 'completed',
      error = null, completed_at = now(), locked_by = null, locked_until = null
  from finished d
  -- By primary key: status::text keeps the planner off the partial lease index, which it would
  -- otherwise scan whole (every running job) for a few completions, or none.
  where j.id = any(array(select id from finished)) and j.id = d.id and j.locked_by = d.slot
    and j.status::text = 'processing'
  returning j.id, d.slot),
-- A slot whose completion did not count (its lease was lost) is given no new job.
claimers as (
  select slot, row_number() over () as n
  from jsonb_array_elements_text(%(claimers)s::jsonb) as slot
  where slot not in (select slot from finished) or slot in (select slot from done)),
-- Plain order is the fair order when one owner alone has jobs pending (no other owner's entries
-- either side of the first in the owner index) and no cap applies: one owner's backlog, the
-- common busy queue, then skips the owner scan.
one_owner as (
  select %(cap)s::int is null and (
    select coalesce(o.user_id, '00000000-0000-0000-0000-000000000000'::uuid) from public.media_jobs o
    where o.status = 'pending'
      and coalesce(o.user_id, '00000000-0000-0000-0000-000000000000'::uuid) > (
        select coalesce(user_id, '00000000-0000-0000-0000-000000000000'::uuid) from public.media_jobs
        where status = 'pending' order by 1 limit 1)
    order by 1 limit 1) is null as plain),
-- Otherwise the fair choices, as many as there are claimers (the migration's media_jobs_fair_claim,
-- as CLAIM_JOB makes one), counting the jobs finished here as no longer running.
fair as (
  select id from public.media_jobs_fair_claim(
    %(types)s::text[], %(cap)s::int, (select count(*) from claimers)::int, array(select id from finished)) as f(id)
  where not (select plain from one_owner)),
-- As many jobs as claimers: expired leases first, then the fair choices, then (no cap) the next
-- unlocked due jobs in plain order, as in CLAIM_JOB. A job completed above still looks leased to
-- these scans (they read the statement's snapshot): skip it by id.
picked as (
  select id, row_number() over () as n from (
    select id from (
      select id from public.media_jobs
      where status = 'processing' and locked_until < now() and id <> all(array(select id from finished))
        and (%(types)s::text[] is null or type = any(%(types)s::text[]))
      order by locked_until
      limit (select count(*) from claimers)
      for update skip locked) as expired
    union all
    select id from fair
    union all
    select id from (
      select id from public.media_jobs
      where %(cap)s::int is null and status = 'pending' and run_at <= now()
        and id <> all(array(select id from fair))
        and (%(types)s::text[] is null or type = any(%(types)s::text[]))
      order by priority desc, run_at, created_at
      limit (select count(*) from claimers)
      for update skip locked) as plain_order
    limit (select count(*) from claimers)) as first_choices),
-- Lease the n-th picked job to the n-th claimer, as CLAIM_JOB leases one.
claimed as (
  update public.media_jobs j
  set status = 'processing',
      locked_by = c.slot,
      locked_until = now() + make_interval(secs => %(lease_seconds)s),
      attempts = j.attempts + 1,
      started_at = coalesce(j.started_at, now()),
      attempt_started_at = now(),
      progress = 0,
      stage = 'claimed',
      stage_history = j.stage_history || jsonb_build_object(
                        'stage', 'claimed', 'at', now(), 'attempt', j.attempts + 1, 'worker', c.slot),
      errors = case when j.status = 'processing'
                    then j.errors || jsonb_build_object(
                           'attempt', j.attempts, 'at', now(), 'worker', j.locked_by,
                           'started', j.attempt_started_at,
                           'error', 'worker lost (lease expired): ' || coalesce(j.locked_by, '?'))
                    else j.errors end,
      error = case when j.status = 'processing'
                   then 'worker lost (lease expired) while running attempt ' || j.attempts
                   else j.error end
  from picked join claimers c using (n)
  where j.id = picked.id
  returning c.slot as claimed_by, j.id, j.user_id, j.type, j.priority, j.payload, j.attempts,
            j.max_attempts, coalesce(j.errors -> -1 -> 'at' = to_jsonb(now()), false) as taken_back)
-- One row even when nothing was claimed, so that the completed ids always come back.
select (select array_agg(id) from done) as completed, claimed.*
from commit_mode, (values (1)) as one left join claimed on true
"""

# `worker.py status` under a cap: the owners running `cap` jobs or more, and their due jobs that wait.
OWNERS_AT_CAP = """
with running(owner, jobs) as (
  select coalesce(user_id, '00000000-0000-0000-0000-000000000000'::uuid), count(*) from public.media_jobs
  where status = 'processing' group by 1)
select nullif(r.owner, '00000000-0000-0000-0000-000000000000'::uuid) as owner, r.jobs as running, count(*) as waiting
from running r join public.media_jobs j
  on coalesce(j.user_id, '00000000-0000-0000-0000-000000000000'::uuid) = r.owner
 and j.status = 'pending' and j.run_at <= now()
where r.jobs >= %(cap)s::int
group by r.owner, r.jobs
order by waiting desc, r.owner
"""
