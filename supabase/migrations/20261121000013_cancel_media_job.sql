-- public.cancel_media_job(id): the only way a web app changes a job
--   supabase.rpc('cancel_media_job', { id })
-- pending    -> cancelled at once (completed_at set);
-- processing -> cancel_requested_at set; the worker's heartbeat sees it within
--               seconds, stops ffmpeg and marks the job cancelled;
-- finished   -> unchanged.
-- Returns the job's status after the call. Allowed for the job's owner, the
-- service role, and a direct database session without a JWT whose login role may
-- update media_jobs anyway (operators, the worker). Anyone else gets the same
-- "no job" error as for a missing id, so ids of other users' jobs leak nothing.

create or replace function public.cancel_media_job(id uuid) returns text
language plpgsql security definer set search_path = '' as $$
#variable_conflict use_column
declare
  job record;
  caller uuid := auth.uid();
  -- PostgREST always sets the JWT claims; a session without them is a direct
  -- login, trusted only as far as that login could update the table itself.
  -- coalesce and `is not distinct from` below: a NULL here must never mean "allowed".
  privileged boolean := coalesce(auth.role(), '') = 'service_role'
    or (auth.role() is null and caller is null
        and has_table_privilege(session_user, 'public.media_jobs', 'UPDATE'));
begin
  select j.id, j.user_id, j.status into job
    from public.media_jobs j where j.id = cancel_media_job.id
    for update;
  if not found or not (privileged or (caller is not null and job.user_id is not distinct from caller)) then
    raise exception 'no media job % that you may cancel', cancel_media_job.id
      using errcode = 'no_data_found', hint = 'Check the id: users can cancel only their own jobs.';
  end if;
  if job.status = 'pending' then
    update public.media_jobs
       set status = 'cancelled', stage = 'cancelled', error = 'cancelled by request',
           cancel_requested_at = now(), completed_at = now(), locked_by = null, locked_until = null
     where id = cancel_media_job.id;
    return 'cancelled';
  elsif job.status = 'processing' then
    update public.media_jobs set cancel_requested_at = coalesce(cancel_requested_at, now())
     where id = cancel_media_job.id;
  end if;
  return job.status::text;
end $$;

comment on function public.cancel_media_job(uuid) is
  'Cancel a media job: pending jobs at once, running ones at the worker''s next heartbeat. Returns the status.';

revoke all on function public.cancel_media_job(uuid) from public, anon;
grant execute on function public.cancel_media_job(uuid) to authenticated, service_role;
