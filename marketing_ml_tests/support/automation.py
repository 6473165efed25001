"""The two sensors as the daemon runs them, in process against a real instance: a look at the raw
folder stores the events it reports; an automation tick returns its run request, which a test
runs as the daemon would (the requested assets with every check on them)."""

from dataclasses import dataclass

import dagster as dg

from marketing_ml.defs.automation.jobs import build_raw_files_sensor
from marketing_ml.resources import RawFilesResource
from marketing_ml_tests.support.lakehouse import Lakehouse


def keys_of(request: dg.RunRequest | None) -> set[str]:
    """The asset keys a run request selects, as "group/name" strings (none for no request)."""
    if request is None:
        return set()
    return {key.to_user_string() for key in request.asset_selection}


@dataclass
class Automation:
    """One lakehouse's sensors with their cursors, evaluated one look at a time."""

    lakehouse: Lakehouse
    instance: dg.DagsterInstance
    raw_cursor: str | None = None
    automation_cursor: str | None = None

    def __post_init__(self):
        self.definitions = self.lakehouse.definitions
        self.raw_files_changed = build_raw_files_sensor()

    def look_at_raw_folder(self) -> dg.SensorResult | dg.SkipReason:
        context = dg.build_sensor_context(
            cursor=self.raw_cursor,
            instance=self.instance,
            resources={"raw_files": RawFilesResource(directory=str(self.lakehouse.raw_dir))},
        )
        result = self.raw_files_changed(context)
        if isinstance(result, dg.SensorResult):
            for event in result.asset_events:
                self.instance.report_runless_asset_event(event)
        self.raw_cursor = context.cursor
        return result

    def tick(self) -> dg.RunRequest | None:
        """The automation sensor's look: its one run request, or None when it asks for nothing."""
        sensor = self.definitions.resolve_sensor_def("lakehouse_automation")
        context = dg.build_sensor_context(
            cursor=self.automation_cursor, instance=self.instance, definitions=self.definitions
        )
        result = sensor(context)
        self.automation_cursor = result.cursor
        assert len(result.run_requests) <= 1, "one look asks for one run"
        return result.run_requests[0] if result.run_requests else None

    def run(
        self, request: dg.RunRequest, run_config=None, succeeds: bool = True
    ) -> dg.ExecuteInProcessResult:
        result = dg.materialize(
            [*self.definitions.assets, *self.definitions.asset_checks],
            resources=self.definitions.resources,
            selection=request.asset_selection,
            tags=request.tags,
            instance=self.instance,
            run_config=run_config,
            raise_on_error=False,
        )
        assert result.success == succeeds
        return result

    def drop_and_run(self, run_config=None) -> tuple[dg.RunRequest, dg.ExecuteInProcessResult]:
        """A file drop: the raw-folder look reports it, the next tick asks for a run, which runs."""
        assert isinstance(self.look_at_raw_folder(), dg.SensorResult)
        request = self.tick()
        assert request is not None
        return request, self.run(request, run_config)
