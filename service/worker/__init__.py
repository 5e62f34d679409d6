"""The provisioning worker: the job queue's consumer and the periodic tasks."""
