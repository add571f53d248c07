-- Each attempt's worker and start, and the time spent in each stage (issue 16: the dashboard's job
-- page). Safe to apply twice; only ever adds. Both columns are the worker's: users read them
-- (select is granted on the whole table) and cannot write them (insert is granted by column).

-- When the attempt now running (or the last one) was claimed. Claims set it; the entries the
-- worker appends to `errors` when an attempt ends copy it as 'started', with the lease holder as
-- 'worker', so that every attempt keeps its worker, start and end.
alter table public.media_jobs add column if not exists attempt_started_at timestamptz;

-- Every stage each attempt entered, in order: [{"stage", "at", "attempt", "worker"}]. The claim
-- appends 'claimed'; a heartbeat appends an entry when it writes a new stage. A stage lasts until
-- the next entry (or the row's completed_at). A few entries per attempt.
alter table public.media_jobs add column if not exists stage_history jsonb not null default '[]'::jsonb;

comment on column public.media_jobs.attempt_started_at is 'When the current or last attempt was claimed. Worker only.';
comment on column public.media_jobs.stage_history is 'Stages each attempt entered, with when and which worker. Worker only.';
