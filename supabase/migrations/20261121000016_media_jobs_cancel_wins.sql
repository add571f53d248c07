-- A cancel request wins over a requeue. If the worker gives a job back to
-- `pending` (a retry after an error, or a release at shutdown) after its owner
-- asked to cancel it, the job becomes `cancelled` instead, so it never runs
-- again. Without this the request could be lost when it lands between two
-- heartbeats. To run such a job again, clear cancel_requested_at as well.

create or replace function public.media_jobs_cancel_instead_of_requeue() returns trigger
language plpgsql set search_path = '' as $$
begin
  new.status := 'cancelled';
  new.stage := 'cancelled';
  new.error := 'cancelled by request';
  new.completed_at := coalesce(new.completed_at, now());
  new.locked_by := null;
  new.locked_until := null;
  return new;
end $$;

drop trigger if exists media_jobs_cancel_instead_of_requeue on public.media_jobs;
create trigger media_jobs_cancel_instead_of_requeue
  before update of status on public.media_jobs
  for each row when (new.status = 'pending' and new.cancel_requested_at is not null)
  execute function public.media_jobs_cancel_instead_of_requeue();
