"""The job lifecycle's SQL: claim, renew, finish, give back. One literal per statement.

Parameters are psycopg named placeholders; nothing here is built at run time. Every statement
that finishes a job checks `locked_by` against the slot that ran it: if another worker has
taken the job over, it changes nothing (0 rows) and the caller raises LeaseLost. A claim sets
the lease the same way in both claim statements (CLAIM_JOB, COMPLETE_AND_CLAIM, in
queries_claim.py with the fair order between owners, re-exported here); a take-back
from a dead worker counts as an attempt and leaves a line in `errors`, and the runner fails a
job whose attempts now exceed max_attempts instead of running it.
"""

from worker.db.queries_claim import CLAIM_JOB, COMPLETE_AND_CLAIM, OWNERS_AT_CAP  # noqa: F401

# Take back at once the jobs of this host's worker processes that have ended (issue 15): the
# caller checked their pid and process-start identity, so these jobs need not wait out their
# lease. Each goes back to pending, due now (the claim path runs it; its trigger wakes idle
# workers), with the attempt it was running kept: the next claim counts the next attempt, as
# after a lease expiry. One statement that checks the lease holder, so two workers taking back
# at once take each job once: the second finds the row no longer leased to the dead worker.
# The dead workers' presence rows go in the same statement (a WITH delete always runs).
TAKE_BACK_ENDED_WORKERS_JOBS = """
with gone as (
  delete from public.media_workers where id = any(%(workers)s::text[]) returning id)
update public.media_jobs j
set status = 'pending',
    run_at = now(),
    stage = 'retrying',
    progress = 0,
    -- The entry names the attempt's worker and start, so the dashboard lists every attempt whole.
    errors = j.errors || jsonb_build_object(
               'attempt', j.attempts, 'at', now(), 'worker', j.locked_by, 'started', j.attempt_started_at,
               'error', 'worker lost (process ended) while running attempt ' || j.attempts || ': ' || j.locked_by),
    error = 'worker lost (process ended) while running attempt ' || j.attempts,
    locked_by = null,
    locked_until = null
-- The lease holder is `<worker id>/<slot>` (or the worker id itself).
where j.status = 'processing' and split_part(j.locked_by, '/', 1) = any(%(workers)s::text[])
returning j.id, j.type, j.attempts, j.status::text as status
"""

# Renew a slot's lease and publish progress; returns the cancel request, if any.
# 0 rows means the lease is gone: stop the job and write nothing. A new stage is also appended
# to stage_history (the time spent in each stage, on the dashboard); the same stage again appends
# nothing, so the history grows by a few entries per attempt, not one per heartbeat. (On the
# right of SET, `stage` is the row's value before this update.)
RENEW_LEASE = """
update public.media_jobs
set locked_until = now() + make_interval(secs => %(lease_seconds)s),
    progress = %(progress)s,
    stage = %(stage)s,
    -- Bounded: every row update goes out through Realtime whole, and a custom handler could name
    -- stages without end. 200 entries are dozens of attempts of the built-in handlers' stages.
    stage_history = case when stage is distinct from %(stage)s::text and jsonb_array_length(stage_history) < 200
                         then stage_history || jsonb_build_object(
                                'stage', %(stage)s::text, 'at', now(), 'attempt', attempts, 'worker', %(holder)s::text)
                         else stage_history end
where id = %(job_id)s and locked_by = %(holder)s and status = 'processing'
returning cancel_requested_at
"""

# Fail a job for good, keeping the message in `error` and the attempt history (with the attempt's
# worker and start, for the dashboard's list of attempts).
FAIL_JOB = """
update public.media_jobs
set status = 'failed', error = %(error)s::text, stage = 'failed', completed_at = now(),
    errors = errors || jsonb_build_object('attempt', attempts, 'at', now(), 'worker', locked_by,
                                          'started', attempt_started_at, 'error', %(error)s::text),
    locked_by = null, locked_until = null
where id = %(job_id)s and locked_by = %(holder)s and status = 'processing'
returning status::text
"""

