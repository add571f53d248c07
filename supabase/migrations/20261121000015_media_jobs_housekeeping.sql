-- Delete finished jobs after a while: completed and cancelled after 30 days,
-- failed after 90 (kept longer to debug). Their output files stay in Storage.
-- Scheduled nightly with pg_cron when the extension is enabled; otherwise run
-- `select public.media_jobs_housekeeping();` yourself, or schedule it once
-- pg_cron is enabled (see docs/database.md).

create or replace function public.media_jobs_housekeeping() returns bigint
language sql set search_path = '' as $$
  with gone as (
    delete from public.media_jobs
     where (status in ('completed', 'cancelled') and completed_at < now() - interval '30 days')
        or (status = 'failed' and completed_at < now() - interval '90 days')
    returning 1)
  select count(*) from gone
$$;

comment on function public.media_jobs_housekeeping() is
  'Delete completed/cancelled jobs older than 30 days and failed ones older than 90; returns how many.';

revoke all on function public.media_jobs_housekeeping() from public, anon, authenticated;
grant execute on function public.media_jobs_housekeeping() to service_role;

do $$
begin
  if to_regprocedure('cron.schedule(text, text, text)') is null then
    raise notice 'pg_cron is not enabled: media_jobs housekeeping is not scheduled';
  else
    -- Scheduling under a name replaces an earlier schedule of that name.
    perform cron.schedule('media-jobs-housekeeping', '17 3 * * *', 'select public.media_jobs_housekeeping()');
  end if;
end $$;
