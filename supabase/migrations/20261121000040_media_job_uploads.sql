-- media_job_uploads: resumable (TUS) uploads in flight, one per job output (issue 4).
-- A job claimed again after its worker died continues the upload from the server's offset
-- when its output file has the same size and sha256. Only the worker reads or writes it.
-- Safe to apply twice; only ever adds.

create table if not exists public.media_job_uploads (
  job_id     uuid not null references public.media_jobs (id) on delete cascade,
  bucket     text not null,
  path       text not null,
  upload_url text not null,
  size       bigint not null check (size >= 0),
  sha256     text not null check (sha256 ~ '^[0-9a-f]{64}$'),
  created_at timestamptz not null default now(),
  primary key (job_id, bucket, path)
);

comment on table public.media_job_uploads is
  'Resumable upload URLs of running jobs, so a retry after a crash resumes instead of restarting. Worker only.';

-- RLS on with no policies: neither anon nor authenticated users may see upload URLs.
alter table public.media_job_uploads enable row level security;
