-- media_job_uploads: take back the table privileges Supabase grants every new public table
-- to anon and authenticated (issue 14). RLS with no policies hid the rows, but RLS does not
-- cover TRUNCATE or CREATE TRIGGER: a signed-in user could empty the table or hang a trigger
-- on it that broke the worker's inserts. Only the worker (service role or the database owner)
-- uses this table, as for media_workers. Safe to apply twice: grants and revokes are idempotent.

revoke all on table public.media_job_uploads from public, anon, authenticated;
grant all on table public.media_job_uploads to service_role;
