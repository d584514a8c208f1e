from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "operations"
    verbose_name = "Operations"

    def ready(self) -> None:
        from operations import environments

        # A bad environments file stops startup here, naming the file, environment, field.
        environments.check()

        from operations import metrics, notifications

        notifications.connect()
        metrics.register()
