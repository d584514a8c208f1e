"""Overview, queues and buses: the read-only pages built on topology discovery."""

from django.urls import URLPattern, URLResolver, path

from dashboard.views import bus, overview, queues, strip

urlpatterns: list[URLPattern | URLResolver] = [
    path("", overview.overview, name="overview"),
    path("state/", strip.state_strip, name="state_strip"),
    path("queues/", queues.queue_list, name="queues"),
    path("queues/<queue:name>/", queues.queue_detail, name="queue_detail"),
    # Partner bus names contain "/" (aws.partner/...).
    path("buses/<bus:name>/", bus.bus_detail, name="bus_detail"),
]
