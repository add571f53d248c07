"""Every SQL statement the worker runs, named, with what it does and why.

Parameters are psycopg named placeholders; nothing here is built with f-strings.
Every statement that finishes a job checks `locked_by`: if another worker has taken
the job over, it changes nothing (0 rows) and the caller raises LeaseLost.
"""

JOB_COLUMNS = """
    id, user_id, type, status, priority, payload, result, error, errors, progress, stage,
    attempts, max_attempts, run_at, locked_by, locked_until, cancel_requested_at,
    dedupe_key, created_at, updated_at, started_at, completed_at, webhook_sent_at
"""

# What a claim returns: only what running the job needs (worker.db.jobs.ClaimedJob).
CLAIMED_COLUMNS = "id, user_id, type, priority, payload, attempts, max_attempts"

# Leasing a claimed job to a slot (`{slot}`). A take-back from a dead worker counts as an
# attempt and leaves a line in `errors`; the runner fails a job whose attempts now exceed
# max_attempts instead of running it.
_LEASE = """
set status = 'processing',
    locked_by = {slot},
    locked_until = now() + make_interval(secs => %(lease_seconds)s),
    attempts = j.attempts + 1,
    started_at = coalesce(j.started_at, now()),
    progress = 0,
    stage = 'claimed',
    errors = case when j.status = 'processing'
                  then j.errors || jsonb_build_object(
                         'attempt', j.attempts, 'at', now(),
                         'error', 'worker lost (lease expired): ' || coalesce(j.locked_by, '?'))
                  else j.errors end,
    error = case when j.status = 'processing'
                 then 'worker lost (lease expired) while running attempt ' || j.attempts
                 else j.error end
"""

# What to claim, first choice first: jobs whose lease expired (their worker died): these are few
# and would otherwise wait behind a busy queue forever. Then the most urgent due pending jobs.
# SKIP LOCKED lets concurrent claimers pass each other without waiting.
_EXPIRED = """
select id from public.media_jobs
where status = 'processing' and locked_until < now() {skip}
  and (%(types)s::text[] is null or type = any(%(types)s::text[]))
order by locked_until
limit {limit}
for update skip locked
"""
_DUE = """
select id from public.media_jobs
where status = 'pending' and run_at <= now()
  and (%(types)s::text[] is null or type = any(%(types)s::text[]))
order by priority desc, run_at, created_at
limit {limit}
for update skip locked
"""

# Claim one job for one slot: an idle worker's claim after a NOTIFY, the path from insert to
# start. It commits without waiting for the WAL flush (a third of a claim's time here, more on
# network disks). Safe because a claim is the one write that may be lost: if the server crashes
# before the flush, the job is simply pending again, and the slot that thought it held it finds
# its lease gone at the next heartbeat or final write, and stops without writing.
CLAIM_JOB = (
    "update public.media_jobs j" + _LEASE.format(slot="%(slot)s::text")
    + "from (select set_config('synchronous_commit', 'off', true)) as claim_commits_asynchronously\n"
    + "where j.id = coalesce((" + _EXPIRED.format(skip="", limit="1") + "), (" + _DUE.format(limit="1") + "))\n"
    + "returning %(slot)s::text as claimed_by, " + ", ".join("j." + c.strip() for c in CLAIMED_COLUMNS.split(",")))

# One round of the queue for a whole worker process: complete the jobs its slots finished and
# lease a job to each slot that wants one (`claimers`), in one statement and one commit, as the
# faster Postgres queues batch claims and completions. Slots hold leases under their own names,
# so a heartbeat or final write from one slot can never touch another's job.
#
# A completion counts only if the job is still leased to the slot that finished it; a slot whose
# completion did not count is not given a new job. A job completed here still looks leased to the
# claim's scans (they read the statement's snapshot), so they skip it by id. Like CLAIM_JOB, a
# round that only claims commits without waiting for the WAL flush; one that completes waits.
#
# The round's input is two jsonb parameters, `done` ([{id, slot, result}]) and `claimers` ([slot]):
# psycopg dumps one json document for a fifth of the cost of four typed arrays, which were a
# sixth of the worker's Python time per job at concurrency 8.
_CLAIMS = "(select count(*) from claimers)"
_NOT_FINISHED = "and id <> all(array(select id from finished))"
COMPLETE_AND_CLAIM = """
with finished as (
  select * from jsonb_to_recordset(%(done)s::jsonb) as d(id uuid, slot text, result jsonb)),
commit_mode as (
  select set_config('synchronous_commit',
                    case when jsonb_array_length(%(done)s::jsonb) = 0 then 'off' else 'on' end, true)),
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
claimers as (
  select slot, row_number() over () as n
  from jsonb_array_elements_text(%(claimers)s::jsonb) as slot
  where slot not in (select slot from finished) or slot in (select slot from done)),
picked as (
  select id, row_number() over () as n from (
    select id from (""" + _EXPIRED.format(skip=_NOT_FINISHED, limit=_CLAIMS) + """) as expired
    union all
    select id from (""" + _DUE.format(limit=_CLAIMS) + """) as due
    limit """ + _CLAIMS + """) as first_choices),
claimed as (
  update public.media_jobs j""" + _LEASE.format(slot="c.slot") + """
  from picked join claimers c using (n)
  where j.id = picked.id
  returning c.slot as claimed_by, """ + ", ".join("j." + c.strip() for c in CLAIMED_COLUMNS.split(",")) + """)
select (select array_agg(id) from done) as completed, claimed.*
from commit_mode, (values (1)) as one left join claimed on true
"""

