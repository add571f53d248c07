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

# Claim one job and lease it to this worker, in one autocommit statement.
# First choice: a job whose lease expired (its worker died); these are few and
# would otherwise wait behind a busy queue forever. Otherwise the most urgent due
# pending job. SKIP LOCKED lets concurrent claimers pass each other without waiting.
# A take-back counts as an attempt and leaves a line in `errors`; the runner fails
# a job whose attempts now exceed max_attempts instead of running it.
# {commit}, {guard} and {skip} are filled in below: plain, or chained after a completion.
_CLAIM = """
update public.media_jobs j
set status = 'processing',
    locked_by = %(worker_id)s,
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
{commit}
where {guard} j.id = coalesce(
  (select id from public.media_jobs
    where status = 'processing' and locked_until < now() {skip}
      and (%(types)s::text[] is null or type = any(%(types)s::text[]))
    order by locked_until
    limit 1
    for update skip locked),
  (select id from public.media_jobs
    where status = 'pending' and run_at <= now()
      and (%(types)s::text[] is null or type = any(%(types)s::text[]))
    order by priority desc, run_at, created_at
    limit 1
    for update skip locked))
returning """ + CLAIMED_COLUMNS

# A plain claim commits without waiting for the WAL flush (a third of its time here, more on
# network disks). Safe because a claim is the one write that may be lost: if the server crashes
# before the flush, the job is simply pending again, and the worker that thought it held it finds
# its lease gone at the next heartbeat or final write, and stops without writing. Completions,
# failures and the chained claim below (it shares a commit with a completion) stay durable.
CLAIM_NEXT_JOB = _CLAIM.format(
    commit="from (select set_config('synchronous_commit', 'off', true)) as claim_commits_asynchronously",
    guard="", skip="")

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

# Complete a job and claim the next one in one statement (one commit, one round trip instead
# of two: 1.4x the no-op throughput). The claim runs only if the completion happened, and can
# never pick the job just completed. `completed` is 0 when our lease was gone; the job columns
# are null when there was nothing to claim.
COMPLETE_AND_CLAIM_NEXT = (
    "with completed as (" + COMPLETE_JOB + "), claimed as ("
    + _CLAIM.format(commit="", guard="exists (select from completed) and", skip="and id <> %(job_id)s")
    + ") select (select count(*) from completed) as completed, claimed.*"
    " from (values (1)) as one left join claimed on true")

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

# Give back claims this slot made but never heard of: the reply of a complete-and-claim was
# lost with the connection, or the slot crashed holding one. The slot runs no job but `job_id`
# (null: none), so the others are not running.
RELEASE_UNKNOWN_CLAIMS = """
update public.media_jobs
set status = 'pending', attempts = greatest(attempts - 1, 0), stage = 'released',
    progress = 0, locked_by = null, locked_until = null, run_at = now()
where locked_by = %(worker_id)s and status = 'processing' and id is distinct from %(job_id)s::uuid
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
