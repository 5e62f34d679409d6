"""Fixtures of the quiva.ai surface's tests: a bucket create answers only once the worker has
provisioned the bucket, so these tests run a worker alongside the app."""

import asyncio

import pytest

from service.worker.loop import Worker


@pytest.fixture
async def running_worker(db, settings):
    """A worker running in this process for the test's duration."""
    worker = Worker(db, settings)
    task = asyncio.create_task(worker.run())
    yield worker
    worker.stop()
    await task


@pytest.fixture
async def quiva(client, running_worker):
    """The API client, with a worker provisioning what it creates."""
    return client
