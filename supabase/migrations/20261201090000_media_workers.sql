-- media_workers: the live worker processes (issue 15). Each worker inserts its row at start,
-- renews last_seen_at with its heartbeat, marks itself 'draining' on the first signal and
-- deletes the row on a clean exit; housekeeping deletes rows not seen for several leases.
-- `pid` with `boot_id`, `pid_namespace` and `process_start` (the process's start time in clock
-- ticks since boot, /proc/<pid>/stat field 22) tell a worker on the same host whether the
-- process that held a job is gone, even once its pid is reused, so its jobs come back at once.
-- Only the worker reads or writes it. Safe to apply twice; only ever adds.

create table if not exists public.media_workers (
  id            text primary key,               -- host:pid:short-uuid, the lease holder's prefix
  host          text not null,
  pid           integer not null,
  boot_id       text,                           -- /proc/sys/kernel/random/boot_id
  pid_namespace text,                           -- readlink /proc/self/ns/pid
  process_start bigint,                         -- /proc/<pid>/stat starttime (clock ticks since boot)
  started_at    timestamptz not null default now(),
  last_seen_at  timestamptz not null default now(),
  version       text,
  concurrency   integer not null default 1,
  job_types     text[] not null default '{}',   -- empty: every type
  ffmpeg_path   text,                           -- the start-up choice: cpu, nvenc, vaapi, qsv
  state         text not null default 'running' check (state in ('running', 'draining'))
);

comment on table public.media_workers is
  'Media worker processes, renewed by their heartbeat; `python worker.py workers` lists them. Worker only.';

-- Same-host take-back looks up the workers of one host; `workers` lists by host.
create index if not exists media_workers_host_idx on public.media_workers (host);

-- Housekeeping deletes rows by last_seen_at.
create index if not exists media_workers_last_seen_idx on public.media_workers (last_seen_at);

-- Supabase grants every new public table to anon and authenticated; take that back. RLS on
-- with a policy for service_role only: web apps never see which hosts and pids run the queue.
revoke all on table public.media_workers from public, anon, authenticated;
grant all on table public.media_workers to service_role;

alter table public.media_workers enable row level security;

drop policy if exists "media_workers: service role does anything" on public.media_workers;
create policy "media_workers: service role does anything" on public.media_workers
  for all to service_role
  using (true) with check (true);

-- Not added to the supabase_realtime publication: presence is for operators, not web apps.
