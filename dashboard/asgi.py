import os

from django.core.asgi import get_asgi_application

from dashboard.startup import configuration_errors_in_one_line

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
with configuration_errors_in_one_line():
    application = get_asgi_application()