# Renew our lease and publish progress; returns the cancel request, if any.
# 0 rows means the lease is gone: stop the job and write nothing.
RENEW_LEASE = """
update public.media_jobs
set locked_until = now() + make_interval(secs => %(lease_seconds)s),
    progress = %(progress)s,
    stage = %(stage)s
where id = %(job_id)s and locked_by = %(worker_id)s and status = 'processing'
returning cancel_requested_at
"""

# Finish a job with its outputs.
COMPLETE_JOB = """
update public.media_jobs
set status = 'completed', result = %(result)s, progress = 100, stage = 'completed',
    error = null, completed_at = now(), locked_by = null, locked_until = null
where id = %(job_id)s and locked_by = %(worker_id)s and status = 'processing'
returning id
"""

# Fail a job for good, keeping the message in `error` and the attempt history.
FAIL_JOB = """
update public.media_jobs
set status = 'failed', error = %(error)s::text, stage = 'failed', completed_at = now(),
    errors = errors || jsonb_build_object('attempt', attempts, 'at', now(), 'error', %(error)s::text),
    locked_by = null, locked_until = null
where id = %(job_id)s and locked_by = %(worker_id)s and status = 'processing'
returning id
"""

# A transient failure: back to pending after a backoff, or failed when attempts are used up.
RETRY_OR_FAIL_JOB = """
update public.media_jobs
set status = case when attempts >= max_attempts then 'failed' else 'pending' end::public.media_job_status,
    error = case when attempts >= max_attempts
                 then %(error)s::text || ' (gave up after ' || attempts || ' attempts)'
                 else %(error)s::text end,
    errors = errors || jsonb_build_object('attempt', attempts, 'at', now(), 'error', %(error)s::text),
    run_at = now() + make_interval(secs => %(delay_seconds)s),
    completed_at = case when attempts >= max_attempts then now() end,
    stage = case when attempts >= max_attempts then 'failed' else 'retrying' end,
    locked_by = null, locked_until = null
where id = %(job_id)s and locked_by = %(worker_id)s and status = 'processing'
returning status::text
"""

# Fail a job taken back from a dead worker once its attempts are used up.
FAIL_LOST_JOB = """
update public.media_jobs
set status = 'failed', stage = 'failed', completed_at = now(),
    error = 'worker lost (lease expired) ' || (
              select count(*) from jsonb_array_elements(errors) e
              where e ->> 'error' like 'worker lost%%') || ' times; gave up after '
            || max_attempts || ' attempts. Look for crashed or killed workers (OOM, deploys).',
    locked_by = null, locked_until = null
where id = %(job_id)s and locked_by = %(worker_id)s and status = 'processing'
returning id
"""

# The owner cancelled a running job; we stopped it. Record that truthfully.
CANCEL_RUNNING_JOB = """
update public.media_jobs
set status = 'cancelled', stage = 'cancelled', completed_at = now(),
    error = 'cancelled by request', locked_by = null, locked_until = null
where id = %(job_id)s and locked_by = %(worker_id)s and status = 'processing'
returning id
"""

# Give a job back without counting the attempt (graceful shutdown).
RELEASE_JOB = """
update public.media_jobs
set status = 'pending', attempts = greatest(attempts - 1, 0), stage = 'released',
    progress = 0, locked_by = null, locked_until = null, run_at = now()
where id = %(job_id)s and locked_by = %(worker_id)s and status = 'processing'
returning status::text
"""

# Give back claims slots made but never heard of: the reply of a queue round was lost with the
# connection, or a slot crashed holding one. Those slots run no job but those in `keep`, so the
# others are not running.
RELEASE_UNKNOWN_CLAIMS = """
update public.media_jobs
set status = 'pending', attempts = greatest(attempts - 1, 0), stage = 'released',
    progress = 0, locked_by = null, locked_until = null, run_at = now()
where locked_by = any(%(slots)s::text[]) and status = 'processing' and id <> all(%(keep)s::uuid[])
returning id
"""

INSERT_JOB = """
insert into public.media_jobs (user_id, type, payload, priority, max_attempts, run_at, dedupe_key)
values (%(user_id)s, %(type)s, %(payload)s, %(priority)s, %(max_attempts)s,
        coalesce(%(run_at)s, now()), %(dedupe_key)s)
returning """ + JOB_COLUMNS

