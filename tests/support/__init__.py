"""Code the tests share: worker processes and job rows (workers), generated media (media,
media_inputs), test databases (databases), a PostgreSQL of a test's own (private_pg), a webhook
receiver (webhook_receiver).

Test modules import from here, never from one another."""
