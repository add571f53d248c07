"""The operator dashboard's SQL (worker/dashboard/): read-only, one literal per statement.

The dashboard's actions (retry, cancel) are the CLI's statements in queries_operations.py, through the
same JobStore methods. Optional filters are written `(%(x)s is null or column = %(x)s)`: the
dashboard's connection plans every statement for its parameters (CUSTOM_PLANS), so Postgres folds the
unused filters away and picks the index of the ones given (the indexes are in migration
20261201120000_dashboard_indexes.sql; bench/dashboard.py measures them on 1,000,000 rows).
"""

# The dashboard's connection plans each statement with its actual parameters. The worker's
# connections force generic plans (worker/db/connection.py), which suit its fixed statements but
# would plan the optional filters below once for all cases, with no index for any.
CUSTOM_PLANS = "set plan_cache_mode = force_custom_plan"

# Overview: the live jobs (pending and processing) by type, and each type's oldest pending job. An
# index-only scan of media_jobs_status_type_idx over those two statuses only: counting every finished
# row too (QUEUE_COUNTS, `python worker.py status`) reads the whole table, 350 ms at 1,000,000 rows.
LIVE_COUNTS = """
select type, status::text as status, count(*) as jobs,
       extract(epoch from now() - min(created_at) filter (where status = 'pending')) as oldest_pending_seconds
from public.media_jobs
where status in ('pending', 'processing')
group by type, status
order by type, status
"""

# Overview: how many rows the table holds, as the planner's statistics estimate it (kept fresh by
# autovacuum): an exact count would read every row. A small table (or one never analysed, -1) is
# counted instead; the count runs only then (an init plan runs when first used).
ESTIMATED_ROWS = """
select case when reltuples >= 100000 then reltuples::bigint
            else (select count(*) from public.media_jobs) end as jobs
from pg_class where oid = 'public.media_jobs'::regclass
"""

# Overview: jobs that ended in the last 24 hours, per type and per hour before now (0 = the last
# hour), and per type over the whole day (hours_ago null): how many completed, failed and were
# cancelled, and the completed ones' duration percentiles (first start to end, in seconds). An
# index-only scan of the day's entries in media_jobs_completed_idx. date_part, not extract: extract
# computes in numeric, a third of this statement's time.
FINISHED_BY_HOUR = """
select type, floor(date_part('epoch', now() - completed_at) / 3600)::int as hours_ago,
       count(*) filter (where status = 'completed') as completed,
       count(*) filter (where status = 'failed') as failed,
       count(*) filter (where status = 'cancelled') as cancelled,
       percentile_cont(array[0.5, 0.95, 0.99]) within group (order by date_part('epoch', completed_at - started_at))
         filter (where status = 'completed' and started_at is not null) as duration_percentiles
from public.media_jobs
where completed_at > now() - interval '24 hours' and status in ('completed', 'failed', 'cancelled')
group by grouping sets ((type, hours_ago), (type))
order by type, hours_ago nulls first
"""

# Jobs page: one page of jobs matching the filters, newest first, after the keyset cursor (the
# last row of the previous page: its created_at and id). Each filter has an index that yields rows
# in this order, so a page reads about `limit` rows whatever the table's size.
JOBS_PAGE = """
select id, user_id, type, status::text as status, priority, progress, stage, attempts, max_attempts,
       left(error, 300) as error, locked_by, created_at, started_at, completed_at
from public.media_jobs
where (%(status)s::text is null or status = %(status)s::text::public.media_job_status)
  and (%(type)s::text is null or type = %(type)s::text)
  and (%(owner)s::uuid is null or user_id = %(owner)s::uuid)
  and (%(since)s::timestamptz is null or created_at >= %(since)s::timestamptz)
  and (%(until)s::timestamptz is null or created_at < %(until)s::timestamptz)
  and (%(after_at)s::timestamptz is null
       or (created_at, id) < (%(after_at)s::timestamptz, %(after_id)s::uuid))
order by created_at desc, id desc
limit %(limit)s
"""

# "Retry every failed job matching the filter": the ids the action retries, oldest first, at most
# `limit` per action (each goes through JobStore.retry_job, as `python worker.py retry` does); its
# confirmation counts them the same way, up to `limit`, so it never counts a million rows.
FAILED_MATCHING = """
select id
from public.media_jobs
where status = 'failed'
  and (%(type)s::text is null or type = %(type)s::text)
  and (%(owner)s::uuid is null or user_id = %(owner)s::uuid)
  and (%(since)s::timestamptz is null or created_at >= %(since)s::timestamptz)
  and (%(until)s::timestamptz is null or created_at < %(until)s::timestamptz)
order by created_at, id
limit %(limit)s
"""

# The filter form's type list: the types that have jobs. Postgres 15 has no skip scan, so this one
# walks media_jobs_type_created_idx from type to type (a loose index scan): one probe per type.
JOB_TYPES = """
with recursive types as (
  (select type from public.media_jobs order by type limit 1)
  union all
  select (select j.type from public.media_jobs j where j.type > types.type order by j.type limit 1)
  from types where types.type is not null)
select type from types where type is not null
"""