GET_JOB = "select " + JOB_COLUMNS + " from public.media_jobs where id = %(job_id)s"

# The bucket rules the local storage backend enforces, as the migrations declare them.
BUCKET_RULES = """
select id, file_size_limit, allowed_mime_types from storage.buckets
"""

# Operator cancel, through the same function web apps call (supabase/migrations/*_cancel_media_job.sql):
# a pending job ends now; a running one is flagged for its worker's heartbeat.
REQUEST_CANCEL = "select public.cancel_media_job(%(job_id)s) as status"

# Operator retry: a failed or cancelled job runs again from scratch, as soon as possible.
RETRY_JOB = """
update public.media_jobs
set status = 'pending', attempts = 0, run_at = now(), error = null, stage = null, progress = 0,
    cancel_requested_at = null, completed_at = null, result = null, webhook_sent_at = null
where id = %(job_id)s and status in ('failed', 'cancelled')
returning status::text
"""

# `worker.py status`: counts by type and status, and the oldest pending job's age.
QUEUE_COUNTS = """
select type, status::text as status, count(*) as jobs,
       extract(epoch from now() - min(created_at) filter (where status = 'pending')) as oldest_pending_seconds
from public.media_jobs
group by type, status
order by type, status
"""

# `worker.py status`: what is running where.
RUNNING_JOBS = """
select id, type, locked_by, progress, stage, attempts, max_attempts,
       extract(epoch from now() - started_at) as running_seconds,
       extract(epoch from locked_until - now()) as lease_left_seconds
from public.media_jobs
where status = 'processing'
order by started_at
"""

# `run --until-idle` at its end: jobs of these types it could not claim yet, leased to other
# workers or waiting for a retry's backoff, and when the first of each becomes claimable.
NOT_YET_CLAIMABLE = """
select count(*) filter (where status = 'processing') as leased,
       extract(epoch from min(locked_until) filter (where status = 'processing') - now()) as lease_ends_in_seconds,
       count(*) filter (where status = 'pending') as waiting,
       extract(epoch from min(run_at) filter (where status = 'pending') - now()) as next_due_in_seconds
from public.media_jobs
where (status = 'processing' or (status = 'pending' and run_at > now()))
  and (%(types)s::text[] is null or type = any(%(types)s::text[]))
"""

# Housekeeping: one worker at a time (the lock is released at commit), deleting finished
# jobs past their retention. Failed jobs are kept longer, for post-mortems.
HOUSEKEEPING_LOCK = "select pg_try_advisory_xact_lock(hashtext('media_worker_housekeeping')) as locked"
DELETE_OLD_JOBS = """
delete from public.media_jobs
where (status in ('completed', 'cancelled')
       and completed_at < now() - make_interval(secs => %(retention_seconds)s))
   or (status = 'failed'
       and completed_at < now() - make_interval(secs => %(failed_retention_seconds)s))
"""

# /metrics: due pending jobs by type (the partial claim index covers it).
QUEUE_DEPTH = """
select type, count(*) as jobs from public.media_jobs
where status = 'pending' and run_at <= now()
group by type
"""

# Webhook outbox: the event for a finished job was delivered (or given up on).
MARK_WEBHOOK_SENT = """
update public.media_jobs set webhook_sent_at = now() where id = %(job_id)s
"""

# Webhook outbox sweep: finished jobs whose event was never sent (their worker died while
# delivering). Older than a minute, so the sender in flight gets its chance first.
UNSENT_WEBHOOKS = """
select """ + JOB_COLUMNS + """ from public.media_jobs
where status in ('completed', 'failed', 'cancelled') and webhook_sent_at is null
  and completed_at between now() - interval '1 day' and now() - interval '1 minute'
order by completed_at
limit 100
"""

# The resumable upload recorded for one output of a job, if any (issue 4: resume after a crash).
LOAD_UPLOAD = """
select upload_url, size, sha256 from public.media_job_uploads
where job_id = %(job_id)s and bucket = %(bucket)s and path = %(path)s
"""

# Record (or replace) an output's resumable upload, only while this worker holds the job.
SAVE_UPLOAD = """
insert into public.media_job_uploads (job_id, bucket, path, upload_url, size, sha256)
select %(job_id)s, %(bucket)s, %(path)s, %(upload_url)s, %(size)s, %(sha256)s
where exists (select 1 from public.media_jobs
              where id = %(job_id)s and locked_by = %(worker_id)s and status = 'processing')
on conflict (job_id, bucket, path) do update
set upload_url = excluded.upload_url, size = excluded.size, sha256 = excluded.sha256, created_at = now()
"""

# Forget an output's upload once the object is stored.
CLEAR_UPLOAD = """
delete from public.media_job_uploads
where job_id = %(job_id)s and bucket = %(bucket)s and path = %(path)s
"""
