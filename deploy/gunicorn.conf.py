"""gunicorn settings for Xiaowei in production (docs/deploy.md):

    gunicorn -c deploy/gunicorn.conf.py webui.wsgi:app

with ``DATABASE_URL``, ``XIAOWEI_SECRET_KEY`` and the other settings in the service's environment,
behind a TLS proxy (nginx) that forwards to ``bind``; set ``XIAOWEI_TRUSTED_PROXIES=1`` for it. Any
value here can be overridden on the command line (``--bind``, ``--workers``) or in
``GUNICORN_CMD_ARGS``. Background work runs in ``xiaowei worker``, never in the web workers.
"""

import multiprocessing

bind = "127.0.0.1:8000"  # the TLS proxy in front forwards here
# Processes: the engine holds the GIL while it runs a step, so scale with processes, not threads.
workers = min(2 * multiprocessing.cpu_count() + 1, 8)
worker_class = "gthread"
threads = 4  # a few requests wait on the database or a PDF printer at once per process
timeout = 60  # a request that runs longer is killed and logged (PDF printing is bounded well below this)
graceful_timeout = 30
keepalive = 5
# Each worker opens its own database pool after the fork (never share connections across processes).
preload_app = False
max_requests = 5000  # recycle workers now and then
max_requests_jitter = 500
forwarded_allow_ips = "127.0.0.1"  # the proxy on this machine; Xiaowei itself reads X-Forwarded-For only
#                                     with XIAOWEI_TRUSTED_PROXIES
accesslog = "-"
errorlog = "-"
loglevel = "info"
proc_name = "xiaowei-web"
