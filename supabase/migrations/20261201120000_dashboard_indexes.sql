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

-- The overview's counts by type and status with the oldest pending job: an index-only scan in
-- group order; also the filter form's list of types.
create index if not exists media_jobs_type_status_idx
  on public.media_jobs (type, status, created_at);
