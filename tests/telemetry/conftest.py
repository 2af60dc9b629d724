"""Fixtures for the telemetry tests: a real OTLP/HTTP receiver and a real model API, both
on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.agents.vendor_api import VendorAPI
from tests.telemetry.receiver import OtlpReceiver


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    started = OtlpReceiver().start()
    yield started
    started.stop()


@pytest.fixture
def vendor_api() -> Iterator[VendorAPI]:
    api = VendorAPI().start()
    yield api
    api.stop()
