"""``manage.py runserver`` (what ``make demo`` and ``make serve`` run), with two fixes to
Django's development server for a dashboard that many people poll at once:

- ``TCP_NODELAY`` on each connection: the server writes a response's headers and its body
  in two sends, and on a kept-alive connection Nagle's algorithm holds the body until the
  client acknowledges the headers, which it delays by up to 40 ms. Every request took
  40 ms longer than its work (p50 56 ms against 16 ms with the option, one viewer polling
  a queue page; ``bench/overview.py --load``).
- a listen backlog of 128 instead of 10, so that a burst of new connections is not
  dropped and retried by the client's kernel seconds later.

Static files are still served (this is the staticfiles app's command, which the dashboard
app precedes in INSTALLED_APPS). Production runs gunicorn (README, "Running in production").
"""

from __future__ import annotations

import socket
from typing import Any

from django.contrib.staticfiles.management.commands.runserver import Command as StaticRunserver
from django.core.servers.basehttp import WSGIServer

LISTEN_BACKLOG = 128


class Server(WSGIServer):
    request_queue_size = LISTEN_BACKLOG

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, address = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, address


class Command(StaticRunserver):
    server_cls = Server
