-- Fair share between owners (issue 18): the indexes the fair claim reads, and the per-owner cap's gate.
-- Safe to apply twice; only ever adds. Jobs without an owner are one group, keyed by the nil UUID.

-- Each owner's pending jobs in the owner's own claim order. The claim skips from owner to owner
-- on it (one probe per owner with jobs waiting) and reads each owner's next jobs from it.
create index if not exists media_jobs_owner_claim_idx
  on public.media_jobs ((coalesce(user_id, '00000000-0000-0000-0000-000000000000'::uuid)),
                        priority desc, run_at, created_at)
  where status = 'pending';

-- Running jobs by owner: "fewest jobs processing right now" and the cap count these (few rows).
create index if not exists media_jobs_owner_running_idx
  on public.media_jobs ((coalesce(user_id, '00000000-0000-0000-0000-000000000000'::uuid)))
  where status = 'processing';

-- How many more jobs of `owner` a claim may start under `cap`, not counting `finishing` (jobs the
-- same statement completes). Called by the claim statements only when WORKER_MAX_RUNNING_PER_USER
-- is set. The advisory lock serialises claimers of one owner until their commit; one that finds it
-- taken passes the owner over (0), as SKIP LOCKED passes a locked row. VOLATILE, so that under READ
-- COMMITTED the count takes a fresh snapshot after the lock: it sees every claim committed before.
create or replace function public.media_jobs_owner_slots(owner uuid, cap integer, finishing uuid[])
returns integer
language plpgsql volatile set search_path = '' as $$
declare
  running integer;
begin
  if not pg_try_advisory_xact_lock(hashtext('media_jobs_owner_cap'), hashtext(owner::text)) then
    return 0;
  end if;
  select count(*) into running from public.media_jobs
  where status = 'processing'
    and coalesce(user_id, '00000000-0000-0000-0000-000000000000'::uuid) = owner
    and id <> all(coalesce(finishing, '{}'));
  return greatest(cap - running, 0);
end $$;

comment on function public.media_jobs_owner_slots(uuid, integer, uuid[]) is
  'The media worker''s per-owner cap: free slots of one owner, under a per-owner advisory lock. Worker only.';

-- Supabase grants new functions to anon and authenticated (PostgREST would expose it as an RPC).
revoke all on function public.media_jobs_owner_slots(uuid, integer, uuid[]) from public, anon, authenticated;
grant execute on function public.media_jobs_owner_slots(uuid, integer, uuid[]) to service_role;
