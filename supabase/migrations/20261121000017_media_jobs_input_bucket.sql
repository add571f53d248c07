-- Users may name inputs in media-uploads only. The worker reads Storage with the service key,
-- so without this a user could point it at another bucket laid out by user id (a confused
-- deputy), have it derive outputs from files they may not read, or, with
-- delete_input_on_success, delete them. The worker checks the same. Expand-only, idempotent.

create or replace function public.media_jobs_validate_input_bucket() returns trigger
language plpgsql set search_path = '' as $$
begin
  if (current_user::text in ('anon', 'authenticated') or auth.role() in ('anon', 'authenticated'))
     and new.payload ? 'input'
     and coalesce(new.payload #>> '{input,bucket}', 'media-uploads') <> 'media-uploads' then
    raise exception 'payload.input.bucket % is not allowed', quote_literal(new.payload #>> '{input,bucket}')
      using errcode = 'insufficient_privilege',
            hint = 'Upload the file to the media-uploads bucket, under your own folder.';
  end if;
  return new;
end $$;

drop trigger if exists media_jobs_validate_input_bucket on public.media_jobs;
create trigger media_jobs_validate_input_bucket
  before insert on public.media_jobs
  for each row execute function public.media_jobs_validate_input_bucket();
