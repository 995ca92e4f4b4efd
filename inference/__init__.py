"""Model endpoints, generation runs, the vLLM client and the Celery tasks that fill outputs."""
