"""Live progress for the report and sweeps (rich): one bar for all runs, one per experiment, and one per
run in flight showing the experiment, seed, last logged step, the experiment's message and an ETA."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from .engine import Listener, RunRecord
from .executors import Event


class LiveProgress(Listener):
    """A :class:`~oraclerl.runtime.execution.engine.Listener` drawing rich progress bars (``quiet`` draws
    nothing)."""

    def __init__(self, quiet: bool = False, console: Console | None = None, point_label=None):
        self.quiet = quiet
        self.point_label = point_label
        """Optional ``point_label(point) -> str`` naming a sweep's grid point in the per-run rows."""
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=30),
            TaskProgressColumn(),
            TextColumn("{task.fields[count]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            disable=quiet,
            transient=False,
        )
        self._overall = None
        self._groups: dict[str, int] = {}
        self._rows: dict[int, int] = {}
        self._done: dict = {}

    def __enter__(self) -> LiveProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def note(self, text: str) -> None:
        if not self.quiet:
            self.console.print(text, highlight=False)

    def _advance(self, key, task_id) -> None:
        total = self.progress.tasks[self._index(task_id)].total
        self._done[key] = self._done.get(key, 0) + 1
        self.progress.update(task_id, advance=1, count=f"{self._done[key]}/{int(total)} runs")

    def _index(self, task_id) -> int:
        return next(i for i, t in enumerate(self.progress.tasks) if t.id == task_id)

    def planned(self, records: list[RunRecord]) -> None:
        records = [r for r in records if r.same_as is None]  # duplicates share their twin's execution
        self._overall = self.progress.add_task(
            "[bold]all runs", total=len(records), count=f"0/{len(records)} runs"
        )
        names = []
        for r in records:
            if r.spec.experiment.name not in names:
                names.append(r.spec.experiment.name)
        for name in names:
            n = sum(r.spec.experiment.name == name for r in records)
            self._groups[name] = self.progress.add_task(f"  {name}", total=n, count=f"0/{n} runs")
        for r in records:
            if r.state == "reused":
                self._advance("all", self._overall)
                self._advance(r.spec.experiment.name, self._groups[r.spec.experiment.name])
            if r.previous:
                self.note(
                    f"[yellow]re-running {r.spec.experiment.name} seed {r.spec.seed} ({r.run_dir.path}): "
                    f"{r.previous}[/yellow]"
                )
        reused = sum(r.state == "reused" for r in records)
        if reused:
            self.note(f"re-using {reused} finished run{'s' if reused != 1 else ''} from the run store")

    def _label(self, rec: RunRecord, step=None, message: str = "") -> str:
        text = f"    {rec.spec.experiment.name}"
        if self.point_label is not None:
            text += f" [{self.point_label(rec.spec.point)}]"
        text += f" seed {rec.spec.seed}"
        if step is not None:
            text += f" step {step}"
        if message:
            text += f" · {message}"
        return text[:90]

    def event(self, ev: Event, rec: RunRecord) -> None:
        if ev.kind == "start" and ev.task_id not in self._rows:
            self._rows[ev.task_id] = self.progress.add_task(self._label(rec), total=1.0, count="")
        elif ev.kind == "progress":
            if ev.task_id not in self._rows:
                self._rows[ev.task_id] = self.progress.add_task(self._label(rec), total=1.0, count="")
            self.progress.update(self._rows[ev.task_id], completed=ev.fraction or 0.0,
                                 description=self._label(rec, ev.step, ev.message))
        elif ev.kind in ("done", "failed"):
            row = self._rows.pop(ev.task_id, None)
            if row is not None:
                self.progress.remove_task(row)
            self._advance("all", self._overall)
            self._advance(rec.spec.experiment.name, self._groups[rec.spec.experiment.name])
            if ev.kind == "failed":
                err = (ev.payload or {}).get("error", "failed")
                self.note(f"[red]{rec.spec.experiment.name} seed {rec.spec.seed} failed: {err}[/red]")
        elif ev.kind == "retry":
            row = self._rows.pop(ev.task_id, None)
            if row is not None:
                self.progress.remove_task(row)
            self.note(
                f"[yellow]{ev.message}; re-running {rec.spec.experiment.name} seed {rec.spec.seed}[/yellow]"
            )
