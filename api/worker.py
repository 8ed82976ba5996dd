"""Entry module for `dramatiq phantomflow.api.worker` (what `phantomflow worker` runs).

Declares the render, webhook and export actors on the Redis broker named by REDIS_URL (see
`api/bootstrap.py`); each worker process builds its runtime on its first message.
"""

from __future__ import annotations

import logging

from phantomflow.api.bootstrap import production_settings, worker_actors

logging.basicConfig(level=logging.INFO)

actors = worker_actors(production_settings())
render_job = actors.render
deliver_webhook = actors.webhook
export_job = actors.export
