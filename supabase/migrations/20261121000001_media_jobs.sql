-- media_jobs: the queue a web app inserts into and the worker claims from (DESIGN.md §3).
-- Safe to apply twice; only ever adds.

do $$ begin
  create type public.media_job_status as enum ('pending', 'processing', 'completed', 'failed', 'cancelled');
exception when duplicate_object then null;
end $$;

create table if not exists public.media_jobs (
  id                  uuid primary key default gen_random_uuid(),
  user_id             uuid default auth.uid() references auth.users (id) on delete cascade,
  type                text not null,
  status              public.media_job_status not null default 'pending',
  priority            smallint not null default 0,
  payload             jsonb not null default '{}'::jsonb,
  result              jsonb,
  error               text,
  -- one entry per failed attempt: {attempt, at, error}; `error` keeps only the latest
  errors              jsonb not null default '[]'::jsonb,
  progress            real not null default 0,
  stage               text,
  attempts            integer not null default 0,
  max_attempts        integer not null default 3,
  run_at              timestamptz not null default now(),
  locked_by           text,
  locked_until        timestamptz,
  cancel_requested_at timestamptz,
  dedupe_key          text,
  created_at          timestamptz not null default now(),
  updated_at          timestamptz not null default now(),
  started_at          timestamptz,
  completed_at        timestamptz
);

comment on table public.media_jobs is
  'Media processing jobs. Web apps insert {type, payload}; the media worker claims, runs and finishes them.';

-- The claim: pending jobs in claim order. Partial, so finished rows never slow it down.
create index if not exists media_jobs_claim_idx
  on public.media_jobs (priority desc, run_at, created_at)
  where status = 'pending';

-- Lease recovery: processing jobs by lease expiry (few rows: one per running job).
create index if not exists media_jobs_lease_idx
  on public.media_jobs (locked_until)
  where status = 'processing';

-- A dedupe_key is unique among live jobs only, so the same key can run again later.
create unique index if not exists media_jobs_dedupe_key_idx
  on public.media_jobs (dedupe_key)
  where dedupe_key is not null and status in ('pending', 'processing');

-- The web app lists a user's jobs, newest first.
create index if not exists media_jobs_user_idx
  on public.media_jobs (user_id, created_at desc);

-- Housekeeping deletes finished jobs by age.
create index if not exists media_jobs_finished_idx
  on public.media_jobs (status, completed_at)
  where status in ('completed', 'failed', 'cancelled');

create or replace function public.media_jobs_touch_updated_at() returns trigger
language plpgsql set search_path = '' as $$
begin
  new.updated_at := now();
  return new;
end $$;

drop trigger if exists media_jobs_touch_updated_at on public.media_jobs;
create trigger media_jobs_touch_updated_at
  before update on public.media_jobs
  for each row execute function public.media_jobs_touch_updated_at();

-- Wake idle workers when a job becomes pending (inserted, retried or released).
-- The payload is the job type, so a bulk insert sends one notification per type
-- (Postgres folds identical notifications within a transaction).
create or replace function public.media_jobs_notify() returns trigger
language plpgsql set search_path = '' as $$
begin
  perform pg_notify('media_jobs', new.type);
  return null;
end $$;

drop trigger if exists media_jobs_notify on public.media_jobs;
create trigger media_jobs_notify
  after insert or update of status on public.media_jobs
  for each row when (new.status = 'pending')
  execute function public.media_jobs_notify();
