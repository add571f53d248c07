-- media_job_uploads: remember which resumable uploads finished (issue 17, item 6).
-- A TUS upload is now created before the file's sha256 is known, so the hash no longer holds
-- back the first byte (about 0.7 s per GiB). The object's user metadata then cannot carry the
-- hash; this journal row does instead: `stored_at` is set once the server has taken the last
-- byte, and a retry of the job skips an output whose object has the recorded size when the
-- local file has the recorded sha256. Rows go with their job. Safe to apply twice; only adds.

alter table public.media_job_uploads add column if not exists stored_at timestamptz;

comment on column public.media_job_uploads.stored_at is
  'When the server took the upload''s last byte; null while the upload is in flight.';
