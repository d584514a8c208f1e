"""``manage.py runserver`` (make demo, make serve): Django's development server with
TCP_NODELAY on each connection and a listen backlog of 128, still serving static files."""

from __future__ import annotations

import socket

from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.management import get_commands, load_command_class
from django.core.servers.basehttp import WSGIRequestHandler

from dashboard.management.commands import runserver


def test_the_dashboards_runserver_takes_the_place_of_staticfiles() -> None:
    assert get_commands()["runserver"] == "dashboard"
    command = load_command_class("dashboard", "runserver")
    assert command.server_cls is runserver.Server
    handler = command.get_handler(use_static_handler=True, insecure_serving=True)
    assert isinstance(handler, StaticFilesHandler)


def test_each_connection_sends_without_waiting_for_acknowledgements() -> None:
    server = runserver.Server(("127.0.0.1", 0), WSGIRequestHandler)
    try:
        assert server.request_queue_size == runserver.LISTEN_BACKLOG == 128
        with socket.create_connection(server.server_address[:2], timeout=5):
            conn, _ = server.get_request()
            try:
                assert conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
            finally:
                conn.close()
    finally:
        server.server_close()
