"""Layer 3 (runtime), I/O: the input transports — `file_input`, `url_input`, `datagen`.

Each runs as one asyncio task per endpoint: it reads bytes (blocking file reads and parsing
happen on a thread), feeds the endpoint's parser and pushes the parsed batches into the
endpoint's bounded queue, waiting while the connector or the pipeline is paused. At the end of
its data it sets `end_of_input` (a followed file never ends).
"""

from __future__ import annotations

import asyncio
import datetime
import decimal
import logging
import time
from pathlib import Path
from typing import Any

import aiohttp
import pyarrow as pa

from sluice.models.runtime_config import FormatConfig
from sluice.runtime.controller import Controller, InputEndpoint
from sluice.runtime.engine import WEIGHT
from sluice.runtime.formats import Parsed, RecordParser
from sluice.runtime.program import EndpointPlan

logger = logging.getLogger(__name__)

CHUNK_BYTES = 4 << 20
FOLLOW_POLL_SECONDS = 0.1
DATAGEN_BATCH = 10_000


async def run_input(controller: Controller, endpoint: InputEndpoint, plan: EndpointPlan) -> None:
    """Run the transport of one input endpoint until its data ends or it is cancelled."""
    transport = plan.connector.transport
    try:
        if transport.name == "file_input":
            await _file_input(controller, endpoint, plan)
        elif transport.name == "url_input":
            await _url_input(controller, endpoint, plan)
        elif transport.name == "datagen":
            await _datagen(controller, endpoint, transport.config)
    except asyncio.CancelledError:
        raise
    except (OSError, aiohttp.ClientError, ValueError) as error:
        logger.error("input %s failed: %s", endpoint.name, error)
        endpoint.fatal_error = str(error)
        endpoint.transport_error(str(error))


def _parser(controller: Controller, endpoint: InputEndpoint, plan: EndpointPlan) -> RecordParser:
    fmt = plan.connector.format or FormatConfig(name="json")
    return controller.parser_for(endpoint.table, fmt)


async def _feed(
    controller: Controller, endpoint: InputEndpoint, parser: RecordParser, data: bytes, final: bool
) -> None:
    await endpoint.resumed.wait()
    parsed: Parsed = await asyncio.to_thread(parser.feed, data, final)
    await controller.push(endpoint, parsed, len(data))


async def _file_input(controller: Controller, endpoint: InputEndpoint, plan: EndpointPlan) -> None:
    config = plan.connector.transport.config
    path = Path(str(config.get("path", "")))
    follow = bool(config.get("follow", False))
    chunk_bytes = int(config.get("buffer_size_bytes") or CHUNK_BYTES)
    parser = _parser(controller, endpoint, plan)
    source = await asyncio.to_thread(path.open, "rb")
    try:
        while True:
            data = await asyncio.to_thread(source.read, chunk_bytes)
            if data:
                await _feed(controller, endpoint, parser, data, final=False)
                continue
            if not follow:
                break
            await asyncio.sleep(FOLLOW_POLL_SECONDS)
    finally:
        source.close()
    await _feed(controller, endpoint, parser, b"", final=True)
    endpoint.end_of_input = True
    controller.wake()


async def _url_input(controller: Controller, endpoint: InputEndpoint, plan: EndpointPlan) -> None:
    url = str(plan.connector.transport.config.get("path", ""))
    parser = _parser(controller, endpoint, plan)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
        response.raise_for_status()
        async for chunk in response.content.iter_chunked(1 << 20):
            await _feed(controller, endpoint, parser, chunk, final=False)
    await _feed(controller, endpoint, parser, b"", final=True)
    endpoint.end_of_input = True
    controller.wake()


async def _datagen(controller: Controller, endpoint: InputEndpoint, config: dict[str, Any]) -> None:
    """Feldera's `datagen`, simplified: per plan, `limit` rows at `rate` rows/s; integer fields
    count up (or cycle through `range`), others are derived from the row number."""
    relation = controller.engine.tables[endpoint.table]
    plans = config.get("plan") or [{}]
    produced = 0
    for plan in plans:
        limit = plan.get("limit")
        rate = plan.get("rate")
        fields = plan.get("fields") or {}
        started, emitted = time.monotonic(), 0
        while limit is None or emitted < limit:
            count = DATAGEN_BATCH if limit is None else min(DATAGEN_BATCH, limit - emitted)
            if rate:
                count = max(1, min(count, int(rate)))
            rows = range(produced, produced + count)
            batch = pa.table(
                {
                    field.name: _generated(field.type, rows, fields.get(field.name) or {})
                    for field in relation.schema
                }
            )
            batch = batch.append_column(WEIGHT, pa.array([1] * count, pa.int64()))
            await endpoint.resumed.wait()
            await controller.push(endpoint, Parsed(batch), 0)
            produced += count
            emitted += count
            if rate:
                ahead = emitted / rate - (time.monotonic() - started)
                if ahead > 0:
                    await asyncio.sleep(ahead)
            else:
                await asyncio.sleep(0)
    endpoint.end_of_input = True
    controller.wake()


def _generated(arrow_type: pa.DataType, rows: range, spec: dict[str, Any]) -> pa.Array:
    bounds = spec.get("range")
    low, high = (bounds[0], bounds[1]) if bounds else (0, None)

    def integer(row: int) -> int:
        return low + (row % (high - low) if high is not None and high > low else row)

    if pa.types.is_integer(arrow_type):
        return pa.array([integer(row) for row in rows], arrow_type)
    if pa.types.is_floating(arrow_type):
        return pa.array([float(integer(row)) for row in rows], arrow_type)
    if pa.types.is_decimal(arrow_type):
        return pa.array([decimal.Decimal(integer(row) % 10_000) for row in rows], arrow_type)
    if pa.types.is_boolean(arrow_type):
        return pa.array([row % 2 == 0 for row in rows], arrow_type)
    if pa.types.is_date(arrow_type):
        epoch = datetime.date(1970, 1, 1)
        return pa.array([epoch + datetime.timedelta(days=integer(row)) for row in rows], arrow_type)
    if pa.types.is_timestamp(arrow_type):
        epoch_time = datetime.datetime(1970, 1, 1)
        return pa.array(
            [epoch_time + datetime.timedelta(seconds=integer(row)) for row in rows], arrow_type
        )
    return pa.array([str(integer(row)) for row in rows], pa.string()).cast(arrow_type)
