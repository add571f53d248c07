"""The SQL of everything around the lifecycle: operator commands, housekeeping, metrics, the
webhook outbox and the upload journal. One literal per statement, with what it does and why.
"""

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
select id, user_id, type, status, priority, payload, result, error, errors, progress, stage,
       attempts, max_attempts, run_at, locked_by, locked_until, cancel_requested_at,
       dedupe_key, created_at, updated_at, started_at, completed_at, webhook_sent_at
from public.media_jobs
where status in ('completed', 'failed', 'cancelled') and webhook_sent_at is null
  and completed_at between now() - interval '1 day' and now() - interval '1 minute'
order by completed_at
limit 100
"""

# The resumable upload recorded for one output of a job, if any (issue 4: resume after a crash).
LOAD_UPLOAD = """
select upload_url, size, sha256, stored_at is not null as stored from public.media_job_uploads
where job_id = %(job_id)s and bucket = %(bucket)s and path = %(path)s
"""

# Record (or replace) an output's resumable upload, only while this worker holds the job.
SAVE_UPLOAD = """
insert into public.media_job_uploads (job_id, bucket, path, upload_url, size, sha256, stored_at)
select %(job_id)s, %(bucket)s, %(path)s, %(upload_url)s, %(size)s, %(sha256)s,
       case when %(stored)s::boolean then now() end
where exists (select 1 from public.media_jobs
              where id = %(job_id)s and locked_by = %(holder)s and status = 'processing')
on conflict (job_id, bucket, path) do update
set upload_url = excluded.upload_url, size = excluded.size, sha256 = excluded.sha256, created_at = now(),
    stored_at = excluded.stored_at
"""

# Forget an output's upload record before another upload of the path starts, while this worker holds the job.
CLEAR_UPLOAD = """
delete from public.media_job_uploads u
where u.job_id = %(job_id)s and u.bucket = %(bucket)s and u.path = %(path)s
  and exists (select 1 from public.media_jobs
              where id = %(job_id)s and locked_by = %(holder)s and status = 'processing')
"""

# Presence (issue 15): a worker's row, inserted at start. Also re-creates the row of a live
# worker after housekeeping elsewhere deleted it (a long pause): same id, same start time.
REGISTER_WORKER = """
insert into public.media_workers (id, host, pid, boot_id, pid_namespace, process_start, started_at,
                                  version, concurrency, job_types, ffmpeg_path, state)
values (%(id)s, %(host)s, %(pid)s, %(boot_id)s, %(pid_namespace)s, %(process_start)s, %(started_at)s,
        %(version)s, %(concurrency)s, %(job_types)s, %(ffmpeg_path)s, %(state)s)
on conflict (id) do update set last_seen_at = now(), state = excluded.state
"""

# Presence heartbeat, and 'draining' on the first signal. No row: it was deleted under us.
RENEW_WORKER = """
update public.media_workers set last_seen_at = now(), state = %(state)s
where id = %(id)s
returning id
"""

# A clean exit: the worker's row goes.
DELETE_WORKER = "delete from public.media_workers where id = %(id)s"

# Same-host take-back: the other workers of this host, whose processes the caller checks.
HOST_WORKERS = """
select id, host, pid, boot_id, pid_namespace, process_start from public.media_workers
where host = %(host)s and id <> %(id)s
"""

# `worker.py workers`: every worker, with the jobs it holds (leases are `<worker id>/<slot>`).
LIST_WORKERS = """
select w.id, w.host, w.pid, w.boot_id, w.pid_namespace, w.process_start, w.version, w.concurrency,
       w.job_types, w.ffmpeg_path, w.state,
       extract(epoch from now() - w.started_at) as age_seconds,
       extract(epoch from now() - w.last_seen_at) as seen_seconds_ago,
       coalesce(jsonb_agg(jsonb_build_object('id', j.id, 'type', j.type, 'progress', j.progress,
                                             'stage', j.stage) order by j.started_at)
                filter (where j.id is not null), '[]') as jobs
from public.media_workers w
left join public.media_jobs j on j.status = 'processing' and split_part(j.locked_by, '/', 1) = w.id
group by w.id
order by w.host, w.started_at
"""

# `status`, `enqueue --wait` and /metrics: workers seen within `seen_seconds`, and their types.
RECENT_WORKERS = """
select id, host, pid, boot_id, pid_namespace, process_start, job_types from public.media_workers
where last_seen_at > now() - make_interval(secs => %(seen_seconds)s)
"""

# Housekeeping: rows not renewed for several leases belong to workers that are gone.
DELETE_STALE_WORKERS = """
delete from public.media_workers
where last_seen_at < now() - make_interval(secs => %(stale_seconds)s)
returning id
"""

# `worker.py jobs list`: the newest jobs matching the filters (any left null), with their first error.
LIST_JOBS = """
select id, type, status::text as status, attempts, max_attempts, created_at, error
from public.media_jobs
where (%(status)s::text is null or status = %(status)s::public.media_job_status)
  and (%(type)s::text is null or type = %(type)s::text)
  and (%(after)s::timestamptz is null or created_at >= %(after)s::timestamptz)
order by created_at desc
limit %(limit)s
"""
