-- Who may touch public.media_jobs (DESIGN.md §3, §8). Web apps reach the table
-- through PostgREST as `anon` or `authenticated`; the worker connects as the
-- table owner or `service_role`, which bypass RLS.
--   authenticated: insert their own jobs (type, payload, priority, dedupe_key,
--                  and user_id = themselves), read their own jobs; nothing else.
--                  Cancelling goes through public.cancel_media_job(id).
--   anon:          nothing.
--   service_role:  everything.

-- Supabase grants every new public table to anon and authenticated; take that back
-- and grant exactly what the contract allows. Column privileges keep status,
-- result, the lease and the attempt counters out of users' hands.
revoke all on table public.media_jobs from public, anon, authenticated;
grant select on table public.media_jobs to authenticated;
grant insert (user_id, type, payload, priority, dedupe_key) on table public.media_jobs to authenticated;
grant all on table public.media_jobs to service_role;

alter table public.media_jobs enable row level security;

drop policy if exists "media_jobs: owners read their jobs" on public.media_jobs;
create policy "media_jobs: owners read their jobs" on public.media_jobs
  for select to authenticated
  using (user_id = (select auth.uid()));

-- The column grants already stop users setting worker columns; the check repeats
-- it so the rule holds even if a later grant is too wide.
drop policy if exists "media_jobs: owners add pending jobs" on public.media_jobs;
create policy "media_jobs: owners add pending jobs" on public.media_jobs
  for insert to authenticated
  with check (
    user_id = (select auth.uid())
    and status = 'pending' and result is null and error is null
    and attempts = 0 and locked_by is null and locked_until is null
    and cancel_requested_at is null and started_at is null and completed_at is null);

-- service_role has BYPASSRLS on Supabase; this keeps it working where it does not.
drop policy if exists "media_jobs: service role does anything" on public.media_jobs;
create policy "media_jobs: service role does anything" on public.media_jobs
  for all to service_role
  using (true) with check (true);

-- Every new job is checked here, whoever inserts it, so a bad row fails at the
-- insert with a message and a hint instead of later in the worker.
-- For end users (anon/authenticated) it also keeps payload.input.path inside
-- their own folder: the worker reads storage with a key that bypasses RLS, so
-- without this a user could have it read someone else's file (confused deputy).
-- The worker checks the same rule again before it downloads anything.
create or replace function public.media_jobs_validate_insert() returns trigger
language plpgsql set search_path = '' as $$
declare
  caller uuid;
  input_path text;
  parts text[];
begin
  if new.type is null or length(new.type) > 100 or new.type !~ '^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$' then
    raise exception 'media_jobs.type %: not a job type', coalesce(quote_literal(new.type), 'null')
      using errcode = 'check_violation',
            hint = 'Use a lowercase dotted handler name such as video.process (letters, digits, _; at most 100 characters).';
  end if;
  if jsonb_typeof(new.payload) is distinct from 'object' then
    raise exception 'media_jobs.payload must be a JSON object, not %', coalesce(jsonb_typeof(new.payload), 'null')
      using errcode = 'check_violation',
            hint = 'Send an object such as {"input": {"bucket": "media-uploads", "path": "<user id>/clip.mp4"}}.';
  end if;
  if octet_length(new.payload::text) > 65536 then
    raise exception 'media_jobs.payload is % bytes; at most 65536 are allowed', octet_length(new.payload::text)
      using errcode = 'check_violation',
            hint = 'Pass media by storage path in payload.input, not inline.';
  end if;
  if new.priority not between -100 and 100 then
    raise exception 'media_jobs.priority % is outside -100..100', new.priority
      using errcode = 'check_violation', hint = 'Use 10 for high, 0 for normal, -10 for low.';
  end if;
  if new.max_attempts not between 1 and 10 then
    raise exception 'media_jobs.max_attempts % is outside 1..10', new.max_attempts
      using errcode = 'check_violation', hint = 'The default is 3.';
  end if;

  if current_user::text in ('anon', 'authenticated') or auth.role() in ('anon', 'authenticated') then
    caller := auth.uid();
    if new.payload ? 'input' then
      if jsonb_typeof(new.payload #> '{input,path}') is distinct from 'string' then
        raise exception 'payload.input.path must be a string'
          using errcode = 'check_violation',
                hint = 'Send {"input": {"bucket": "media-uploads", "path": "<user id>/clip.mp4"}}.';
      end if;
      input_path := new.payload #>> '{input,path}';
      parts := string_to_array(input_path, '/');
      if caller is null or cardinality(parts) < 2 or parts[1] <> caller::text or '..' = any(parts) then
        raise exception 'payload.input.path % is outside your folder %/',
            quote_literal(input_path), coalesce(caller::text, '(not signed in)')
          using errcode = 'insufficient_privilege',
                hint = 'Upload the file under your own folder (<user id>/...) in media-uploads and use that path.';
      end if;
    end if;
  end if;
  return new;
end $$;

drop trigger if exists media_jobs_validate_insert on public.media_jobs;
create trigger media_jobs_validate_insert
  before insert on public.media_jobs
  for each row execute function public.media_jobs_validate_insert();