# A transient failure: back to pending after a backoff, or failed when attempts are used up. The
# history entry names the attempt's worker and start, as FAIL_JOB's does.
RETRY_OR_FAIL_JOB = """
update public.media_jobs
set status = case when attempts >= max_attempts then 'failed' else 'pending' end::public.media_job_status,
    error = case when attempts >= max_attempts
                 then %(error)s::text || ' (gave up after ' || attempts || ' attempts)'
                 else %(error)s::text end,
    errors = errors || jsonb_build_object('attempt', attempts, 'at', now(), 'worker', locked_by,
                                          'started', attempt_started_at, 'error', %(error)s::text),
    run_at = now() + make_interval(secs => %(delay_seconds)s),
    completed_at = case when attempts >= max_attempts then now() end,
    stage = case when attempts >= max_attempts then 'failed' else 'retrying' end,
    locked_by = null, locked_until = null
where id = %(job_id)s and locked_by = %(holder)s and status = 'processing'
returning status::text
"""

# Fail a job taken back from dead workers once its attempts are used up, counting the losses.
FAIL_LOST_JOB = """
update public.media_jobs
set status = 'failed', stage = 'failed', completed_at = now(),
    error = 'worker lost (lease expired) ' || (
              select count(*) from jsonb_array_elements(errors) e
              where e ->> 'error' like 'worker lost%%') || ' times; gave up after '
            || max_attempts || ' attempts. Look for crashed or killed workers (OOM, deploys).',
    locked_by = null, locked_until = null
where id = %(job_id)s and locked_by = %(holder)s and status = 'processing'
returning status::text
"""

# The owner cancelled a running job; the slot stopped it. Record that truthfully. The 'cancelled'
# entry ends the attempt in stage_history: completed_at does too, until a retry clears it.
CANCEL_RUNNING_JOB = """
update public.media_jobs
set status = 'cancelled', stage = 'cancelled', completed_at = now(),
    stage_history = stage_history || jsonb_build_object(
                      'stage', 'cancelled', 'at', now(), 'attempt', attempts, 'worker', locked_by),
    error = 'cancelled by request', locked_by = null, locked_until = null
where id = %(job_id)s and locked_by = %(holder)s and status = 'processing'
returning status::text
"""

# Give a job back without counting the attempt (graceful shutdown). A pending cancel request
# turns it into 'cancelled' (the cancel-wins trigger), so the new status comes back. The
# 'released' entry ends this uncounted attempt in stage_history (its number comes again next claim).
RELEASE_JOB = """
update public.media_jobs
set status = 'pending', attempts = greatest(attempts - 1, 0), stage = 'released',
    stage_history = stage_history || jsonb_build_object(
                      'stage', 'released', 'at', now(), 'attempt', attempts, 'worker', locked_by),
    progress = 0, locked_by = null, locked_until = null, run_at = now()
where id = %(job_id)s and locked_by = %(holder)s and status = 'processing'
returning status::text
"""

# Give back claims slots made but never heard of: the reply of a queue round was lost with the
# connection, or a slot crashed holding one. Those slots run no job but those in `keep`. The
# 'released' entry ends the claim's attempt in stage_history, as RELEASE_JOB's does.
RELEASE_UNKNOWN_CLAIMS = """
update public.media_jobs
set status = 'pending', attempts = greatest(attempts - 1, 0), stage = 'released',
    stage_history = stage_history || jsonb_build_object(
                      'stage', 'released', 'at', now(), 'attempt', attempts, 'worker', locked_by),
    progress = 0, locked_by = null, locked_until = null, run_at = now()
where locked_by = any(%(slots)s::text[]) and status = 'processing' and id <> all(%(keep)s::uuid[])
returning id
"""

# A new pending job, as a web app inserts one (the validation trigger and RLS still apply).
INSERT_JOB = """
insert into public.media_jobs (user_id, type, payload, priority, max_attempts, run_at, dedupe_key)
values (%(user_id)s, %(type)s, %(payload)s, %(priority)s, %(max_attempts)s,
        coalesce(%(run_at)s, now()), %(dedupe_key)s)
returning id, user_id, type, status, priority, payload, result, error, errors, progress, stage,
          attempts, max_attempts, run_at, locked_by, locked_until, cancel_requested_at,
          dedupe_key, created_at, updated_at, started_at, completed_at, webhook_sent_at,
          attempt_started_at, stage_history
"""

# One whole row (worker.db.jobs.Job), by id.
GET_JOB = """
select id, user_id, type, status, priority, payload, result, error, errors, progress, stage,
       attempts, max_attempts, run_at, locked_by, locked_until, cancel_requested_at,
       dedupe_key, created_at, updated_at, started_at, completed_at, webhook_sent_at,
       attempt_started_at, stage_history
from public.media_jobs
where id = %(job_id)s
"""
