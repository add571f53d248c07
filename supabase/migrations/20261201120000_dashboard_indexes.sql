-- Indexes for the operator dashboard (issue 16: `python worker.py dashboard`), so that its overview
-- and jobs pages answer in milliseconds with 1,000,000 rows in media_jobs (bench/dashboard.py).
-- Each serves one query of worker/db/queries_dashboard.py. Safe to apply twice; only ever adds.
-- On a big live table, create them by hand first with `create index concurrently` (same names):
-- this file then finds them and does nothing.

-- The jobs page, unfiltered or filtered by time: newest first, with (created_at, id) as the keyset.
create index if not exists media_jobs_created_idx
  on public.media_jobs (created_at desc, id desc);

-- The jobs page filtered by status (failed jobs to retry, what runs now), in the same order.
create index if not exists media_jobs_status_created_idx
  on public.media_jobs (status, created_at desc, id desc);

-- The jobs page filtered by type, in the same order.
create index if not exists media_jobs_type_created_idx
  on public.media_jobs (type, created_at desc, id desc);

-- The overview's live counts (pending and processing jobs by type, with the oldest pending job):
-- an index-only scan of those two statuses' entries, however many finished rows the table keeps.
create index if not exists media_jobs_status_type_idx
  on public.media_jobs (status, type, created_at);

-- The overview's last 24 hours (ended jobs per type and hour, durations): an index-only scan of the
-- day's entries. Rows end in time order, so these entries also sit together in the table.
create index if not exists media_jobs_completed_idx
  on public.media_jobs (completed_at) include (type, status, started_at)
  where completed_at is not null;
